namespace NnUnet.Dashboard.Tests;

/// <summary>
/// The test-set prediction split into shards (issue 16), in a real browser (Debian's chromium): the shards and the merge
/// job show among the final stages, the shards run side by side on the workers with their progress within the phase
/// ("predicting 0/1"), the merge waits for them, and everything completes.
/// </summary>
[Collection(BrowserCollection.Name)]
public sealed class PredictShardsBrowserTests
{

    [Fact]
    public async Task PredictShards_ShowAsFinalStages_RunSideBySideWithTheirProgress_ThenTheMerge()
    {
        await using var sweep = await SimulatedSweep.StartAsync(["2d"], [0], 1, TimeSpan.FromMilliseconds(3000), workers: 3,
            deferWorkers: true, predictShards: 3);
        await using var chromium = await Chromium.LaunchAsync();
        var page = await chromium.NewPageAsync(1280, 700);
        var errors = chromium.Errors;
        await page.GotoAsync(sweep.Server.BrowserUrl);

        const string stages = "[...document.querySelectorAll('#stages td.cell')]";
        await page.WaitForFunctionAsync($"() => {stages}.length === 5", null, new() { Timeout = 20000 });
        Assert.Equal(["select", "predict/shard_0", "predict/shard_1", "predict/shard_2", "predict"],
            await page.EvaluateAsync<string[]>($"() => {stages}.map(td => td.dataset.job)"));
        Assert.Equal("waiting", await page.Locator("td[data-job=\"predict\"]").GetAttributeAsync("data-state"));

        sweep.StartWorkers();
        const string shards = $"{stages}.filter(td => td.dataset.job.startsWith('predict/shard_'))";
        // three workers: the three shards run at once, each showing its phase progress; the merge still waits
        await page.WaitForFunctionAsync($"() => {shards}.filter(td => td.dataset.state === 'running').length === 3", null, new() { Timeout = 60000 });
        await page.WaitForFunctionAsync($"() => {shards}.some(td => /predicting 0\\/1/.test(td.textContent))", null, new() { Timeout = 20000 });
        Assert.Equal("waiting", await page.Locator("td[data-job=\"predict\"]").GetAttributeAsync("data-state"));
        await page.WaitForFunctionAsync($"() => {stages}.every(td => td.dataset.state === 'completed')", null, new() { Timeout = 60000 });
        await page.ScreenshotAsync(new() { Path = Path.Combine(Repository.TestResults(), "dashboard-predict-shards.png"), FullPage = true });
        Assert.Empty(errors);
    }
}
