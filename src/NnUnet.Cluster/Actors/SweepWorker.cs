using Akka.Actor;
using Akka.Event;
using NnUnet.Cluster.Backends;
using NnUnet.Cluster.Messages;
using NnUnet.Cluster.Sweeps;

namespace NnUnet.Cluster.Actors;

/// <summary>Settings of one worker actor (one per GPU, or per CPU slot).</summary>
/// <param name="WorkerId">unique in the cluster, e.g. <c>node7:4053/gpu1</c>.</param>
/// <param name="Node">the node's cluster address.</param>
/// <param name="Device">"cuda:N" or "cpu".</param>
/// <param name="Coordinator">the cluster singleton proxy of the coordinator.</param>
/// <param name="ResultsRootOverride">where this node mounts <c>nnUNet_results</c>, when not at the coordinator's path.</param>
/// <param name="StopTimeout">how long PostStop waits for a cancelled job to write its checkpoint.</param>
/// <param name="ReportResendInterval">how long an unanswered completion report waits before it is sent again (default 10 s).</param>
/// <param name="LivenessInterval">how often the worker reports what it runs and its progress (default 10 s).</param>
public sealed record WorkerSettings(
    string WorkerId,
    string Node,
    string Device,
    ITrainingBackend Backend,
    IActorRef Coordinator,
    TimeSpan RegisterRetryInterval,
    string? ResultsRootOverride = null,
    TimeSpan? StopTimeout = null,
    TimeSpan? ReportResendInterval = null,
    TimeSpan? LivenessInterval = null);

/// <summary>
/// Runs one job at a time for the coordinator. The job runs as a Task off the actor's thread (the backend's
/// <see cref="ITrainingBackend.RunAsync"/>), its end comes back as a message (PipeTo), a
/// <see cref="CancellationTokenSource"/> stops it. Every epoch is forwarded (it is also the heartbeat). The worker
/// registers through the singleton proxy, watches the coordinator it got the answer from, and registers again
/// (telling what it still runs) when that one terminates (hand-over, restart).
/// </summary>
public sealed class SweepWorker : ReceiveActor, IWithTimers
{
    private sealed record RunEnded(string JobId, int Attempt, JobOutcome? Outcome, Exception? Error, bool Cancelled) : INoSerializationVerificationNeeded;
    private sealed record EpochDone(string JobId, int Attempt, EpochMetrics Metrics) : INoSerializationVerificationNeeded;
    private sealed class RegisterTick : INoSerializationVerificationNeeded { public static readonly RegisterTick Instance = new(); }
    private sealed class ResendFinished : INoSerializationVerificationNeeded { public static readonly ResendFinished Instance = new(); }
    private sealed class LivenessTick : INoSerializationVerificationNeeded { public static readonly LivenessTick Instance = new(); }

    /// <summary>
    /// The running attempt's progress: epochs go to the actor (forwarded at once); every epoch and step moves the
    /// counter that the liveness report reads (from the job's thread, hence Interlocked/Volatile).
    /// </summary>
    private sealed class ProgressSink(IActorRef worker, string jobId, int attempt) : IJobProgressSink
    {
        private long _progress;
        private long _phaseState; // phase (8 bits, +1; 0 = none yet), done (28 bits), total (28 bits), read as one value

        public void ReportEpoch(EpochMetrics epoch)
        {
            Interlocked.Increment(ref _progress);
            worker.Tell(new EpochDone(jobId, attempt, epoch));
        }

        public void ReportStep(JobPhase phase, int done, int total)
        {
            Interlocked.Increment(ref _progress);
            Volatile.Write(ref _phaseState, ((long)((int)phase + 1) << 56) | ((long)Math.Clamp(done, 0, 0xFFFFFFF) << 28) | (uint)Math.Clamp(total, 0, 0xFFFFFFF));
        }

        public WorkerAlive Report(string workerId)
        {
            long state = Volatile.Read(ref _phaseState);
            int phase = (int)(state >> 56);
            return new WorkerAlive(workerId, jobId, attempt, phase == 0 ? null : (JobPhase)(phase - 1), Interlocked.Read(ref _progress),
                (int)((state >> 28) & 0xFFFFFFF), (int)(state & 0xFFFFFFF));
        }
    }

