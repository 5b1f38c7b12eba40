namespace NnUnet.Cluster.Sweeps;

/// <summary>
/// What the sweep's rules read of the ledger: the jobs as the events left them, and the indices that keep every
/// decision cheap. The duration model, the dispatch policy and the read model see the ledger only through this.
/// </summary>
public interface IReadOnlySweepLedger
{
    SweepDefinition? Definition { get; }
    bool Paused { get; }
    /// <summary>Job ids in grid order (configurations x folds, then selection, then prediction).</summary>
    IReadOnlyList<string> JobOrder { get; }
    IEnumerable<JobRecord> Jobs { get; }
    JobRecord Job(string jobId);
    bool TryGetJob(string jobId, out JobRecord job);
    int Count(JobStatus status);
    /// <summary>Position of a job in <see cref="JobOrder"/> (the last tie-break of every ordering).</summary>
    int GridIndex(string jobId);
    /// <summary>The jobs that depend directly on <paramref name="jobId"/>.</summary>
    IReadOnlyList<string> DependentsOf(string jobId);
    JobRecord? JobOfWorker(string workerId);
    IEnumerable<JobRecord> RunningJobs { get; }
    /// <summary>Per group with ready jobs: its pending jobs whose dependencies completed, in hand-out order (most epochs left first, then grid order); lazy.</summary>
    IEnumerable<IEnumerable<JobRecord>> ReadyByGroup { get; }
    bool HasReady(string group);
    bool IsReady(JobRecord job);
    /// <summary>Every dependency completed (whatever the job's own status).</summary>
    bool DependenciesCompleted(JobRecord job);
    bool IsBlocked(JobRecord job);
    bool IsFinished { get; }
    bool AllCompleted { get; }
    SweepStatus Status { get; }
    /// <summary>Measured mean seconds per epoch, per configuration that has reported at least one epoch.</summary>
    IEnumerable<(string Configuration, double MeanEpochSeconds)> MeasuredEpochSeconds { get; }
    bool TryGetMeasuredEpochSeconds(string configuration, out double meanEpochSeconds);
    /// <summary>What the sweep remembers of a worker (failures, quarantine), or null when it never failed or succeeded.</summary>
    WorkerRecord? Worker(string workerId);
    IEnumerable<WorkerRecord> Workers { get; }
    bool IsQuarantined(string workerId);
    /// <summary>True when a pending job last failed on this worker (it is left for other idle workers).</summary>
    bool HasPendingJobFailedOn(string workerId);
    /// <summary>Predictions sent to this coordinator (<c>nnunet predict --cluster</c>), by submission id.</summary>
    IReadOnlyDictionary<string, PredictionRequest> Submissions { get; }
}

