using NnUnet.Cluster.Backends;
using NnUnet.Cluster.Sweeps;
using NnUnet.Core.IO;
using NnUnet.Core.Results;

namespace NnUnet.Cluster.Tests.Faults;

/// <summary>
/// The storage check a recovered coordinator uses to accept an attempt that finished during its outage: all outputs
/// there and written after the attempt started; outputs of an earlier run in the same folder do not count.
/// </summary>
public sealed class ResultStoreRecoveryTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("nnunet-store-").FullName;
    public void Dispose() => Directory.Delete(_root, true);

    private JobSpec BuildSpec(SweepDefinition definition, string jobId = "2d/fold_0")
    {
        var state = new SweepState();
        foreach (var e in state.Decide(new DefineSweep(definition, DateTime.UtcNow))) state.Apply(e);
        return state.BuildSpec(jobId, _root);
    }

    [Fact]
    public void OutputsWrittenSince_RequiresEveryOutput_WrittenAfterTheAttemptStarted()
    {
        var store = new FileResultStore();
        var spec = BuildSpec(LocalCluster.Definition(["2d"], [0], 2));
        var fold = JobOutputs.FoldFolder(spec);
        var attemptStart = DateTime.UtcNow;
        Assert.False(store.OutputsWrittenSince(spec, attemptStart.AddHours(-1))); // nothing there

        AtomicFile.WriteAllText(ResultLayout.ValidationSummary(fold), "{}");
        Assert.False(store.OutputsWrittenSince(spec, attemptStart.AddHours(-1))); // checkpoint_final missing
        AtomicFile.WriteAllText(ResultLayout.Checkpoint(fold, ResultLayout.CheckpointFinal), "{}");
        Assert.True(store.OutputsWrittenSince(spec, attemptStart));

        // the same files from a run an hour before this attempt: not this attempt's result
        File.SetLastWriteTimeUtc(ResultLayout.ValidationSummary(fold), attemptStart.AddHours(-1));
        Assert.False(store.OutputsWrittenSince(spec, attemptStart));
        Assert.True(store.OutputsWrittenSince(spec, attemptStart.AddHours(-2)));
    }

    private static SweepDefinition PredictingSweep() =>
        SweepDefinition.Create("Dataset004_Hippocampus", "nnUNetPlans", "nnUNetTrainer", ["2d"], [0], 2, predictTest: true);

    [Fact]
    public void APredictionKilledHalfway_IsNeverComplete_OnlyItsManifestWrittenLastMakesItSo()
    {
        var store = new FileResultStore();
        var spec = BuildSpec(PredictingSweep(), JobRecord.PredictJobId);
        var folder = JobOutputs.OutputPath(spec);
        var attemptStart = DateTime.UtcNow.AddMinutes(-1);
        // two of three cases written by the attempt, then it was killed: the folder exists, fresh, but is not complete
        AtomicFile.WriteAllText(Path.Combine(folder, "case_000.nii.gz"), "zero");
        AtomicFile.WriteAllText(Path.Combine(folder, "case_001.nii.gz"), "one");
        Assert.Contains("prediction_manifest.json does not exist (the prediction did not finish)", store.MissingOutputs(spec));
        Assert.False(store.OutputsWrittenSince(spec, attemptStart));

        AtomicFile.WriteAllText(Path.Combine(folder, "case_002.nii.gz"), "two");
        PredictionManifest.Write(folder, "/raw/imagesTs", Enumerable.Range(0, 3).Select(i => ($"case_00{i}", Path.Combine(folder, $"case_00{i}.nii.gz"))));
        Assert.Null(store.MissingOutputs(spec));
        Assert.True(store.OutputsWrittenSince(spec, attemptStart));

        // a file the manifest lists that is gone or differs: not complete (a re-run, or results deleted by hand)
        File.WriteAllText(Path.Combine(folder, "case_001.nii.gz"), "one, but another size");
        Assert.Contains("case case_001:", store.MissingOutputs(spec));
        File.Delete(Path.Combine(folder, "case_001.nii.gz"));
        Assert.Contains("case_001.nii.gz does not exist", store.MissingOutputs(spec));
        // a re-run removes the manifest before its first case: half-way it is not complete either
        PredictionManifest.Invalidate(folder);
        Assert.False(File.Exists(PredictionManifest.PathIn(folder)));
        Assert.NotNull(store.MissingOutputs(spec));
    }

    [Fact]
    public void ALowresFoldOfACascadeSweep_IsCompleteOnlyWithTheNextStageFileOfEveryValidationCase()
    {
        var store = new FileResultStore();
        var definition = LocalCluster.Definition(["3d_lowres", "3d_cascade_fullres"], [0], 2);
        var spec = BuildSpec(definition, "3d_lowres/fold_0");
        Assert.True(JobOutputs.ExportsNextStage(spec));
        var fold = JobOutputs.FoldFolder(spec);
        AtomicFile.WriteAllText(ResultLayout.Checkpoint(fold, ResultLayout.CheckpointFinal), "{}");
        AtomicFile.WriteAllText(ResultLayout.ValidationSummary(fold), """
            {"metric_per_case": [{"prediction_file": "/r/validation/la_003.nii.gz", "reference_file": "la_003.nii.gz", "metrics": {}},
                                 {"prediction_file": "/r/validation/la_007.nii.gz", "reference_file": "la_007.nii.gz", "metrics": {}}]}
            """);
        var nextStage = ResultLayout.NextStageFolder(Path.GetDirectoryName(fold)!, SweepDefinition.Cascade);
        AtomicFile.WriteAllText(ResultLayout.NextStageFile(nextStage, "la_003"), "npy");
        Assert.Contains("la_007.npy does not exist (the next stage's input of validation case la_007)", store.MissingOutputs(spec));
        AtomicFile.WriteAllText(ResultLayout.NextStageFile(nextStage, "la_007"), "npy");
        Assert.Null(store.MissingOutputs(spec));

        // without the cascade in the sweep, nothing reads the next stage: checkpoint_final and summary suffice
        var alone = BuildSpec(LocalCluster.Definition(["3d_lowres"], [0], 2), "3d_lowres/fold_0");
        Assert.False(JobOutputs.ExportsNextStage(alone));
        File.Delete(ResultLayout.NextStageFile(nextStage, "la_007"));
        Assert.Null(store.MissingOutputs(alone));
        Assert.NotNull(store.MissingOutputs(spec));
    }

    [Fact]
    public void TheSelection_IsCompleteWithBestConfigurationAndItsMarker_InferenceInformationWrittenLast()
    {
        var store = new FileResultStore();
        var spec = BuildSpec(LocalCluster.Definition(["2d"], [0], 2), JobRecord.SelectJobId);
        var dataset = ResultLayout.DatasetFolder(_root, spec.DatasetName);
        AtomicFile.WriteAllText(ResultLayout.InferenceInformation(dataset), "{}");
        Assert.Contains("best_configuration.json does not exist", store.MissingOutputs(spec));
        AtomicFile.WriteAllText(ResultLayout.BestConfigurationJson(dataset), "{}");
        Assert.Null(store.MissingOutputs(spec));
        Assert.Equal(ResultLayout.InferenceInformation(dataset), JobOutputs.CompletionMarker(spec));
    }
}
