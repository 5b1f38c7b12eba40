using NnUnet.Cluster.Messages;

namespace NnUnet.Cluster.Sweeps;

/// <summary>An event of a sweep: persisted by the coordinator and applied by <see cref="SweepState.Apply"/>.</summary>
public interface ISweepEvent : INnUnetMessage
{
    DateTime At { get; }
}

/// <summary>An event that concerns one job of the grid (everything but the sweep-wide ones).</summary>
public interface IJobEvent : ISweepEvent
{
    string JobId { get; }
}

public sealed record SweepDefined(SweepDefinition Definition, DateTime At) : ISweepEvent;

public sealed record JobAssigned(string JobId, int Attempt, string WorkerId, string Node, bool ResumeFromCheckpoint, DateTime At) : IJobEvent;

/// <summary>A worker that kept running a job while the coordinator restarted took it back (same attempt, no restart of the work).</summary>
public sealed record JobAdopted(string JobId, int Attempt, string WorkerId, string Node, DateTime At) : IJobEvent;

/// <summary>One finished epoch. Every one is applied and published; the coordinator persists at most one per job per throttle interval.</summary>
public sealed record JobProgressed(string JobId, int Attempt, EpochMetrics Metrics, DateTime At) : IJobEvent;

/// <summary>
/// A liveness report of the current attempt: its worker is alive (the lease counts from here) and its progress counter
/// (moves with every training iteration, validation/prediction case, selection step, exported file) stood at
/// <paramref name="Progress"/>. Applied and used by the stall rule, never persisted (one per worker per
/// liveness-interval; after a coordinator restart running jobs are re-queued anyway).
/// </summary>
public sealed record JobAlive(string JobId, int Attempt, JobPhase? Phase, long Progress, int PhaseDone, int PhaseTotal, DateTime At) : IJobEvent;

public sealed record JobCompleted(string JobId, int Attempt, string SummaryPath, Dictionary<string, double> Metrics, DateTime At) : IJobEvent;

/// <summary>
/// An attempt failed. <paramref name="Final"/>: the job used up its attempts and stays failed; otherwise it is pending
/// again and resumes from its checkpoint. <paramref name="WorkerId"/>: the worker it failed on (null: not a worker's
/// report, e.g. the re-queue limit). <paramref name="Error"/>: the error's signature (worker id, digits masked), by which
/// the same error on another worker is recognised. <paramref name="Unconfirmed"/>: not (yet) the job's own failure, so
/// not counted against its attempts: the error was not seen on another worker (the worker may be the broken one).
/// <paramref name="Confirms"/>: earlier unconfirmed failures with the same error that this one confirms as the job's
/// own; they count now too. Journals written before these existed read as counted failures of no worker, as they were.
/// </summary>
public sealed record JobFailed(string JobId, int Attempt, string Reason, bool Final, DateTime At, string? WorkerId = null, string? Error = null,
    bool Unconfirmed = false, int Confirms = 0) : IJobEvent;

/// <summary>
/// A worker whose attempts failed repeatedly (or within seconds of their start) gets no jobs until <paramref name="Until"/>
/// (or an operator's release). <paramref name="Level"/>: its quarantines without a success in between (the back-off
/// doubles with each). <paramref name="JobId"/>: the job whose failure quarantined it (released at once when that failure
/// turns out to be the job's own). <paramref name="EveryWorker"/>: no worker is left to run jobs (the sweep waits).
/// </summary>
public sealed record WorkerQuarantined(string WorkerId, int Level, DateTime Until, string Reason, string? JobId, bool EveryWorker, DateTime At) : ISweepEvent;

public enum WorkerReleaseKind { BackoffOver, Operator, FailureWasTheJobs }

/// <summary>A quarantined worker may run jobs again: back-off over or released by the operator (then on probation), or the failure that quarantined it was the job's own.</summary>
public sealed record WorkerReleased(string WorkerId, WorkerReleaseKind Kind, string Reason, DateTime At) : ISweepEvent;

/// <summary>An attempt ended without a failure of the job itself (worker lost, lease expired, coordinator restart): pending again, resume from checkpoint.
/// <paramref name="Adoptable"/>: after a coordinator restart the worker that ran it may still take it back; until
/// <paramref name="HeldUntil"/> nobody else gets it, so that workers have time to re-register.
/// <paramref name="Counted"/>: the attempt lost its worker (node lost, lease expired, worker restarted) and counts
/// towards <see cref="FailureLimits.MaxRequeues"/>; a busy worker's rejection or a coordinator restart does not.
/// Journals written before the count existed read as not counted.</summary>
public sealed record JobRequeued(string JobId, int Attempt, string Reason, bool Adoptable, DateTime At, DateTime? HeldUntil = null, bool Counted = false) : IJobEvent;

/// <summary>Operator retry of a failed or cancelled job: pending again with a fresh attempt budget.</summary>
public sealed record JobRetried(string JobId, DateTime At) : IJobEvent;

public sealed record JobCancelled(string JobId, string Reason, DateTime At) : IJobEvent;

public sealed record SweepPaused(DateTime At) : ISweepEvent;

public sealed record SweepResumed(DateTime At) : ISweepEvent;

/// <summary>A prediction was sent to the cluster: its shard jobs and merge job join the grid (<see cref="PredictionRequest.SubmissionId"/> names them).</summary>
public sealed record PredictionSubmitted(PredictionRequest Request, DateTime At) : ISweepEvent;
