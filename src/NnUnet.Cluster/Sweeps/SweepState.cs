using System.Globalization;
using System.Text.RegularExpressions;
using NnUnet.Cluster.Messages;

namespace NnUnet.Cluster.Sweeps;

/// <summary>Persisted snapshot of a sweep's ledger (the coordinator saves one every N events). <paramref name="Workers"/>: what the sweep remembers of its workers (failures, quarantine); null in snapshots written before quarantine existed. <paramref name="Submissions"/>: the predictions sent to the coordinator (<c>nnunet predict --cluster</c>); null in snapshots written before them.</summary>
public sealed record SweepStateSnapshot(SweepDefinition? Definition, JobRecord[] Jobs, bool Paused, ConfigurationTiming[] Timings, WorkerRecord[]? Workers = null,
    PredictionRequest[]? Submissions = null) : INnUnetMessage;

/// <summary>
/// The sweep's rules, free of actors and I/O, in three parts: the <see cref="Ledger"/> (the fold of the events, its
/// indices and snapshot), the <see cref="Durations"/> model (priors, measured epoch times, estimates, ETA) and the
/// <see cref="Policy"/> that picks the next job. <see cref="Decide"/> answers a command with events (never mutating)
/// by a table of rules; <see cref="Apply"/> folds an event into the ledger. The coordinator persists what Decide
/// returns and applies it; replaying the journal through Apply rebuilds the same state.
/// </summary>
public sealed partial class SweepState
{
    private SweepState(SweepLedger ledger, FailureLimits? limits)
    {
        Ledger = ledger;
        Limits = limits ?? FailureLimits.Default;
        Durations = new DurationModel(ledger);
        Policy = new DispatchPolicy(ledger, Durations);
    }

    public SweepState(FailureLimits? limits = null) : this(new SweepLedger(), limits) { }

    /// <summary>The limits of the failure rules (configuration, not state).</summary>
    public FailureLimits Limits { get; }

    public SweepLedger Ledger { get; }
    public DurationModel Durations { get; }
    public DispatchPolicy Policy { get; }

    // the ledger's and the models' answers that the coordinator, the read model and the tests ask the state for
    public SweepDefinition? Definition => Ledger.Definition;
    public bool Paused => Ledger.Paused;
    public IReadOnlyList<string> JobOrder => Ledger.JobOrder;
    public IEnumerable<JobRecord> Jobs => Ledger.Jobs;
    public JobRecord Job(string jobId) => Ledger.Job(jobId);
    public bool TryGetJob(string jobId, out JobRecord job) => Ledger.TryGetJob(jobId, out job);
    public int Count(JobStatus status) => Ledger.Count(status);
    public bool IsFinished => Ledger.IsFinished;
    public bool AllCompleted => Ledger.AllCompleted;
    public SweepStatus Status => Ledger.Status;
    public JobRecord? JobOfWorker(string workerId) => Ledger.JobOfWorker(workerId);
    public IEnumerable<JobRecord> RunningJobs => Ledger.RunningJobs;
    public DateTime? EarliestHoldEnd() => Ledger.EarliestHoldEnd();
    public DateTime? EarliestQuarantineEnd() => Ledger.EarliestQuarantineEnd();
    public bool IsQuarantined(string workerId) => Ledger.IsQuarantined(workerId);
    public JobRecord? NextJob(DateTime? now = null, int workers = 0) => Policy.NextJob(now, workers);
    public double EstimatedEpochSeconds(string configuration) => Durations.EstimatedEpochSeconds(configuration);

    public void Apply(ISweepEvent e) => Ledger.Apply(e);

    public SweepStateSnapshot ToSnapshot() => Ledger.ToSnapshot();

    public static SweepState FromSnapshot(SweepStateSnapshot snapshot, FailureLimits? limits = null) => new(SweepLedger.FromSnapshot(snapshot), limits);

    // ---------------------------------------------------------------- Decide: command -> rule

