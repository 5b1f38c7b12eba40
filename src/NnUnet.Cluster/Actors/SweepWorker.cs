using Akka.Actor;
using Akka.Event;
using NnUnet.Cluster.Backends;
using NnUnet.Cluster.Messages;
using NnUnet.Cluster.Sweeps;
using NnUnet.Core.IO;

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
/// <param name="Runner">the slot's attempt, when it is to outlive this actor's node (`nnunet worker`); null: the actor's own.</param>
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
    TimeSpan? LivenessInterval = null,
    JobRunner? Runner = null);

/// <summary>
/// Runs one job at a time for the coordinator. The job runs as a Task off the actor's thread (the backend's
/// <see cref="ITrainingBackend.RunAsync"/>), its end comes back as a message (PipeTo), a
/// <see cref="CancellationTokenSource"/> stops it. Every epoch is forwarded (it is also the heartbeat). The worker
/// registers through the singleton proxy, watches the coordinator it got the answer from, and registers again
/// (telling what it still runs) when that one terminates (hand-over, restart). Each attempt runs under its job's fence
/// (<see cref="FencedAttempt"/>): an attempt a newer one has superseded stops at its next write and is reported as a
/// <see cref="JobRejected"/> naming the newer attempt, not as a failure.
/// </summary>
public sealed class SweepWorker : ReceiveActor, IWithTimers
{
    private sealed record RunEnded(string JobId, int Attempt, JobOutcome? Outcome, Exception? Error, bool Cancelled) : INoSerializationVerificationNeeded;
    private sealed class RegisterTick : INoSerializationVerificationNeeded { public static readonly RegisterTick Instance = new(); }
    private sealed class ResendFinished : INoSerializationVerificationNeeded { public static readonly ResendFinished Instance = new(); }
    private sealed class LivenessTick : INoSerializationVerificationNeeded { public static readonly LivenessTick Instance = new(); }

    private readonly WorkerSettings _settings;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly JobRunner _runner;
    private IActorRef? _coordinator;

    /// <summary>The attempt running now (its spec as started here), or null.</summary>
    private JobSpec? CurrentSpec => _runner.Current?.Spec;

    // the last completion report, sent again after re-registering: it may have gone to a coordinator that was stopping
    private JobFinishedReport? LastFinished
    {
        get => _runner.Unacknowledged;
        set => _runner.Unacknowledged = value;
    }

    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(WorkerSettings settings) => Akka.Actor.Props.Create(() => new SweepWorker(settings));

    public SweepWorker(WorkerSettings settings)
    {
        _settings = settings;
        _runner = settings.Runner ?? new JobRunner(outlivesWorker: false);
        Registering();
    }

    protected override void PreStart()
    {
        // a new node of this worker process: the attempt of the removed node still runs; report to this actor now
        if (_runner.Current is { } running)
        {
            _log.Info("worker {0}: re-attached to {1} attempt {2}, still running from before this node", _settings.WorkerId,
                running.Spec.JobId, running.Spec.Attempt);
            running.Progress.AttachTo(Self);
            PipeEndToSelf(running);
        }
        Register();
        Timers.StartPeriodicTimer("liveness", LivenessTick.Instance, _settings.LivenessInterval ?? TimeSpan.FromSeconds(10));
    }

    private int _unansweredRegistrations;

    private void Register()
    {
        if (++_unansweredRegistrations % 15 == 0)
            _log.Warning("worker {0}: no coordinator has answered {1} registrations yet (is `nnunet coordinator` running and reachable from here?)",
                _settings.WorkerId, _unansweredRegistrations);
        _settings.Coordinator.Tell(new RegisterWorker(_settings.WorkerId, _settings.Node, _settings.Device, CurrentSpec?.JobId, CurrentSpec?.Attempt ?? 0));
        Timers.StartSingleTimer("register", RegisterTick.Instance, _settings.RegisterRetryInterval);
    }

