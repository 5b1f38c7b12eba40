namespace NnUnet.Cluster.Sweeps;

/// <summary>A request to the sweep's rules; <see cref="SweepState.Decide"/> turns it into events (possibly none).</summary>
public abstract record SweepCommand(DateTime At);

public sealed record DefineSweep(SweepDefinition Definition, DateTime At) : SweepCommand(At);

/// <summary>
/// An idle worker asks for work: assigns the best ready job, if any (nothing while paused, nothing to a quarantined
/// worker). <paramref name="Workers"/>: how many workers are registered (0 = unknown), for the dispatch look-ahead.
/// <paramref name="OtherIdleWorkers"/>: how many other idle workers (not quarantined) could take a job now: while there
/// is one, a job that last failed on this worker is left for them.
/// </summary>
public sealed record AssignWork(string WorkerId, string Node, DateTime At, int Workers = 0, int OtherIdleWorkers = 0) : SweepCommand(At);

/// <summary>A registering worker says it is still running <paramref name="JobId"/> attempt <paramref name="Attempt"/>.</summary>
public sealed record AdoptRunningJob(string WorkerId, string Node, string JobId, int Attempt, DateTime At) : SweepCommand(At);

public sealed record RecordProgress(string JobId, int Attempt, EpochMetrics Metrics, DateTime At) : SweepCommand(At);

/// <summary>
/// A worker reports success; <paramref name="MissingOutputs"/> is the coordinator's own check of the files on storage
/// (null = all there). Outputs missing make it a failed attempt, judged as a reported failure (a worker whose writes
/// never reach the shared storage, a stale mount, is quarantined): <paramref name="OtherActiveWorkers"/> as in <see cref="FailJob"/>.
/// </summary>
public sealed record CompleteJob(string JobId, int Attempt, string SummaryPath, Dictionary<string, double> Metrics, string? MissingOutputs, DateTime At,
    int OtherActiveWorkers = 0) : SweepCommand(At);

/// <summary>
/// A worker reports that its attempt failed. <paramref name="OtherActiveWorkers"/>: how many other registered workers are
/// not quarantined (0 = this worker is the only one that can run jobs: the same error on it twice is the job's own, and a
/// fast failure alone does not quarantine it).
/// </summary>
public sealed record FailJob(string JobId, int Attempt, string Reason, DateTime At, int OtherActiveWorkers = 0) : SweepCommand(At);

/// <summary>Quarantines whose back-off is over end (the coordinator asks on every lease tick and at the earliest end).</summary>
public sealed record EndQuarantines(DateTime At) : SweepCommand(At);

/// <summary>The operator releases a quarantined worker (it is on probation: one more failure quarantines it again, for twice as long).</summary>
public sealed record ReleaseWorker(string WorkerId, DateTime At) : SweepCommand(At);

/// <summary>A worker could not take a job (busy): back to pending without counting a failure.</summary>
public sealed record RequeueJob(string JobId, int Attempt, string Reason, DateTime At) : SweepCommand(At);

/// <summary>A worker's node was removed or its actor terminated: its job goes back to pending.</summary>
public sealed record WorkerLost(string WorkerId, string Reason, DateTime At) : SweepCommand(At);

/// <summary>
/// Running jobs without a sign of life (liveness report or epoch) for longer than <paramref name="Lease"/> go back to
/// pending; so do running jobs alive but without progress for longer than <paramref name="StallTimeout"/> (hung; zero =
/// no stall rule). Both count as losing the worker (bounded by max-requeues).
/// </summary>
public sealed record ExpireLeases(TimeSpan Lease, DateTime At, TimeSpan StallTimeout = default) : SweepCommand(At);

/// <summary>
/// A worker's liveness report: the attempt it runs (<paramref name="JobId"/> null = none) and that attempt's progress.
/// When the coordinator believes the worker runs another attempt, assigned longer than <paramref name="StartJobTransit"/>
/// ago (a report sent before the StartJob arrived may cross it), that StartJob was lost: the job is re-queued at once.
/// </summary>
public sealed record RecordLiveness(string WorkerId, string? JobId, int Attempt, JobPhase? Phase, long Progress, int PhaseDone, int PhaseTotal,
    TimeSpan StartJobTransit, DateTime At) : SweepCommand(At);

/// <summary>
/// After the coordinator recovered: every job that was running goes back to pending, resumed from its checkpoint,
/// but is held for <paramref name="AdoptionGrace"/>: the worker still running it may re-register and keep it, or report its completion.
/// </summary>
public sealed record RequeueAfterRecovery(DateTime At, TimeSpan AdoptionGrace = default) : SweepCommand(At);

public sealed record PauseSweep(DateTime At) : SweepCommand(At);

public sealed record ResumeSweep(DateTime At) : SweepCommand(At);

public sealed record RetryJob(string JobId, DateTime At) : SweepCommand(At);

public sealed record CancelJob(string JobId, string Reason, DateTime At) : SweepCommand(At);

/// <summary>
/// <c>nnunet predict --cluster</c>: a new submission adds its shards and merge job; the same submission again (a re-run
/// of the command) adds nothing and retries its failed or cancelled jobs, which resume from the cases already written.
/// </summary>
public sealed record SubmitPredictionJobs(PredictionRequest Request, DateTime At) : SweepCommand(At);
