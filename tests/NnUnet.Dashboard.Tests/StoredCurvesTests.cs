using System.Text.Json;
using NnUnet.Core.Results;

namespace NnUnet.Dashboard.Tests;

/// <summary>
/// Curves of epochs the dashboard did not watch (it started after them, e.g. on a restarted coordinator) come from the
/// fold's progress.json, with the learning rate the trainer really used.
/// </summary>
public sealed class StoredCurvesTests
{
    private static TrainingCurves Curves(int epochs) => new()
    {
        TrainLosses = [.. Enumerable.Range(0, epochs).Select(e => 1.0 - 0.1 * e)],
        ValLosses = [.. Enumerable.Range(0, epochs).Select(e => 1.1 - 0.1 * e)],
        DicePerClass = [.. Enumerable.Range(0, epochs).Select(e => new[] { 0.1 * e, double.NaN })],
        MeanForegroundDice = [.. Enumerable.Range(0, epochs).Select(e => 0.1 * e)],
        EmaForegroundDice = [.. Enumerable.Range(0, epochs).Select(e => 0.05 * e)],
        LearningRates = [.. Enumerable.Range(0, epochs).Select(e => 0.01 - 0.001 * e)],
        EpochSeconds = [.. Enumerable.Range(0, epochs).Select(e => 2.0 + e)],
    };

    [Fact]
    public void LivePointsWin_StoredOnesFillTheGaps_StoredLearningRateIsUsed()
    {
        var live = new[] { new EpochPoint(2, 3, 5, 9, 9, 9, 9, DashboardState.PolyLearningRate(3, 5), 1, DateTime.UtcNow) };
        var merged = DashboardState.WithStoredCurves(live, Curves(4), 5);
        Assert.Equal([1, 2, 3, 4], merged.Select(p => p.Epoch));
        Assert.Equal(9, merged[2].TrainLoss);             // the live point
        Assert.Equal(0.008, merged[2].LearningRate, 12);  // ... with the trainer's learning rate
        Assert.Equal(0.9, merged[1].TrainLoss, 12);       // epoch 2 from the file
        Assert.Null(merged[0].At);
        Assert.Same(live, DashboardState.WithStoredCurves(live, null, 5));
    }

    [Fact]
    public async Task JobPage_ShowsTheFoldsStoredCurves_WithoutHavingWatchedThem()
    {
        // no workers: nothing runs, so every point the API returns comes from the file
        await using var sweep = await SimulatedSweep.StartAsync(["2d"], [0], 5, TimeSpan.FromMilliseconds(50), workers: 1, deferWorkers: true);
        var d = sweep.Definition;
        string fold = ResultLayout.FoldFolder(sweep.ResultsRoot, d.DatasetName, d.TrainerName, d.PlansName, "2d", 0);
        Curves(3).Save(fold);
        Assert.NotNull(TrainingCurves.TryLoad(fold)); // NaN pseudo-Dice of an absent class survives the round trip

        using var http = new HttpClient { BaseAddress = sweep.Server.Url, Timeout = TimeSpan.FromSeconds(10) };
        var history = await Eventually.Until(async () =>
        {
            var doc = JsonDocument.Parse(await http.GetStringAsync("/api/jobs/2d/fold_0"));
            return doc.RootElement.GetProperty("history").GetArrayLength() == 3 ? doc : null;
        }, TimeSpan.FromSeconds(20), () => "the stored curves never showed on the job's API", transient: e => e is HttpRequestException);
        var points = history.RootElement.GetProperty("history");
        Assert.Equal(3, points[2].GetProperty("epoch").GetInt32());
        Assert.Equal(0.8, points[2].GetProperty("trainLoss").GetDouble(), 12);
        Assert.Equal(0.008, points[2].GetProperty("learningRate").GetDouble(), 12);
        Assert.Equal(5, points[2].GetProperty("totalEpochs").GetInt32());
    }
}
