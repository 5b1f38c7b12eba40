using NnUnet.Cluster.Messages;

namespace NnUnet.Cluster.Sweeps;

/// <summary>What a job looks like to a user. Waiting = dependencies still running; Blocked = a dependency failed or was cancelled.</summary>
public enum JobDisplayStatus { Waiting, Ready, Running, Completed, Failed, Cancelled, Blocked }

public enum SweepStatus { NotDefined, Running, Paused, Completed, FinishedWithFailures }

/// <summary>One row of the grid as the dashboard and <c>nnunet sweep-status</c> show it. <paramref name="Requeues"/>: how often the job lost its worker (bounded by max-requeues). <paramref name="Phase"/>,
/// <paramref name="PhaseDone"/> of <paramref name="PhaseTotal"/>: what a running attempt does now, from its worker's liveness report.</summary>
public sealed record JobView(
    string JobId,
    JobKind Kind,
    string? Configuration,
    int Fold,
    JobDisplayStatus Status,
    int Attempt,
    int Failures,
    int Epoch,
    int TotalEpochs,
    double? LastPseudoDice,
    double? BestEmaPseudoDice,
    string? WorkerId,
    string? Node,
    double? EtaSeconds,
    string? LastError,
    string[] DependsOn,
    DateTime? StartedAt,
    DateTime? FinishedAt,
    string? SummaryPath,
    Dictionary<string, double>? Metrics,
    int Requeues = 0,
    JobPhase? Phase = null,
    int PhaseDone = 0,
    int PhaseTotal = 0,
    int UnconfirmedFailures = 0) : INnUnetMessage;

/// <summary>
/// One worker as the dashboard and <c>nnunet sweep-status</c> show it: what it runs, and what the sweep remembers of it:
/// quarantined (until when, why), its last failure, its failures in a row (not the jobs' own). <paramref name="Registered"/>
/// false: a quarantined worker that is not registered now (its quarantine holds when it comes back).
/// </summary>
public sealed record WorkerView(string WorkerId, string Node, string Device, string? JobId, int? Attempt,
    bool Quarantined = false, DateTime? QuarantinedUntil = null, string? QuarantineReason = null, string? LastFailure = null,
    DateTime? LastFailureAt = null, int FailuresInARow = 0, int Quarantines = 0, bool Registered = true) : INnUnetMessage
{
    /// <summary>This view with what the sweep remembers of the worker.</summary>
    public WorkerView With(WorkerRecord? record) => record is null ? this : this with
    {
        Quarantined = record.Quarantined, QuarantinedUntil = record.QuarantinedUntil, QuarantineReason = record.Quarantined ? record.QuarantineReason : null,
        LastFailure = record.LastFailure, LastFailureAt = record.LastFailureAt, FailuresInARow = record.FailuresInARow, Quarantines = record.Quarantines,
    };
}

/// <summary>One line of the sweep's history, newest last.</summary>
public sealed record SweepEventView(DateTime At, string Kind, string? JobId, string Text) : INnUnetMessage;

