using NnUnet.Cluster.Messages;

namespace NnUnet.Cluster.Sweeps;

/// <summary>
/// What the sweep remembers of one worker (by its id, host:port/device, so that it outlives a restart of the worker
/// process): its failures in a row that were not the job's own, its quarantine and the last failure. Journaled through
/// the events (<see cref="JobFailed"/>, <see cref="JobCompleted"/>, <see cref="WorkerQuarantined"/>,
/// <see cref="WorkerReleased"/>); registration itself is not (workers register again after a coordinator restart).
/// </summary>
/// <param name="FailuresInARow">failures since its last success (or release) that were not the job's own; kept while quarantined, for the operator.</param>
/// <param name="Quarantines">quarantines since its last success (the next one lasts twice as long).</param>
/// <param name="Probation">released from quarantine without a success since: its next failure (not the job's own) quarantines it again.</param>
/// <param name="QuarantinedUntil">set while quarantined: when the back-off ends.</param>
/// <param name="QuarantinedFor">the job whose failure quarantined it.</param>
public sealed record WorkerRecord(
    string WorkerId,
    int FailuresInARow = 0,
    int Quarantines = 0,
    bool Probation = false,
    DateTime? QuarantinedAt = null,
    DateTime? QuarantinedUntil = null,
    string? QuarantineReason = null,
    string? QuarantinedFor = null,
    string? LastFailure = null,
    DateTime? LastFailureAt = null,
    DateTime? LastSuccessAt = null) : INnUnetMessage
{
    public bool Quarantined => QuarantinedUntil is not null;
}
