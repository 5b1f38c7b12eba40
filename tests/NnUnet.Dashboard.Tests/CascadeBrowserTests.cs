namespace NnUnet.Dashboard.Tests;

/// <summary>
/// The grid of a sweep with a cascade, in a real browser (Debian's chromium): the cascade folds show as waiting, naming
/// the low-res folds they wait for, and the count drops as those finish; then they run and complete.
/// </summary>
[Collection(BrowserCollection.Name)]
public sealed class CascadeBrowserTests
{
    [Fact]
    public async Task CascadeFolds_ShowWaitingForTheLowresFolds_ThenRun()
    {
        int[] folds = [0, 1, 2, 3, 4];
        await using var sweep = await SimulatedSweep.StartAsync(["3d_lowres", "3d_cascade_fullres"], folds, 4, TimeSpan.FromMilliseconds(250), workers: 1,
            deferWorkers: true);
        await using var chromium = await Chromium.LaunchAsync();
        var browser = chromium.Browser;
        var page = await chromium.NewPageAsync(1280, 700);
        var errors = chromium.Errors;
        await page.GotoAsync(sweep.Server.BrowserUrl);

        // before any worker exists every cascade fold waits for all five low-res folds
        const string cascadeCells = "[...document.querySelectorAll('#grid td.cell')].filter(td => td.dataset.job.startsWith('3d_cascade_fullres/'))";
        await page.WaitForFunctionAsync($"() => {cascadeCells}.length === 5 && {cascadeCells}.every(td => td.dataset.state === 'waiting')",
            null, new() { Timeout = 20000 });
        foreach (int fold in folds)
            Assert.Contains("for 5 of 5: 3d_lowres", await page.Locator($"td[data-job=\"3d_cascade_fullres/fold_{fold}\"]").TextContentAsync());

        // with one worker the low-res folds finish one by one: the cells count down while still waiting
        sweep.StartWorkers();
        await page.WaitForFunctionAsync(
            $"() => {cascadeCells}.every(td => td.dataset.state === 'waiting' && /for [1-4] of 5: 3d_lowres/.test(td.textContent))",
            null, new() { Timeout = 60000 });
        await page.WaitForFunctionAsync($"() => {cascadeCells}.some(td => td.dataset.state === 'running')", null, new() { Timeout = 60000 });
        Assert.Equal(5, await page.EvaluateAsync<int>(
            "() => [...document.querySelectorAll('#grid td.cell')].filter(td => td.dataset.job.startsWith('3d_lowres/') && td.dataset.state === 'completed').length"));
        await page.WaitForFunctionAsync("() => [...document.querySelectorAll('#grid td.cell')].every(td => td.dataset.state === 'completed')",
            null, new() { Timeout = 60000 });
        Assert.Empty(errors);
    }
}

/// <summary>Browser tests run one after the other: two Chromiums and two sweeps at once starve each other on a small
/// machine (the other test's pause request then times out).</summary>
[CollectionDefinition(Name)]
public sealed class BrowserCollection
{
    public const string Name = "browser";
}
