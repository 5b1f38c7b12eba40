using NnUnet.Cluster.Backends;
using NnUnet.Cluster.Sweeps;
using NnUnet.Core.Results;

namespace NnUnet.Cluster.Tests.Faults;

/// <summary>
/// A test-set prediction whose worker node dies after writing part of the cases: the prediction folder exists and holds
/// fresh files, which used to be enough for the coordinator's storage check to accept the lost worker's attempt. With
/// the completion marker (<c>prediction_manifest.json</c>, written last) it is not complete: the job runs again on
/// another worker and ends with every case and the manifest.
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
        var victim = new SimulatedBackendOptions
        {
            EpochDuration = _ => TimeSpan.FromMilliseconds(20), Log = cluster.Log, PredictCases = 4,
            PredictCaseDuration = spec => spec.Kind == JobKind.Predict ? TimeSpan.FromMilliseconds(500) : TimeSpan.Zero,
            AfterPredictedCase = (spec, written) =>
            {
                if (written == 2) halfway.TrySetResult(spec.Attempt);
            },
        };
        // the victim alone first: it gets every job, the prediction too
        var victimSystem = cluster.StartWorker(seed, 1, victim, LocalCluster.CrashableHocon);
        Assert.Equal(1, await halfway.Task.WaitAsync(Timeout));
        var predictions = ResultLayout.TestPredictions(ResultLayout.DatasetFolder(cluster.ResultsRoot, definition.DatasetName));
        cluster.StartWorker(seed, 1, new SimulatedBackendOptions { EpochDuration = _ => TimeSpan.FromMilliseconds(20), Log = cluster.Log, PredictCases = 4 });
        await LocalCluster.Crash(victimSystem);
        var leftBehind = Directory.GetFiles(predictions, "*.nii.gz").Length;
        Assert.InRange(leftBehind, 2, 3); // written by the killed attempt, fresh: the folder alone looks like a result
        Assert.False(File.Exists(PredictionManifest.PathIn(predictions)));

        var snapshot = await LocalCluster.WaitFinished(coordinator, Timeout);

        Assert.Equal(SweepStatus.Completed, snapshot.Status);
        var predict = snapshot.Jobs.Single(j => j.JobId == JobRecord.PredictJobId);
        Assert.Equal((2, 1, 0), (predict.Attempt, predict.Requeues, predict.Failures)); // attempt 1 was not accepted: re-run, not failed
        Assert.Contains(snapshot.RecentEvents, e => e.Kind == "requeued" && e.JobId == JobRecord.PredictJobId);
        Assert.Equal(1, cluster.Log.CompletedRuns(JobRecord.PredictJobId));
        Assert.Contains(cluster.Log.Runs, r => r is { JobId: JobRecord.PredictJobId, Attempt: 1, Completed: false });
        // on disk: every case of the re-run, the manifest last and complete
        Assert.Null(PredictionManifest.Missing(predictions));
        var cases = Directory.GetFiles(predictions, "*.nii.gz").Order().ToArray();
        Assert.Equal(4, cases.Length);
        foreach (var file in cases) Assert.EndsWith("attempt 2", File.ReadAllText(file));
        Assert.True(cases.All(c => File.GetLastWriteTimeUtc(c) <= File.GetLastWriteTimeUtc(PredictionManifest.PathIn(predictions))));
        Assert.Equal(2, Core.IO.WriteFence.Read(JobOutputs.FencePath(new JobSpec(definition.SweepId, JobRecord.PredictJobId, 2, JobKind.Predict,
            definition.DatasetName, definition.PlansName, definition.TrainerName, null, 0, 2, true, cluster.ResultsRoot, [], [])))!.Attempt);
    }
}
