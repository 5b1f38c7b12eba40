using NnUnet.Cluster.Messages;

namespace NnUnet.Cluster.Sweeps;

/// <summary>Persisted snapshot of a <see cref="SweepState"/> (the coordinator saves one every N events).</summary>
public sealed record SweepStateSnapshot(SweepDefinition? Definition, JobRecord[] Jobs, bool Paused, ConfigurationTiming[] Timings) : INnUnetMessage;

/// <summary>
/// The sweep's rules, free of actors and I/O: <see cref="Decide"/> answers a command with events (never mutating),
/// <see cref="Apply"/> folds an event into the state. The coordinator persists what Decide returns and applies it;
/// replaying the journal through Apply rebuilds the same state.
/// Scheduling: a pending job is ready when all its dependencies completed; among ready jobs the one with the longest
/// estimated remaining path to the end of the sweep goes first (critical path: low-res folds before all else, because
/// the cascade waits on them), then the longest job, then grid order.
/// </summary>
public sealed class SweepState
{
    private readonly Dictionary<string, JobRecord> _jobs = new(StringComparer.Ordinal);
    private readonly List<string> _order = [];
    private readonly Dictionary<string, int> _index = new(StringComparer.Ordinal);
    private readonly Dictionary<string, (double seconds, int epochs)> _timings = new(StringComparer.Ordinal);
    // incremental indices, so that scheduling stays O(groups + log n) per decision even for 10,000-job sweeps
    private readonly Dictionary<string, List<string>> _dependents = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int> _openDependencies = new(StringComparer.Ordinal);
    private readonly Dictionary<string, SortedSet<(int epoch, int index)>> _readyByGroup = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _jobByWorker = new(StringComparer.Ordinal);
    private readonly SortedSet<int> _running = [];
    private readonly int[] _statusCounts = new int[5];

    public SweepDefinition? Definition { get; private set; }
    public bool Paused { get; private set; }
    public IReadOnlyList<string> JobOrder => _order;
    public IEnumerable<JobRecord> Jobs { get { foreach (var id in _order) yield return _jobs[id]; } }
    public JobRecord Job(string jobId) => _jobs.TryGetValue(jobId, out var j) ? j : throw new ArgumentException($"sweep has no job '{jobId}'");
    public bool TryGetJob(string jobId, out JobRecord job) => _jobs.TryGetValue(jobId, out job!);
    public int Count(JobStatus status) => _statusCounts[(int)status];

    /// <summary>True when no job is running and none can still run (all done, or the rest waits on failed/cancelled jobs).</summary>
    public bool IsFinished
    {
        get
        {
            if (Definition is null || Count(JobStatus.Running) > 0) return false;
            if (Count(JobStatus.Pending) == 0) return true;
            foreach (var group in _readyByGroup.Values)
                if (group.Count > 0) return false;
            foreach (var job in _jobs.Values)
                if (job.Status == JobStatus.Pending && !IsBlocked(job)) return false;
            return true;
        }
    }

    public bool AllCompleted => Definition is not null && Count(JobStatus.Completed) == _order.Count;

    /// <summary>The job a worker currently runs, if any.</summary>
    public JobRecord? JobOfWorker(string workerId) => _jobByWorker.TryGetValue(workerId, out var id) ? _jobs[id] : null;

    public IEnumerable<JobRecord> RunningJobs { get { foreach (var i in _running.ToArray()) yield return _jobs[_order[i]]; } }

    // ---------------------------------------------------------------- Decide