    private readonly WorkerSettings _settings;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private JobSpec? _current;
    private CancellationTokenSource? _cancel;
    private Task? _running;
    private ProgressSink? _sink;
    private IActorRef? _coordinator;
    // the last completion report, sent again after re-registering: it may have gone to a coordinator that was stopping
    private JobFinishedReport? _lastFinished;

    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(WorkerSettings settings) => Akka.Actor.Props.Create(() => new SweepWorker(settings));

    public SweepWorker(WorkerSettings settings)
    {
        _settings = settings;
        Registering();
    }

    protected override void PreStart()
    {
        Register();
        Timers.StartPeriodicTimer("liveness", LivenessTick.Instance, _settings.LivenessInterval ?? TimeSpan.FromSeconds(10));
    }

    private int _unansweredRegistrations;
    private int _refusedRegistrations;

    private void Register()
    {
        if (++_unansweredRegistrations % 15 == 0)
            _log.Warning("worker {0}: no coordinator has answered {1} registrations yet (is `nnunet coordinator` running and reachable from here?)",
                _settings.WorkerId, _unansweredRegistrations);
        _settings.Coordinator.Tell(new RegisterWorker(_settings.WorkerId, _settings.Node, _settings.Device, _current?.JobId, _current?.Attempt ?? 0));
        Timers.StartSingleTimer("register", RegisterTick.Instance, _settings.RegisterRetryInterval);
    }

    private void Registering()
    {
        Receive<RegisterTick>(_ => Register());
        // it keeps asking (the holder may be gone by then); said once, and again every 15th refusal
        Receive<WorkerRegistrationRefused>(r =>
        {
            if (_refusedRegistrations++ % 15 == 0) _log.Error("worker {0}: the coordinator refused its registration: {1}", _settings.WorkerId, r.Reason);
        });
        Receive<WorkerRegistered>(_ =>
        {
            Timers.Cancel("register");
            _unansweredRegistrations = 0;
            _coordinator = Sender;
            Context.Watch(Sender);
            _log.Info("worker {0} registered with {1}", _settings.WorkerId, Sender.Path);
            Become(Registered);
            if (_lastFinished is not null) _settings.Coordinator.Tell(_lastFinished);
            if (_current is null) _settings.Coordinator.Tell(new RequestJob(_settings.WorkerId));
        });
        Common();
    }

    private void Registered()
    {
        Receive<Terminated>(t =>
        {
            if (!t.ActorRef.Equals(_coordinator)) return;
            _log.Info("worker {0}: coordinator {1} terminated, registering again", _settings.WorkerId, t.ActorRef.Path);
            _coordinator = null;
            Become(Registering);
            Register();
        });
        Receive<WorkerRegistered>(_ => { });
        Receive<RegisterTick>(_ => { });
        Common();
    }

    private void Common()
    {
        Receive<StartJob>(OnStart);
        Receive<CancelJobRun>(c =>
        {
            if (_current is not null && _current.JobId == c.JobId && _current.Attempt == c.Attempt)
            {
                _log.Info("worker {0}: cancelling {1} attempt {2}: {3}", _settings.WorkerId, c.JobId, c.Attempt, c.Reason);
                _cancel?.Cancel();
            }
        });
        Receive<EpochDone>(e =>
        {
            if (_current is null || _current.JobId != e.JobId || _current.Attempt != e.Attempt) return;
            _settings.Coordinator.Tell(new JobProgressReport(_settings.WorkerId, e.JobId, e.Attempt, e.Metrics));
        });
        Receive<RunEnded>(OnRunEnded);
        // busy or idle: the coordinator reconciles what it believes this worker runs with what it does run
        Receive<LivenessTick>(_ => _settings.Coordinator.Tell(_current is not null && _sink is not null
            ? _sink.Report(_settings.WorkerId)
            : new WorkerAlive(_settings.WorkerId, null, 0, null, 0, 0, 0)));
        Receive<ResendFinished>(_ =>
        {
            // no ack yet: the report (or its ack) was lost; idle, it still asks for the next job
            if (_lastFinished is not null) _settings.Coordinator.Tell(_lastFinished with { RequestsNextJob = _current is null });
        });
        Receive<JobFinishedAck>(a =>
        {
            if (_lastFinished is { } f && f.JobId == a.JobId && f.Attempt == a.Attempt) Timers.Cancel("resend-finished");
        });
        // the coordinator's direct answer when nothing is left to run: handed to this node's finish watcher
        // (NnUnetClusterHost.WhenSweepFinishedOnWorkerNode), which does not depend on the topic's gossip
        Receive<SweepFinished>(f => Context.System.EventStream.Publish(f));
    }

