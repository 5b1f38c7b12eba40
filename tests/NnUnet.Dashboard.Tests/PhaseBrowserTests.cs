using System.Text.RegularExpressions;
using Microsoft.Playwright;

namespace NnUnet.Dashboard.Tests;

/// <summary>
/// Issue 12's operator view in a real browser (Debian's chromium): a running fold's cell and its job page show the
/// phase it is in and the progress within it (a validation of 12 cases, one a second), from the worker's liveness.
/// </summary>
[Collection(BrowserCollection.Name)]
public sealed class PhaseBrowserTests
{
    private const string Chromium = "/usr/bin/chromium";

    [Fact]
    public async Task ARunningFold_ShowsItsPhase_AndTheProgressWithinIt_OnTheGridAndItsPage()
    {
        Assert.True(File.Exists(Chromium), $"{Chromium} is missing: apt-get install -y chromium (scripts/setup.sh does)");
        Environment.SetEnvironmentVariable("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1");
        await using var sweep = await SimulatedSweep.StartAsync(["2d"], [0], 3, TimeSpan.FromMilliseconds(100), workers: 1,
            validation: TimeSpan.FromSeconds(12));
        using var playwright = await Playwright.CreateAsync();
        await using var browser = await playwright.Chromium.LaunchAsync(new()
        {
            ExecutablePath = Chromium,
            Args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
        });
        var page = await browser.NewPageAsync(new() { ViewportSize = new() { Width = 1280, Height = 900 } });
        var errors = new List<string>();
        page.PageError += (_, e) => { lock (errors) errors.Add(e); };
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
