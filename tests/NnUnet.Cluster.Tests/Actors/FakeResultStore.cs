using NnUnet.Cluster.Backends;
using NnUnet.Cluster.Sweeps;

namespace NnUnet.Cluster.Tests.Actors;

/// <summary>Shared storage as the coordinator sees it, decided by the test: outputs present unless listed as missing.</summary>
public sealed class FakeResultStore : IResultStore
{
    private readonly HashSet<string> _missing = new(StringComparer.Ordinal);
    private readonly HashSet<string> _writtenDuringOutage = new(StringComparer.Ordinal);

    /// <summary>The job's outputs are not on storage (a worker's claim of success must be refused).</summary>
    public void Missing(string jobId) { lock (_missing) _missing.Add(jobId); }

    /// <summary>The job's outputs were written after its attempt started (while no coordinator listened).</summary>
    public void WrittenSinceStart(string jobId) { lock (_writtenDuringOutage) _writtenDuringOutage.Add(jobId); }

    public string? MissingOutputs(JobSpec spec)
    {
        lock (_missing) return _missing.Contains(spec.JobId) ? $"{spec.JobId}: summary.json does not exist" : null;
    }

    public bool OutputsWrittenSince(JobSpec spec, DateTime sinceUtc)
    {
        lock (_writtenDuringOutage) return _writtenDuringOutage.Contains(spec.JobId);
    }
}