    public IReadOnlyList<ISweepEvent> Decide(SweepCommand command)
    {
        if (command is DefineSweep define) return Define(define);
        if (Definition is null)
            throw new InvalidOperationException($"no sweep is defined yet; {command.GetType().Name} cannot be decided");
        return command switch
        {
            AssignWork c => Assign(c),
            AdoptRunningJob c => Adopt(c),
            RecordLiveness c => Liveness(c),
            RecordProgress c => IfCurrentAttempt(c.JobId, c.Attempt, _ => new JobProgressed(c.JobId, c.Attempt, c.Metrics, c.At)),
            CompleteJob c => Complete(c),
            FailJob c => AttemptFailed(c),
            RequeueJob c => IfCurrentAttempt(c.JobId, c.Attempt, job => Requeue(job, c.Reason, c.At)),
            WorkerLost c => JobOfWorker(c.WorkerId) is { } held ? [LostWorker(held, c.Reason, c.At)] : [],
            ExpireLeases c => ExpireLeases(c),
            RequeueAfterRecovery c => RequeueAfterRecovery(c),
            PauseSweep c => Paused ? [] : [new SweepPaused(c.At)],
            ResumeSweep c => Paused ? [new SweepResumed(c.At)] : [],
            RetryJob c => Retry(c),
            CancelJob c => Cancel(c),
            RedoJobsWithoutResults c => RedoJobsWithoutResults(c),
            EndQuarantines c => EndQuarantines(c),
            ReleaseWorker c => Release(c),
            SubmitPredictionJobs c => SubmitPrediction(c),
            _ => throw new ArgumentException($"unknown sweep command {command.GetType().Name}"),
        };
    }

    // ---------------------------------------------------------------- the rules

    private IReadOnlyList<ISweepEvent> Define(DefineSweep define)
    {
        if (Definition is null) return [new SweepDefined(define.Definition, define.At)];
        if (!Definition.SameWorkAs(define.Definition))
            throw new InvalidOperationException($"this journal holds sweep {Definition.SweepId}, not {define.Definition.SweepId}");
        return [];
    }

    /// <summary>An idle worker gets the policy's next job (none while paused, none while the worker is quarantined). A
    /// worker asking while we think it runs a job has lost that job (restart): it is re-queued first, and given back when
    /// it is still the best choice. A job that last failed on this worker goes to another one: this worker gets another
    /// job if one is ready, else nothing while another worker is idle, else that job again.</summary>
    private IReadOnlyList<ISweepEvent> Assign(AssignWork assign)
    {
        var events = new List<ISweepEvent>(2);
        var held = JobOfWorker(assign.WorkerId);
        if (held is not null)
            events.Add(LostWorker(held, $"worker {assign.WorkerId} asked for new work while holding this job", assign.At));
        if (Paused || Ledger.IsQuarantined(assign.WorkerId)) return events;
        bool avoid = Ledger.HasPendingJobFailedOn(assign.WorkerId);
        var next = Policy.NextJob(assign.At, assign.Workers, avoid ? assign.WorkerId : null);
        if (next is null && avoid && assign.OtherIdleWorkers == 0) next = Policy.NextJob(assign.At, assign.Workers);
        if (held is not null && events[0] is JobRequeued && Ledger.DependenciesCompleted(held) && (next is null || Policy.Better(held, next))) next = held;
        if (next is not null)
            events.Add(new JobAssigned(next.JobId, next.Attempt + 1, assign.WorkerId, assign.Node,
                next.ResumeFromCheckpoint || next.Attempt > 0, assign.At));
        return events;
    }

    /// <summary>A worker still running an attempt of before the coordinator's restart keeps it, unless someone else has it by now.</summary>
    private IReadOnlyList<ISweepEvent> Adopt(AdoptRunningJob adopt) =>
        TryGetJob(adopt.JobId, out var job) && job.Status == JobStatus.Pending && job.AdoptableAfterRecovery && job.Attempt == adopt.Attempt && !Paused
            ? [new JobAdopted(job.JobId, job.Attempt, adopt.WorkerId, adopt.Node, adopt.At)]
            : [];

