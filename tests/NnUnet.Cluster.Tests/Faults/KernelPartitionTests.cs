using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;

namespace NnUnet.Cluster.Tests.Faults;

/// <summary>
/// A worker cut off by the kernel (issue 13): real `nnunet` processes, the victim worker on its own loopback address
/// (127.0.0.3) and under its own Unix user, every packet to it and from it dropped by iptables past the failure
/// detector, then the link healed. Asserted on disk: every fold's outputs once, no file of the newer attempt
/// overwritten by the older one, no epoch trained twice.
/// </summary>
[Collection(ProcessTests.Collection)]
public sealed class KernelPartitionTests : IDisposable
{
    private readonly ProcessCluster _cluster = new() { SharedWithOtherUser = true };
    private readonly KernelFirewall _firewall = new();

    public void Dispose()
    {
        _firewall.Dispose();
        _cluster.Dispose();
    }

    private static int[] Epochs(string log) =>
        Regex.Matches(log, @"^epoch (\d+):", RegexOptions.Multiline).Select(m => int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture)).ToArray();

    [Fact]
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    public async Task WorkerCutOffByTheKernel_IsRemoved_ItsFoldContinuesElsewhere_TheHealedNodeRejoins_NothingTrainedTwice()
    {
        string[] folds = ["2d/fold_0", "2d/fold_1", "2d/fold_2"];
        var coordinator = _cluster.Coordinator("-c", "2d", "--folds", "0,1,2", "--epochs", "60");
        var victim = _cluster.WorkerAsOtherUser(250, "--host", "127.0.0.3");
        var job = await Eventually.Until(() => Regex.Match(victim.Text, @"starting (\S+) attempt 1") is { Success: true } m ? m.Groups[1].Value : null,
            TimeSpan.FromSeconds(60), () => "the victim never started a fold:\n" + coordinator.Text + victim.Text);
        var healthy = _cluster.Worker(250);
        await Eventually.Until(() => healthy.Text.Contains("starting 2d/fold_"), TimeSpan.FromSeconds(60), () => "the healthy worker got no fold:\n" + healthy.Text);
        await Eventually.Until(() => Epochs(_cluster.ReadLog(job)).Length >= 3, TimeSpan.FromSeconds(30), () => $"{job} did not train:\n{victim.Text}");

        var (uid, _) = ProcessCluster.OtherUser();
        _firewall.CutOff("127.0.0.3", uid);
        var cut = Stopwatch.StartNew();
        // the victim's side downs itself past the failure detector (the coordinator's side removes it too)
        await Eventually.Until(() => victim.Text.Contains("this node was removed from the cluster"), TimeSpan.FromSeconds(60),
            () => "the victim was never removed:\n" + victim.Text);
        await Task.Delay(TimeSpan.FromSeconds(2));
        _firewall.Heal();
        // healed: the victim's new node joins again and registers
        await Eventually.Until(() => Regex.Count(victim.Text, "registered with") >= 2, TimeSpan.FromSeconds(60),
            () => "the healed victim did not rejoin:\n" + victim.Text);

        ProcessCluster.AssertExits(coordinator, 0, TimeSpan.FromSeconds(120), "coordinator");
        ProcessCluster.AssertExits(healthy, 0, TimeSpan.FromSeconds(20), "healthy worker");
        ProcessCluster.AssertExits(victim, 0, TimeSpan.FromSeconds(30), "healed victim");
        using var grid = ProcessCluster.FinalGrid(coordinator);
        Assert.Equal("completed", grid.RootElement.GetProperty("status").GetString());
        _cluster.AssertEachFoldTrainedOnce(folds);
        var cutJob = grid.RootElement.GetProperty("jobs").EnumerateArray().Single(j => j.GetProperty("job_id").GetString() == job);
        Assert.Equal((2, 1), (cutJob.GetProperty("attempt").GetInt32(), cutJob.GetProperty("requeues").GetInt32()));

        var log = _cluster.ReadLog(job);
        // the newer attempt owns the fold from its start: nothing of attempt 1 after attempt 2 began
        int attempt2 = log.IndexOf("attempt 2:", StringComparison.Ordinal);
        Assert.True(attempt2 > 0, log);
        Assert.DoesNotContain("attempt 1:", log[attempt2..]);
        Assert.Matches(@"attempt 2: continue from checkpoint at epoch \d+", log);
        // every epoch once, in order, in every fold
        foreach (var fold in folds) Assert.Equal(Enumerable.Range(1, 60), Epochs(_cluster.ReadLog(fold)));
        var moved = Regex.Match(coordinator.Text + healthy.Text, $@"starting {Regex.Escape(job)} attempt 2");
        Console.WriteLine($"KERNEL PARTITION: victim removed and healed; {job} re-run as attempt 2 ({(moved.Success ? "on the healthy worker" : "after the heal")}); test {cut.Elapsed.TotalSeconds:F0} s after the cut");
    }
}