    private void OnStart(StartJob start)
    {
        // a StartJob answers the last completion report (the coordinator sends it after handling that report)
        Timers.Cancel("resend-finished");
        var spec = start.Spec;
        if (_current is not null)
        {
            if (_current.JobId == spec.JobId && _current.Attempt == spec.Attempt) return;
            Sender.Tell(new JobRejected(_settings.WorkerId, spec.JobId, spec.Attempt, $"busy with {_current.JobId} attempt {_current.Attempt}"));
            return;
        }
        if (_settings.ResultsRootOverride is { } root) spec = spec with { ResultsRoot = root };
        _current = start.Spec;
        _lastFinished = null;
        _cancel = new CancellationTokenSource();
        var sink = _sink = new ProgressSink(Self, spec.JobId, spec.Attempt);
        var backend = _settings.Backend;
        var token = _cancel.Token;
        _log.Info("worker {0}: starting {1} attempt {2}{3}", _settings.WorkerId, spec.JobId, spec.Attempt, spec.ContinueFromCheckpoint ? " (continue from checkpoint)" : "");
        // Task.Run: the backend may block its thread for minutes (a training epoch); never on the actor's thread
        // the fold's manifest (inputs hashed, attempt start and end) is written on the job's task too
        var (workerId, node, device, log) = (_settings.WorkerId, _settings.Node, _settings.Device, _log);
        var task = Task.Run(() => FoldManifestRecorder.RunAsync(spec, workerId, node, device, backend, () => backend.RunAsync(spec, sink, token),
            warning => log.Warning("worker {0}: {1}: {2}", workerId, spec.JobId, warning)), token);
        _running = task;
        task.ContinueWith(t => t.IsCompletedSuccessfully
                ? new RunEnded(spec.JobId, spec.Attempt, t.Result, null, false)
                : new RunEnded(spec.JobId, spec.Attempt, null, t.Exception?.GetBaseException(),
                    t.IsCanceled || t.Exception?.GetBaseException() is OperationCanceledException),
            TaskContinuationOptions.ExecuteSynchronously).PipeTo(Self);
    }

    private void OnRunEnded(RunEnded ended)
    {
        if (_current is null || _current.JobId != ended.JobId || _current.Attempt != ended.Attempt) return;
        _current = null;
        _sink = null;
        _cancel?.Dispose();
        _cancel = null;
        _running = null;
        if (ended.Outcome is { } outcome)
        {
            _lastFinished = new JobFinishedReport(_settings.WorkerId, ended.JobId, ended.Attempt, outcome.SummaryPath, outcome.Metrics);
            _settings.Coordinator.Tell(_lastFinished with { RequestsNextJob = true });
            Timers.StartPeriodicTimer("resend-finished", ResendFinished.Instance, _settings.ReportResendInterval ?? TimeSpan.FromSeconds(10));
            return;
        }
        if (!ended.Cancelled)
        {
            _log.Warning("worker {0}: {1} attempt {2} failed: {3}", _settings.WorkerId, ended.JobId, ended.Attempt, ended.Error?.Message);
            _settings.Coordinator.Tell(new JobFailedReport(_settings.WorkerId, ended.JobId, ended.Attempt, ended.Error?.Message ?? "unknown error"));
        }
        _settings.Coordinator.Tell(new RequestJob(_settings.WorkerId));
    }

    /// <summary>On shutdown (Ctrl-C, node leaving) the job is cancelled and given time to write its checkpoint.</summary>
    protected override void PostStop()
    {
        if (_cancel is not null && _running is not null)
        {
            _cancel.Cancel();
            try { _running.Wait(_settings.StopTimeout ?? TimeSpan.FromSeconds(60)); }
            catch (AggregateException) { }
        }
    }
}
