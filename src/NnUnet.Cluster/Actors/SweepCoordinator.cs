using Akka.Actor;
using Akka.Cluster;
using Akka.Cluster.Tools.PublishSubscribe;
using Akka.Event;
using Akka.Persistence;
using NnUnet.Cluster.Backends;
using NnUnet.Cluster.Messages;
using NnUnet.Cluster.Sweeps;

namespace NnUnet.Cluster.Actors;

/// <summary>Settings of the coordinator of one sweep.</summary>
/// <param name="ResultsRoot">the coordinator's <c>nnUNet_results</c> (shared storage); jobs carry it to the workers.</param>
/// <param name="HeartbeatLease">a running job without progress for this long is cancelled and re-queued (longer than the slowest epoch).</param>
/// <param name="ProgressPersistInterval">at most one progress event per job is persisted per interval (all are published).</param>
/// <param name="SnapshotEvery">a state snapshot is saved after this many persisted events.</param>
/// <param name="StallTimeout">a running job whose progress counter has not moved for this long is hung: cancelled and re-queued (zero = off).</param>
/// <param name="StartJobTransit">a liveness report denying an assignment younger than this may have crossed its StartJob; older: the StartJob was lost.</param>
/// <param name="Limits">the limits of the failure rules (max re-queues per job); default <see cref="FailureLimits.Default"/>.</param>
public sealed record CoordinatorSettings(
    SweepDefinition Definition,
    string ResultsRoot,
    IResultStore ResultStore,
    TimeSpan HeartbeatLease,
    TimeSpan LeaseCheckInterval,
    TimeSpan ProgressPersistInterval,
    int SnapshotEvery,
    int RecentEventCount = 200,
    TimeSpan AdoptionGrace = default,
    FailureLimits? Limits = null,
    TimeSpan StallTimeout = default,
    TimeSpan? StartJobTransit = null);

/// <summary>
/// The sweep's coordinator: a cluster singleton (role <c>coordinator</c>), event-sourced. It keeps the rules out of
/// itself: every message becomes a <see cref="SweepCommand"/>, <see cref="SweepState.Decide"/> gives the events, this
/// actor persists and applies them and does the talking (assignments to idle workers, cancellations, publishing).
/// Workers are not persisted: they re-register after a restart or hand-over, and on recovery every running job is
/// re-queued to continue from its checkpoint (a worker that still runs it may adopt it when it re-registers).
/// </summary>
public sealed class SweepCoordinator : ReceivePersistentActor, IWithTimers
{
    private sealed record WorkerEntry(string WorkerId, IActorRef Ref, string Node, string Device);
    private sealed class Initialize : INoSerializationVerificationNeeded { public static readonly Initialize Instance = new(); }
    private sealed class LeaseTick : INoSerializationVerificationNeeded { public static readonly LeaseTick Instance = new(); }
    private sealed class HoldOver : INoSerializationVerificationNeeded { public static readonly HoldOver Instance = new(); }
    private sealed class QuarantineOver : INoSerializationVerificationNeeded { public static readonly QuarantineOver Instance = new(); }

    // the answers of the storage checks, which run off this actor's thread (a stat on a slow NFS mount must not stall it)
    private sealed record CompletionChecked(JobFinishedReport Report, IActorRef Worker, string? Missing) : INoSerializationVerificationNeeded;
    private sealed record LostWorkerChecked(string WorkerId, string Reason, string JobId, int Attempt, string Output, bool Finished) : INoSerializationVerificationNeeded;
    private sealed record RecoveryChecked(List<(string JobId, int Attempt, string Output)> Finished, Dictionary<string, string> Missing, string? Error = null)
        : INoSerializationVerificationNeeded;

    /// <summary>Hand-over/termination message of the singleton: stop after the journal has every event written so far.</summary>
    public sealed class Stop : INoSerializationVerificationNeeded { public static readonly Stop Instance = new(); }

    private readonly CoordinatorSettings _settings;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private SweepState _state;
    private readonly Dictionary<string, WorkerEntry> _workers = new(StringComparer.Ordinal);
    private readonly List<string> _idle = [];
    private readonly Queue<SweepEventView> _recent = new();
    private readonly Dictionary<string, DateTime> _lastPersistedProgress = new(StringComparer.Ordinal);
    private int _unpersisted;
    private int _eventsSinceSnapshot;
    private bool _finishedPublished;
    private bool _dispatching;
    private IActorRef? _mediator;
    // jobs whose end is being checked on storage (attempt by job id): a liveness report or lease in the meantime does not re-queue them
    private readonly Dictionary<string, int> _checkingEnd = new(StringComparer.Ordinal);
    // after a restart, until storage says which attempts finished during the outage and which results are gone: no dispatch
    private bool _recoveryCheckPending;

    public override string PersistenceId { get; }
    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(CoordinatorSettings settings) => Akka.Actor.Props.Create(() => new SweepCoordinator(settings));