/// <summary>
/// The read model of a sweep: answer to <see cref="GetSweepView"/>. Plain data, safe to serialise to JSON for the
/// dashboard. <paramref name="EtaSeconds"/> is a rough estimate from measured epoch times. <paramref name="Waiting"/>:
/// why nothing runs although jobs are left (every worker quarantined), or null.
/// </summary>
public sealed record SweepView(
    string? SweepId,
    SweepDefinition? Definition,
    SweepStatus Status,
    JobView[] Jobs,
    WorkerView[] Workers,
    SweepEventView[] RecentEvents,
    int CompletedJobs,
    int FailedJobs,
    int TotalJobs,
    double? EtaSeconds,
    DateTime AsOf,
    string? Waiting = null) : INnUnetMessage
{
    /// <param name="workers">the registered workers (id, node, device, job); what the sweep remembers of each is added here, and quarantined workers not registered now are listed too.</param>
    public static SweepView Build(SweepState state, IReadOnlyCollection<WorkerView> workers, IReadOnlyCollection<SweepEventView> recentEvents, DateTime now)
    {
        var jobs = new List<JobView>();
        foreach (var job in state.Jobs) jobs.Add(View(state, job));
        int completed = state.Count(JobStatus.Completed), failed = state.Count(JobStatus.Failed);
        var sweepStatus = state.Status;
        var views = new List<WorkerView>(workers.Count);
        var registered = new HashSet<string>(StringComparer.Ordinal);
        foreach (var w in workers)
        {
            views.Add(w.With(state.Ledger.Worker(w.WorkerId)));
            registered.Add(w.WorkerId);
        }
        foreach (var record in state.Ledger.Workers)
            if (record.Quarantined && !registered.Contains(record.WorkerId))
                views.Add(new WorkerView(record.WorkerId, "", "", null, null, Registered: false).With(record));
        return new SweepView(state.Definition?.SweepId, state.Definition, sweepStatus, jobs.ToArray(), views.ToArray(),
            recentEvents.ToArray(), completed, failed, jobs.Count,
            sweepStatus is SweepStatus.Running or SweepStatus.Paused ? state.Durations.EstimatedSweepSeconds(Math.Max(1, workers.Count)) : 0, now,
            WaitingFor(state, views));
    }

    /// <summary>"every worker is quarantined ..." while jobs are left, registered workers there are, and all of them are quarantined.</summary>
    private static string? WaitingFor(SweepState state, List<WorkerView> workers)
    {
        if (state.Status != SweepStatus.Running) return null;
        WorkerView? first = null;
        int registered = 0;
        foreach (var w in workers)
        {
            if (!w.Registered) continue;
            registered++;
            if (!w.Quarantined) return null;
            if (first is null || w.QuarantinedUntil < first.QuarantinedUntil) first = w;
        }
        return first is null ? null
            : $"every worker ({registered}) is quarantined: the sweep waits until {first.QuarantinedUntil:HH:mm:ss} UTC ({first.WorkerId} back) " +
              "or an operator's release (nnunet sweep-control release WORKER); no job fails for it";
    }

    public static JobView View(SweepState state, JobRecord job)
    {
        var status = job.Status switch
        {
            JobStatus.Running => JobDisplayStatus.Running,
            JobStatus.Completed => JobDisplayStatus.Completed,
            JobStatus.Failed => JobDisplayStatus.Failed,
            JobStatus.Cancelled => JobDisplayStatus.Cancelled,
            _ => state.Ledger.IsReady(job) ? JobDisplayStatus.Ready : state.Ledger.IsBlocked(job) ? JobDisplayStatus.Blocked : JobDisplayStatus.Waiting,
        };
        double? eta = job.IsTerminal || status == JobDisplayStatus.Blocked ? null : state.Durations.EstimatedRemainingSeconds(job);
        return new JobView(job.JobId, job.Kind, job.Configuration, job.Fold, status, job.Attempt, job.Failures, job.Epoch,
            job.TotalEpochs, job.LastPseudoDice, job.BestEmaPseudoDice, job.WorkerId, job.Node, eta, job.LastError, job.DependsOn,
            job.StartedAt, job.FinishedAt, job.SummaryPath, job.Metrics, job.Requeues,
            job.Status == JobStatus.Running ? job.Phase : null, job.PhaseDone, job.PhaseTotal, job.UnconfirmedFailures?.Length ?? 0);
    }

    /// <summary>A one-line description of an event for the history list.</summary>
    public static SweepEventView Describe(ISweepEvent e) => e switch
    {
        SweepDefined d => new(d.At, "defined", null, $"sweep {d.Definition.SweepId}: {string.Join(", ", d.Definition.Configurations)} x folds {string.Join(",", d.Definition.Folds)}, {d.Definition.Epochs} epochs"),
        JobAssigned a => new(a.At, "assigned", a.JobId, $"{a.JobId} attempt {a.Attempt} -> {a.WorkerId}{(a.ResumeFromCheckpoint ? " (continue from checkpoint)" : "")}"),
        JobAdopted a => new(a.At, "adopted", a.JobId, $"{a.JobId} attempt {a.Attempt} kept by {a.WorkerId} after coordinator restart"),
        JobProgressed p => new(p.At, "progress", p.JobId, $"{p.JobId} epoch {p.Metrics.Epoch}/{p.Metrics.TotalEpochs} EMA pseudo-Dice {p.Metrics.EmaPseudoDice:F4}"),
        JobAlive a => new(a.At, "alive", a.JobId, $"{a.JobId} attempt {a.Attempt} alive: {a.Phase?.ToString().ToLowerInvariant() ?? "starting"} {a.PhaseDone}/{a.PhaseTotal}, progress {a.Progress}"),
        JobCompleted c => new(c.At, "completed", c.JobId, $"{c.JobId} completed (attempt {c.Attempt})"),
        JobFailed f => new(f.At, "failed", f.JobId, $"{f.JobId} attempt {f.Attempt} failed{(f.Final ? " for good" : ", will retry")}" +
            (f.Unconfirmed && !f.Final ? " (not counted: the error was not seen on another worker)"
                : f.Confirms > 0 ? $" (the same error as {f.Confirms} earlier attempt(s){(f.Confirms > 1 ? " that count now too" : " that counts now too")}: the job's own)" : "") + $": {f.Reason}"),
        WorkerQuarantined q => new(q.At, "quarantined", null, q.Reason),
        WorkerReleased r => new(r.At, "released", null, r.Reason),
        JobRequeued r => new(r.At, "requeued", r.JobId, $"{r.JobId} attempt {r.Attempt} re-queued{(r.Counted ? " (lost its worker)" : "")}: {r.Reason}"),
        JobRetried r => new(r.At, "retried", r.JobId, $"{r.JobId} retried by operator"),
        JobResultsGone g => new(g.At, "redo", g.JobId, $"{g.JobId} runs again: {g.Reason}"),
        JobCancelled c => new(c.At, "cancelled", c.JobId, $"{c.JobId} cancelled: {c.Reason}"),
        PredictionSubmitted p => new(p.At, "submitted", null, $"prediction {p.Request.SubmissionId} submitted: {p.Request.InputFolder} -> {p.Request.OutputFolder}, {p.Request.Shards} shard(s)"),
        SweepPaused p => new(p.At, "paused", null, "sweep paused"),
        SweepResumed r => new(r.At, "resumed", null, "sweep resumed"),
        _ => new(e.At, e.GetType().Name, null, e.GetType().Name),
    };
}
