using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;

namespace NnUnet.Cluster.Tests.Faults;

/// <summary>
/// A worker cut off by the kernel (issue 13): real `nnunet` processes, the coordinator on 127.0.0.2, the victim worker
/// on 127.0.0.3 under its own Unix user, two healthy workers on 127.0.0.4 and 127.0.0.5; every packet to and from the
/// victim dropped by iptables past the failure detector (as shipped), then the link healed. Asserted on disk: every
/// fold's outputs once, no file of the newer attempt overwritten by the older one, no epoch trained twice. Measured on
/// the way: the time from the cut to the fold running elsewhere.
/// </summary>
[Collection(ProcessTests.Collection)]
public sealed class KernelPartitionTests : IDisposable
{
    private readonly ProcessCluster _cluster = new(ProcessCluster.ShippedFailureDetection()) { SharedWithOtherUser = true, CoordinatorHost = "127.0.0.2" };
    private readonly KernelNetwork _network = new();

    public void Dispose()
    {
        _network.Dispose();
        _cluster.Dispose();
    }

    [Fact]
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    public async Task WorkerCutOffByTheKernel_IsRemoved_ItsFoldContinuesElsewhere_TheHealedNodeRejoins_NothingTrainedTwice()
    {
        string[] folds = ["2d/fold_0", "2d/fold_1"];
        const int epochs = 600;
        var coordinator = _cluster.Coordinator("-c", "2d", "--folds", "0,1", "--epochs", epochs.ToString(CultureInfo.InvariantCulture));
        // every worker takes 60 s a fold: the victim is still at it when the shipped detector removes it (~30 s after
        // the cut), and the fold's second attempt still runs when the healed victim rejoins (the coordinator exits
        // once the sweep is over)
        var victim = _cluster.WorkerAsOtherUser(100, "--host", "127.0.0.3");
        var job = await Eventually.Until(() => Regex.Match(victim.Text, @"starting (\S+) attempt 1") is { Success: true } m ? m.Groups[1].Value : null,
            TimeSpan.FromSeconds(60), () => "the victim never started a fold:\n" + coordinator.Text + victim.Text);
        var healthy = _cluster.Worker(100, "--host", "127.0.0.4");
        await Eventually.Until(() => healthy.Text.Contains("starting 2d/fold_"), TimeSpan.FromSeconds(60), () => "the healthy worker got no fold:\n" + healthy.Text);
        // a second healthy worker, idle: the cut fold can run elsewhere as soon as the cluster lets it go
        var spare = _cluster.Worker(100, "--host", "127.0.0.5");
        await Eventually.Until(() => spare.Text.Contains("registered with"), TimeSpan.FromSeconds(60), () => "the spare worker did not register:\n" + spare.Text);
        await Eventually.Until(() => _cluster.Epochs(job).Length >= 3, TimeSpan.FromSeconds(30), () => $"{job} did not train:\n{victim.Text}");

        var (uid, _) = ProcessCluster.OtherUser();
        _network.CutOff("127.0.0.3", uid);
        var cut = Stopwatch.StartNew();
        // the fold runs elsewhere once its newer attempt writes its first line into the fold's log
        await Eventually.Until(() => _cluster.ReadLog(job).Contains("attempt 2:"), TimeSpan.FromSeconds(90),
            () => $"{job} did not run elsewhere within 90 s of the cut:\n{coordinator.Text}");
        var runningElsewhere = cut.Elapsed;
        // the victim's side downs itself past the failure detector (the coordinator's side removes it too)
        await Eventually.Until(() => victim.Text.Contains("this node was removed from the cluster"), TimeSpan.FromSeconds(60),
            () => "the victim was never removed:\n" + victim.Text);
        await Task.Delay(TimeSpan.FromSeconds(2));
        _network.Heal();
        // healed: the victim's new node joins again and registers
        await Eventually.Until(() => Regex.Count(victim.Text, "registered with") >= 2, TimeSpan.FromSeconds(60),
            () => "the healed victim did not rejoin:\n" + victim.Text);

        ProcessCluster.AssertExits(coordinator, 0, TimeSpan.FromSeconds(120), "coordinator");
        foreach (var (worker, who) in new[] { (healthy, "healthy worker"), (spare, "spare worker"), (victim, "healed victim") })
            ProcessCluster.AssertExits(worker, 0, TimeSpan.FromSeconds(30), who);
        using var grid = ProcessCluster.FinalGrid(coordinator);
        Assert.Equal("completed", grid.RootElement.GetProperty("status").GetString());
        _cluster.AssertEachFoldTrainedOnce(folds);
        var cutJob = grid.RootElement.GetProperty("jobs").EnumerateArray().Single(j => j.GetProperty("job_id").GetString() == job);
        Assert.Equal((2, 1), (cutJob.GetProperty("attempt").GetInt32(), cutJob.GetProperty("requeues").GetInt32()));
        Assert.Matches($@"starting {Regex.Escape(job)} attempt 2", healthy.Text + spare.Text);

        var log = _cluster.ReadLog(job);
        // the newer attempt owns the fold from its start: nothing of attempt 1 after attempt 2 began
        int attempt2 = log.IndexOf("attempt 2:", StringComparison.Ordinal);
        Assert.True(attempt2 > 0, log);
        Assert.DoesNotContain("attempt 1:", log[attempt2..]);
        Assert.Matches(@"attempt 2: continue from checkpoint at epoch \d+", log);
        // every epoch once, in order, in every fold
        foreach (var fold in folds) Assert.Equal(Enumerable.Range(1, epochs), _cluster.Epochs(fold));
        ReliabilityMeasurements.Record("worker cut -> its fold running elsewhere", runningElsewhere,
            "iptables DROP of every packet of the node; failure detection and split-brain resolver as shipped; an idle worker ready");
    }
}
