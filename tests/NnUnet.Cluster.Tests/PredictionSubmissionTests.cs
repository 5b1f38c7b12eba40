using Akka.Actor;
using NnUnet.Cluster.Hosting;
using NnUnet.Cluster.Messages;
using NnUnet.Cluster.Sweeps;
using NnUnet.Core.Results;

namespace NnUnet.Cluster.Tests;

/// <summary>
/// A prediction sent to a running coordinator from an operator node (what `nnunet predict --cluster` does), over real
/// sockets, with the simulated backend: the shards run on the idle workers, the merge writes the manifest, the same
/// submission again is idempotent, and the operator's cancel (Ctrl-C) reaches the coordinator across the wire. A
/// read-only client node (`sweep-status`) may not submit.
/// </summary>
public sealed class PredictionSubmissionTests : IDisposable
{
    private readonly LocalCluster _cluster = new();
    public void Dispose() => _cluster.Dispose();

    private ActorSystem Client(Address seed, NodeKind kind = NodeKind.Operator)
    {
        var system = NnUnetClusterHost.StartSystem(ClusterConfig.Build(new NodeOptions(kind, Seeds: [seed.ToString()],
            ExtraHocon: VerifyOurMessages.Hocon + "\n" + LocalCluster.TestHocon)));
        return system;
    }

    private PredictionRequest Request(string output, int shards) =>
        new(Path.Combine(_cluster.ResultsRoot, "in"), output, "/models/m", null, null, false, [0], "nnUNetTrainer", "nnUNetPlans",
            "checkpoint_final", false, false, null, false, shards);

    [Fact]
    public async Task ASubmissionRunsItsShardsOnTheIdleWorkers_ThenTheMerge_AndAClientCanCancelIt()
    {
        var coordinator = _cluster.StartCoordinator(LocalCluster.Definition(["2d"], [0], 1));
        var seed = LocalCluster.AddressOf(coordinator);
        _cluster.StartWorker(seed, 3, _cluster.Backend(TimeSpan.FromMilliseconds(300)));
        await LocalCluster.WaitFinished(coordinator, TimeSpan.FromSeconds(60));
        var client = Client(seed);
        try
        {
            string output = Path.Combine(_cluster.ResultsRoot, "out");
            var proxy = NnUnetClusterHost.CoordinatorProxy(client);
            var answer = await Eventually.Until(async () =>
            {
                try { return await proxy.Ask<PredictionSubmissionResult>(new SubmitPrediction(Request(output, 3)), TimeSpan.FromSeconds(2)); }
                catch (AskTimeoutException) { return null; }
            }, TimeSpan.FromSeconds(30), () => "no answer to the submission");
            Assert.True(answer.Ok, answer.Message);
            string id = Request(output, 3).SubmissionId;
            Assert.Equal([$"{id}/shard_0", $"{id}/shard_1", $"{id}/shard_2", $"{id}/merge"], answer.JobIds);
            var view = await LocalCluster.WaitFinished(client, TimeSpan.FromSeconds(60));
            Assert.Equal(SweepStatus.Completed, view.Status);
            // the three shards ran side by side, on three different workers
            Assert.Equal(3, _cluster.Log.Runs.Where(r => r.Completed && r.JobId.Contains("/shard_", StringComparison.Ordinal)).Select(r => r.Device).Distinct().Count());
            Assert.True(PredictionManifest.Missing(output) is null);
            for (int k = 0; k < 3; k++) Assert.True(File.Exists(PredictionRecords.ShardMarkerPath(output, k, 3)));

            // the same submission again: nothing new
            var again = await proxy.Ask<PredictionSubmissionResult>(new SubmitPrediction(Request(output, 5)), TimeSpan.FromSeconds(5));
            Assert.Equal(answer.JobIds, again.JobIds);
            Assert.Equal("submitted before: following its jobs", again.Message);

            // a second submission, cancelled by its client while its shards run
            string other = Path.Combine(_cluster.ResultsRoot, "other");
            var second = await proxy.Ask<PredictionSubmissionResult>(new SubmitPrediction(Request(other, 2)), TimeSpan.FromSeconds(5));
            var cancel = await proxy.Ask<SweepControlResult>(new SweepControl(SweepControlAction.CancelJob, second.JobIds[^1]), TimeSpan.FromSeconds(5));
            Assert.True(cancel.Ok, cancel.Message);
            var finished = await LocalCluster.WaitFinished(client, TimeSpan.FromSeconds(60));
            Assert.Equal(JobDisplayStatus.Cancelled, finished.Jobs.Single(j => j.JobId == second.JobIds[^1]).Status);
            var retried = await proxy.Ask<PredictionSubmissionResult>(new SubmitPrediction(Request(other, 2)), TimeSpan.FromSeconds(5));
            Assert.Equal("submitted before: 1 failed or cancelled job(s) retried", retried.Message);
            await LocalCluster.WaitUntil(client, v => v.Status == SweepStatus.Completed, TimeSpan.FromSeconds(60), "the retried merge did not complete");
            Assert.True(PredictionManifest.Missing(other) is null);
        }
        finally { await client.Terminate(); }
    }

    [Fact]
    public async Task ASubmissionFromAReadOnlyClientNode_IsRefused_AndAddsNoJob()
    {
        var coordinator = _cluster.StartCoordinator(LocalCluster.Definition(["2d"], [0], 1));
        var seed = LocalCluster.AddressOf(coordinator);
        var reader = Client(seed, NodeKind.Client);
        var proxy = NnUnetClusterHost.CoordinatorProxy(reader);
        var answer = await Eventually.Until(async () =>
        {
            try { return await proxy.Ask<PredictionSubmissionResult>(new SubmitPrediction(Request(Path.Combine(_cluster.ResultsRoot, "out"), 2)), TimeSpan.FromSeconds(2)); }
            catch (AskTimeoutException) { return null; }
        }, TimeSpan.FromSeconds(30), () => "no answer to the submission");
        Assert.False(answer.Ok);
        Assert.Contains("has role(s) client", answer.Message);
        var view = await NnUnetClusterHost.GetViewAsync(coordinator, TimeSpan.FromSeconds(10));
        Assert.DoesNotContain(view.Jobs, j => j.JobId.Contains("shard_", StringComparison.Ordinal));
    }
}
