namespace NnUnet.Cluster.Sweeps;

/// <summary>
/// Which job an idle worker gets, over a read-only ledger and the duration model. A pending job is ready when all
/// its dependencies completed; among ready jobs the one with the longest estimated remaining path to the end of the
/// sweep goes first (critical path: low-res folds before all else, because the cascade waits on them), then the
/// longest job, then grid order. When several groups compete for fewer idle workers than ready jobs, or a group waits
/// for running dependencies, <see cref="DispatchPlanner"/> looks ahead and may pick another group or keep the worker idle.
/// </summary>
public sealed class DispatchPolicy(IReadOnlySweepLedger ledger, DurationModel durations)
{
    /// <summary>Largest remaining grid the dispatch look-ahead plans for (beyond it: critical path first alone).</summary>
    public const int MaxPlannedJobs = 200;

    /// <summary>Search nodes per dispatch decision (a few milliseconds).</summary>
    public const int PlannerNodeBudget = 5_000;

    /// <summary>
    /// The job the next idle worker gets at <paramref name="now"/>, or null (nothing ready, paused, or better to wait).
    /// Jobs held after a recovery are skipped until their hold ends. Critical path first, then the longest job; when
    /// <paramref name="workers"/> (the registered workers) is known and several groups compete for fewer idle workers
    /// than ready jobs, or a group waits for running dependencies, <see cref="DispatchPlanner"/> may pick another group
    /// whose estimated schedule is strictly shorter, or keep the worker idle for the waiting group (null).
    /// Jobs whose last attempt failed on <paramref name="avoidFailedOn"/> are skipped (a retry goes to another worker).
    /// </summary>
    public JobRecord? NextJob(DateTime? now = null, int workers = 0, string? avoidFailedOn = null)
    {
        if (ledger.Paused) return null;
        JobRecord? best = null;
        List<JobRecord>? heads = null;
        foreach (var group in ledger.ReadyByGroup)
        {
            // within a group the job with the most epochs left goes first (longest job first), then grid order;
            // held jobs are at most one per worker, and jobs that failed on the asking worker few, so this scan stays short
            foreach (var candidate in group)
            {
                if (candidate.HeldUntil is { } until && (now is null || now < until)) continue;
                if (avoidFailedOn is not null && candidate.LastFailedOn == avoidFailedOn) continue;
                if (best is not null) (heads ??= [best]).Add(candidate);
                if (best is null || Better(candidate, best)) best = candidate;
                break;
            }
        }
        if (best is not null && workers > 1 && now is { } at && (heads is not null || CascadeAboutToBeReady())
            && Plan(heads ?? [best], at, workers) is { } planned)
            return planned.Wait ? null : planned.Job;
        return best;
    }

    /// <summary>
    /// Why an idle worker gets nothing while jobs are left (for the operator: on a SLURM allocation idle GPUs cost),
    /// or null when nothing is left to wait for. Jobs held after a recovery, running dependencies (e.g. the cascade
    /// waits for every low-res fold), or the look-ahead keeping the worker for a job about to become ready.
    /// </summary>
    public string? WhyIdle(DateTime now)
    {
        if (ledger.Paused) return "the sweep is paused";
        if (ledger.Count(JobStatus.Pending) == 0) return null;
        var waitedFor = new SortedSet<string>(StringComparer.Ordinal);
        var waiting = new SortedSet<string>(StringComparer.Ordinal);
        int held = 0;
        foreach (var job in ledger.Jobs)
        {
            if (job.Status != JobStatus.Pending) continue;
            if (ledger.IsReady(job))
            {
                if (job.HeldUntil is { } until && now < until) held++;
                continue;
            }
            waiting.Add(job.Configuration ?? job.JobId);
            // the running ones: a pending dependency is waited for through its own (the selection waits for the
            // cascade, which waits for the low-res folds: those are named)
            foreach (var dependency in job.DependsOn)
                if (ledger.Job(dependency).Status == JobStatus.Running) waitedFor.Add(dependency);
        }
        var reasons = new List<string>();
        if (waiting.Count > 0)
            reasons.Add($"{string.Join(", ", waiting)} wait{(waiting.Count == 1 ? "s" : "")} for " +
                (waitedFor.Count > 0 ? Abbreviate(waitedFor) : "jobs that are not running (failed, cancelled or held)"));
        if (held > 0) reasons.Add($"{held} job(s) held for the workers that ran them before the coordinator restarted");
        return reasons.Count > 0 ? string.Join("; ", reasons)
            : "kept free for a job about to become ready (the look-ahead expects a shorter sweep)";
    }

    private static string Abbreviate(IReadOnlyCollection<string> jobIds)
    {
        const int shown = 6;
        var list = jobIds.Take(shown).ToList();
        return string.Join(", ", list) + (jobIds.Count > shown ? $" and {jobIds.Count - shown} more" : "");
    }

    /// <summary>Priority: longer remaining path to the end of the sweep, then longer own remaining time, then grid order.</summary>
    public bool Better(JobRecord a, JobRecord b)
    {
        double ownA = durations.EstimatedRemainingSeconds(a), ownB = durations.EstimatedRemainingSeconds(b);
        double rankA = ownA + durations.TailSeconds(a), rankB = ownB + durations.TailSeconds(b);
        if (Math.Abs(rankA - rankB) > 1e-9 * Math.Max(1, Math.Abs(rankA))) return rankA > rankB;
        if (Math.Abs(ownA - ownB) > 1e-9 * Math.Max(1, Math.Abs(ownA))) return ownA > ownB;
        return ledger.GridIndex(a.JobId) < ledger.GridIndex(b.JobId);
    }

