using System.Text.RegularExpressions;

namespace NnUnet.Dashboard.Tests;

/// <summary>
/// Issue 12's operator view in a real browser (Debian's chromium): a running fold's cell and its job page show the
/// phase it is in and the progress within it (a validation of 12 cases, one a second), from the worker's liveness;
/// its ETA while it runs, and once it finished, when it finished and how long it took instead.
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
        job.PageError += (_, e) => { lock (errors) errors.Add("job page: " + e); };
        await job.GotoAsync(new Uri(sweep.Server.Url, "/jobs/2d/fold_0").ToString());
        await job.Locator("#job-phase").Filter(new() { HasTextRegex = new Regex(@"^validating \d+/12$") }).WaitForAsync(new() { Timeout = 10000 });
        Assert.Equal("1", await job.Locator("#job-attempt").InnerTextAsync());
        Assert.StartsWith("ETA ", await job.Locator("#job-timing").InnerTextAsync());

        // done: no phase any more; instead of an ETA the fold's page says when it finished and how long it took (at
        // least its 12 s validation), its cell how long it took
        var cell = page.Locator("[data-job=\"2d/fold_0\"][data-state=\"completed\"]");
        await cell.WaitForAsync(new() { Timeout = 60000 });
        Assert.Equal(0, await phase.CountAsync());
        await job.Locator("#job-timing").Filter(new() { HasTextRegex = new Regex(@"^finished \S.* · took (\d+m\d{2}s|(1[2-9]|[2-5]\d)s)$") })
            .WaitForAsync(new() { Timeout = 10000 });
        Assert.Equal("–", await job.Locator("#job-phase").InnerTextAsync());
        var cellText = await cell.InnerTextAsync();
        Assert.Matches(@"took (\d+m\d{2}s|(1[2-9]|[2-5]\d)s)", cellText);
        Assert.DoesNotContain("ETA", cellText);
        Assert.Empty(errors);
    }
}
