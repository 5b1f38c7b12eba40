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

    private (string JobId, ManualResetEventSlim Released)? _held;

    /// <summary>A slow storage (a stat on a hanging NFS mount): checks of <paramref name="jobId"/> block until <paramref name="released"/> is set.</summary>
    public void HoldChecksOf(string jobId, ManualResetEventSlim released) => _held = (jobId, released);

    /// <summary>How many checks are blocked right now.</summary>
    public int BlockedChecks => Volatile.Read(ref _blocked);
    private int _blocked;

    private void WaitIfHeld(JobSpec spec)
    {
        if (_held is not { } held || held.JobId != spec.JobId) return;
        Interlocked.Increment(ref _blocked);
        try { held.Released.Wait(TimeSpan.FromSeconds(30)); }
        finally { Interlocked.Decrement(ref _blocked); }
    }

    public string? MissingOutputs(JobSpec spec)
    {
        WaitIfHeld(spec);
        lock (_missing) return _missing.Contains(spec.JobId) ? $"{spec.JobId}: summary.json does not exist" : null;
    }

    public bool OutputsWrittenSince(JobSpec spec, DateTime sinceUtc)
    {
        WaitIfHeld(spec);
        lock (_writtenDuringOutage) return _writtenDuringOutage.Contains(spec.JobId);
    }
}