/// <summary>
/// The sweep's ledger: the fold of its events (<see cref="Apply"/>) into job records, with the indices kept in step
/// (status counts, running set, ready sets per group, worker map, open dependencies) and the measured epoch times, and
/// its snapshot. It decides nothing: <see cref="SweepState.Decide"/> does, reading it through
/// <see cref="IReadOnlySweepLedger"/>. Replaying a journal through Apply rebuilds the same ledger.
/// </summary>
public sealed class SweepLedger : IReadOnlySweepLedger
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
    private readonly Dictionary<string, WorkerRecord> _workers = new(StringComparer.Ordinal);
    // pending jobs per worker they last failed on (so that dispatch can tell "nothing for this worker" from "nothing at all")
    private readonly Dictionary<string, int> _pendingFailedOn = new(StringComparer.Ordinal);
    private readonly SortedSet<int> _running = [];
    private readonly int[] _statusCounts = new int[5];

    private readonly Dictionary<string, PredictionRequest> _submissions = new(StringComparer.Ordinal);

    public SweepDefinition? Definition { get; private set; }
    public bool Paused { get; private set; }

    /// <summary>Predictions sent to this coordinator (<c>nnunet predict --cluster</c>), by submission id.</summary>
    public IReadOnlyDictionary<string, PredictionRequest> Submissions => _submissions;
    public IReadOnlyList<string> JobOrder => _order;
    public IEnumerable<JobRecord> Jobs { get { foreach (var id in _order) yield return _jobs[id]; } }
    public JobRecord Job(string jobId) => _jobs.TryGetValue(jobId, out var j) ? j : throw new ArgumentException($"sweep has no job '{jobId}'");
    public bool TryGetJob(string jobId, out JobRecord job) => _jobs.TryGetValue(jobId, out job!);
    public int Count(JobStatus status) => _statusCounts[(int)status];
    public int GridIndex(string jobId) => _index[jobId];
    public IReadOnlyList<string> DependentsOf(string jobId) => _dependents.TryGetValue(jobId, out var list) ? list : [];
    public JobRecord? JobOfWorker(string workerId) => _jobByWorker.TryGetValue(workerId, out var id) ? _jobs[id] : null;
    public IEnumerable<JobRecord> RunningJobs { get { foreach (var i in _running.ToArray()) yield return _jobs[_order[i]]; } }

    public IEnumerable<IEnumerable<JobRecord>> ReadyByGroup
    {
        get
        {
            foreach (var set in _readyByGroup.Values)
                if (set.Count > 0) yield return InHandOutOrder(set);
        }
    }

    private IEnumerable<JobRecord> InHandOutOrder(SortedSet<(int epoch, int index)> set)
    {
        foreach (var (_, index) in set) yield return _jobs[_order[index]];
    }

    public bool HasReady(string group) => _readyByGroup.TryGetValue(group, out var set) && set.Count > 0;

    /// <summary>Jobs that run interchangeably: the folds of one configuration, the shards of one prediction; each other final stage alone.</summary>
    public static string GroupOf(JobRecord job) => job.Kind switch
    {
        JobKind.Train => job.Configuration!,
        JobKind.PredictShard => (job.Submission ?? JobRecord.PredictJobId) + "/shards",
        _ => job.JobId,
    };

    public bool IsReady(JobRecord job) => job.Status == JobStatus.Pending && _openDependencies[job.JobId] == 0;

    public bool DependenciesCompleted(JobRecord job) => _openDependencies[job.JobId] == 0;

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

    /// <summary>The sweep's status, derived here only (read model, live feed and end notice all show this one).</summary>
    public SweepStatus Status => Definition is null ? SweepStatus.NotDefined
        : AllCompleted ? SweepStatus.Completed
        : IsFinished ? SweepStatus.FinishedWithFailures
        : Paused ? SweepStatus.Paused : SweepStatus.Running;

    public IEnumerable<(string Configuration, double MeanEpochSeconds)> MeasuredEpochSeconds
    {
        get
        {
            foreach (var (config, t) in _timings)
                if (t.epochs > 0) yield return (config, t.seconds / t.epochs);
        }
    }

    public bool TryGetMeasuredEpochSeconds(string configuration, out double meanEpochSeconds)
    {
        bool measured = _timings.TryGetValue(configuration, out var t) && t.epochs > 0;
        meanEpochSeconds = measured ? t.seconds / t.epochs : 0;
        return measured;
    }

    public WorkerRecord? Worker(string workerId) => _workers.TryGetValue(workerId, out var w) ? w : null;
    public IEnumerable<WorkerRecord> Workers => _workers.Values;
    public bool IsQuarantined(string workerId) => _workers.TryGetValue(workerId, out var w) && w.Quarantined;
    public bool HasPendingJobFailedOn(string workerId) => _pendingFailedOn.TryGetValue(workerId, out int n) && n > 0;

    /// <summary>The earliest end of a quarantine, if any worker is quarantined.</summary>
    public DateTime? EarliestQuarantineEnd()
    {
        DateTime? earliest = null;
        foreach (var w in _workers.Values)
            if (w.QuarantinedUntil is { } until && (earliest is null || until < earliest)) earliest = until;
        return earliest;
    }

    /// <summary>The earliest end of a recovery hold, if any ready job is held (the coordinator dispatches again then).</summary>
    public DateTime? EarliestHoldEnd()
    {
        DateTime? earliest = null;
        foreach (var group in ReadyByGroup)
            foreach (var job in group)
                if (job.HeldUntil is { } until && (earliest is null || until < earliest)) earliest = until;
        return earliest;
    }

    // ---------------------------------------------------------------- the fold

    public void Apply(ISweepEvent e)
    {
        switch (e)
        {
            case SweepDefined d:
                if (Definition is not null) return; // replayed twice: the first one wins
                Definition = d.Definition;
                Load(Grid(d.Definition));
                break;
            case JobAssigned a:
                Update(a.JobId, j => j with
                {
                    Status = JobStatus.Running, Attempt = a.Attempt, WorkerId = a.WorkerId, Node = a.Node,
                    ResumeFromCheckpoint = a.ResumeFromCheckpoint, AdoptableAfterRecovery = false, HeldUntil = null,
                    StartedAt = a.At, LastHeartbeatAt = a.At, LastProgressAt = a.At, Progress = 0, Phase = null, PhaseDone = 0, PhaseTotal = 0,
                });
                break;
            case JobAdopted a:
                Update(a.JobId, j => j with { Status = JobStatus.Running, WorkerId = a.WorkerId, Node = a.Node, AdoptableAfterRecovery = false, HeldUntil = null, LastHeartbeatAt = a.At, LastProgressAt = a.At });
                break;
            case JobProgressed { Metrics: var m } p:
                Update(p.JobId, j => j with
                {
                    Epoch = m.Epoch, TotalEpochs = m.TotalEpochs, LastPseudoDice = m.PseudoDice,
                    BestEmaPseudoDice = j.BestEmaPseudoDice is { } best && !(m.EmaPseudoDice > best) ? best : m.EmaPseudoDice,
                    LastHeartbeatAt = p.At, LastProgressAt = p.At,
                });
                if (_jobs[p.JobId].Configuration is { } config && m.EpochSeconds > 0)
                {
                    _timings.TryGetValue(config, out var t);
                    _timings[config] = (t.seconds + m.EpochSeconds, t.epochs + 1);
                }
                break;
            case JobAlive a:
                Update(a.JobId, j => j with
                {
                    LastHeartbeatAt = a.At, Phase = a.Phase, PhaseDone = a.PhaseDone, PhaseTotal = a.PhaseTotal,
                    Progress = a.Progress, LastProgressAt = a.Progress != j.Progress ? a.At : j.LastProgressAt,
                });
                break;
            case JobCompleted c:
                // a success clears its worker's record of failures in a row and quarantines (the worker is healthy)
                if (_jobs.TryGetValue(c.JobId, out var finished) && finished.WorkerId is { } succeeded)
                    UpdateWorker(succeeded, w => w with { FailuresInARow = 0, Quarantines = 0, Probation = false, LastSuccessAt = c.At });
                Update(c.JobId, j => j with
                {
                    Status = JobStatus.Completed, Attempt = c.Attempt, WorkerId = null, AdoptableAfterRecovery = false, SummaryPath = c.SummaryPath,
                    Metrics = c.Metrics, FinishedAt = c.At, LastError = null, Epoch = j.Kind == JobKind.Train ? j.TotalEpochs : j.Epoch,
                    UnconfirmedFailures = null, LastFailedOn = null, OwnErrors = null,
                });
                break;
            case JobFailed f:
                Update(f.JobId, j => j with
                {
                    Status = f.Final ? JobStatus.Failed : JobStatus.Pending, Failures = f.Unconfirmed ? j.Failures : j.Failures + 1 + f.Confirms,
                    LastError = f.Reason, UnconfirmedFailures = NotesAfter(j.UnconfirmedFailures, f), LastFailedOn = f.WorkerId ?? j.LastFailedOn,
                    OwnErrors = f.Unconfirmed || f.Error is null || (j.OwnErrors?.Contains(f.Error) ?? false) ? j.OwnErrors : [.. j.OwnErrors ?? [], f.Error],
                    WorkerId = null, ResumeFromCheckpoint = true, AdoptableAfterRecovery = false, FinishedAt = f.Final ? f.At : null,
                });
                if (f.WorkerId is { } failedOn)
                    UpdateWorker(failedOn, w => w with
                    {
                        LastFailure = $"{f.JobId} attempt {f.Attempt}: {WithoutWorkerPrefix(f.Reason, failedOn)}", LastFailureAt = f.At,
                        FailuresInARow = f.Unconfirmed ? w.FailuresInARow + 1 : w.FailuresInARow,
                    });
                break;
            case WorkerQuarantined q:
                UpdateWorker(q.WorkerId, w => w with
                {
                    // the failures in a row stay visible while it is quarantined; a release starts them again
                    Quarantines = q.Level, QuarantinedAt = q.At, QuarantinedUntil = q.Until, QuarantineReason = q.Reason, QuarantinedFor = q.JobId,
                    Probation = false,
                });
                break;
            case WorkerReleased r:
                UpdateWorker(r.WorkerId, w => r.Kind == WorkerReleaseKind.FailureWasTheJobs
                    ? w with { QuarantinedUntil = null, QuarantinedFor = null, Quarantines = Math.Max(0, w.Quarantines - 1), FailuresInARow = 0, Probation = false }
                    : w with { QuarantinedUntil = null, QuarantinedFor = null, FailuresInARow = 0, Probation = true });
                break;
            case JobRequeued r:
                Update(r.JobId, j => j with
                {
                    Status = JobStatus.Pending, WorkerId = null, ResumeFromCheckpoint = true, AdoptableAfterRecovery = r.Adoptable, HeldUntil = r.HeldUntil,
                    Requeues = r.Counted ? j.Requeues + 1 : j.Requeues,
                });
                break;
            case JobResultsGone g:
                Update(g.JobId, j => j with { Status = JobStatus.Pending, Failures = 0, FinishedAt = null, ResumeFromCheckpoint = true, LastError = g.Reason,
                    UnconfirmedFailures = null, LastFailedOn = null, OwnErrors = null });
                break;
            case JobRetried r:
                Update(r.JobId, j => j with { Status = JobStatus.Pending, Failures = 0, Requeues = 0, FinishedAt = null, ResumeFromCheckpoint = true,
                    UnconfirmedFailures = null, LastFailedOn = null, OwnErrors = null });
                break;
            case JobCancelled c:
                Update(c.JobId, j => j with { Status = JobStatus.Cancelled, WorkerId = null, AdoptableAfterRecovery = false, LastError = c.Reason, FinishedAt = c.At });
                break;
            case PredictionSubmitted p:
                if (!_submissions.TryAdd(p.Request.SubmissionId, p.Request)) return; // replayed twice
                Load(JobRecord.PredictionJobs(p.Request.SubmissionId, p.Request.Shards, []).ToList());
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

    /// <summary>An unconfirmed failure is noted; a counted one takes the notes of the same error with it (they count now too).</summary>
    private static JobFailureNote[]? NotesAfter(JobFailureNote[]? notes, JobFailed f)
    {
        if (f.Error is null || f.WorkerId is null) return notes;
        if (f.Unconfirmed) return [.. notes ?? [], new JobFailureNote(f.WorkerId, f.Error, f.At)];
        if (notes is null) return null;
        var left = Array.FindAll(notes, n => n.Error != f.Error);
        return left.Length == 0 ? null : left;
    }

    /// <summary>The coordinator prefixes a worker's error with the worker's id; the worker's record does not need it twice.</summary>
    private static string WithoutWorkerPrefix(string reason, string workerId) =>
        reason.StartsWith(workerId + ": ", StringComparison.Ordinal) ? reason[(workerId.Length + 2)..] : reason;

    private void UpdateWorker(string workerId, Func<WorkerRecord, WorkerRecord> change) =>
        _workers[workerId] = change(_workers.TryGetValue(workerId, out var w) ? w : new WorkerRecord(workerId));

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
            if (old.Status == JobStatus.Pending && old.LastFailedOn is { } failedOn) _pendingFailedOn[failedOn]--;
        }
        _jobs[job.JobId] = job;
        _statusCounts[(int)job.Status]++;
        if (job.Status == JobStatus.Running) _running.Add(index);
        if (job.Status == JobStatus.Running && job.WorkerId is { } worker) _jobByWorker[worker] = job.JobId;
        if (job.Status == JobStatus.Pending && _openDependencies[job.JobId] == 0) ReadySet(job).Add((job.Epoch, index));
        if (job.Status == JobStatus.Pending && job.LastFailedOn is { } lastFailedOn)
            _pendingFailedOn[lastFailedOn] = _pendingFailedOn.GetValueOrDefault(lastFailedOn) + 1;
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

    private SortedSet<(int epoch, int index)> ReadySet(JobRecord job)
    {
        var group = GroupOf(job);
        if (!_readyByGroup.TryGetValue(group, out var set)) _readyByGroup[group] = set = [];
        return set;
    }

    /// <summary>The grid of a definition: every configuration x fold, then the selection, then the optional prediction.</summary>
    private static List<JobRecord> Grid(SweepDefinition d)
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
        if (d.PredictTest) records.AddRange(JobRecord.PredictionJobs(null, d.PredictShards, [JobRecord.SelectJobId]));
        return records;
    }

    /// <summary>Builds every index from a list of records in grid order (new grid, snapshot, or jobs added by a submission).</summary>
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

    // ---------------------------------------------------------------- snapshots

    public SweepStateSnapshot ToSnapshot() => new(Definition, Jobs.ToArray(), Paused,
        _timings.Select(t => new ConfigurationTiming(t.Key, t.Value.seconds, t.Value.epochs)).ToArray(), [.. _workers.Values], _submissions.Values.ToArray());

    public static SweepLedger FromSnapshot(SweepStateSnapshot snapshot)
    {
        var ledger = new SweepLedger { Definition = snapshot.Definition, Paused = snapshot.Paused };
        foreach (var request in snapshot.Submissions ?? []) ledger._submissions[request.SubmissionId] = request;
        ledger.Load(snapshot.Jobs);
        foreach (var t in snapshot.Timings) ledger._timings[t.Configuration] = (t.TotalEpochSeconds, t.MeasuredEpochs);
        foreach (var w in snapshot.Workers ?? []) ledger._workers[w.WorkerId] = w;
        return ledger;
    }
}
