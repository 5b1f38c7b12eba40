namespace NnUnet.Cluster.Sweeps;

/// <summary>
/// The coordinator found a completed job's outputs missing on storage (moved to <c>superseded/</c> by
/// <c>--overwrite</c>, deleted by hand): the job, and every completed job that depends on it, runs again.
/// <paramref name="Missing"/> maps each such job to what is missing.
/// </summary>
public sealed record RedoJobsWithoutResults(IReadOnlyDictionary<string, string> Missing, DateTime At) : SweepCommand(At);

/// <summary>A completed job runs again because its results (or those of a job it depends on) are gone from storage.</summary>
public sealed record JobResultsGone(string JobId, string Reason, DateTime At) : IJobEvent;
