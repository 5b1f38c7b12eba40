using NnUnet.Cluster.Sweeps;

namespace NnUnet.Cluster.Messages;

// worker -> coordinator (through the singleton proxy)

/// <summary>A worker announces itself; repeated after a coordinator hand-over. <paramref name="RunningJobId"/>/<paramref name="RunningAttempt"/>: what it is still running, if anything.</summary>
public sealed record RegisterWorker(string WorkerId, string Node, string Device, string? RunningJobId, int RunningAttempt) : INnUnetMessage;

public sealed record WorkerRegistered(string WorkerId, string SweepId) : INnUnetMessage;

/// <summary>The coordinator refuses the registration (the worker id is held by a live worker of another node); the worker keeps asking.</summary>
public sealed record WorkerRegistrationRefused(string WorkerId, string Reason) : INnUnetMessage;

/// <summary>The worker is idle and pulls work.</summary>
public sealed record RequestJob(string WorkerId) : INnUnetMessage;

/// <summary>
/// Sent by every worker every <c>liveness-interval</c> (10 s), busy or idle: the attempt it runs (<paramref name="JobId"/>
/// null = none) and that attempt's progress counter, which moves with every training iteration, validation or prediction
/// case, selection step and exported file (<paramref name="Phase"/>: what it does now, <paramref name="PhaseDone"/> of
/// <paramref name="PhaseTotal"/> steps). The lease counts from these; the stall timeout from the counter's last move.
/// </summary>
public sealed record WorkerAlive(string WorkerId, string? JobId, int Attempt, JobPhase? Phase, long Progress, int PhaseDone, int PhaseTotal) : INnUnetMessage;

/// <summary>One finished epoch; also the worker's heartbeat for the job.</summary>
public sealed record JobProgressReport(string WorkerId, string JobId, int Attempt, EpochMetrics Metrics) : INnUnetMessage;

/// <summary>
/// A job ended with its outputs written. <paramref name="RequestsNextJob"/>: the worker is idle and asks for its next
/// job in the same message (one message less per job than a separate <see cref="RequestJob"/>); false when the report
/// is sent again after re-registering, which is followed by its own RequestJob. The worker sends it again until the
/// coordinator answers, with the next <see cref="StartJob"/> or a <see cref="JobFinishedAck"/> (remoting is
/// at-most-once: a link that drops and heals without a node being removed loses what was in flight).
/// </summary>
public sealed record JobFinishedReport(string WorkerId, string JobId, int Attempt, string SummaryPath, Dictionary<string, double> Metrics,
    bool RequestsNextJob = false) : INnUnetMessage;

public sealed record JobFailedReport(string WorkerId, string JobId, int Attempt, string Error) : INnUnetMessage;

/// <summary>The worker could not take the job (it is busy); the coordinator puts it back without counting a failure.</summary>
public sealed record JobRejected(string WorkerId, string JobId, int Attempt, string Reason) : INnUnetMessage;

// coordinator -> worker

public sealed record StartJob(JobSpec Spec) : INnUnetMessage;

public sealed record CancelJobRun(string JobId, int Attempt, string Reason) : INnUnetMessage;

/// <summary>The coordinator has the worker's <see cref="JobFinishedReport"/> of this attempt and starts no job on it now.</summary>
public sealed record JobFinishedAck(string JobId, int Attempt) : INnUnetMessage;

// anyone -> coordinator: queries and operator commands

public sealed record GetSweepView : INnUnetMessage
{
    public static readonly GetSweepView Instance = new();
}

public enum SweepControlAction { Pause, Resume, RetryJob, CancelJob, ReleaseWorker }

/// <summary>
/// An operator's action: <paramref name="JobId"/> for retry and cancel, <paramref name="WorkerId"/> for releasing a
/// quarantined worker. Accepted only from a node of the coordinator role (where the dashboard, which checks its token,
/// runs) or the operator role (<c>nnunet sweep-control</c>).
/// </summary>
public sealed record SweepControl(SweepControlAction Action, string? JobId, string? WorkerId = null) : INnUnetMessage;

public sealed record SweepControlResult(bool Ok, string Message) : INnUnetMessage;

/// <summary><c>nnunet predict --cluster</c>: a prediction for the cluster's idle workers (the same request again resumes it).</summary>
public sealed record SubmitPrediction(PredictionRequest Request) : INnUnetMessage;

/// <summary>The answer to <see cref="SubmitPrediction"/>: the submission's jobs (shards, then the merge job) or why it was refused.</summary>
public sealed record PredictionSubmissionResult(bool Ok, string SubmissionId, string[] JobIds, string Message) : INnUnetMessage;

/// <summary>
/// Published on the <see cref="SweepTopics.Changes"/> topic after every applied event. <paramref name="Progress"/> is the
/// raw epoch record when the event is a finished epoch (losses, pseudo-Dice, epoch time), so that subscribers such as the
/// dashboard can draw per-epoch curves without the coordinator keeping (or persisting) every epoch.
/// </summary>
public sealed record SweepChanged(string SweepId, SweepEventView Event, JobView? Job, SweepStatus Status, JobProgressed? Progress = null) : INnUnetMessage;

/// <summary>Published once (on <see cref="SweepTopics.Finished"/>) when no job can run any more.</summary>
public sealed record SweepFinished(string SweepId, SweepStatus Status, int CompletedJobs, int FailedJobs) : INnUnetMessage;

public static class SweepTopics
{
    /// <summary>DistributedPubSub topic of <see cref="SweepChanged"/> (one message per event; the dashboard's feed).</summary>
    public const string Changes = "nnunet-sweep-changes";

    /// <summary>DistributedPubSub topic of <see cref="SweepFinished"/> (workers exit on it).</summary>
    public const string Finished = "nnunet-sweep-finished";
}
