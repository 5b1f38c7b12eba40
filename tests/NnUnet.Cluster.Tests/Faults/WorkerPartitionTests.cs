using System.Diagnostics;
using System.Text.RegularExpressions;
using Akka.Actor;
using Akka.Remote;
using Akka.Remote.Transport;
using NnUnet.Cluster.Hosting;
using NnUnet.Cluster.Sweeps;

namespace NnUnet.Cluster.Tests.Faults;

/// <summary>
/// Network partition of a worker: coordinator and worker ActorSystems on 127.0.0.1 whose remoting runs through Akka's
/// throttler transport adapter (<c>applied-adapters = [trttl]</c>, addresses <c>akka.trttl.tcp://</c>), the tool of
/// Akka's own multi-node tests. A <see cref="Blackhole"/> on every link of the victim drops its traffic both ways
/// while its process (here: its ActorSystem) keeps running; nothing is killed.
/// </summary>
[Collection(ProcessTests.Collection)]
public sealed class WorkerPartitionTests
{
    private const string Throttled = "akka.remote.dot-netty.tcp.applied-adapters = [trttl]";
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(40);

    private static async Task SetThrottle(ActorSystem on, Address peer, ThrottleMode mode)
    {
        var transport = ((IRemoteActorRefProvider)((ExtendedActorSystem)on).Provider).Transport;
        Assert.True(await transport.ManagementCommand(new SetThrottle(peer, ThrottleTransportAdapter.Direction.Both, mode)).WaitAsync(TimeSpan.FromSeconds(5)),
            $"throttle {mode} towards {peer} was not applied");
    }

    /// <summary>The split-brain resolver block of a shipped file (the HA one: its last block), without its journal.</summary>
    private static string ResolverOf(string builtInFile)
    {
        var text = ClusterConfig.BuiltInFile(builtInFile);
        int at = text.IndexOf("akka.cluster.split-brain-resolver {", StringComparison.Ordinal);
        Assert.True(at >= 0, $"{builtInFile} has no akka.cluster.split-brain-resolver block");
        return text[at..];
    }

    /// <param name="resolverFile">"" = base.hocon's split-brain resolver; else the shipped file whose resolver to use.</param>
    [Theory]
    [InlineData("")]
    [InlineData("postgres-ha.hocon")]
    public async Task PartitionedWorker_IsRemovedBySplitBrainResolver_JobFinishesElsewhere_HealedWorkerDoesNotDoubleReport(string resolverFile)
    {
        var throttled = Throttled + (resolverFile == "" ? "" : "\n" + ResolverOf(resolverFile));
        using var cluster = new LocalCluster();
        var definition = LocalCluster.Definition(["2d"], [0, 1, 2], 40);
        var coordinator = cluster.StartCoordinator(definition, throttled);
        if (resolverFile != "") Assert.True(coordinator.Settings.Config.GetBoolean("akka.cluster.split-brain-resolver.keep-oldest.down-if-alone"));
        var seed = LocalCluster.AddressOf(coordinator);
        Assert.Equal("akka.trttl.tcp", seed.Protocol);

        var victimAtEpoch2 = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        var victimBackend = cluster.Backend(TimeSpan.FromMilliseconds(250), afterEpoch: (spec, epoch) =>
        {
            if (epoch == 2) victimAtEpoch2.TrySetResult(spec.JobId);
        });
        // the victim alone first, so that it surely holds a job when the partition starts
        var victim = cluster.StartWorker(seed, 1, victimBackend, throttled);
        var job = await victimAtEpoch2.Task.WaitAsync(Timeout);
        var survivor = cluster.StartWorker(seed, 1, cluster.Backend(TimeSpan.FromMilliseconds(60)), throttled);
        var before = await LocalCluster.WaitUntil(coordinator, s => s.Workers.Length == 2, Timeout, "the survivor did not register");
        var victimWorker = before.Jobs.Single(j => j.JobId == job).WorkerId!;
        var victimAddress = LocalCluster.AddressOf(victim);

        // the partition: every link of the victim drops everything, both ways (set on both ends of each link)
        var clock = Stopwatch.StartNew();
        foreach (var peer in new[] { coordinator, survivor })
        {
            await SetThrottle(victim, LocalCluster.AddressOf(peer), Blackhole.Instance);
            await SetThrottle(peer, victimAddress, Blackhole.Instance);
        }

        // keep-oldest (role coordinator): the coordinator's side removes the victim and re-queues its job, which the
        // survivor continues from its checkpoint; the victim, alone without a coordinator, downs itself
        var moved = await LocalCluster.WaitUntil(coordinator, s => s.Jobs.Single(j => j.JobId == job) is { Attempt: >= 2 } j && j.WorkerId != victimWorker,
            Timeout, $"{job} was not re-assigned away from the partitioned {victimWorker}");
        var reassignedAfter = clock.Elapsed;
        Assert.DoesNotContain(moved.Workers, w => w.WorkerId == victimWorker);
        Assert.DoesNotContain(Akka.Cluster.Cluster.Get(coordinator).State.Members, m => m.Address.Equals(victimAddress));
        await victim.WhenTerminated.WaitAsync(Timeout);
        var victimDownAfter = clock.Elapsed;

        // the partition heals; the old node is gone for good (downed), a fresh one on the same machine rejoins, as
        // `nnunet worker` does by itself
        foreach (var peer in new[] { coordinator, survivor }) await SetThrottle(peer, victimAddress, Unthrottled.Instance);
        cluster.StartWorker(seed, 1, cluster.Backend(TimeSpan.FromMilliseconds(60)), throttled);

        var final = await LocalCluster.WaitFinished(coordinator, TimeSpan.FromSeconds(60));
        Assert.Equal(SweepStatus.Completed, final.Status);
        // each job's result exists once: one completed run per job over all backends; the victim's attempt was
        // cancelled when it downed itself and never completed; the job's final attempt is the survivor's
        foreach (var j in final.Jobs) Assert.True(1 == cluster.Log.CompletedRuns(j.JobId), $"{j.JobId}: {cluster.Log.CompletedRuns(j.JobId)} completed runs");
        var victimRuns = cluster.Log.Runs.Where(r => r.JobId == job && r.Attempt == 1).ToArray();
        Assert.Single(victimRuns);
        Assert.True(victimRuns[0].Cancelled && !victimRuns[0].Completed, $"the victim's attempt: {victimRuns[0]}");
        var done = final.Jobs.Single(j => j.JobId == job);
        Assert.True(done.Attempt >= 2 && done.WorkerId != victimWorker, $"{job}: attempt {done.Attempt} by {done.WorkerId}");
        // on disk: trained to the end once, started from scratch once, the survivor continued from the victim's checkpoint
        var log = File.ReadAllText(Path.Combine(cluster.ResultsRoot, "Dataset004_Hippocampus", "nnUNetTrainer__nnUNetPlans__2d", job.Split('/')[1], "training_log.txt"));
        Assert.True(1 == Regex.Count(log, "training done"), log);
        Assert.True(1 == Regex.Count(log, "start at epoch 0"), log);
        Assert.Matches(@"attempt [2-9]: continue from checkpoint at epoch ([2-9]|[1-3][0-9])\n", log);
        Console.WriteLine($"partition: job re-assigned {reassignedAfter.TotalSeconds:F1} s after the cut, victim downed itself after {victimDownAfter.TotalSeconds:F1} s");
    }

