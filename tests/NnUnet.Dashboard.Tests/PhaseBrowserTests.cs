using System.Text.RegularExpressions;

namespace NnUnet.Dashboard.Tests;

/// <summary>
/// Issue 12's operator view in a real browser (Debian's chromium): a running fold's cell and its job page show the
/// phase it is in and the progress within it (a validation of 12 cases, one a second), from the worker's liveness.
/// </summary>
[Collection(BrowserCollection.Name)]
public sealed class PhaseBrowserTests
{
    [Fact]
    public async Task ARunningFold_ShowsItsPhase_AndTheProgressWithinIt_OnTheGridAndItsPage()
    {
        await using var sweep = await SimulatedSweep.StartAsync(["2d"], [0], 3, TimeSpan.FromMilliseconds(100), workers: 1,
            validation: TimeSpan.FromSeconds(12));
        await using var chromium = await Chromium.LaunchAsync();
        var browser = chromium.Browser;
        var page = await chromium.NewPageAsync(1280, 900);
        var errors = chromium.Errors;
        await page.GotoAsync(sweep.Server.BrowserUrl);

        var phase = page.Locator("[data-job=\"2d/fold_0\"] .phase");
        await phase.Filter(new() { HasTextRegex = new Regex(@"^validating ([2-9]|1[01])/12$") }).WaitForAsync(new() { Timeout = 60000 });
        var first = await phase.InnerTextAsync();
        // the counter moves while the phase lasts
        await page.WaitForFunctionAsync($"() => {{ const e = document.querySelector('[data-job=\"2d/fold_0\"] .phase'); return e && e.textContent !== '{first}'; }}",
            null, new() { Timeout = 10000 });

        var job = await browser.NewPageAsync();
        await job.GotoAsync(new Uri(sweep.Server.Url, "/jobs/2d/fold_0").ToString());
        await job.Locator("#job-phase").Filter(new() { HasTextRegex = new Regex(@"^validating \d+/12$") }).WaitForAsync(new() { Timeout = 10000 });
        Assert.Equal("1", await job.Locator("#job-attempt").InnerTextAsync());

        // done: no phase any more
        await page.Locator("[data-job=\"2d/fold_0\"][data-state=\"completed\"]").WaitForAsync(new() { Timeout = 60000 });
        Assert.Equal(0, await phase.CountAsync());
        Assert.Empty(errors);
    }
}
