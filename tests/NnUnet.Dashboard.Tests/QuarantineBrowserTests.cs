namespace NnUnet.Dashboard.Tests;

/// <summary>
/// A quarantined worker on the page, in a real browser (Debian's chromium, Playwright) over a simulated sweep with one
/// worker that fails every job at once: its row says quarantined, until when and why, with its last failure; the
/// Release button (token from the URL fragment) releases it, the event list says so; /metrics counts it.
/// </summary>
[Collection(BrowserCollection.Name)]
public sealed class QuarantineBrowserTests
{
    [Fact]
    public async Task AQuarantinedWorker_IsShownWithItsLastFailure_AndTheReleaseButtonReleasesIt()
    {
        await using var sweep = await SimulatedSweep.StartAsync(["2d"], [0, 1, 2, 3], 40, TimeSpan.FromMilliseconds(100), workers: 2, brokenDevice: "sim0");
        await using var chromium = await Chromium.LaunchAsync();
        var browser = chromium.Browser;
        var page = await chromium.NewPageAsync(1280, 900);
        var errors = chromium.Errors;
        await page.GotoAsync(sweep.Server.BrowserUrl);

        var row = page.Locator("#workers tbody tr.quarantined");
        await row.WaitForAsync(new() { Timeout = 60000 });
        Assert.Equal(1, await row.CountAsync());
        var worker = await row.GetAttributeAsync("data-worker");
        Assert.EndsWith("/sim0", worker);
        var state = await row.Locator(".worker-state").InnerTextAsync();
        Assert.Contains("quarantined until", state);
        // at once (the other worker could take the job), or after 3 in a row when it failed before the other one registered
        Assert.Matches($@"worker {System.Text.RegularExpressions.Regex.Escape(worker!)} quarantined for 5 min after (a failure 0 s after the start of 2d/fold_\d \(fast-failure 30 s\)|3 failures in a row): Access to the path", state);
        Assert.Matches(@"2d/fold_\d attempt 1: Access to the path '.*fold_\d' is denied\.", await row.Locator(".last-failure").InnerTextAsync());
        using (var http = new HttpClient { BaseAddress = sweep.Server.Url })
            Assert.Contains("nnunet_workers_quarantined 1\n", await http.GetStringAsync("/metrics"));

        await row.Locator("button.release").ClickAsync();
        await page.Locator("#action-result").Filter(new() { HasText = $"release: 200 worker {worker} released by operator" }).WaitForAsync(new() { Timeout = 10000 });
        await page.Locator("#events").Filter(new() { HasText = $"worker {worker} released by operator; on probation" }).WaitForAsync(new() { Timeout = 10000 });
        // on probation it takes the next ready fold, fails it at once, and is quarantined for twice as long
        await page.Locator("#workers tbody tr.quarantined .worker-state").Filter(new() { HasText = "quarantined for 10 min after a failure after its release" })
            .WaitForAsync(new() { Timeout = 30000 });
        await page.ScreenshotAsync(new() { Path = Path.Combine(Repository.TestResults(), "dashboard-quarantine.png"), FullPage = true });
        Assert.Empty(errors);
    }
}