    private IReadOnlyList<ISweepEvent> Complete(CompleteJob c)
    {
        if (!TryGetJob(c.JobId, out var job)) return [];
        bool current = job.Status == JobStatus.Running && job.Attempt == c.Attempt;
        // the coordinator restarted while this attempt ran to its end: nobody else has the job yet, accept it
        bool finishedDuringRecovery = job.Status == JobStatus.Pending && job.AdoptableAfterRecovery && job.Attempt == c.Attempt;
        if (!current && !finishedDuringRecovery) return [];
        if (c.MissingOutputs is not null)
            return current ? AttemptFailed(new FailJob(c.JobId, c.Attempt, $"completion reported but an output is missing on storage: {c.MissingOutputs}", c.At,
                c.OtherActiveWorkers)) : [];
        return [new JobCompleted(c.JobId, c.Attempt, c.SummaryPath, c.Metrics, c.At)];
    }

    /// <summary>Lease: no sign of life for too long. Stall: alive, but the progress counter stood still for too long (hung job).</summary>
    private IReadOnlyList<ISweepEvent> ExpireLeases(ExpireLeases lease)
    {
        var events = new List<ISweepEvent>();
        foreach (var job in RunningJobs)
        {
            if (job.LastHeartbeatAt is { } beat && lease.At - beat > lease.Lease)
                events.Add(LostWorker(job, $"no heartbeat from {job.WorkerId} for {(lease.At - beat).TotalSeconds:F0} s (lease {lease.Lease.TotalSeconds:F0} s)", lease.At));
            else if (lease.StallTimeout > TimeSpan.Zero && (job.LastProgressAt ?? job.StartedAt) is { } moved && lease.At - moved > lease.StallTimeout)
                events.Add(LostWorker(job, $"hung: no progress{(job.Phase is { } phase ? " in " + phase.ToString().ToLowerInvariant() : "")} on {job.WorkerId} " +
                    $"for {(lease.At - moved).TotalSeconds:F0} s (stall-timeout {lease.StallTimeout.TotalSeconds:F0} s); cancelled", lease.At));
        }
        return events;
    }

    /// <summary>
    /// A worker's liveness report. About the attempt the coordinator gave it: that attempt is alive (and its progress
    /// recorded). Naming none, or another attempt, while the coordinator's assignment is older than the StartJob's
    /// transit: the worker never got that StartJob; the job is re-queued at once (instead of waiting for the lease).
    /// </summary>
    private IReadOnlyList<ISweepEvent> Liveness(RecordLiveness report)
    {
        var held = JobOfWorker(report.WorkerId);
        if (held is not null && held.JobId == report.JobId && held.Attempt == report.Attempt)
            return [new JobAlive(held.JobId, held.Attempt, report.Phase, report.Progress, report.PhaseDone, report.PhaseTotal, report.At)];
        if (held is not null && held.StartedAt is { } assigned && report.At - assigned > report.StartJobTransit)
            return [LostWorker(held, $"{report.WorkerId} does not run attempt {held.Attempt} (it reports {(report.JobId is null ? "no job" : $"{report.JobId} attempt {report.Attempt}")}): its StartJob was lost", report.At)];
        return [];
    }

    private IReadOnlyList<ISweepEvent> RequeueAfterRecovery(RequeueAfterRecovery recovery)
    {
        var events = new List<ISweepEvent>();
        DateTime? heldUntil = recovery.AdoptionGrace > TimeSpan.Zero ? recovery.At + recovery.AdoptionGrace : null;
        foreach (var job in RunningJobs)
            events.Add(new JobRequeued(job.JobId, job.Attempt, "coordinator restarted; continue from checkpoint", true, recovery.At, heldUntil));
        return events;
    }

    private IReadOnlyList<ISweepEvent> Retry(RetryJob retry)
    {
        var job = Job(retry.JobId);
        if (job.Status is not (JobStatus.Failed or JobStatus.Cancelled))
            throw new InvalidOperationException($"job {retry.JobId} is {job.Status.ToString().ToLowerInvariant()}; only failed or cancelled jobs can be retried");
        return [new JobRetried(retry.JobId, retry.At)];
    }