    public SweepCoordinator(CoordinatorSettings settings)
    {
        _settings = settings;
        _state = new SweepState(settings.Limits);
        PersistenceId = "sweep-" + settings.Definition.SweepId;

        Recover<SnapshotOffer>(offer =>
        {
            if (offer.Snapshot is SweepStateSnapshot snapshot) _state = SweepState.FromSnapshot(snapshot, settings.Limits);
        });
        Recover<ISweepEvent>(e =>
        {
            _state.Apply(e);
            Remember(e);
        });
        Recover<RecoveryCompleted>(_ => Self.Tell(Initialize.Instance));

        Command<Initialize>(_ =>
        {
            _log.Info("sweep {0}: recovered, {1} jobs", settings.Definition.SweepId, _state.JobOrder.Count);
            var journaled = _state.Definition;
            Execute(new DefineSweep(settings.Definition, DateTime.UtcNow));
            // the command line that started this coordinator prints it on stderr; here it goes to the log and the sweep's history
            if (journaled?.KeptShardsNotice(settings.Definition) is { } kept)
            {
                _log.Info("{0}", kept);
                Remember(new SweepEventView(DateTime.UtcNow, "kept-shards", null, kept));
            }
            Execute(new RequeueAfterRecovery(DateTime.UtcNow, settings.AdoptionGrace));
            CheckStorageAfterRecovery();
            if (_state.EarliestHoldEnd() is { } holdEnd)
                Timers.StartSingleTimer("hold", HoldOver.Instance, holdEnd - DateTime.UtcNow + TimeSpan.FromMilliseconds(50));
            ScheduleQuarantineEnd();
            Akka.Cluster.Cluster.Get(Context.System).Subscribe(Self, ClusterEvent.InitialStateAsEvents, typeof(ClusterEvent.MemberRemoved));
            _mediator = DistributedPubSub.Get(Context.System).Mediator;
            Timers.StartPeriodicTimer("lease", LeaseTick.Instance, settings.LeaseCheckInterval);
            Become(Active);
            Stash.UnstashAll();
        });
        Command<Stop>(_ => Context.Stop(Self));
        CommandAny(_ => Stash.Stash());
    }

