using NnUnet.Training.Trainer;
using NnUnet.Core.Results;

namespace NnUnet.Training.Tests;

public class TrainerTests
{
    private static TrainingFixture SmallDataset(out string configuration)
    {
        configuration = "3d_fullres";
        var fixture = new TrainingFixture();
        fixture.Write(configuration, TestPlans.Arch3d(stages: 3, baseFeatures: 4), [4, 16, 16], batchSize: 2,
            SyntheticData.Make(5, [6, 24, 24], seed: 8));
        return fixture;
    }

    [Fact]
    public async Task ContinueAfterCancellationReproducesTheUninterruptedRun()
    {
        using var fixture = SmallDataset(out var config);
        var trainer = new NnUnetTrainer();
        // uninterrupted: 4 epochs
        var straight = await trainer.RunAsync(fixture.Job(config, 4, 3, 2) with { Fold = 0 }, new RecordingSink(), CancellationToken.None);
        Assert.Equal(TrainingStatus.Completed, straight.Status);
        var reference = LoadCurves(Path.Combine(straight.OutputFolder, "checkpoint_final.ckpt"));

        // interrupted after epoch 1 (at the start of epoch 2), then mid-epoch 2, each time resumed with --continue
        var job = fixture.Job(config, 4, 3, 2) with { Fold = 1 };
        using (var cts = new CancellationTokenSource())
        {
            var first = await trainer.RunAsync(job, new RecordingSink(cts, cancelAfterEpoch: 1), cts.Token);
            Assert.Equal(TrainingStatus.Cancelled, first.Status);
            Assert.True(File.Exists(Path.Combine(first.OutputFolder, "checkpoint_latest.ckpt")));
        }
        using (var cts = new CancellationTokenSource())
        {
            var second = await trainer.RunAsync(job with { ContinueTraining = true }, new RecordingSink(cts, cancelAtIteration: (2, 0)), cts.Token);
            Assert.Equal(TrainingStatus.Cancelled, second.Status);
        }
        var resumed = await trainer.RunAsync(job with { ContinueTraining = true }, new RecordingSink(), CancellationToken.None);
        Assert.Equal(TrainingStatus.Completed, resumed.Status);
        // fold 1 trains on other cases than fold 0: compare it with its own uninterrupted twin
        var twin = await trainer.RunAsync(fixture.Job(config, 4, 3, 2) with { Fold = 1, ResultsRoot = Path.Combine(fixture.Root, "results-twin") }, new RecordingSink(), CancellationToken.None);
        var expected = LoadCurves(Path.Combine(twin.OutputFolder, "checkpoint_final.ckpt"));
        var actual = LoadCurves(Path.Combine(resumed.OutputFolder, "checkpoint_final.ckpt"));
        Assert.Equal(4, actual.Count);
        for (int e = 0; e < 4; e++)
        {
            Assert.Equal(expected.TrainLosses[e], actual.TrainLosses[e], 6);
            Assert.Equal(expected.ValLosses[e], actual.ValLosses[e], 6);
        }
        Assert.Equal(4, reference.Count);
        Assert.NotEqual(reference.TrainLosses[3], actual.TrainLosses[3]); // different folds really differ (the comparison is not vacuous)
        Assert.True(File.Exists(Path.Combine(resumed.OutputFolder, "progress.png")));
        // progress.json (what the dashboard reads) holds the same curves as the final checkpoint, across the resumes
        var progress = TrainingCurves.TryLoad(resumed.OutputFolder);
        Assert.NotNull(progress);
        Assert.Equal(actual.TrainLosses, progress.TrainLosses);
        Assert.Equal(actual.LearningRates, progress.LearningRates);
        Assert.Equal(actual.EmaForegroundDice, progress.EmaForegroundDice);
        Assert.True(File.Exists(Path.Combine(resumed.OutputFolder, "checkpoint_best.ckpt")));
        Assert.False(File.Exists(Path.Combine(resumed.OutputFolder, "checkpoint_latest.ckpt")));
        string log = File.ReadAllText(Path.Combine(resumed.OutputFolder, "training_log.txt"));
        Assert.Contains("continuing from epoch 2\n", log.Replace("\r", ""));
        Assert.Contains("continuing from epoch 2, iteration 1", log);
        Assert.Contains("Pseudo dice [", log);
    }