    public IReadOnlyList<ISweepEvent> Decide(SweepCommand command)
    {
        if (command is DefineSweep define)
        {
            if (Definition is null) return [new SweepDefined(define.Definition, define.At)];
            if (!Definition.SameWorkAs(define.Definition))
                throw new InvalidOperationException($"this journal holds sweep {Definition.SweepId}, not {define.Definition.SweepId}");
            return [];
        }
        if (Definition is null)
            throw new InvalidOperationException($"no sweep is defined yet; {command.GetType().Name} cannot be decided");

        switch (command)
        {
            case AssignWork assign:
            {
                var events = new List<ISweepEvent>(2);
                // a worker asking for work while we think it runs a job has lost that job (restart): requeue it first
                var held = JobOfWorker(assign.WorkerId);
                if (held is not null)
                    events.Add(new JobRequeued(held.JobId, held.Attempt, $"worker {assign.WorkerId} asked for new work while holding this job", false, assign.At));
                if (!Paused)
                {
                    var next = NextJob(assign.At, assign.Workers);
                    if (held is not null && IsReadyIgnoringStatus(held) && (next is null || Better(held, next))) next = held;
                    if (next is not null)
                        events.Add(new JobAssigned(next.JobId, next.Attempt + 1, assign.WorkerId, assign.Node,
                            next.ResumeFromCheckpoint || next.Attempt > 0, assign.At));
                }
                return events;
            }
            case AdoptRunningJob adopt:
            {
                if (!_jobs.TryGetValue(adopt.JobId, out var job)) return [];
                if (job.Status == JobStatus.Pending && job.AdoptableAfterRecovery && job.Attempt == adopt.Attempt && !Paused)
                    return [new JobAdopted(job.JobId, job.Attempt, adopt.WorkerId, adopt.Node, adopt.At)];
                return [];
            }
            case RecordProgress p:
            {
                if (!IsCurrentRunning(p.JobId, p.Attempt, out _)) return [];
                return [new JobProgressed(p.JobId, p.Attempt, p.Epoch, p.TotalEpochs, p.TrainLoss, p.ValidationLoss, p.PseudoDice,
                    p.EmaPseudoDice, p.EpochSeconds, p.At)];
            }
            case CompleteJob c:
            {
                if (!_jobs.TryGetValue(c.JobId, out var job)) return [];
                bool current = job.Status == JobStatus.Running && job.Attempt == c.Attempt;
                // the coordinator restarted while this attempt ran to its end: nobody else has the job yet, accept it
                bool finishedDuringRecovery = job.Status == JobStatus.Pending && job.AdoptableAfterRecovery && job.Attempt == c.Attempt;
                if (!current && !finishedDuringRecovery) return [];
                if (c.MissingOutputs is not null)
                {
                    if (!current) return [];
                    return [Failure(job, $"completion reported but an output is missing on storage: {c.MissingOutputs}", c.At)];
                }
                return [new JobCompleted(c.JobId, c.Attempt, c.SummaryPath, c.Metrics, c.At)];
            }
            case FailJob f:
                return IsCurrentRunning(f.JobId, f.Attempt, out var failing) ? [Failure(failing, f.Reason, f.At)] : [];
            case RequeueJob r:
                return IsCurrentRunning(r.JobId, r.Attempt, out _) ? [new JobRequeued(r.JobId, r.Attempt, r.Reason, false, r.At)] : [];
            case WorkerLost lost:
            {
                var held = JobOfWorker(lost.WorkerId);
                return held is null ? [] : [new JobRequeued(held.JobId, held.Attempt, lost.Reason, false, lost.At)];
            }
            case ExpireLeases lease:
            {
                var events = new List<ISweepEvent>();
                foreach (var job in RunningJobs)
                    if (job.LastHeartbeatAt is { } beat && lease.At - beat > lease.Lease)
                        events.Add(new JobRequeued(job.JobId, job.Attempt,
                            $"no heartbeat from {job.WorkerId} for {(lease.At - beat).TotalSeconds:F0} s (lease {lease.Lease.TotalSeconds:F0} s)", false, lease.At));
                return events;
            }
            case RequeueAfterRecovery recovery:
            {
                var events = new List<ISweepEvent>();
                foreach (var job in RunningJobs)
                    events.Add(new JobRequeued(job.JobId, job.Attempt, "coordinator restarted; continue from checkpoint", true, recovery.At,
                        recovery.AdoptionGrace > TimeSpan.Zero ? recovery.At + recovery.AdoptionGrace : null));
                return events;
            }
            case PauseSweep pause:
                return Paused ? [] : [new SweepPaused(pause.At)];
            case ResumeSweep resume:
                return Paused ? [new SweepResumed(resume.At)] : [];
            case RedoJobsWithoutResults redo:
                return RedoEvents(redo);
            case RetryJob retry:
            {
                var job = Job(retry.JobId);
                if (job.Status is not (JobStatus.Failed or JobStatus.Cancelled))
                    throw new InvalidOperationException($"job {retry.JobId} is {job.Status.ToString().ToLowerInvariant()}; only failed or cancelled jobs can be retried");
                return [new JobRetried(retry.JobId, retry.At)];
            }
            case CancelJob cancel:
            {
                var job = Job(cancel.JobId);
                if (job.IsTerminal)
                    throw new InvalidOperationException($"job {cancel.JobId} is already {job.Status.ToString().ToLowerInvariant()}");
                return [new JobCancelled(cancel.JobId, cancel.Reason, cancel.At)];
            }
            default:
                throw new ArgumentException($"unknown sweep command {command.GetType().Name}");
        }
    }

