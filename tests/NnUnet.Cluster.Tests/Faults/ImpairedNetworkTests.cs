using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;

namespace NnUnet.Cluster.Tests.Faults;

/// <summary>
/// A whole sweep over slow, lossy links made by the kernel (issue 13): the coordinator on 127.0.0.2 and two workers on
/// 127.0.0.3 and 127.0.0.4, each a real `nnunet` process; every packet to or from these addresses is dropped with 5 %
/// probability and the rest held 200 ms (<see cref="KernelNetwork.Impair"/>: 400 ms round trips). Failure detection
/// and adoption as shipped. Asserted on disk: every fold's outputs once, every epoch once in order, no fold moved; with
/// the coordinator SIGKILLed and restarted on the way too.
/// </summary>
[Collection(ProcessTests.Collection)]
public sealed class ImpairedNetworkTests : IDisposable
{
    private static readonly TimeSpan Delay = TimeSpan.FromMilliseconds(200);
    private const double Loss = 0.05;
    private static readonly string[] Hosts = ["127.0.0.2", "127.0.0.3", "127.0.0.4"];

    private readonly ProcessCluster _cluster = new(ProcessCluster.ShippedFailureDetection() + "\n" + ProcessCluster.Shipped("nnunet.cluster.adoption-grace")) { CoordinatorHost = Hosts[0] };
    private readonly KernelNetwork _network = new();

    public void Dispose()
    {
        _network.Dispose();
        _cluster.Dispose();
    }

    [Fact]
    public async Task WholeSweepOver200msLinksLosing5Percent_Finishes_NoFoldMoved_NothingTrainedTwice()
    {
        string[] folds = ["2d/fold_0", "2d/fold_1", "2d/fold_2"];
        const int epochs = 30;
        _network.Impair(Hosts, Delay, Loss);
        // the links really are slow: a TCP handshake to the coordinator's address takes a delayed SYN and SYN-ACK
        var handshake = Stopwatch.StartNew();
        using (var probe = new TcpClient())
        {
            try { await probe.ConnectAsync(Hosts[0], 9); } catch (SocketException) { } // refused (nothing listens), after the round trip
        }
        Assert.True(handshake.Elapsed >= 2 * Delay - TimeSpan.FromMilliseconds(20), $"a round trip to {Hosts[0]} took {handshake.ElapsedMilliseconds} ms");

        var clock = Stopwatch.StartNew();
        var coordinator = _cluster.Coordinator("-c", "2d", "--folds", "0,1,2", "--epochs", epochs.ToString(CultureInfo.InvariantCulture));
        var workers = Hosts[1..].Select(host => _cluster.Worker(200, "--host", host)).ToArray();

        ProcessCluster.AssertExits(coordinator, 0, TimeSpan.FromMinutes(4), "coordinator");
        foreach (var w in workers) ProcessCluster.AssertExits(w, 0, TimeSpan.FromSeconds(60), "worker");
        var (dropped, delayed) = _network.Counters();
        _network.Heal();

        using var grid = ProcessCluster.FinalGrid(coordinator);
        Assert.Equal("completed", grid.RootElement.GetProperty("status").GetString());
        _cluster.AssertEachFoldTrainedOnce(folds);
        foreach (var fold in folds) Assert.Equal(Enumerable.Range(1, epochs), _cluster.Epochs(fold));
        // no job lost its worker or failed on the way: the shipped failure detector tolerates these links
        foreach (var job in grid.RootElement.GetProperty("jobs").EnumerateArray())
            Assert.True((1, 0) == (job.GetProperty("attempt").GetInt32(), job.GetProperty("requeues").GetInt32()),
                $"{job.GetProperty("job_id").GetString()}: attempt {job.GetProperty("attempt").GetInt32()}, requeues {job.GetProperty("requeues").GetInt32()}\n{coordinator.Text}");
        // the faults were real: the kernel dropped and delayed this sweep's packets
        Assert.True(dropped > 0 && delayed > 100, $"dropped {dropped}, delayed {delayed} packets");
        Console.WriteLine($"IMPAIRED NETWORK: whole sweep in {clock.Elapsed.TotalSeconds:F0} s; {delayed} packets delayed {Delay.TotalMilliseconds} ms, {dropped} dropped");
    }

    [Fact]
    public async Task CoordinatorSigkilledOverSlowLossyLinks_RestartedWithTheSameCommand_WorkersReRegisterKeepingTheirFolds_NothingTrainedTwice()
    {
        string[] sweep = ["-c", "2d", "--folds", "0,1", "--epochs", "120"];
        string[] folds = ["2d/fold_0", "2d/fold_1"];
        var outage = TimeSpan.FromSeconds(15);
        _network.Impair(Hosts, Delay, Loss);
        var first = _cluster.Coordinator(sweep);
        var workers = Hosts[1..].Select(host => _cluster.Worker(250, "--host", host)).ToArray();
        await Eventually.Until(() => folds.All(f => _cluster.Epochs(f).Length >= 3), TimeSpan.FromSeconds(90),
            () => "the folds did not start:\n" + first.Text + string.Join("\n", workers.Select(w => w.Text)));
        first.Sigkill();
        Assert.True(first.Process.WaitForExit(TimeSpan.FromSeconds(5)));
        var epochsAtCrash = folds.Select(f => _cluster.Epochs(f).Length).ToArray();
        await Task.Delay(outage);
        for (int i = 0; i < folds.Length; i++)
            Assert.True(_cluster.Epochs(folds[i]).Length >= epochsAtCrash[i] + 20, $"{folds[i]} did not train on through the outage");

        var second = await _cluster.RestartCoordinator(sweep, workers, TimeSpan.FromSeconds(90),
            $"after a {outage.TotalSeconds:F0} s outage (SIGKILL); 2 workers; links {Delay.TotalMilliseconds} ms one way, {Loss:P0} loss; join retries and adoption-grace as shipped");
        _cluster.AssertFoldsKeptTheirFirstAttempt(second, workers, folds, 120);
    }
}
