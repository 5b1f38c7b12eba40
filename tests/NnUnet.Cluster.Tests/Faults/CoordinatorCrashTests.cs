namespace NnUnet.Cluster.Tests.Faults;

/// <summary>
/// SIGKILL of the `nnunet coordinator` process mid-training, and the same command again 60 s later (issue 13): the
/// running folds train on through the outage (the worker nodes are removed, their jobs are not), the workers' new nodes
/// rejoin by themselves and keep their attempts, and the sweep finishes with nothing trained twice. Each node on its
/// own loopback address (coordinator 127.0.0.2, workers 127.0.0.3 and .4). Measured on the way: the time from the
/// restart to every worker re-registered.
/// </summary>
[Collection(ProcessTests.Collection)]
public sealed class CoordinatorCrashTests : IDisposable
{
    private static readonly TimeSpan Outage = TimeSpan.FromSeconds(60);
    // adoption-grace as shipped (the fast test settings have 2 s)
    private readonly ProcessCluster _cluster = new(ProcessCluster.Shipped("nnunet.cluster.adoption-grace")) { CoordinatorHost = "127.0.0.2" };
    public void Dispose() => _cluster.Dispose();

    [Fact]
    public async Task SigkilledCoordinator_RestartedAMinuteLater_RunningFoldsTrainedThrough_WorkersKeepTheirAttempts_NothingTrainedTwice()
    {
        string[] sweep = ["-c", "2d", "--folds", "0,1", "--epochs", "90"];
        string[] trainJobs = ["2d/fold_0", "2d/fold_1"];
        var first = _cluster.Coordinator(sweep);
        var workers = new[] { _cluster.Worker(1000, "--host", "127.0.0.3"), _cluster.Worker(1000, "--host", "127.0.0.4") };

        await Eventually.Until(() => trainJobs.All(j => _cluster.Epochs(j).Length >= 2), TimeSpan.FromSeconds(60),
            () => "the folds did not start:\n" + first.Text + string.Join("\n", workers.Select(w => w.Text)));
        first.Sigkill();
        Assert.True(first.Process.WaitForExit(TimeSpan.FromSeconds(5)));
        var epochsAtCrash = trainJobs.Select(j => _cluster.Epochs(j).Length).ToArray();

        await Task.Delay(Outage);
        var epochsAtRestart = trainJobs.Select(j => _cluster.Epochs(j).Length).ToArray();
        // the folds trained during the outage (about one epoch a second), on nodes that were removed from the cluster
        for (int i = 0; i < trainJobs.Length; i++)
            Assert.True(epochsAtRestart[i] >= epochsAtCrash[i] + 30, $"{trainJobs[i]}: epoch {epochsAtCrash[i]} at the crash, {epochsAtRestart[i]} a minute later");
        Assert.All(workers, w => Assert.Contains("keeps running", w.Text));

        // the same command again: recovers the sweep from nnUNet_results/DATASET/sweeps.db; the workers were not restarted
        var second = await _cluster.RestartCoordinator(sweep, workers, TimeSpan.FromSeconds(60),
            "after a 60 s outage (SIGKILL); 2 workers; join retries and adoption-grace as shipped; the new process's start-up included");
        // each worker's new node re-attached to its running attempt
        _cluster.AssertFoldsKeptTheirFirstAttempt(second, workers, trainJobs, 90);
    }

    /// <summary>
    /// Restarted at once, the coordinator forms a new cluster while the workers' nodes still count the dead one as an
    /// unreachable member of theirs. Their split-brain resolver is set beyond the test here (stable-after 120 s), so
    /// only <c>CoordinatorIncarnationWatch</c> can bring them back: it meets the new coordinator process at the same
    /// address and downs its node, and the worker process rejoins with a fresh one and keeps its fold.
    /// </summary>
    [Fact]
    public async Task CoordinatorRestartedAtOnce_WorkersMeetTheNewProcess_AndRejoinBeforeTheirResolverActs_KeepingTheirFolds()
    {
        using var cluster = new ProcessCluster(ProcessCluster.Shipped("nnunet.cluster.adoption-grace") + "\nakka.cluster.split-brain-resolver.stable-after = 120s")
            { CoordinatorHost = "127.0.0.2" };
        string[] sweep = ["-c", "2d", "--folds", "0,1", "--epochs", "60"];
        string[] trainJobs = ["2d/fold_0", "2d/fold_1"];
        var first = cluster.Coordinator(sweep);
        var workers = new[] { cluster.Worker(500, "--host", "127.0.0.3"), cluster.Worker(500, "--host", "127.0.0.4") };
        await Eventually.Until(() => trainJobs.All(j => cluster.Epochs(j).Length >= 2), TimeSpan.FromSeconds(60),
            () => "the folds did not start:\n" + first.Text + string.Join("\n", workers.Select(w => w.Text)));
        first.Sigkill();
        Assert.True(first.Process.WaitForExit(TimeSpan.FromSeconds(5)));

        var second = await cluster.RestartCoordinator(sweep, workers, TimeSpan.FromSeconds(60),
            "restarted at once after the SIGKILL; 2 workers, clean loopback links; their old nodes left by the incarnation watch (resolver set beyond the test)");
        // their old nodes were left because they met the new process, not by their resolver
        Assert.All(workers, w => Assert.Contains("was restarted", w.Text));
        cluster.AssertFoldsKeptTheirFirstAttempt(second, workers, trainJobs, 60);
    }
}