    [Fact]
    public async Task DamagedLatestCheckpointFallsBackToThePreviousOne()
    {
        using var fixture = SmallDataset(out var config);
        var trainer = new NnUnetTrainer();
        var job = fixture.Job(config, 3, 2, 1);
        using (var cts = new CancellationTokenSource())
            await trainer.RunAsync(job, new RecordingSink(cts, cancelAfterEpoch: 1), cts.Token);
        string latest = Path.Combine(job.FoldOutputFolder, "checkpoint_latest.ckpt");
        Assert.True(File.Exists(latest + ".prev"));
        // simulate a kill while the file was being written by something that bypassed the temp file: truncate it
        var bytes = File.ReadAllBytes(latest);
        File.WriteAllBytes(latest, bytes.AsSpan(0, bytes.Length / 2).ToArray());
        var sink = new RecordingSink();
        var outcome = await trainer.RunAsync(job with { ContinueTraining = true }, sink, CancellationToken.None);
        Assert.Equal(TrainingStatus.Completed, outcome.Status);
        Assert.Contains(sink.Messages, m => m.Contains("truncated or damaged"));
        Assert.Contains(sink.Messages, m => m.Contains("resuming from checkpoint_latest.ckpt.prev"));
        Assert.Contains(sink.Messages, m => m.Contains("continuing from epoch 2"));
        Assert.Equal(3, LoadCurves(outcome.FinalCheckpoint!).Count);
    }

    [Fact]
    public async Task ValidationOnlyWithoutFinalCheckpointFailsClearly()
    {
        using var fixture = SmallDataset(out var config);
        var ex = await Assert.ThrowsAsync<FileNotFoundException>(() =>
            new NnUnetTrainer().RunAsync(fixture.Job(config, 1, 1, 1) with { ValidationOnly = true }, new RecordingSink(), CancellationToken.None));
        Assert.Contains("checkpoint_final", ex.Message);
    }

    [Fact]
    public async Task ValidatorIsCalledWithTheFoldsValidationCases()
    {
        using var fixture = SmallDataset(out var config);
        var validator = new RecordingValidator();
        var outcome = await new NnUnetTrainer(validator).RunAsync(fixture.Job(config, 1, 1, 1), new RecordingSink(), CancellationToken.None);
        Assert.True(outcome.Validated);
        Assert.Equal(outcome.OutputFolder, validator.Folder);
        Assert.Single(validator.Cases!); // 5 cases, fold 0 of 5 validates one
        Assert.True(File.Exists(Path.Combine(Path.GetDirectoryName(outcome.OutputFolder)!, "plans.json")));
        // --validation-only reloads checkpoint_final and validates again
        var again = await new NnUnetTrainer(validator).RunAsync(fixture.Job(config, 1, 1, 1) with { ValidationOnly = true }, new RecordingSink(), CancellationToken.None);
        Assert.Equal(TrainingStatus.ValidatedOnly, again.Status);
        Assert.Equal(2, validator.Calls);
    }

    [Fact]
    public void MissingPlansAreReportedWithThePath()
    {
        using var fixture = new TrainingFixture();
        var ex = Assert.Throws<FileNotFoundException>(() => NnUnetTrainer.Resolve(fixture.Job("3d_fullres", 1, 1, 1)));
        Assert.Contains("nnUNetPlans.json", ex.Message);
    }

    internal static TrainingCurves LoadCurves(string checkpointPath)
    {
        using var checkpoint = Checkpoint.Load(checkpointPath);
        return checkpoint.Metadata.Curves;
    }

    private sealed class RecordingValidator : IFoldValidator
    {
        public string? Folder; public IReadOnlyList<string>? Cases; public int Calls;
        public Task ValidateAsync(string foldOutputDirectory, TorchSharp.torch.nn.Module network, FoldValidationContext context, IReadOnlyList<string> validationCaseIds, CancellationToken ct)
        {
            Assert.Equal("3d_fullres", context.ConfigurationName);
            Assert.Equal(new[] { 0, 1, 2 }, context.MirrorAxes);
            Folder = foldOutputDirectory; Cases = validationCaseIds; Calls++;
            Assert.False(network.training);
            return Task.CompletedTask;
        }
    }
}