    /// <summary>
    /// After a restart, storage is asked (off this actor's thread, dispatch held until the answer) two things:
    /// <list type="bullet">
    /// <item>An attempt that was running when the previous coordinator died may have finished while no coordinator
    /// listened (its completion was lost with the crashed process, or had not reached the journal yet; the worker's node
    /// was downed with the coordinator, so nobody re-sends it): complete by its completion marker, written after the
    /// attempt started, it is accepted instead of run again.</item>
    /// <item>A job the journal has as completed whose results are no longer complete on storage (moved to superseded/
    /// by <c>--overwrite</c>, deleted by hand) runs again, with everything that depends on it: a re-run of the sweep
    /// then ends with every result present instead of reporting work done that is gone.</item>
    /// </list>
    /// </summary>
    private void CheckStorageAfterRecovery()
    {
        var candidates = new List<(JobSpec Spec, DateTime Started)>();
        var completed = new List<JobSpec>();
        foreach (var job in _state.Jobs)
        {
            if (job is { Status: JobStatus.Pending, AdoptableAfterRecovery: true, StartedAt: { } started })
                candidates.Add((_state.BuildSpec(job.JobId, _settings.ResultsRoot), started));
            else if (job.Status == JobStatus.Completed)
                completed.Add(_state.BuildSpec(job.JobId, _settings.ResultsRoot));
        }
        _recoveryCheckPending = true;
        var store = _settings.ResultStore;
        CheckStorage(() =>
        {
            var finished = new List<(string, int, string)>();
            foreach (var (spec, started) in candidates)
                if (store.OutputsWrittenSince(spec, started)) finished.Add((spec.JobId, spec.Attempt, JobOutputs.OutputPath(spec)));
            var missing = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var spec in completed)
                if (store.MissingOutputs(spec) is { } what) missing[spec.JobId] = what;
            return new RecoveryChecked(finished, missing);
        }, error => new RecoveryChecked([], [], error.Message));
    }

    private void OnRecoveryChecked(RecoveryChecked c)
    {
        _recoveryCheckPending = false;
        if (c.Error is not null)
            _log.Warning("sweep {0}: the storage check after the restart failed ({1}); interrupted attempts run again, completed jobs are kept",
                _settings.Definition.SweepId, c.Error);
        foreach (var (jobId, attempt, output) in c.Finished)
            Execute(new CompleteJob(jobId, attempt, output, new Dictionary<string, double>(), null, DateTime.UtcNow));
        if (c.Missing.Count > 0)
        {
            _log.Warning("sweep {0}: {1} completed job(s) have no complete results on storage any more and run again: {2}", _settings.Definition.SweepId,
                c.Missing.Count, string.Join("; ", c.Missing.Select(m => $"{m.Key}: {m.Value}")));
            Execute(new RedoJobsWithoutResults(c.Missing, DateTime.UtcNow));
        }
        TryDispatch();
        // re-running a sweep that is already done: say so right away
        if (_state.IsFinished) PublishFinishedOnce();
    }

    /// <summary>
    /// Runs a storage check (file-system calls, possibly slow) on a pool thread and sends its answer to this actor, which
    /// acts on it as on any message (the petabridge long-running-task pattern: PipeTo, no blocking, no shared state:
    /// <paramref name="check"/> only reads specs built here and the store).
    /// </summary>
    private void CheckStorage<T>(Func<T> check, Func<Exception, T> onError) =>
        Task.Run(check).PipeTo(Self, success: result => result!, failure: e => onError(e.GetBaseException())!);

    protected override void PostStop()
    {
        Akka.Cluster.Cluster.Get(Context.System).Unsubscribe(Self);
        base.PostStop();
    }

    private void Active()
    {
        Command<RegisterWorker>(OnRegister);
        Command<RequestJob>(r => OnRequestJob(r.WorkerId));
        Command<JobProgressReport>(OnProgress);
        Command<WorkerAlive>(OnAlive);
        Command<JobFinishedReport>(OnFinished);
        Command<CompletionChecked>(OnCompletionChecked);
        Command<LostWorkerChecked>(OnLostWorkerChecked);
        Command<RecoveryChecked>(OnRecoveryChecked);
        Command<JobFailedReport>(f => Execute(new FailJob(f.JobId, f.Attempt, $"{f.WorkerId}: {f.Error}", DateTime.UtcNow, OtherActiveWorkers(f.WorkerId))));
        Command<JobRejected>(r => Execute(new RequeueJob(r.JobId, r.Attempt, $"{r.WorkerId} rejected it: {r.Reason}", DateTime.UtcNow)));
        Command<Terminated>(t =>
        {
            foreach (var w in _workers.Values.Where(w => w.Ref.Equals(t.ActorRef)).ToList())
                LoseWorker(w, "worker actor terminated");
        });
        Command<ClusterEvent.MemberRemoved>(m =>
        {
            foreach (var w in _workers.Values.Where(w => w.Ref.Path.Address.Equals(m.Member.Address)).ToList())
                LoseWorker(w, $"node {m.Member.Address} left the cluster");
        });
        Command<ClusterEvent.CurrentClusterState>(_ => { });
        Command<LeaseTick>(_ =>
        {
            var expired = _state.Decide(new ExpireLeases(_settings.HeartbeatLease, DateTime.UtcNow, _settings.StallTimeout));
            // an attempt whose end is being checked on storage is not lost: the check's answer decides it
            if (_checkingEnd.Count > 0) expired = expired.Where(e => !(e is IJobEvent j && _checkingEnd.ContainsKey(j.JobId))).ToList();
            // a job failed here (lost its worker too often) may still run on that worker, alive but hung: stop it
            // (a re-queued one is cancelled in AfterEvent; a worker's own failure report needs no cancel)
            foreach (var e in expired)
                if (e is JobFailed f && _state.Job(f.JobId).WorkerId is { } holder && _workers.TryGetValue(holder, out var worker))
                    worker.Ref.Tell(new CancelJobRun(f.JobId, f.Attempt, f.Reason));
            PersistEvents(expired);
            // idle workers the scheduler keeps for a job about to become ready (the cascade) are reconsidered even
            // when no event comes: if the awaited job is late, waiting stops paying and they get work
            TryDispatch();
        });
        Command<HoldOver>(_ => TryDispatch());
        Command<QuarantineOver>(_ =>
        {
            Execute(new EndQuarantines(DateTime.UtcNow));
            ScheduleQuarantineEnd();
        });
        Command<GetSweepView>(_ => Sender.Tell(BuildSnapshot()));
        Command<SweepControl>(OnControl);
        Command<SubmitPrediction>(OnSubmitPrediction);
        Command<Stop>(_ => DeferAsync(Stop.Instance, _ => Context.Stop(Self)));
        Command<SaveSnapshotSuccess>(s => DeleteSnapshots(new SnapshotSelectionCriteria(s.Metadata.SequenceNr - 1)));
        Command<SaveSnapshotFailure>(f => _log.Warning("sweep snapshot failed: {0}", f.Cause.Message));
        Command<DeleteSnapshotsSuccess>(_ => { });
        Command<DeleteSnapshotsFailure>(_ => { });
    }

    /// <summary>
    /// A completion is accepted only when the job's results are complete on storage (its completion marker; checked here,
    /// not taken from the worker's word), off this actor's thread; the answer to the worker follows the check.
    /// </summary>
    private void OnFinished(JobFinishedReport f)
    {
        if (!_state.TryGetJob(f.JobId, out _))
        {
            AnswerFinished(f, Sender);
            return;
        }
        // a report sent again while its first one is checked: that check answers the worker
        if (_checkingEnd.TryGetValue(f.JobId, out var checking) && checking == f.Attempt) return;
        // the rules ignore a late or duplicate report whatever storage says: no check needed (Decide does not change the state)
        if (_state.Decide(new CompleteJob(f.JobId, f.Attempt, f.SummaryPath, f.Metrics, null, DateTime.UtcNow)).Count == 0)
        {
            AnswerFinished(f, Sender);
            return;
        }
        _checkingEnd[f.JobId] = f.Attempt;
        var spec = _state.BuildSpec(f.JobId, _settings.ResultsRoot);
        var store = _settings.ResultStore;
        var worker = Sender;
        CheckStorage(() => new CompletionChecked(f, worker, store.MissingOutputs(spec)),
            error => new CompletionChecked(f, worker, $"the storage check failed: {error.Message}"));
    }

    private void OnCompletionChecked(CompletionChecked c)
    {
        var f = c.Report;
        if (_checkingEnd.TryGetValue(f.JobId, out var attempt) && attempt == f.Attempt) _checkingEnd.Remove(f.JobId);
        Execute(new CompleteJob(f.JobId, f.Attempt, f.SummaryPath, f.Metrics, c.Missing, DateTime.UtcNow, OtherActiveWorkers(f.WorkerId)));
        AnswerFinished(f, c.Worker);
    }

    /// <summary>
    /// The answer acknowledges the report: the worker's next job (StartJob), or JobFinishedAck when none starts. A
    /// report sent again (its answer was late) while the worker already has its next job asks for nothing: taking it as
    /// a request would re-queue that job. (Sending that StartJob again could start a job twice: it may arrive after the
    /// worker finished it.)
    /// </summary>
    private void AnswerFinished(JobFinishedReport f, IActorRef worker)
    {
        bool hasNext = _state.JobOfWorker(f.WorkerId) is { } next && !(next.JobId == f.JobId && next.Attempt == f.Attempt);
        if (f.RequestsNextJob && !hasNext) OnRequestJob(f.WorkerId, worker);
        if (hasNext || _state.JobOfWorker(f.WorkerId) is null) worker.Tell(new JobFinishedAck(f.JobId, f.Attempt));
    }

    private void OnRequestJob(string workerId) => OnRequestJob(workerId, Sender);

    private void OnRequestJob(string workerId, IActorRef replyTo)
    {
        if (!_workers.ContainsKey(workerId))
        {
            _log.Warning("job request from unregistered worker {0} ignored (it registers first)", workerId);
            return;
        }
        if (!_idle.Contains(workerId)) _idle.Add(workerId);
        TryDispatch();
        // Nothing left to run: say so to this worker directly. A worker node that joined moments before the end
        // (or after it) may not be subscribed to the Finished topic yet, and would otherwise wait forever.
        if (_state.IsFinished && !_recoveryCheckPending && _idle.Contains(workerId)) replyTo.Tell(FinishedNotice());
    }

    private SweepView BuildSnapshot()
    {
        var running = new Dictionary<string, JobRecord>(StringComparer.Ordinal);
        foreach (var job in _state.Jobs)
            if (job is { Status: JobStatus.Running, WorkerId: { } w }) running[w] = job;
        var workers = _workers.Values.Select(w => running.TryGetValue(w.WorkerId, out var j)
            ? new WorkerView(w.WorkerId, w.Node, w.Device, j.JobId, j.Attempt)
            : new WorkerView(w.WorkerId, w.Node, w.Device, null, null)).ToArray();
        return SweepView.Build(_state, workers, _recent, DateTime.UtcNow);
    }

    /// <summary>The cluster node an actor lives on (a local actor's address has no host: this node).</summary>
    private static Address NodeOf(IActorRef actor) =>
        actor.Path.Address.HasLocalScope ? Akka.Cluster.Cluster.Get(Context.System).SelfAddress : actor.Path.Address;

    /// <summary>True while the node is a member that is not on its way out: its workers still hold their ids and jobs.</summary>
    private static bool IsLiveMember(Address node)
    {
        var cluster = Akka.Cluster.Cluster.Get(Context.System);
        if (node.Equals(cluster.SelfAddress)) return true;
        foreach (var m in cluster.State.Members)
            if (m.Address.Equals(node)) return m.Status is MemberStatus.Up or MemberStatus.WeaklyUp or MemberStatus.Joining;
        return false;
    }

    private void OnRegister(RegisterWorker r)
    {
        // a worker id names one worker: another node may not take it over while that worker's node is alive (it would
        // get its jobs and its reports would count as the other's); the same node may (a restarted worker actor or node)
        if (_workers.TryGetValue(r.WorkerId, out var holder) && !NodeOf(holder.Ref).Equals(NodeOf(Sender)) && IsLiveMember(NodeOf(holder.Ref)))
        {
            var reason = $"worker id {r.WorkerId} is held by a live worker of node {NodeOf(holder.Ref)}; {NodeOf(Sender)} may not register under it";
            _log.Warning("registration refused: {0}", reason);
            Sender.Tell(new WorkerRegistrationRefused(r.WorkerId, reason));
            return;
        }
        if (_workers.TryGetValue(r.WorkerId, out var old) && !old.Ref.Equals(Sender)) Context.Unwatch(old.Ref);
        _workers[r.WorkerId] = new WorkerEntry(r.WorkerId, Sender, r.Node, r.Device);
        Context.Watch(Sender);
        Sender.Tell(new WorkerRegistered(r.WorkerId, _settings.Definition.SweepId));
        if (r.RunningJobId is null) return;
        var events = _state.TryGetJob(r.RunningJobId, out _)
            ? _state.Decide(new AdoptRunningJob(r.WorkerId, r.Node, r.RunningJobId, r.RunningAttempt, DateTime.UtcNow))
            : [];
        bool alreadyOurs = _state.TryGetJob(r.RunningJobId, out var job) && job.Status == JobStatus.Running
                           && job.WorkerId == r.WorkerId && job.Attempt == r.RunningAttempt;
        if (events.Count > 0) PersistEvents(events);
        else if (!alreadyOurs)
            Sender.Tell(new CancelJobRun(r.RunningJobId, r.RunningAttempt, "the coordinator gave this job to someone else"));
    }

    private void OnProgress(JobProgressReport p)
    {
        var events = _state.Decide(new RecordProgress(p.JobId, p.Attempt, p.Metrics, DateTime.UtcNow));
        if (events.Count == 0) return;
        var e = (JobProgressed)events[0];
        // at most one persisted progress per job and interval, counted from its (persisted) assignment: a job shorter
        // than the interval persists none; after a crash its running jobs restart from their checkpoints anyway
        bool persist = !_lastPersistedProgress.TryGetValue(p.JobId, out var last) || e.At - last >= _settings.ProgressPersistInterval;
        if (persist)
        {
            _lastPersistedProgress[p.JobId] = e.At;
            PersistEvents(events);
        }
        else
        {
            // throttled: applied and published, not persisted (recovery then shows a slightly older epoch)
            _state.Apply(e);
            Publish(e, Remember(e));
        }
    }

    /// <summary>
    /// A worker's liveness report: applied, not persisted (see <see cref="JobAlive"/>). A report denying the attempt
    /// the coordinator gave the worker re-queues it (lost StartJob), and the idle worker gets work again; a report of
    /// an attempt that is not (or no longer) the worker's is cancelled there.
    /// </summary>
    private void OnAlive(WorkerAlive alive)
    {
        if (!_workers.ContainsKey(alive.WorkerId)) return; // not registered (yet): it registers first, telling what it runs
        // idle after finishing an attempt whose completion is being checked on storage: not a lost StartJob
        if (_state.JobOfWorker(alive.WorkerId) is { } held && _checkingEnd.TryGetValue(held.JobId, out var checking) && checking == held.Attempt) return;
        var events = _state.Decide(new RecordLiveness(alive.WorkerId, alive.JobId, alive.Attempt, alive.Phase, alive.Progress, alive.PhaseDone,
            alive.PhaseTotal, _settings.StartJobTransit ?? TimeSpan.FromSeconds(5), DateTime.UtcNow));
        if (events is [JobAlive a])
        {
            var before = _state.Job(a.JobId);
            _state.Apply(a);
            // the phase and its progress on the live feed (dashboards), not in the recent events: one per report
            if (before.Phase != a.Phase || before.PhaseDone != a.PhaseDone || before.PhaseTotal != a.PhaseTotal)
                Publish(a, SweepView.Describe(a));
            return;
        }
        // not JobAlive: the report is not about the attempt the coordinator gave this worker
        if (alive.JobId is not null)
            Sender.Tell(new CancelJobRun(alive.JobId, alive.Attempt, "the coordinator does not know this attempt as this worker's"));
        if (events.Count == 0) return;
        PersistEvents(events);
        if (alive.JobId is null && !_idle.Contains(alive.WorkerId))
        {
            _idle.Add(alive.WorkerId);
            TryDispatch();
        }
    }

    /// <summary>
    /// Why an operator command from <paramref name="sender"/> is not accepted, or null: only nodes of the coordinator
    /// or operator role may command (the dashboard runs on a coordinator node and checks its token; <c>nnunet
    /// sweep-control</c> joins as an operator node); a worker or a client node (<c>sweep-status</c>) may not.
    /// </summary>
    private static string? ControlRefusal(IActorRef sender)
    {
        var node = NodeOf(sender);
        var cluster = Akka.Cluster.Cluster.Get(Context.System);
        if (node.Equals(cluster.SelfAddress)) return null; // this node hosts the coordinator: it has the role
        foreach (var m in cluster.State.Members)
            if (m.Address.Equals(node))
                return m.HasRole("coordinator") || m.HasRole("operator") ? null
                    : $"commands are accepted only from coordinator nodes (the dashboard, with its token) and operator nodes (nnunet sweep-control); " +
                      $"{node} has role(s) {string.Join(", ", m.Roles.Order(StringComparer.Ordinal))}";
        return $"commands are accepted only from coordinator and operator nodes; {node} is not a member of the cluster";
    }

    private void OnControl(SweepControl c)
    {
        if (ControlRefusal(Sender) is { } refusal)
        {
            _log.Warning("{0} {1} refused: {2}", c.Action, c.JobId ?? "", refusal);
            Sender.Tell(new SweepControlResult(false, refusal));
            return;
        }
        try
        {
            var now = DateTime.UtcNow;
            SweepCommand command = c.Action switch
            {
                SweepControlAction.Pause => new PauseSweep(now),
                SweepControlAction.Resume => new ResumeSweep(now),
                SweepControlAction.RetryJob => new RetryJob(c.JobId ?? throw new ArgumentException("retry needs a job id"), now),
                SweepControlAction.CancelJob => new CancelJob(c.JobId ?? throw new ArgumentException("cancel needs a job id"), "cancelled by operator", now),
                SweepControlAction.ReleaseWorker => new ReleaseWorker(c.WorkerId ?? throw new ArgumentException("release needs a worker id"), now),
                _ => throw new ArgumentException($"unknown control action {c.Action}"),
            };
            var events = _state.Decide(command);
            PersistEvents(events);
            Sender.Tell(new SweepControlResult(true, events.Count == 0 ? "nothing to do" : string.Join("; ", events.Select(e => SweepView.Describe(e).Text))));
        }
        catch (Exception ex) when (ex is ArgumentException or InvalidOperationException)
        {
            Sender.Tell(new SweepControlResult(false, ex.Message));
        }
    }

    /// <summary>A prediction for the idle workers: its shards and merge job join the grid (or, sent again, its failed or cancelled jobs are retried).</summary>
    private void OnSubmitPrediction(SubmitPrediction submit)
    {
        var id = submit.Request.SubmissionId;
        if (ControlRefusal(Sender) is { } refusal)
        {
            _log.Warning("prediction {0} refused: {1}", id, refusal);
            Sender.Tell(new PredictionSubmissionResult(false, id, [], refusal));
            return;
        }
        try
        {
            var events = _state.Decide(new SubmitPredictionJobs(submit.Request, DateTime.UtcNow));
            PersistEvents(events);
            var jobs = _state.SubmissionJobIds(id).ToArray();
            string message = events is [PredictionSubmitted] ? $"submitted as {jobs.Length - 1} shard(s) and a merge job"
                : events.Count > 0 ? $"submitted before: {events.Count} failed or cancelled job(s) retried"
                : "submitted before: following its jobs";
            _log.Info("prediction {0} ({1} -> {2}): {3}", id, submit.Request.InputFolder, submit.Request.OutputFolder, message);
            Sender.Tell(new PredictionSubmissionResult(true, id, jobs, message));
        }
        catch (Exception ex) when (ex is ArgumentException or InvalidOperationException)
        {
            Sender.Tell(new PredictionSubmissionResult(false, id, [], ex.Message));
        }
    }

    /// <summary>
    /// A lost worker may have finished its attempt while it could not report (a network partition drops the completion
    /// with the link; the node is downed before it can re-send it). Storage is asked (off this actor's thread) whether
    /// the attempt's results are complete, by a completion marker written after the attempt started: then it is
    /// accepted instead of running the job again elsewhere; otherwise the job is re-queued as lost.
    /// </summary>
    private void LoseWorker(WorkerEntry worker, string reason)
    {
        _workers.Remove(worker.WorkerId);
        _idle.Remove(worker.WorkerId);
        Context.Unwatch(worker.Ref);
        _log.Info("worker {0} lost: {1}", worker.WorkerId, reason);
        if (_state.JobOfWorker(worker.WorkerId) is not { Status: JobStatus.Running, StartedAt: { } started } job)
        {
            Execute(new WorkerLost(worker.WorkerId, $"{worker.WorkerId}: {reason}", DateTime.UtcNow));
            return;
        }
        _checkingEnd[job.JobId] = job.Attempt;
        var spec = _state.BuildSpec(job.JobId, _settings.ResultsRoot);
        var store = _settings.ResultStore;
        CheckStorage(() => new LostWorkerChecked(worker.WorkerId, reason, job.JobId, job.Attempt, JobOutputs.OutputPath(spec), store.OutputsWrittenSince(spec, started)),
            _ => new LostWorkerChecked(worker.WorkerId, reason, job.JobId, job.Attempt, JobOutputs.OutputPath(spec), false));
    }

    private void OnLostWorkerChecked(LostWorkerChecked c)
    {
        if (_checkingEnd.TryGetValue(c.JobId, out var attempt) && attempt == c.Attempt) _checkingEnd.Remove(c.JobId);
        if (c.Finished)
        {
            _log.Info("{0} attempt {1}: its lost worker had written every output, accepted", c.JobId, c.Attempt);
            Execute(new CompleteJob(c.JobId, c.Attempt, c.Output, new Dictionary<string, double>(), null, DateTime.UtcNow));
        }
        // only the attempt that was checked: the worker may have registered again and got another job since
        if (_state.JobOfWorker(c.WorkerId) is { } held && held.JobId == c.JobId && held.Attempt == c.Attempt)
            Execute(new WorkerLost(c.WorkerId, $"{c.WorkerId}: {c.Reason}", DateTime.UtcNow));
    }

    /// <summary>
    /// Assigns ready jobs to idle workers, oldest idle worker first. Quarantined workers stay idle; a worker that gets
    /// nothing because the ready jobs failed on it (and are left for the others) is passed over; any other worker that
    /// gets nothing means nothing is to be had now.
    /// </summary>
    private void TryDispatch()
    {
        // PersistEvents of an assignment calls back here: the loop below goes on by itself
        if (_dispatching || _recoveryCheckPending) return;
        _dispatching = true;
        try
        {
            int i = 0;
            while (i < _idle.Count && !_state.Paused)
            {
                var workerId = _idle[i];
                if (!_workers.TryGetValue(workerId, out var worker))
                {
                    _idle.RemoveAt(i);
                    continue;
                }
                if (_state.IsQuarantined(workerId))
                {
                    i++;
                    continue;
                }
                bool keepsAway = _state.Ledger.HasPendingJobFailedOn(workerId);
                var events = _state.Decide(new AssignWork(workerId, worker.Node, DateTime.UtcNow, _workers.Count, keepsAway ? OtherIdleWorkers(workerId) : 0));
                if (events.Count == 0)
                {
                    if (!keepsAway)
                    {
                        ReportIdleWorkers();
                        return;
                    }
                    i++;
                    continue;
                }
                _idle.RemoveAt(i);
                PersistEvents(events);
                i = 0; // who is idle changed: the workers passed over are asked again
            }
        }
        finally
        {
            _dispatching = false;
        }
    }

    /// <summary>Registered workers other than <paramref name="workerId"/> that are not quarantined (could run jobs).</summary>
    private int OtherActiveWorkers(string workerId)
    {
        int n = 0;
        foreach (var id in _workers.Keys)
            if (id != workerId && !_state.IsQuarantined(id)) n++;
        return n;
    }

    /// <summary>Idle registered workers other than <paramref name="workerId"/> that are not quarantined.</summary>
    private int OtherIdleWorkers(string workerId)
    {
        int n = 0;
        foreach (var id in _idle)
            if (id != workerId && _workers.ContainsKey(id) && !_state.IsQuarantined(id)) n++;
        return n;
    }

    /// <summary>Wakes up when the earliest quarantine ends (its worker gets work again, with an event saying so).</summary>
    private void ScheduleQuarantineEnd()
    {
        if (_state.EarliestQuarantineEnd() is { } end)
            Timers.StartSingleTimer("quarantine", QuarantineOver.Instance, Max(end - DateTime.UtcNow, TimeSpan.Zero) + TimeSpan.FromMilliseconds(50));
        else Timers.Cancel("quarantine");
    }

    private static TimeSpan Max(TimeSpan a, TimeSpan b) => a > b ? a : b;

    private string? _lastIdleReport;

    /// <summary>
    /// Which workers (GPUs) sit idle and why, logged when that changes: on an allocation idle GPUs cost, and a grid
    /// with fewer ready jobs than GPUs (the cascade waits for every low-res fold) leaves some idle for a while
    /// (`nnunet worker --release-idle-after` frees them).
    /// </summary>
    private void ReportIdleWorkers()
    {
        if (_state.IsFinished || _idle.Count == 0 || _state.Policy.WhyIdle(DateTime.UtcNow) is not { } why) return;
        const int shown = 8;
        var report = $"{_idle.Count} of {_workers.Count} worker(s) idle ({string.Join(", ", _idle.Take(shown))}{(_idle.Count > shown ? ", ..." : "")}): {why}";
        if (report == _lastIdleReport) return;
        _lastIdleReport = report;
        _log.Warning("idle: {0}", report);
    }

    private void Execute(SweepCommand command) => PersistEvents(_state.Decide(command));

    /// <summary>
    /// Applies the events, acts on them, and persists them asynchronously (order kept, writes batched by the journal).
    /// Acting before the write is durable is safe here: if the coordinator dies first, recovery ends in an earlier state
    /// that the rules already handle (running jobs re-queued, a worker's late report ignored or adopted), and it is
    /// what lets one coordinator hand out thousands of jobs per second instead of one per journal round trip.
    /// </summary>
    private void PersistEvents(IReadOnlyList<ISweepEvent> events)
    {
        if (events.Count == 0) return;
        foreach (var e in events)
        {
            var before = e is IJobEvent j ? _state.Job(j.JobId) : null;
            string? previousWorker = e is JobRequeued or JobCancelled ? before!.WorkerId : null;
            int previousAttempt = before?.Attempt ?? 0;
            _state.Apply(e);
            var view = Remember(e);
            AfterEvent(e, previousWorker, previousAttempt);
            Publish(e, view);
        }
        _unpersisted += events.Count;
        PersistAllAsync(events, _ =>
        {
            _unpersisted--;
            _eventsSinceSnapshot++;
            // a snapshot must not contain events the journal does not have yet, or recovery would apply them twice
            if (_unpersisted == 0 && _eventsSinceSnapshot >= _settings.SnapshotEvery)
            {
                _eventsSinceSnapshot = 0;
                SaveSnapshot(_state.ToSnapshot());
            }
        });
        TryDispatch();
    }

    private void AfterEvent(ISweepEvent e, string? previousWorker, int previousAttempt)
    {
        // an assignment is a persisted heartbeat: progress persistence is throttled from it; the entry goes with the run
        if (e is JobAssigned or JobAdopted) _lastPersistedProgress[((IJobEvent)e).JobId] = e.At;
        else if (e is IJobEvent and not JobProgressed) _lastPersistedProgress.Remove(((IJobEvent)e).JobId);
        switch (e)
        {
            case JobAssigned a:
                // decided by TryDispatch for a registered worker, in this same message: the worker is still there
                _workers[a.WorkerId].Ref.Tell(new StartJob(_state.BuildSpec(a.JobId, _settings.ResultsRoot)));
                break;
            case JobRequeued r when previousWorker is not null && _workers.TryGetValue(previousWorker, out var holder):
                holder.Ref.Tell(new CancelJobRun(r.JobId, previousAttempt, r.Reason));
                break;
            case JobCancelled c when previousWorker is not null && _workers.TryGetValue(previousWorker, out var holder):
                holder.Ref.Tell(new CancelJobRun(c.JobId, previousAttempt, c.Reason));
                break;
            case WorkerQuarantined q:
                _log.Warning("{0}", q.Reason);
                ScheduleQuarantineEnd();
                break;
            case WorkerReleased r:
                _log.Info("{0}", r.Reason);
                ScheduleQuarantineEnd();
                break;
        }
    }

    private SweepEventView Remember(ISweepEvent e)
    {
        var view = SweepView.Describe(e);
        Remember(view);
        return view;
    }

    /// <summary>Also for a line of the sweep's history that no event stands for (a decision made when the coordinator starts).</summary>
    private void Remember(SweepEventView view)
    {
        _recent.Enqueue(view);
        while (_recent.Count > _settings.RecentEventCount) _recent.Dequeue();
    }

    private void Publish(ISweepEvent e, SweepEventView view)
    {
        var status = _state.Status;
        var job = e is IJobEvent j ? SweepView.View(_state, _state.Job(j.JobId)) : null;
        var changed = new SweepChanged(_settings.Definition.SweepId, view, job, status, e as JobProgressed);
        Context.System.EventStream.Publish(changed);
        _mediator?.Tell(new Publish(SweepTopics.Changes, changed));
        // not while the storage check after a restart may still find completed jobs whose results are gone
        if (status is SweepStatus.Completed or SweepStatus.FinishedWithFailures) { if (!_recoveryCheckPending) PublishFinishedOnce(); }
        else _finishedPublished = false;
    }

    private SweepFinished FinishedNotice() => new(_settings.Definition.SweepId, _state.Status, _state.Count(JobStatus.Completed), _state.Count(JobStatus.Failed));

    /// <summary>
    /// Announces the end once: on the node's event stream and the Finished topic (dashboards, coordinator process), and
    /// to every idle registered worker directly, because a topic subscription made just before the end may not have
    /// reached this node yet. Workers that ask for work later get the same notice as the answer (see RequestJob).
    /// </summary>
    private void PublishFinishedOnce()
    {
        if (_finishedPublished) return;
        _finishedPublished = true;
        var finished = FinishedNotice();
        _log.Info("sweep {0} finished: {1}", finished.SweepId, finished.Status);
        Context.System.EventStream.Publish(finished);
        _mediator?.Tell(new Publish(SweepTopics.Finished, finished));
        foreach (var workerId in _idle)
            if (_workers.TryGetValue(workerId, out var w)) w.Ref.Tell(finished);
    }
}
