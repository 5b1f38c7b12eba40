namespace NnUnet.Cluster.Tests;

/// <summary>
/// Idle GPUs on an allocation (issue 13): the coordinator says which workers idle and what the remaining jobs wait
/// for, and `nnunet worker --release-idle-after` leaves the cluster and exits 0 when it had nothing to run that long.
/// </summary>
[Collection(ProcessTests.Collection)]
public sealed class IdleWorkerProcessTests : IDisposable
{
    private readonly Faults.ProcessCluster _cluster = new();
    public void Dispose() => _cluster.Dispose();

    [Fact]
    public async Task WorkerWithNothingToRun_IsReportedIdleWithTheReason_AndReleasesItselfAfterTheGivenTime()
    {
        var coordinator = _cluster.Coordinator("-c", "2d", "--folds", "0", "--epochs", "40");
        var busy = _cluster.Worker(500);
        await Eventually.Until(() => busy.Text.Contains("starting 2d/fold_0 attempt 1"), TimeSpan.FromSeconds(60),
            () => "the first worker never started the fold:\n" + coordinator.Text + busy.Text);

        // the only fold runs elsewhere and the selection waits for it: nothing for this one
        var idle = _cluster.Worker(500, "--release-idle-after", "3");
        Faults.ProcessCluster.AssertExits(idle, 0, TimeSpan.FromSeconds(30), "the idle worker");
        Assert.Contains("no job for 3 s on this node's 1 worker(s): leaving the cluster to free its devices", idle.Text);
        Assert.DoesNotContain("starting ", idle.Text);
        Assert.False(coordinator.Process.HasExited, "the sweep ended before the idle worker left:\n" + coordinator.Text);
        Assert.Matches(@"idle: 1 of 2 worker\(s\) idle \(\S+/cpu\): select waits for 2d/fold_0", coordinator.Text);

        Faults.ProcessCluster.AssertExits(coordinator, 0, TimeSpan.FromSeconds(60), "coordinator");
        Faults.ProcessCluster.AssertExits(busy, 0, TimeSpan.FromSeconds(20), "busy worker");
        _cluster.AssertEachFoldTrainedOnce(["2d/fold_0"]);
    }

    [Fact]
    public void ReleaseIdleAfter_Zero_IsRefused()
    {
        var worker = _cluster.Start("worker", "--seed", _cluster.Seed, "--simulate", "--release-idle-after", "0");
        Faults.ProcessCluster.AssertExits(worker, 2, TimeSpan.FromSeconds(30), "worker");
        Assert.Contains("--release-idle-after 0: give a number of seconds above 0", worker.Text);
    }
}
