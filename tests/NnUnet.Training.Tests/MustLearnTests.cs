using NnUnet.Training.Trainer;
using Xunit.Abstractions;

namespace NnUnet.Training.Tests;

/// <summary>
/// End to end on CPU: synthetic ellipsoids of two classes in noise, written as preprocessed files with a small plan,
/// trained by the real trainer; the online validation pseudo-Dice must reach 0.85 on both foreground classes' mean.
/// </summary>
[Collection(SeededTrainingCollection.Name)]
public class MustLearnTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Learns3dSyntheticEllipsoids()
    {
        using var fixture = new TrainingFixture();
        fixture.Write("3d_fullres", TestPlans.Arch3d(stages: 3, baseFeatures: 16), [8, 32, 32], batchSize: 2,
            SyntheticData.Make(10, [8, 40, 40], seed: 21));
        var outcome = await Train(fixture, "3d_fullres", epochs: 12, iters: 20);
        Assert.True(outcome.dice >= 0.85, $"3D pseudo-Dice {outcome.dice:F3} < 0.85");
    }

    [Fact]
    public async Task Learns2dSyntheticEllipsoids()
    {
        using var fixture = new TrainingFixture();
        fixture.Write("2d", TestPlans.Arch2d(stages: 3, baseFeatures: 16), [32, 32], batchSize: 8,
            SyntheticData.Make(10, [6, 40, 40], seed: 22));
        var outcome = await Train(fixture, "2d", epochs: 12, iters: 20);
        Assert.True(outcome.dice >= 0.85, $"2D pseudo-Dice {outcome.dice:F3} < 0.85");
    }

    private async Task<(double dice, TrainingOutcome outcome)> Train(TrainingFixture fixture, string configuration, int epochs, int iters)
    {
        var sink = new RecordingSink();
        var outcome = await new NnUnetTrainer().RunAsync(fixture.Job(configuration, epochs, iters, valIters: 4, seed: 1), sink, CancellationToken.None);
        Assert.Equal(TrainingStatus.Completed, outcome.Status);
        foreach (var e in sink.Epochs)
            output.WriteLine($"{configuration} epoch {e.Epoch}: train {e.TrainLoss:F3} val {e.ValLoss:F3} dice [{string.Join(", ", e.PseudoDicePerClass.Select(d => d.ToString("F3")))}] ema {e.EmaPseudoDice:F3} {e.EpochSeconds:F1}s");
        Assert.Equal(epochs, sink.Epochs.Count);
        Assert.True(sink.Epochs[^1].TrainLoss < sink.Epochs[0].TrainLoss);
        return (sink.Epochs[^1].MeanForegroundPseudoDice, outcome);
    }
}
