using Akka.Actor;
using NnUnet.Cluster.Backends;
using NnUnet.Cluster.Messages;
using NnUnet.Cluster.Sweeps;

namespace NnUnet.Cluster.Actors;

/// <summary>
/// The attempt one worker slot (a GPU, a CPU slot) runs, kept apart from the worker actor so that it can outlive the
/// actor's cluster node. When the coordinator crashes, the split-brain resolver removes the worker nodes (they are on
/// the side without the oldest coordinator); `nnunet worker` then starts a new node, whose worker actor re-attaches
/// to the attempt still running here and registers with it, and the restarted coordinator adopts it: the training
/// goes on through the outage, no epoch is trained twice. A completion report the coordinator has not acknowledged is
/// kept here too, so the new node sends it again.
/// A runner made by the worker actor itself (<see cref="OutlivesWorker"/> false: embedded sweep, tests) stops its
/// attempt with the actor, as before.
/// </summary>
public sealed class JobRunner(bool outlivesWorker)
{
    /// <summary>One attempt: its spec, how to stop it, its task and its progress.</summary>
    public sealed record Attempt(JobSpec Spec, CancellationTokenSource Cancel, Task<JobOutcome> Task, AttemptProgress Progress);

    private readonly object _gate = new();
    private Attempt? _current;
    private JobFinishedReport? _unacknowledged;

    /// <summary>True when the attempt keeps running after its worker actor stopped (its owner stops it).</summary>
    public bool OutlivesWorker { get; } = outlivesWorker;

    public Attempt? Current { get { lock (_gate) return _current; } }

    private DateTime _idleSince = DateTime.UtcNow;

    /// <summary>Since when this slot has had nothing to run; null while an attempt runs.</summary>
    public DateTime? IdleSince { get { lock (_gate) return _current is null ? _idleSince : null; } }

    /// <summary>Completes once every runner has had nothing to run for <paramref name="idle"/> (checked every second).</summary>
    public static async Task WhenAllIdleFor(IReadOnlyList<JobRunner> runners, TimeSpan idle, CancellationToken ct)
    {
        var interval = TimeSpan.FromMilliseconds(Math.Clamp(idle.TotalMilliseconds / 4, 100, 1000));
        while (true)
        {
            await Task.Delay(interval, ct);
            var now = DateTime.UtcNow;
            bool allIdle = true;
            foreach (var runner in runners)
                if (runner.IdleSince is not { } since || now - since < idle) allIdle = false;
            if (allIdle) return;
        }
    }

    /// <summary>The last completion report, until the coordinator answered it.</summary>
    public JobFinishedReport? Unacknowledged
    {
        get { lock (_gate) return _unacknowledged; }
        set { lock (_gate) _unacknowledged = value; }
    }

    /// <summary>Starts <paramref name="run"/> on the thread pool (a training blocks its thread for minutes, never the actor's).</summary>
    public Attempt Start(JobSpec spec, IActorRef worker, Func<IJobProgressSink, CancellationToken, Task<JobOutcome>> run)
    {
        lock (_gate)
        {
            if (_current is not null) throw new InvalidOperationException($"already running {_current.Spec.JobId} attempt {_current.Spec.Attempt}");
            var cancel = new CancellationTokenSource();
            var progress = new AttemptProgress(worker, spec.JobId, spec.Attempt);
            var token = cancel.Token;
            var task = Task.Run(() => run(progress, token), token);
            return _current = new Attempt(spec, cancel, task, progress);
        }
    }

    /// <summary>Forgets the attempt once its end was handled.</summary>
    public void Ended(Attempt attempt)
    {
        lock (_gate)
        {
            if (!ReferenceEquals(_current, attempt)) return;
            _current = null;
            _idleSince = DateTime.UtcNow;
        }
        attempt.Cancel.Dispose();
    }

    /// <summary>Cancels the running attempt and waits up to <paramref name="timeout"/> for it to write its checkpoint.</summary>
    public void Stop(TimeSpan timeout)
    {
        var attempt = Current;
        if (attempt is null) return;
        try { attempt.Cancel.Cancel(); } catch (ObjectDisposedException) { return; }
        try { attempt.Task.Wait(timeout); }
        catch (AggregateException) { }
    }
}

/// <summary>
/// A running attempt's progress: epochs go to the worker actor it is attached to (forwarded at once); every epoch and
/// step moves the counter that the liveness report reads (from the job's thread, hence Interlocked/Volatile). A new
/// worker actor (on a new node) re-attaches with <see cref="AttachTo"/>; epochs in between go to dead letters, the
/// counter keeps moving.
/// </summary>
public sealed class AttemptProgress(IActorRef worker, string jobId, int attempt) : IJobProgressSink
{
    /// <summary>An epoch of the attempt, for the worker actor to forward.</summary>
    public sealed record EpochDone(string JobId, int Attempt, EpochMetrics Metrics) : INoSerializationVerificationNeeded;

    private IActorRef _worker = worker;
    private long _progress;
    private long _phaseState; // phase (8 bits, +1; 0 = none yet), done (28 bits), total (28 bits), read as one value

    public void AttachTo(IActorRef worker) => Volatile.Write(ref _worker, worker);

    public void ReportEpoch(EpochMetrics epoch)
    {
        Interlocked.Increment(ref _progress);
        Volatile.Read(ref _worker).Tell(new EpochDone(jobId, attempt, epoch));
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
