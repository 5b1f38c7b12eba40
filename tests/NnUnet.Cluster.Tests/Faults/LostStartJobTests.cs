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
}