    /// <summary>
    /// The victim's attempt ends inside the partition: its completion report is dropped with the link, and the node is
    /// downed before it could re-send it. The coordinator finds every output on storage, written after the attempt
    /// started, and accepts that attempt when the node is removed, instead of running the fold again elsewhere.
    /// </summary>
    [Fact]
    public async Task WorkerPartitionedAsItsAttemptFinishes_AttemptAcceptedFromStorage_NotRunAgain()
    {
        using var cluster = new LocalCluster();
        var definition = LocalCluster.Definition(["2d"], [0, 1, 2], 6);
        var coordinator = cluster.StartCoordinator(definition, Throttled);
        var seed = LocalCluster.AddressOf(coordinator);

        var atEpoch4 = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        var cut = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var victimBackend = cluster.Backend(TimeSpan.FromMilliseconds(150), afterEpoch: (spec, epoch) =>
        {
            // the first job holds at epoch 4 until the partition is in place, then trains to its end inside it
            if (epoch == 4 && atEpoch4.TrySetResult(spec.JobId)) cut.Task.Wait(Timeout);
        });
        var victim = cluster.StartWorker(seed, 1, victimBackend, Throttled);
        var survivor = cluster.StartWorker(seed, 1, cluster.Backend(TimeSpan.FromMilliseconds(60)), Throttled);
        var job = await atEpoch4.Task.WaitAsync(Timeout);
        var victimAddress = LocalCluster.AddressOf(victim);
        foreach (var peer in new[] { coordinator, survivor })
        {
            await SetThrottle(victim, LocalCluster.AddressOf(peer), Blackhole.Instance);
            await SetThrottle(peer, victimAddress, Blackhole.Instance);
        }
        cut.SetResult();

        var final = await LocalCluster.WaitFinished(coordinator, TimeSpan.FromSeconds(60));
        Assert.Equal(SweepStatus.Completed, final.Status);
        await victim.WhenTerminated.WaitAsync(Timeout); // it downed itself, as in the test above
        // the victim's run completed (inside the partition) and is the job's only completed run: attempt 1 accepted
        Assert.Contains(cluster.Log.Runs, r => r.JobId == job && r.Attempt == 1 && r.Completed);
        foreach (var j in final.Jobs) Assert.True(1 == cluster.Log.CompletedRuns(j.JobId), $"{j.JobId}: {cluster.Log.CompletedRuns(j.JobId)} completed runs");
        var done = final.Jobs.Single(j => j.JobId == job);
        Assert.Equal(1, done.Attempt);
        var log = File.ReadAllText(Path.Combine(cluster.ResultsRoot, "Dataset004_Hippocampus", "nnUNetTrainer__nnUNetPlans__2d", job.Split('/')[1], "training_log.txt"));
        Assert.True(1 == Regex.Count(log, "training done") && !log.Contains("continue from checkpoint"), log);
    }
}