    /// <summary>Every completed job named, then every completed job depending on one of them (transitively), in grid order.</summary>
    private List<ISweepEvent> RedoEvents(RedoJobsWithoutResults redo)
    {
        var reasons = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (jobId, missing) in redo.Missing)
            if (_jobs.TryGetValue(jobId, out var job) && job.Status == JobStatus.Completed)
                reasons[jobId] = $"results gone from storage ({missing})";
        foreach (var id in _order)   // dependencies come before their dependents in grid order
            if (!reasons.ContainsKey(id) && _jobs[id].Status == JobStatus.Completed && _jobs[id].DependsOn.FirstOrDefault(reasons.ContainsKey) is { } gone)
                reasons[id] = $"{gone} runs again (its results are gone)";
        var events = new List<ISweepEvent>(reasons.Count);
        foreach (var id in _order)
            if (reasons.TryGetValue(id, out var reason)) events.Add(new JobResultsGone(id, reason, redo.At));
        return events;
    }

    private JobFailed Failure(JobRecord job, string reason, DateTime at) =>
        new(job.JobId, job.Attempt, reason, job.Failures + 1 >= Definition!.MaxAttempts, at);

    private bool IsCurrentRunning(string jobId, int attempt, out JobRecord job) =>
        _jobs.TryGetValue(jobId, out job!) && job.Status == JobStatus.Running && job.Attempt == attempt;

    // ---------------------------------------------------------------- Apply

    public void Apply(ISweepEvent e)
    {
        switch (e)
        {
            case SweepDefined d:
                if (Definition is not null) return; // replayed twice: the first one wins
                Definition = d.Definition;
                BuildGrid(d.Definition);
                break;
            case JobAssigned a:
                Update(a.JobId, j => j with
                {
                    Status = JobStatus.Running, Attempt = a.Attempt, WorkerId = a.WorkerId, Node = a.Node,
                    ResumeFromCheckpoint = a.ResumeFromCheckpoint, AdoptableAfterRecovery = false, HeldUntil = null,
                    StartedAt = a.At, LastHeartbeatAt = a.At,
                });
                break;
            case JobAdopted a:
                Update(a.JobId, j => j with { Status = JobStatus.Running, WorkerId = a.WorkerId, Node = a.Node, AdoptableAfterRecovery = false, HeldUntil = null, LastHeartbeatAt = a.At });
                break;
            case JobProgressed p:
                Update(p.JobId, j => j with
                {
                    Epoch = p.Epoch, TotalEpochs = p.TotalEpochs, LastPseudoDice = p.PseudoDice,
                    BestEmaPseudoDice = j.BestEmaPseudoDice is { } best && !(p.EmaPseudoDice > best) ? best : p.EmaPseudoDice,
                    LastHeartbeatAt = p.At,
                });
                if (_jobs[p.JobId].Configuration is { } config && p.EpochSeconds > 0)
                {
                    _timings.TryGetValue(config, out var t);
                    _timings[config] = (t.seconds + p.EpochSeconds, t.epochs + 1);
                }
                break;
            case JobCompleted c:
                Update(c.JobId, j => j with
                {
                    Status = JobStatus.Completed, Attempt = c.Attempt, WorkerId = null, AdoptableAfterRecovery = false, SummaryPath = c.SummaryPath,
                    Metrics = c.Metrics, FinishedAt = c.At, LastError = null, Epoch = j.Kind == JobKind.Train ? j.TotalEpochs : j.Epoch,
                });
                break;
            case JobFailed f:
                Update(f.JobId, j => j with
                {
                    Status = f.Final ? JobStatus.Failed : JobStatus.Pending, Failures = j.Failures + 1, LastError = f.Reason,
                    WorkerId = null, ResumeFromCheckpoint = true, AdoptableAfterRecovery = false, FinishedAt = f.Final ? f.At : null,
                });
                break;
            case JobRequeued r:
                Update(r.JobId, j => j with { Status = JobStatus.Pending, WorkerId = null, ResumeFromCheckpoint = true, AdoptableAfterRecovery = r.Adoptable, HeldUntil = r.HeldUntil });
                break;
            case JobResultsGone g:
                Update(g.JobId, j => j with { Status = JobStatus.Pending, Failures = 0, FinishedAt = null, ResumeFromCheckpoint = true, LastError = g.Reason });
                break;
            case JobRetried r:
                Update(r.JobId, j => j with { Status = JobStatus.Pending, Failures = 0, FinishedAt = null, ResumeFromCheckpoint = true });
                break;
            case JobCancelled c:
                Update(c.JobId, j => j with { Status = JobStatus.Cancelled, WorkerId = null, AdoptableAfterRecovery = false, LastError = c.Reason, FinishedAt = c.At });
                break;
            case SweepPaused:
                Paused = true;
                break;
            case SweepResumed:
                Paused = false;
                break;
            default:
                throw new ArgumentException($"unknown sweep event {e.GetType().Name}");
        }
    }

    private void Update(string jobId, Func<JobRecord, JobRecord> change)
    {
        if (!_jobs.TryGetValue(jobId, out var job))
            throw new InvalidDataException($"sweep journal refers to unknown job '{jobId}'");
        Set(change(job));
    }

    /// <summary>Replaces a job's record and keeps every index in step (status counts, running set, ready sets, worker map, open dependencies).</summary>
    private void Set(JobRecord job)
    {
        int index = _index[job.JobId];
        bool known = _jobs.TryGetValue(job.JobId, out var old);
        if (known)
        {
            _statusCounts[(int)old!.Status]--;
            if (old.Status == JobStatus.Running) _running.Remove(index);
            if (old.WorkerId is { } w && _jobByWorker.TryGetValue(w, out var held) && held == old.JobId) _jobByWorker.Remove(w);
            if (old.Status == JobStatus.Pending) ReadySet(old).Remove((old.Epoch, index));
        }
        _jobs[job.JobId] = job;
        _statusCounts[(int)job.Status]++;
        if (job.Status == JobStatus.Running) _running.Add(index);
        if (job.Status == JobStatus.Running && job.WorkerId is { } worker) _jobByWorker[worker] = job.JobId;
        if (job.Status == JobStatus.Pending && _openDependencies[job.JobId] == 0) ReadySet(job).Add((job.Epoch, index));
        // a completed job runs again only when its results are gone (JobResultsGone): its dependents wait for it again
        if (known && old!.Status == JobStatus.Completed && job.Status != JobStatus.Completed && _dependents.TryGetValue(job.JobId, out var waiting))
            foreach (var d in waiting)
                if (_openDependencies[d]++ == 0 && _jobs.TryGetValue(d, out var dj) && dj.Status == JobStatus.Pending)
                    ReadySet(dj).Remove((dj.Epoch, _index[d]));
        // otherwise completion is final (retry applies to failed/cancelled jobs only), so dependents count down exactly once
        if (job.Status == JobStatus.Completed && (!known || old!.Status != JobStatus.Completed) && _dependents.TryGetValue(job.JobId, out var dependents))
            foreach (var d in dependents)
            {
                // during Load a dependent may not be set yet; it checks its own count when it is
                if (--_openDependencies[d] == 0 && _jobs.TryGetValue(d, out var dj) && dj.Status == JobStatus.Pending)
                    ReadySet(dj).Add((dj.Epoch, _index[d]));
            }
    }

    private static string Group(JobRecord job) => job.Kind == JobKind.Train ? job.Configuration! : job.JobId;

    private SortedSet<(int epoch, int index)> ReadySet(JobRecord job)
    {
        var group = Group(job);
        if (!_readyByGroup.TryGetValue(group, out var set)) _readyByGroup[group] = set = [];
        return set;
    }

    private void BuildGrid(SweepDefinition d)
    {
        var allTraining = new List<string>();
        var lowres = d.Configurations.Contains(SweepDefinition.Lowres)
            ? d.Folds.Select(f => JobRecord.TrainJobId(SweepDefinition.Lowres, f)).ToArray() : [];
        var records = new List<JobRecord>();
        foreach (var config in d.Configurations)
            foreach (var fold in d.Folds)
            {
                var id = JobRecord.TrainJobId(config, fold);
                // every cascade fold needs the low-res predictions of all training cases, i.e. every low-res fold
                records.Add(JobRecord.New(id, JobKind.Train, config, fold, config == SweepDefinition.Cascade ? lowres : [], d.Epochs));
                allTraining.Add(id);
            }
        records.Add(JobRecord.New(JobRecord.SelectJobId, JobKind.Select, null, -1, allTraining.ToArray(), 0));
        if (d.PredictTest) records.Add(JobRecord.New(JobRecord.PredictJobId, JobKind.Predict, null, -1, [JobRecord.SelectJobId], 0));
        Load(records);
    }

    /// <summary>Builds every index from a list of records in grid order (new grid or snapshot).</summary>
    private void Load(IReadOnlyList<JobRecord> records)
    {
        foreach (var job in records)
        {
            _index[job.JobId] = _order.Count;
            _order.Add(job.JobId);
        }
        foreach (var job in records)
        {
            foreach (var dep in job.DependsOn)
            {
                if (!_index.ContainsKey(dep)) throw new InvalidDataException($"job {job.JobId} depends on unknown job {dep}");
                if (!_dependents.TryGetValue(dep, out var list)) _dependents[dep] = list = [];
                list.Add(job.JobId);
            }
            // Set() counts completed dependencies down as it loads them
            _openDependencies[job.JobId] = job.DependsOn.Length;
        }
        foreach (var job in records) Set(job);
    }

    // ---------------------------------------------------------------- scheduling

    /// <summary>True when a pending job can never start because a dependency failed or was cancelled (transitively).</summary>
    public bool IsBlocked(JobRecord job)
    {
        foreach (var dep in job.DependsOn)
        {
            var d = _jobs[dep];
            if (d.Status is JobStatus.Failed or JobStatus.Cancelled) return true;
            if (d.Status == JobStatus.Pending && d.DependsOn.Length > 0 && IsBlocked(d)) return true;
        }
        return false;
    }

    public bool IsReady(JobRecord job) => job.Status == JobStatus.Pending && _openDependencies[job.JobId] == 0;

    private bool IsReadyIgnoringStatus(JobRecord job) => _openDependencies[job.JobId] == 0;

    /// <summary>
    /// The job the next idle worker gets at <paramref name="now"/>, or null (nothing ready, paused, or better to wait).
    /// Jobs held after a recovery are skipped until their hold ends. Critical path first, then the longest job; when
    /// <paramref name="workers"/> (the registered workers) is known and several groups compete for fewer idle workers
    /// than ready jobs, or a group waits for running dependencies, <see cref="DispatchPlanner"/> may pick another group
    /// whose estimated schedule is strictly shorter, or keep the worker idle for the waiting group (null).
    /// </summary>
    public JobRecord? NextJob(DateTime? now = null, int workers = 0)
    {
        if (Paused) return null;
        JobRecord? best = null;
        List<JobRecord>? heads = null;
        foreach (var set in _readyByGroup.Values)
        {
            // within a group the job with the most epochs left goes first (longest job first), then grid order;
            // held jobs are at most one per worker, so this scan stays short
            foreach (var (_, index) in set)
            {
                var candidate = _jobs[_order[index]];
                if (candidate.HeldUntil is { } until && (now is null || now < until)) continue;
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

    /// <summary>Every low-res fold has started and some still run: the cascade becomes ready when they end (a worker may be worth keeping for it).</summary>
    private bool CascadeAboutToBeReady()
    {
        if (Definition is null || !Definition.Configurations.Contains(SweepDefinition.Cascade)) return false;
        if (_readyByGroup.TryGetValue(SweepDefinition.Lowres, out var readyLowres) && readyLowres.Count > 0) return false;
        foreach (var index in _running)
            if (_jobs[_order[index]].Configuration == SweepDefinition.Lowres) return true;
        return false;
    }

    private readonly record struct PlannedChoice(JobRecord? Job, bool Wait);

    /// <summary>Largest remaining grid the dispatch look-ahead plans for (beyond it: critical path first alone).</summary>
    public const int MaxPlannedJobs = 200;

    /// <summary>Search nodes per dispatch decision (a few milliseconds).</summary>
    public const int PlannerNodeBudget = 5_000;

    /// <summary>The look-ahead's choice among <paramref name="heads"/> (or to wait), or null where it has nothing to add.</summary>
    private PlannedChoice? Plan(List<JobRecord> heads, DateTime now, int workers)
    {
        // large grids: critical path first alone, decided in O(groups) instead of a walk over every job per decision
        if (Count(JobStatus.Pending) > MaxPlannedJobs) return null;
        var groupIndex = new Dictionary<string, int>(StringComparer.Ordinal);
        var pending = new List<List<JobRecord>>();
        var runningUntil = new List<double>();
        var busy = new List<double>();
        int readyJobs = 0, plannedJobs = 0;
        foreach (var id in _order)
        {
            var job = _jobs[id];
            if (job.IsTerminal || (job.Status == JobStatus.Pending && IsBlocked(job))) continue;
            var group = Group(job);
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
                double left = EstimatedRemainingSeconds(job) - (job.LastHeartbeatAt is { } beat ? (now - beat).TotalSeconds : 0);
                left = Math.Max(Math.Abs(left), 1e-3);
                runningUntil[g] = Math.Max(runningUntil[g], left);
                busy.Add(left);
                continue;
            }
            pending[g].Add(job);
            plannedJobs++;
            if (IsReady(job)) readyJobs++;
        }
        int idle = Math.Max(1, workers - busy.Count);
        if (plannedJobs > MaxPlannedJobs) return null;

        var groups = new DispatchPlanner.Group[pending.Count];
        var firstOfGroup = new JobRecord?[pending.Count];
        bool waitingGroup = false;
        foreach (var (name, g) in groupIndex)
        {
            // the order the ready set hands them out: most epochs left first, then grid order
            pending[g].Sort((a, b) => a.Epoch != b.Epoch ? a.Epoch.CompareTo(b.Epoch) : _index[a.JobId].CompareTo(_index[b.JobId]));
            var durations = new double[pending[g].Count];
            for (int i = 0; i < durations.Length; i++) durations[i] = EstimatedRemainingSeconds(pending[g][i]);
            var dependsOn = new SortedSet<int>();
            foreach (var job in pending[g])
                foreach (var dep in job.DependsOn)
                    if (groupIndex.TryGetValue(Group(_jobs[dep]), out int h) && !_jobs[dep].IsTerminal) dependsOn.Add(h);
            firstOfGroup[g] = pending[g].Count > 0 ? pending[g][0] : null;
            groups[g] = new DispatchPlanner.Group(durations, dependsOn.ToArray(), runningUntil[g],
                firstOfGroup[g] is { } first ? TailSeconds(first) : 0);
            // a training group whose dependencies still run (the cascade): a worker may be worth keeping for it
            waitingGroup |= dependsOn.Count > 0 && firstOfGroup[g] is { Kind: JobKind.Train };
        }
        // every ready job starts now anyway and nothing waits for a running dependency: nothing to plan
        if (readyJobs <= idle && !waitingGroup) return null;
        heads.Sort((a, b) => Better(a, b) ? -1 : Better(b, a) ? 1 : 0);
        var candidates = new List<int>(heads.Count);
        foreach (var head in heads) candidates.Add(groupIndex[Group(head)]);
        var freeAt = new double[busy.Count + idle];
        busy.CopyTo(freeAt);
        int chosen = DispatchPlanner.Choose(groups, freeAt, candidates, PlannerNodeBudget, out _);
        if (chosen == DispatchPlanner.Wait) return new PlannedChoice(null, true);
        foreach (var head in heads)
            if (groupIndex[Group(head)] == chosen) return new PlannedChoice(head, false);
        return null;
    }

    /// <summary>The earliest end of a recovery hold, if any job is held (the coordinator dispatches again then).</summary>
    public DateTime? EarliestHoldEnd()
    {
        DateTime? earliest = null;
        foreach (var set in _readyByGroup.Values)
            foreach (var (_, index) in set)
                if (_jobs[_order[index]].HeldUntil is { } until && (earliest is null || until < earliest)) earliest = until;
        return earliest;
    }

    /// <summary>Priority: longer remaining path to the end of the sweep, then longer own remaining time, then grid order.</summary>
    private bool Better(JobRecord a, JobRecord b)
    {
        double ownA = EstimatedRemainingSeconds(a), ownB = EstimatedRemainingSeconds(b);
        double rankA = ownA + TailSeconds(a), rankB = ownB + TailSeconds(b);
        if (Math.Abs(rankA - rankB) > 1e-9 * Math.Max(1, Math.Abs(rankA))) return rankA > rankB;
        if (Math.Abs(ownA - ownB) > 1e-9 * Math.Max(1, Math.Abs(ownA))) return ownA > ownB;
        return _index[a.JobId] < _index[b.JobId];
    }

    /// <summary>Estimated seconds from the end of a job to the end of the sweep along its longest chain of not yet finished dependents.</summary>
    public double TailSeconds(JobRecord job)
    {
        if (!_dependents.TryGetValue(job.JobId, out var dependents)) return 0;
        // all dependents of a job are alike (every cascade fold, or the selection), so the chain is short: walk it per group
        double tail = 0;
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var d in dependents)
        {
            var dep = _jobs[d];
            if (dep.IsTerminal || !seen.Add(Group(dep))) continue;
            tail = Math.Max(tail, FullEstimate(dep) + TailSeconds(dep));
        }
        return tail;
    }

    private double FullEstimate(JobRecord job) => job.Kind == JobKind.Train
        ? EstimatedEpochSeconds(job.Configuration!) * job.TotalEpochs
        : EstimatedRemainingSeconds(job);

    /// <summary>
    /// Prior seconds per epoch (relative sizes matter, not the absolute values) before anything was measured. nnU-Net
    /// plans every 3D configuration to the same VRAM budget and runs a fixed number of iterations per epoch, so their
    /// epochs take about as long; a 2d epoch takes 0.77-0.91 x a 3d_fullres one in nnU-Net's published epoch times
    /// (documentation/expected_epoch_times.md: three datasets on seven GPUs).
    /// </summary>
    public static double PriorEpochSeconds(string configuration) => configuration switch
    {
        "2d" => 144,
        "3d_fullres" => 180,
        SweepDefinition.Lowres => 180,
        SweepDefinition.Cascade => 180,
        _ => 120,
    };

    /// <summary>Prior seconds for the final stages, as a fraction of one training job.</summary>
    public const double SelectPriorFraction = 0.05, PredictPriorFraction = 0.1;

    /// <summary>
    /// Seconds per epoch of a configuration: measured when it has run; for the cascade, until then, 3d_fullres's
    /// measurement (same network and patch, plus the one-hot input channels); otherwise the prior scaled by what the
    /// measured ones showed.
    /// </summary>
    public double EstimatedEpochSeconds(string configuration)
    {
        if (_timings.TryGetValue(configuration, out var t) && t.epochs > 0) return t.seconds / t.epochs;
        if (configuration == SweepDefinition.Cascade && _timings.TryGetValue("3d_fullres", out var f) && f.epochs > 0) return f.seconds / f.epochs;
        double ratio = 0; int measured = 0;
        foreach (var (config, timing) in _timings)
            if (timing.epochs > 0) { ratio += timing.seconds / timing.epochs / PriorEpochSeconds(config); measured++; }
        return PriorEpochSeconds(configuration) * (measured > 0 ? ratio / measured : 1);
    }

    public double EstimatedRemainingSeconds(JobRecord job)
    {
        if (job.IsTerminal || Definition is null) return 0;
        switch (job.Kind)
        {
            case JobKind.Train:
                return EstimatedEpochSeconds(job.Configuration!) * Math.Max(0, job.TotalEpochs - job.Epoch);
            default:
                double mean = 0;
                foreach (var c in Definition.Configurations) mean += EstimatedEpochSeconds(c) * Definition.Epochs;
                mean /= Definition.Configurations.Length;
                return mean * (job.Kind == JobKind.Select ? SelectPriorFraction : PredictPriorFraction);
        }
    }

    /// <summary>Rough time to the end of the sweep: the longer of the remaining critical path and remaining work spread over the workers.</summary>
    public double? EstimatedSweepSeconds(int workers)
    {
        if (Definition is null) return null;
        double work = 0, path = 0;
        var groupsSeen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var id in _order)
        {
            var job = _jobs[id];
            if (job.IsTerminal || IsBlocked(job)) continue;
            double own = EstimatedRemainingSeconds(job);
            work += own;
            if (groupsSeen.Add(Group(job) + "/" + job.Epoch)) path = Math.Max(path, own + TailSeconds(job));
        }
        return Math.Max(path, work / Math.Max(1, workers));
    }

    // ---------------------------------------------------------------- snapshots

    public SweepStateSnapshot ToSnapshot() => new(Definition, Jobs.ToArray(), Paused,
        _timings.Select(t => new ConfigurationTiming(t.Key, t.Value.seconds, t.Value.epochs)).ToArray());

    public static SweepState FromSnapshot(SweepStateSnapshot snapshot)
    {
        var state = new SweepState { Definition = snapshot.Definition, Paused = snapshot.Paused };
        state.Load(snapshot.Jobs);
        foreach (var t in snapshot.Timings) state._timings[t.Configuration] = (t.TotalEpochSeconds, t.MeasuredEpochs);
        return state;
    }

    /// <summary>The spec a worker receives for the current attempt of a job.</summary>
    public JobSpec BuildSpec(string jobId, string resultsRoot)
    {
        var d = Definition ?? throw new InvalidOperationException("no sweep defined");
        var job = Job(jobId);
        // only the final stages need the whole grid; a training job's message stays small however large the sweep
        bool final = job.Kind != JobKind.Train;
        return new JobSpec(d.SweepId, job.JobId, job.Attempt, job.Kind, d.DatasetName, d.PlansName, d.TrainerName, job.Configuration,
            job.Fold, d.Epochs, job.ResumeFromCheckpoint, resultsRoot, final ? d.Configurations : [], final ? d.Folds : [],
            d.TrainingItersPerEpoch, d.TrainingValIters);
    }
}
