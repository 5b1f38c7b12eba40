using NnUnet.Cluster.Hosting;
using NnUnet.Cluster.Sweeps;

namespace NnUnet.Cluster.Tests;

/// <summary>
/// Worker nodes that join at the very end of a sweep learn that it finished without the Finished topic: a
/// DistributedPubSub subscription made moments before the end may not have reached the coordinator's node yet.
/// </summary>
public sealed class LateWorkerTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(25);

    [Fact]
    public async Task NodeIdleAtTheEnd_AndNodeJoiningAfterIt_AreToldDirectly()
    {
        using var cluster = new LocalCluster();
        var coordinator = cluster.StartCoordinator(LocalCluster.Definition(["2d"], [0], 3));
        var seed = LocalCluster.AddressOf(coordinator);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var busy = cluster.Backend(TimeSpan.FromMilliseconds(20), afterEpoch: (spec, epoch) =>
        {
            if (spec.Kind == JobKind.Train && epoch == 1) release.Task.Wait(Timeout);
        });
        var first = cluster.StartWorkerNode(seed, 1, busy, NnUnetClusterHost.WhenSweepFinishedOnWorkerNode);
        await LocalCluster.WaitUntil(coordinator, s => s.Jobs.Any(j => j.Status == JobDisplayStatus.Running), Timeout, "the fold never started");

        // joins while the only fold runs and idles through the end; it watches its own event stream only (no topic
        // subscription at all), so only the coordinator's direct notice can end its wait
        var idle = cluster.StartWorkerNode(seed, 1, cluster.Backend(TimeSpan.FromMilliseconds(20)), NnUnetClusterHost.WhenSweepFinishedLocally);
        await LocalCluster.WaitUntil(coordinator, s => s.Workers.Length == 2, Timeout, "the second worker never registered");
        release.SetResult();

        var toldIdle = await idle.Finished.WaitAsync(Timeout);
        var toldFirst = await first.Finished.WaitAsync(Timeout);
        Assert.Equal(SweepStatus.Completed, toldIdle.Status);
        Assert.Equal(SweepStatus.Completed, toldFirst.Status);
        Assert.Equal(2, toldIdle.CompletedJobs);

        // a node that joins after the end (the topic message is long gone) is answered when it asks for work
        var late = cluster.StartWorkerNode(seed, 2, cluster.Backend(TimeSpan.FromMilliseconds(20)), NnUnetClusterHost.WhenSweepFinishedLocally);
        var toldLate = await late.Finished.WaitAsync(Timeout);
        Assert.Equal(SweepStatus.Completed, toldLate.Status);
        Assert.Equal(2, toldLate.CompletedJobs);
        foreach (var job in new[] { "2d/fold_0", JobRecord.SelectJobId }) Assert.Equal(1, cluster.Log.CompletedRuns(job));
    }
}

/// <summary>`nnunet worker` started after the sweep ended (the coordinator still lingers) exits 0 instead of waiting.</summary>
[Collection(ProcessTests.Collection)]
public sealed class LateWorkerProcessTests : IDisposable
{
    private readonly Faults.ProcessCluster _cluster = new();
    public void Dispose() => _cluster.Dispose();

    [Fact]
    public void WorkerProcessStartedAfterTheEnd_ExitsZero()
    {
        var coordinator = _cluster.Start("coordinator", Faults.ProcessCluster.Dataset, "-c", "2d", "--folds", "0", "--epochs", "2",
            "--host", "127.0.0.1", "--port", _cluster.Port.ToString(), "--config", _cluster.Hocon, "--linger", "120", "--json", "--simulate");
        var first = _cluster.Worker(50);
        Faults.ProcessCluster.AssertExits(first, 0, TimeSpan.FromSeconds(60), "the worker that ran the sweep");

        var late = _cluster.Worker(50);
        Faults.ProcessCluster.AssertExits(late, 0, TimeSpan.FromSeconds(60), "the worker started after the end");
        Assert.Contains("finished (Completed); worker exits", late.Text);
        Assert.DoesNotContain("starting ", late.Text); // it ran nothing
        Assert.False(coordinator.Process.HasExited, "the coordinator was to linger for 120 s:\n" + coordinator.Text);
    }
}

/// <summary>`nnunet worker` whose seed is its own address (no coordinator there) exits 1 at once, saying so.</summary>
[Collection(ProcessTests.Collection)]
public sealed class SelfSeededWorkerProcessTests : IDisposable
{
    private readonly Faults.ProcessCluster _cluster = new();
    public void Dispose() => _cluster.Dispose();

    [Fact]
    public void WorkerWhoseSeedIsItself_ExitsOne_NamingTheAddress()
    {
        var worker = _cluster.Start("worker", "--seed", _cluster.Seed, "--host", "127.0.0.1", "--port", _cluster.Port.ToString(),
            "--cpu", "1", "--config", _cluster.Hocon, "--simulate");
        Faults.ProcessCluster.AssertExits(worker, 1, TimeSpan.FromSeconds(30), "the self-seeded worker");
        Assert.Contains($"error: seed {_cluster.Seed} is this worker node's own address", worker.Text);
    }
}
