using NnUnet.Cluster.Backends;
using NnUnet.Cluster.Sweeps;
using NnUnet.Core.Results;

namespace NnUnet.Cluster.Tests.Faults;

/// <summary>
/// A test-set prediction whose worker node dies after writing part of the cases: the prediction folder exists and holds
/// fresh files, which used to be enough for the coordinator's storage check to accept the lost worker's attempt. With
/// the completion marker (<c>prediction_manifest.json</c>, written last by the merge job) it is not complete: the shard
/// runs again on another worker, skips the cases written completely before (receipts), and the merge ends with every
/// case and the manifest.
/// </summary>
public sealed class PredictionKilledTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(90);

    [Fact]
    public async Task APredictionKilledHalfway_IsRunAgain_NotAccepted_AndItsManifestEndsUpComplete()
    {
        using var cluster = new LocalCluster();
        var definition = SweepDefinition.Create("Dataset004_Hippocampus", "nnUNetPlans", "nnUNetTrainer", ["2d"], [0], 2, predictTest: true);
        var coordinator = cluster.StartCoordinator(definition);
        var seed = LocalCluster.AddressOf(coordinator);
        var halfway = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        // the victim stops after its 2nd case until its node is crashed (however long the second worker takes to start)
        var crashed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var victim = new SimulatedBackendOptions
        {
            EpochDuration = _ => TimeSpan.FromMilliseconds(20), Log = cluster.Log, PredictCases = 4,
            PredictCaseDuration = spec => spec.Kind == JobKind.PredictShard ? TimeSpan.FromMilliseconds(500) : TimeSpan.Zero,
            AfterPredictedCase = (spec, written) =>
            {
                if (written != 2 || spec.Attempt != 1) return;
                halfway.TrySetResult(spec.Attempt);
                crashed.Task.Wait(Timeout);
            },
        };
        // the victim alone first: it gets every job, the prediction's (one) shard too
        var victimSystem = cluster.StartWorker(seed, 1, victim, LocalCluster.CrashableHocon);
        Assert.Equal(1, await halfway.Task.WaitAsync(Timeout));
        var predictions = ResultLayout.TestPredictions(ResultLayout.DatasetFolder(cluster.ResultsRoot, definition.DatasetName));
        cluster.StartWorker(seed, 1, new SimulatedBackendOptions { EpochDuration = _ => TimeSpan.FromMilliseconds(20), Log = cluster.Log, PredictCases = 4 });
        // the node goes down while its attempt is held after case 2 (its stop waits stop-timeout for the attempt)
        var crash = LocalCluster.Crash(victimSystem);
        var leftBehind = Directory.GetFiles(predictions, "*.nii.gz").Length;
        Assert.Equal(2, leftBehind); // written by the killed attempt, fresh: the folder alone looks like a result
        crashed.SetResult();
        await crash;
        Assert.False(File.Exists(PredictionManifest.PathIn(predictions)));
        // complete ones have their receipt (a case killed between its rename and its receipt is not complete)
        var complete = Directory.GetFiles(Path.Combine(predictions, PredictionRecords.FolderName, "cases"), "*.json").Length;

        var snapshot = await LocalCluster.WaitFinished(coordinator, Timeout);

        Assert.Equal(SweepStatus.Completed, snapshot.Status);
        string shard = JobRecord.PredictShardJobId(null, 0);
        var predict = snapshot.Jobs.Single(j => j.JobId == shard);
        Assert.Equal((2, 1, 0), (predict.Attempt, predict.Requeues, predict.Failures)); // attempt 1 was not accepted: re-run, not failed
        Assert.Contains(snapshot.RecentEvents, e => e.Kind == "requeued" && e.JobId == shard);
        Assert.Equal(1, cluster.Log.CompletedRuns(shard));
        Assert.Equal(1, cluster.Log.CompletedRuns(JobRecord.PredictJobId));
        Assert.Contains(cluster.Log.Runs, r => r.JobId == shard && r is { Attempt: 1, Completed: false });
        // on disk: every case of the re-run, the manifest last and complete
        Assert.Null(PredictionManifest.Missing(predictions));
        var cases = Directory.GetFiles(predictions, "*.nii.gz").Order().ToArray();
        Assert.Equal(4, cases.Length);
        // the cases attempt 1 wrote completely stay (not predicted again), the rest are attempt 2's
        Assert.Equal(complete, cases.Count(file => File.ReadAllText(file).EndsWith("attempt 1", StringComparison.Ordinal)));
        Assert.Equal(4 - complete, cases.Count(file => File.ReadAllText(file).EndsWith("attempt 2", StringComparison.Ordinal)));
        Assert.True(cases.All(c => File.GetLastWriteTimeUtc(c) <= File.GetLastWriteTimeUtc(PredictionManifest.PathIn(predictions))));
        Assert.Equal(2, Core.IO.WriteFence.Read(JobOutputs.FencePath(new JobSpec(definition.SweepId, shard, 2, JobKind.PredictShard,
            definition.DatasetName, definition.PlansName, definition.TrainerName, null, 0, 2, true, cluster.ResultsRoot, [], [], PredictShards: 1)))!.Attempt);
    }
}