    /// <summary>Every completed job named, then every completed job depending on one of them (transitively), in grid order.</summary>
    private IReadOnlyList<ISweepEvent> RedoJobsWithoutResults(RedoJobsWithoutResults redo)
    {
        var reasons = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (jobId, missing) in redo.Missing)
            if (TryGetJob(jobId, out var job) && job.Status == JobStatus.Completed)
                reasons[jobId] = $"results gone from storage ({missing})";
        foreach (var job in Ledger.Jobs)   // dependencies come before their dependents in grid order
            if (!reasons.ContainsKey(job.JobId) && job.Status == JobStatus.Completed && job.DependsOn.FirstOrDefault(reasons.ContainsKey) is { } gone)
                reasons[job.JobId] = $"{gone} runs again (its results are gone)";
        var events = new List<ISweepEvent>(reasons.Count);
        foreach (var id in JobOrder)
            if (reasons.TryGetValue(id, out var reason)) events.Add(new JobResultsGone(id, reason, redo.At));
        return events;
    }

    private IReadOnlyList<ISweepEvent> SubmitPrediction(SubmitPredictionJobs submit)
    {
        var request = submit.Request;
        if (request.Shards < 1) throw new ArgumentException($"a prediction needs at least one shard, got {request.Shards}");
        if (!Ledger.Submissions.ContainsKey(request.SubmissionId)) return [new PredictionSubmitted(request, submit.At)];
        var events = new List<ISweepEvent>();
        foreach (var id in SubmissionJobIds(request.SubmissionId))
            if (Job(id).Status is JobStatus.Failed or JobStatus.Cancelled) events.Add(new JobRetried(id, submit.At));
        return events;
    }

    /// <summary>The jobs of a submission (its shards as the journal recorded them, then its merge job), in grid order.</summary>
    public IReadOnlyList<string> SubmissionJobIds(string submissionId)
    {
        var request = Ledger.Submissions[submissionId];
        var ids = new List<string>(request.Shards + 1);
        for (int k = 0; k < request.Shards; k++) ids.Add(JobRecord.PredictShardJobId(submissionId, k));
        ids.Add(JobRecord.PredictMergeJobId(submissionId));
        return ids;
    }

    private IReadOnlyList<ISweepEvent> Cancel(CancelJob cancel)
    {
        var job = Job(cancel.JobId);
        if (job.IsTerminal)
            throw new InvalidOperationException($"job {cancel.JobId} is already {job.Status.ToString().ToLowerInvariant()}");
        return [new JobCancelled(cancel.JobId, cancel.Reason, cancel.At)];
    }

    /// <summary>The event of <paramref name="rule"/> when the message is about the job's current running attempt; none otherwise (late or duplicate).</summary>
    private IReadOnlyList<ISweepEvent> IfCurrentAttempt(string jobId, int attempt, Func<JobRecord, ISweepEvent> rule) =>
        TryGetJob(jobId, out var job) && job.Status == JobStatus.Running && job.Attempt == attempt ? [rule(job)] : [];

    private static JobRequeued Requeue(JobRecord job, string reason, DateTime at) => new(job.JobId, job.Attempt, reason, false, at);

    /// <summary>
    /// The attempt lost its worker (node lost, lease expired, worker restarted): re-queued and counted; past
    /// <see cref="FailureLimits.MaxRequeues"/> the job fails for good with the reason instead of cycling forever.
    /// </summary>
    private ISweepEvent LostWorker(JobRecord job, string reason, DateTime at)
    {
        int losses = job.Requeues + 1;
        return losses > Limits.MaxRequeues
            ? new JobFailed(job.JobId, job.Attempt, $"lost its worker {losses} times (max-requeues {Limits.MaxRequeues}): {reason}", true, at)
            : new JobRequeued(job.JobId, job.Attempt, reason, false, at, Counted: true);
    }

    // ---------------------------------------------------------------- failures: the job's own, or the worker's

    /// <summary>
    /// A worker's attempt failed. It is the job's own failure, counted against max-attempts, when the same error (see
    /// <see cref="FailureSignature"/>) was seen on another worker before, or on this worker while no other can run jobs;
    /// the earlier failures with that error count then too, a worker quarantined for one of them is released, and that
    /// error counts at once from then on. Else
    /// it is noted, not counted (the worker may be the broken one), unless the job failed 2 x max-attempts times in all:
    /// then it fails for good anyway, so that a job failing differently everywhere ends too. A failure not the job's own
    /// counts against the worker: <see cref="FailureLimits.QuarantineAfterFailures"/> in a row, the first one after a
    /// release, or one within <see cref="FailureLimits.QuarantineFastFailure"/> of the start (while another worker
    /// can take the job) quarantine it.
    /// </summary>
    private IReadOnlyList<ISweepEvent> AttemptFailed(FailJob c)
    {
        if (!TryGetJob(c.JobId, out var job) || job.Status != JobStatus.Running || job.Attempt != c.Attempt) return [];
        if (job.WorkerId is not { } worker) return [Failure(job, c.Reason, c.At)];
        var error = FailureSignature(c.Reason, worker);
        var notes = job.UnconfirmedFailures ?? [];
        int same = 0;
        var elsewhere = new List<string>();
        foreach (var note in notes)
            if (note.Error == error)
            {
                same++;
                if (note.WorkerId != worker && !elsewhere.Contains(note.WorkerId)) elsewhere.Add(note.WorkerId);
            }
        int max = Definition!.MaxAttempts;
        if (elsewhere.Count > 0 || (same > 0 && c.OtherActiveWorkers == 0) || (job.OwnErrors?.Contains(error) ?? false))
        {
            // the earlier ones count too, as far as the attempts go (the count stays within max-attempts)
            int confirms = Math.Min(same, Math.Max(0, max - job.Failures - 1));
            int failures = job.Failures + 1 + confirms;
            var events = new List<ISweepEvent> { new JobFailed(job.JobId, job.Attempt, c.Reason, failures >= max, c.At, worker, error, false, confirms) };
            foreach (var other in elsewhere)
                if (Ledger.Worker(other) is { Quarantined: true } quarantined && quarantined.QuarantinedFor == job.JobId)
                    events.Add(new WorkerReleased(other, WorkerReleaseKind.FailureWasTheJobs,
                        $"worker {other} released: the failure of {job.JobId} that quarantined it is the job's own (the same error on {worker})", c.At));
            return events;
        }
        int total = job.Failures + notes.Length + 1;
        bool giveUp = total >= 2 * max;
        var reason = giveUp ? $"{c.Reason} (failed {total} times, never with the same error on two workers: given up after 2 x max-attempts)" : c.Reason;
        var result = new List<ISweepEvent>(2) { new JobFailed(job.JobId, job.Attempt, reason, giveUp, c.At, worker, error, Unconfirmed: true) };
        if (QuarantineCause(job, Ledger.Worker(worker), c) is { } why) result.Add(Quarantine(worker, why, job.JobId, c));
        return result;
    }

    /// <summary>Why a failure (not the job's own) quarantines its worker, or null when it does not.</summary>
    private string? QuarantineCause(JobRecord job, WorkerRecord? worker, FailJob c)
    {
        if (Limits.QuarantineAfterFailures <= 0) return null;
        int inARow = (worker?.FailuresInARow ?? 0) + 1;
        if (worker is { Probation: true }) return "a failure after its release from quarantine";
        if (inARow >= Limits.QuarantineAfterFailures) return $"{inARow} failures in a row";
        if (Limits.QuarantineFastFailure > TimeSpan.Zero && c.OtherActiveWorkers > 0 && job.StartedAt is { } started && c.At - started <= Limits.QuarantineFastFailure)
            return $"a failure {Math.Max(0, (c.At - started).TotalSeconds):F0} s after the start of {job.JobId} (fast-failure {Text(Limits.QuarantineFastFailure)})";
        return null;
    }

    private WorkerQuarantined Quarantine(string worker, string why, string jobId, FailJob c)
    {
        int level = (Ledger.Worker(worker)?.Quarantines ?? 0) + 1;
        var backoff = Limits.QuarantineFor(level);
        var until = c.At + backoff;
        bool everyWorker = c.OtherActiveWorkers == 0;
        var error = c.Reason.StartsWith(worker + ": ", StringComparison.Ordinal) ? c.Reason[(worker.Length + 2)..] : c.Reason;
        var text = $"worker {worker} quarantined for {Text(backoff)} after {why}: {error}" + (everyWorker
            ? $"; every worker is quarantined: the sweep waits until {until.ToString("HH:mm:ss", CultureInfo.InvariantCulture)} UTC or an operator's release (nnunet sweep-control release {worker})"
            : "");
        return new WorkerQuarantined(worker, level, until, text, jobId, everyWorker, c.At);
    }

    private IReadOnlyList<ISweepEvent> EndQuarantines(EndQuarantines end)
    {
        List<ISweepEvent>? events = null;
        foreach (var w in Ledger.Workers)
            if (w.QuarantinedUntil is { } until && until <= end.At)
                (events ??= []).Add(new WorkerReleased(w.WorkerId, WorkerReleaseKind.BackoffOver,
                    $"worker {w.WorkerId} back from quarantine ({Text(Limits.QuarantineFor(w.Quarantines))} over); on probation: its next failure quarantines it for {Text(Limits.QuarantineFor(w.Quarantines + 1))}", end.At));
        return events ?? (IReadOnlyList<ISweepEvent>)[];
    }

    private IReadOnlyList<ISweepEvent> Release(ReleaseWorker release)
    {
        var worker = Ledger.Worker(release.WorkerId);
        if (worker is not { Quarantined: true })
        {
            var quarantined = Ledger.Workers.Where(w => w.Quarantined).Select(w => w.WorkerId).ToList();
            throw new InvalidOperationException($"worker {release.WorkerId} is not quarantined" +
                (quarantined.Count == 0 ? " (no worker is)" : $" (quarantined: {string.Join(", ", quarantined)})"));
        }
        return [new WorkerReleased(release.WorkerId, WorkerReleaseKind.Operator,
            $"worker {release.WorkerId} released by operator; on probation: its next failure quarantines it for {Text(Limits.QuarantineFor(worker.Quarantines + 1))}", release.At)];
    }

    /// <summary>
    /// The error of a failure as compared across attempts of one job: its first line, without the worker's id (the
    /// coordinator prefixes it), every run of digits masked (attempt and epoch numbers, sizes, ports, times) with the hex
    /// letters around it (the random part of temporary file names).
    /// </summary>
    public static string FailureSignature(string reason, string workerId)
    {
        var text = reason.StartsWith(workerId + ": ", StringComparison.Ordinal) ? reason[(workerId.Length + 2)..] : reason;
        int newline = text.IndexOf('\n', StringComparison.Ordinal);
        if (newline >= 0) text = text[..newline];
        return Digits().Replace(text.Trim(), "#");
    }

    [GeneratedRegex(@"[0-9a-fA-F]*[0-9][0-9a-fA-F]*")]
    private static partial Regex Digits();

    /// <summary>A back-off as an operator reads it: "30 s", "5 min", "1 h 30 min".</summary>
    public static string Text(TimeSpan t) =>
        t.TotalSeconds < 120 ? $"{t.TotalSeconds:0.#} s"
        : t.TotalMinutes < 60 ? $"{t.TotalMinutes:0.#} min"
        : t.TotalHours < 48 ? (t.Minutes == 0 ? $"{(int)t.TotalHours} h" : $"{(int)t.TotalHours} h {t.Minutes} min")
        : $"{t.TotalDays:0.#} d";

    private JobFailed Failure(JobRecord job, string reason, DateTime at) =>
        new(job.JobId, job.Attempt, reason, job.Failures + 1 >= Definition!.MaxAttempts, at);

    // ---------------------------------------------------------------- job specs

    /// <summary>The spec a worker receives for the current attempt of a job.</summary>
    public JobSpec BuildSpec(string jobId, string resultsRoot)
    {
        var d = Definition ?? throw new InvalidOperationException("no sweep defined");
        var job = Job(jobId);
        // only the final stages need the whole grid; a training job's message stays small however large the sweep (a
        // low-res fold gets the configurations: whether the sweep trains the cascade decides its completion marker)
        bool final = job.Kind != JobKind.Train;
        var submission = job.Submission is { } id ? Ledger.Submissions[id] : null;
        int shards = submission?.Shards ?? (job.Kind is JobKind.Predict or JobKind.PredictShard ? d.PredictShards : 0);
        return new JobSpec(d.SweepId, job.JobId, job.Attempt, job.Kind, d.DatasetName, d.PlansName, d.TrainerName, job.Configuration,
            job.Fold, d.Epochs, job.ResumeFromCheckpoint, resultsRoot,
            final || job.Configuration == SweepDefinition.Lowres ? d.Configurations : [], final ? d.Folds : [],
            d.TrainingItersPerEpoch, d.TrainingValIters, shards, submission);
    }
}
