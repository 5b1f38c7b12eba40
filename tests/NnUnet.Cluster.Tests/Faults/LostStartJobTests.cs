using Akka.Actor;
using NnUnet.Cluster.Messages;
using NnUnet.Cluster.Sweeps;

namespace NnUnet.Cluster.Tests.Faults;

/// <summary>
/// A StartJob lost on the way (remoting is at-most-once): the coordinator believes the worker runs the job, the worker
/// idles. Its next liveness report names no job, and the coordinator re-queues the job at once instead of waiting for
/// the heartbeat lease (30 min here).
/// </summary>
public sealed class LostStartJobTests
{
    /// <summary>
    /// Stands between a worker and the coordinator in both directions: the coordinator sees it as the worker (it
    /// registers it), so that it can drop the first StartJob on its way to the worker.
    /// </summary>
    private sealed class DropFirstStartJob(IActorRef coordinator, List<(string JobId, DateTime At)> dropped) : UntypedActor
    {
        private IActorRef? _worker;

        protected override void OnReceive(object message)
        {
            if (message is RegisterWorker) _worker ??= Sender;
            if (Sender.Equals(_worker))
            {
                coordinator.Tell(message, Self);
                return;
            }
            if (message is StartJob start && dropped.Count == 0)
            {
                lock (dropped) dropped.Add((start.Spec.JobId, DateTime.UtcNow));
                return;
            }
            _worker?.Forward(message);
        }
    }

    [Fact]
    public async Task ADroppedStartJob_IsRequeuedWithinSeconds_NotAfterTheLease_AndTheSweepCompletes()
    {
        using var cluster = new LocalCluster();
        var definition = LocalCluster.Definition(["2d"], [0, 1], 2);
        var coordinator = cluster.StartCoordinator(definition);
        var dropped = new List<(string JobId, DateTime At)>();
        cluster.StartWorkerThrough(LocalCluster.AddressOf(coordinator), proxy => Props.Create(() => new DropFirstStartJob(proxy, dropped)),
            settings => settings with { LivenessInterval = TimeSpan.FromMilliseconds(500) });

        var snapshot = await LocalCluster.WaitFinished(coordinator, TimeSpan.FromSeconds(60));

        Assert.Equal(SweepStatus.Completed, snapshot.Status);
        var (jobId, droppedAt) = Assert.Single(dropped);
        var requeued = Assert.Single(snapshot.RecentEvents, e => e.Kind == "requeued");
        Assert.Equal(jobId, requeued.JobId);
        Assert.Contains("its StartJob was lost", requeued.Text);
        // start-job-transit (5 s) + one liveness interval (0.5 s), with room for a busy machine; the lease is 30 min
        Assert.InRange((requeued.At - droppedAt).TotalSeconds, 4.5, 15);
        var job = snapshot.Jobs.Single(j => j.JobId == jobId);
        Assert.Equal((2, 1), (job.Attempt, job.Requeues));
        foreach (var j in snapshot.Jobs) Assert.Equal(1, cluster.Log.CompletedRuns(j.JobId));
    }

    /// <summary>
    /// Between a worker and the coordinator: holds the first StartJob for <paramref name="delay"/> (a link that stalls
    /// without dropping), and records the worker's rejections on their way to the coordinator.
    /// </summary>
    private sealed class DelayFirstStartJob(IActorRef coordinator, TimeSpan delay, TaskCompletionSource<JobSpec> held, List<JobRejected> rejections) : UntypedActor
    {
        private IActorRef? _worker;

        protected override void OnReceive(object message)
        {
            if (message is RegisterWorker) _worker ??= Sender;
            if (Sender.Equals(_worker))
            {
                if (message is JobRejected rejected) lock (rejections) rejections.Add(rejected);
                coordinator.Tell(message, Self);
                return;
            }
            if (message is StartJob start && held.TrySetResult(start.Spec))
            {
                Context.System.Scheduler.ScheduleTellOnce(delay, _worker, message, Self);
                return;
            }
            _worker?.Forward(message);
        }
    }

    /// <summary>
    /// The case a lost StartJob's re-queue leaves open: the StartJob was only late. It arrives after start-job-transit,
    /// once the job runs again on another worker, and the late worker starts the old attempt beside its replacement
    /// (the next liveness report would cancel it). The fence closes it: the old attempt finds a newer one holding the
    /// fold, stops before writing anything and says so; the job is not failed and completes once, by its replacement.
    /// </summary>
    [Fact]
    public async Task AStartJobDeliveredAfterItsReplacementStarted_RunsNothing_TheFenceStopsIt_AndTheReplacementFinishes()
    {
        using var cluster = new LocalCluster();
        var definition = LocalCluster.Definition(["2d"], [0], 60);
        var coordinator = cluster.StartCoordinator(definition);
        var seed = LocalCluster.AddressOf(coordinator);
        var held = new TaskCompletionSource<JobSpec>(TaskCreationOptions.RunContinuationsAsynchronously);
        var rejections = new List<JobRejected>();
        cluster.StartWorkerThrough(seed, proxy => Props.Create(() => new DelayFirstStartJob(proxy, TimeSpan.FromSeconds(9), held, rejections)),
            settings => settings with { LivenessInterval = TimeSpan.FromMilliseconds(500) });
        var late = await held.Task.WaitAsync(TimeSpan.FromSeconds(60));
        // the replacement's worker: 60 epochs of 100 ms, still training when the late StartJob arrives
        cluster.StartWorker(seed, 1, cluster.Backend(TimeSpan.FromMilliseconds(100)));
        await LocalCluster.WaitUntil(coordinator, s => s.Workers.Length == 2, TimeSpan.FromSeconds(5), "the second worker did not register before the re-queue");

        var snapshot = await LocalCluster.WaitFinished(coordinator, TimeSpan.FromSeconds(90));

        Assert.Equal(SweepStatus.Completed, snapshot.Status);
        var fold = snapshot.Jobs.Single(j => j.JobId == late.JobId);
        Assert.Equal((1, 2, 1, 0), (late.Attempt, fold.Attempt, fold.Requeues, fold.Failures));
        var rejected = Assert.Single(rejections, r => r.JobId == late.JobId);
        Assert.Equal(1, rejected.Attempt);
        Assert.Contains("attempt 1 on", rejected.Reason);
        Assert.Contains("was superseded by attempt 2 on", rejected.Reason);
        // the old attempt never ran: no backend run, no line in the fold's log; the replacement's files are whole
        Assert.DoesNotContain(cluster.Log.Runs, r => r.JobId == late.JobId && r.Attempt == 1);
        Assert.Equal(1, cluster.Log.CompletedRuns(late.JobId));
        var foldFolder = Backends.JobOutputs.FoldFolder(late);
        Assert.DoesNotMatch(@"\battempt 1\b", File.ReadAllText(Core.Results.ResultLayout.TrainingLog(foldFolder)));
        Assert.Equal(2, Core.IO.WriteFence.Read(Backends.JobOutputs.FencePath(late))!.Attempt);
        Assert.Null(Backends.JobOutputs.MissingOutputs(late));
    }
}