    private void Registering()
    {
        Receive<RegisterTick>(_ => Register());
        Receive<WorkerRegistered>(_ =>
        {
            Timers.Cancel("register");
            _unansweredRegistrations = 0;
            _coordinator = Sender;
            Context.Watch(Sender);
            _log.Info("worker {0} registered with {1}", _settings.WorkerId, Sender.Path);
            Become(Registered);
            if (LastFinished is not null) _settings.Coordinator.Tell(LastFinished);
            if (CurrentSpec is null) _settings.Coordinator.Tell(new RequestJob(_settings.WorkerId));
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
            if (CurrentSpec is not null && CurrentSpec.JobId == c.JobId && CurrentSpec.Attempt == c.Attempt)
            {
                _log.Info("worker {0}: cancelling {1} attempt {2}: {3}", _settings.WorkerId, c.JobId, c.Attempt, c.Reason);
                _runner.Current?.Cancel.Cancel();
            }
        });
        Receive<AttemptProgress.EpochDone>(e =>
        {
            if (CurrentSpec is null || CurrentSpec.JobId != e.JobId || CurrentSpec.Attempt != e.Attempt) return;
            _settings.Coordinator.Tell(new JobProgressReport(_settings.WorkerId, e.JobId, e.Attempt, e.Metrics));
        });
        Receive<RunEnded>(OnRunEnded);
        // busy or idle: the coordinator reconciles what it believes this worker runs with what it does run
        Receive<LivenessTick>(_ => _settings.Coordinator.Tell(_runner.Current is { } running
            ? running.Progress.Report(_settings.WorkerId)
            : new WorkerAlive(_settings.WorkerId, null, 0, null, 0, 0, 0)));
        Receive<ResendFinished>(_ =>
        {
            // no ack yet: the report (or its ack) was lost; idle, it still asks for the next job
            if (LastFinished is not null) _settings.Coordinator.Tell(LastFinished with { RequestsNextJob = CurrentSpec is null });
        });
        Receive<JobFinishedAck>(a =>
        {
            if (LastFinished is { } f && f.JobId == a.JobId && f.Attempt == a.Attempt) Timers.Cancel("resend-finished");
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
        if (CurrentSpec is not null)
        {
            if (CurrentSpec.JobId == spec.JobId && CurrentSpec.Attempt == spec.Attempt) return;
            Sender.Tell(new JobRejected(_settings.WorkerId, spec.JobId, spec.Attempt, $"busy with {CurrentSpec.JobId} attempt {CurrentSpec.Attempt}"));
            return;
        }
        if (_settings.ResultsRootOverride is { } root) spec = spec with { ResultsRoot = root };
        LastFinished = null;
        var backend = _settings.Backend;
        _log.Info("worker {0}: starting {1} attempt {2}{3}", _settings.WorkerId, spec.JobId, spec.Attempt, spec.ContinueFromCheckpoint ? " (continue from checkpoint)" : "");
        // the fold's manifest (inputs hashed, attempt start and end) is written on the job's task too
        var (workerId, node, device, log) = (_settings.WorkerId, _settings.Node, _settings.Device, _log);
        // the attempt takes its folder's fence first: a newer attempt's fence refuses it, and every write checks it
        var running = _runner.Start(spec, Self, (sink, token) => FencedAttempt.RunAsync(spec, workerId, () => FoldManifestRecorder.RunAsync(spec,
            workerId, node, device, backend, () => backend.RunAsync(spec, sink, token), warning => log.Warning("worker {0}: {1}: {2}", workerId, spec.JobId, warning))));
        PipeEndToSelf(running);
    }

    private void PipeEndToSelf(JobRunner.Attempt running)
    {
        var spec = running.Spec;
        running.Task.ContinueWith(t =>
            {
                if (t.IsCompletedSuccessfully) return new RunEnded(spec.JobId, spec.Attempt, t.Result, null, false);
                var error = ErrorOf(t);
                return new RunEnded(spec.JobId, spec.Attempt, null, error, error is OperationCanceledException);
            },
            TaskContinuationOptions.ExecuteSynchronously).PipeTo(Self);
    }

    /// <summary>The exception a failed or cancelled task ended with (a cancelled one keeps its own, e.g. <see cref="AttemptSupersededException"/>).</summary>
    private static Exception ErrorOf(Task task)
    {
        try
        {
            task.GetAwaiter().GetResult();
            return new InvalidOperationException("the job's task ended without a result");
        }
        catch (Exception e)
        {
            return e;
        }
    }

    private void OnRunEnded(RunEnded ended)
    {
        if (_runner.Current is not { } running || running.Spec.JobId != ended.JobId || running.Spec.Attempt != ended.Attempt) return;
        _runner.Ended(running);
        if (ended.Outcome is { } outcome)
        {
            LastFinished = new JobFinishedReport(_settings.WorkerId, ended.JobId, ended.Attempt, outcome.SummaryPath, outcome.Metrics);
            _settings.Coordinator.Tell(LastFinished with { RequestsNextJob = true });
            Timers.StartPeriodicTimer("resend-finished", ResendFinished.Instance, _settings.ReportResendInterval ?? TimeSpan.FromSeconds(10));
            return;
        }
        if (ended.Error is AttemptSupersededException superseded)
        {
            // not a failure of the job: a newer attempt owns its folder (this one was given up for lost, or its StartJob
            // came late); said to the coordinator, which re-queues the job only if this is still its current attempt
            _log.Warning("worker {0}: {1}", _settings.WorkerId, superseded.Message);
            _settings.Coordinator.Tell(new JobRejected(_settings.WorkerId, ended.JobId, ended.Attempt, superseded.Message));
        }
        else if (!ended.Cancelled)
        {
            _log.Warning("worker {0}: {1} attempt {2} failed: {3}", _settings.WorkerId, ended.JobId, ended.Attempt, ended.Error?.Message);
            _settings.Coordinator.Tell(new JobFailedReport(_settings.WorkerId, ended.JobId, ended.Attempt, ended.Error?.Message ?? "unknown error"));
        }
        _settings.Coordinator.Tell(new RequestJob(_settings.WorkerId));
    }

    /// <summary>
    /// On shutdown (Ctrl-C, node leaving) the job is cancelled and given time to write its checkpoint, unless the
    /// runner outlives this actor (`nnunet worker`: a new node re-attaches; the process stops the runner on exit).
    /// </summary>
    protected override void PostStop()
    {
        if (!_runner.OutlivesWorker) _runner.Stop(_settings.StopTimeout ?? TimeSpan.FromSeconds(60));
    }
}