    /// <summary>Every low-res fold has started and some still run: the cascade becomes ready when they end (a worker may be worth keeping for it).</summary>
    private bool CascadeAboutToBeReady()
    {
        if (ledger.Definition is null || !ledger.Definition.Configurations.Contains(SweepDefinition.Cascade)) return false;
        if (ledger.HasReady(SweepDefinition.Lowres)) return false;
        foreach (var job in ledger.RunningJobs)
            if (job.Configuration == SweepDefinition.Lowres) return true;
        return false;
    }

    private readonly record struct PlannedChoice(JobRecord? Job, bool Wait);

    /// <summary>The look-ahead's choice among <paramref name="heads"/> (or to wait), or null where it has nothing to add.</summary>
    private PlannedChoice? Plan(List<JobRecord> heads, DateTime now, int workers)
    {
        // large grids: critical path first alone, decided in O(groups) instead of a walk over every job per decision
        if (ledger.Count(JobStatus.Pending) > MaxPlannedJobs) return null;
        var remaining = Remaining(now);
        if (remaining.PlannedJobs > MaxPlannedJobs) return null;
        int idle = Math.Max(1, workers - remaining.Busy.Count);
        var (groups, waitingGroup) = PlannerGroups(remaining);
        // every ready job starts now anyway and nothing waits for a running dependency: nothing to plan
        if (remaining.ReadyJobs <= idle && !waitingGroup) return null;
        heads.Sort((a, b) => Better(a, b) ? -1 : Better(b, a) ? 1 : 0);
        var candidates = new List<int>(heads.Count);
        foreach (var head in heads) candidates.Add(remaining.GroupIndex[SweepLedger.GroupOf(head)]);
        var freeAt = new double[remaining.Busy.Count + idle];
        remaining.Busy.CopyTo(freeAt);
        int chosen = DispatchPlanner.Choose(groups, freeAt, candidates, PlannerNodeBudget, out _);
        if (chosen == DispatchPlanner.Wait) return new PlannedChoice(null, true);
        foreach (var head in heads)
            if (remaining.GroupIndex[SweepLedger.GroupOf(head)] == chosen) return new PlannedChoice(head, false);
        return null;
    }

    /// <summary>The work left, by group: pending jobs that can still run, and when the running ones are expected to end.</summary>
    private sealed record RemainingWork(Dictionary<string, int> GroupIndex, List<List<JobRecord>> Pending, List<double> RunningUntil,
        List<double> Busy, int ReadyJobs, int PlannedJobs);

    private RemainingWork Remaining(DateTime now)
    {
        var groupIndex = new Dictionary<string, int>(StringComparer.Ordinal);
        var pending = new List<List<JobRecord>>();
        var runningUntil = new List<double>();
        var busy = new List<double>();
        int readyJobs = 0, plannedJobs = 0;
        foreach (var job in ledger.Jobs)
        {
            if (job.IsTerminal || (job.Status == JobStatus.Pending && ledger.IsBlocked(job))) continue;
            var group = SweepLedger.GroupOf(job);
            if (!groupIndex.TryGetValue(group, out int g))
            {
                groupIndex[group] = g = pending.Count;
                pending.Add([]);
                runningUntil.Add(0);
            }
            if (job.Status == JobStatus.Running)
            {
                // what the reported epochs leave, less the time since the last report; a job late by X is expected
                // to need about X more (so a worker is not kept waiting, again and again, for a job that is very late)
                double left = durations.EstimatedRemainingSeconds(job) - (job.LastHeartbeatAt is { } beat ? (now - beat).TotalSeconds : 0);
                left = Math.Max(Math.Abs(left), 1e-3);
                runningUntil[g] = Math.Max(runningUntil[g], left);
                busy.Add(left);
                continue;
            }
            pending[g].Add(job);
            plannedJobs++;
            if (ledger.IsReady(job)) readyJobs++;
        }
        return new RemainingWork(groupIndex, pending, runningUntil, busy, readyJobs, plannedJobs);
    }

    /// <summary>The planner's view of the remaining work; <c>waitingGroup</c>: a training group waits for running dependencies (the cascade).</summary>
    private (DispatchPlanner.Group[] Groups, bool WaitingGroup) PlannerGroups(RemainingWork remaining)
    {
        var groups = new DispatchPlanner.Group[remaining.Pending.Count];
        bool waitingGroup = false;
        foreach (var (_, g) in remaining.GroupIndex)
        {
            var jobs = remaining.Pending[g];
            // the order the ready set hands them out: most epochs left first, then grid order
            jobs.Sort((a, b) => a.Epoch != b.Epoch ? a.Epoch.CompareTo(b.Epoch) : ledger.GridIndex(a.JobId).CompareTo(ledger.GridIndex(b.JobId)));
            var seconds = new double[jobs.Count];
            for (int i = 0; i < seconds.Length; i++) seconds[i] = durations.EstimatedRemainingSeconds(jobs[i]);
            var dependsOn = new SortedSet<int>();
            foreach (var job in jobs)
                foreach (var dep in job.DependsOn)
                {
                    var d = ledger.Job(dep);
                    if (remaining.GroupIndex.TryGetValue(SweepLedger.GroupOf(d), out int h) && !d.IsTerminal) dependsOn.Add(h);
                }
            var first = jobs.Count > 0 ? jobs[0] : null;
            groups[g] = new DispatchPlanner.Group(seconds, dependsOn.ToArray(), remaining.RunningUntil[g], first is not null ? durations.TailSeconds(first) : 0);
            // a training group whose dependencies still run (the cascade): a worker may be worth keeping for it
            waitingGroup |= dependsOn.Count > 0 && first is { Kind: JobKind.Train };
        }
        return (groups, waitingGroup);
    }
}
