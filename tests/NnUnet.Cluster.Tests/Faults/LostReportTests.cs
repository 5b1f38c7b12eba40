using Akka.Actor;
using NnUnet.Cluster.Messages;
using NnUnet.Cluster.Sweeps;

namespace NnUnet.Cluster.Tests.Faults;

/// <summary>
/// Remoting is at-most-once: a link that drops and heals before any node is removed loses what was in flight, and
/// nobody re-registers. A lost completion report must not leave the worker idle and the job "running" until the
/// heartbeat lease (30 min) ends: the worker sends it again until the coordinator acknowledges it.
/// </summary>
public sealed class LostReportTests
{
    /// <summary>Stands between a worker and the coordinator's proxy, and drops the first completion report it sees.</summary>
    private sealed class DropFirstCompletion(IActorRef coordinator, List<string> dropped) : UntypedActor
    {
        protected override void OnReceive(object message)
        {
            if (message is JobFinishedReport report && dropped.Count == 0)
            {
                dropped.Add(report.JobId);
                return;
            }
            coordinator.Forward(message);
        }
    }

    [Fact]
    public async Task LostCompletionReport_IsSentAgain_TheSweepGoesOnWithoutTheLease_EachJobOnce()
    {
        using var cluster = new LocalCluster();
        var definition = LocalCluster.Definition(["2d"], [0, 1, 2], 2);
        var coordinator = cluster.StartCoordinator(definition);
        var dropped = new List<string>();
        cluster.StartWorkerThrough(LocalCluster.AddressOf(coordinator), proxy => Props.Create(() => new DropFirstCompletion(proxy, dropped)),
            settings => settings with { ReportResendInterval = TimeSpan.FromMilliseconds(500) });

        // the heartbeat lease is 30 min here: only the worker's resend can finish the sweep in time
        var snapshot = await LocalCluster.WaitFinished(coordinator, TimeSpan.FromSeconds(60));

        Assert.Equal(SweepStatus.Completed, snapshot.Status);
        Assert.Single(dropped);
        foreach (var job in snapshot.Jobs)
        {
            Assert.Equal(1, cluster.Log.CompletedRuns(job.JobId));
            Assert.Equal(1, job.Attempt); // accepted from the resent report, not re-run after a lease
        }
    }
}
