using Microsoft.Playwright;
using NnUnet.Core.Selection;

namespace NnUnet.Dashboard.Tests;

/// <summary>
/// The page in a real browser (Debian's chromium driven by Playwright; no browser is ever downloaded) over a simulated
/// sweep: the grid appears, cells change state live without a reload, a POST without the token is refused; at the end
/// the header tells the truth (counts, no ETA, the selection's result, a calm "finished" badge that stays calm when the
/// server stops), idle workers show no job, the job page's charts fill their width; screenshots land in
/// <c>TestResults/</c> at the repository root for a human look.
/// </summary>
[Collection(BrowserCollection.Name)]
public sealed class BrowserTests
{
    [Fact]
    public async Task GridUpdatesLive_PostWithoutTokenRefused_TheEndIsShownTruly_Screenshots()
    {
        await using var sweep = await SimulatedSweep.StartAsync(["2d", "3d_fullres"], [0, 1], 12, TimeSpan.FromMilliseconds(120), workers: 2,
            deferWorkers: true);
        // paused before any worker exists: the grid then holds pending cells however long the browser takes to start,
        // and the page's Resume button (with the token from the URL fragment) is what sets them going
        // (asked until the coordinator singleton is up and answers: on a loaded machine that takes a while)
        using (var http = new HttpClient { BaseAddress = sweep.Server.Url })
            await Eventually.Until(async () =>
            {
                using var pause = new HttpRequestMessage(HttpMethod.Post, "/api/actions/pause");
                pause.Headers.Add(DashboardOptions.TokenHeader, SimulatedSweep.Token);
                using var response = await http.SendAsync(pause);
                return response.IsSuccessStatusCode;
            }, TimeSpan.FromSeconds(60), () => "the sweep could not be paused: its coordinator never answered");
        sweep.StartWorkers();
        await using var chromium = await Chromium.LaunchAsync();
        var browser = chromium.Browser;
        var page = await chromium.NewPageAsync(1280, 900);
        // JavaScript errors; HTTP error statuses (the refused POST, the favicon) are expected and left out
        var errors = chromium.Errors;
        page.Console += (_, m) => { if (m.Type == "error" && !m.Text.StartsWith("Failed to load resource", StringComparison.Ordinal)) lock (errors) errors.Add(m.Text); };
        var requests = new List<string>();
        page.Request += (_, r) => { lock (requests) requests.Add(r.Url); };

        await page.GotoAsync(sweep.Server.BrowserUrl);
        try { await page.Locator("#grid td.cell[data-state]").First.WaitForAsync(new() { Timeout = 20000 }); }
        catch (TimeoutException) { throw new TimeoutException("the grid never appeared; page errors: " + string.Join(" | ", errors)); }
        Assert.Equal(4, await page.Locator("#grid td.cell").CountAsync());
        await page.Locator("#sweep-status").Filter(new() { HasText = "Paused" }).WaitForAsync(new() { Timeout = 10000 });
        // the token moved from the URL fragment into the tab's storage
        Assert.DoesNotContain("token", page.Url);
        Assert.Equal(SimulatedSweep.Token, await page.EvaluateAsync<string>("sessionStorage.getItem('nnunet-token')"));

        var refused = await page.EvaluateAsync<int>("fetch('/api/actions/resume', { method: 'POST' }).then(r => r.status)");
        Assert.Equal(401, refused);
        Assert.Equal("Paused", await page.Locator("#sweep-status").TextContentAsync());

        var pending = await page.EvaluateAsync<string?>(
            "() => [...document.querySelectorAll('#grid td.cell')].find(td => td.dataset.state === 'ready' || td.dataset.state === 'waiting')?.dataset.job ?? null");
        Assert.NotNull(pending);
        var before = await page.Locator($"td[data-job=\"{pending}\"]").GetAttributeAsync("data-state");

        // a marker on window survives only if the page is never reloaded
        await page.EvaluateAsync("window.__noReload = true");
        await page.Locator("#resume").ClickAsync();
        await page.Locator("#action-result").Filter(new() { HasText = "resume: 200" }).WaitForAsync(new() { Timeout = 10000 });
        await page.WaitForFunctionAsync("([job, s]) => document.querySelector(`td[data-job=\"${job}\"]`).dataset.state !== s",
            new[] { pending, before }, new() { Timeout = 30000 });
        await page.WaitForFunctionAsync("() => [...document.querySelectorAll('#grid td.cell')].every(td => td.dataset.state === 'completed')",
            null, new() { Timeout = 60000 });
        Assert.True(await page.EvaluateAsync<bool>("window.__noReload === true"));
        Assert.Contains("Up", await page.Locator("#members").TextContentAsync());

        // the end, as the header tells it: the true counts, no ETA, the selection's result, a calm badge
        await page.Locator("#sweep-counts").Filter(new() { HasText = "5/5 done" }).WaitForAsync(new() { Timeout = 15000 });
        await AssertFinished(page);
        Assert.Equal("Completed", await page.Locator("#sweep-status").TextContentAsync());
        Assert.DoesNotContain("ETA", await page.Locator("header .status").InnerTextAsync());
        var selection = BestConfiguration.Load(Path.Combine(sweep.ResultsRoot, sweep.Definition.DatasetName, BestConfiguration.FileName));
        Assert.Equal($"chosen: {selection.Best.Configurations[0]} · CV Dice {selection.ForegroundMeanDiceAfterPostprocessing:F4} · postprocessing: none",
            await page.Locator("#sweep-result").TextContentAsync());
        Assert.True(await page.Locator("#pause").IsDisabledAsync());
        // no worker holds a job any more
        var workerJobs = await page.Locator("#workers tbody td:nth-child(3)").AllTextContentsAsync();
        Assert.Equal(["none", "none"], workerJobs);

        // the job page draws its curves from the live history, each as wide as its figure
        var job = await browser.NewPageAsync(new() { ViewportSize = new() { Width = 1280, Height = 700 } });
        job.PageError += (_, e) => { lock (errors) errors.Add("job page: " + e); };
        await job.GotoAsync(sweep.Server.Url + "jobs/2d/fold_0");
        await job.Locator("#chart-loss svg polyline").First.WaitForAsync(new() { Timeout = 15000 });
        Assert.Equal(2, await job.Locator("#chart-dice svg polyline").CountAsync());
        var fill = await job.EvaluateAsync<double[]>(
            "[...document.querySelectorAll('figure')].map(f => f.querySelector('svg').getBoundingClientRect().width / f.clientWidth)");
        Assert.Equal(4, fill.Length);
        Assert.All(fill, f => Assert.InRange(f, 0.95, 1.0));
        await AssertFinished(job); // told by the server's end announcement: no change comes after the end

        // the process that hosts a sweep stops soon after the end, its coordinator first: the pages stay calm and keep the end
        await sweep.StopAsTheSweepCommandDoesAsync();
        foreach (var p in new[] { page, job })
        {
            await p.Locator("#live[data-stream=closed]").WaitForAsync(new() { Timeout = 15000 });
            await AssertFinished(p);
        }
        Assert.Equal("5/5 done", await page.Locator("#sweep-counts").TextContentAsync());

        var output = Repository.TestResults();
        await page.ScreenshotAsync(new() { Path = Path.Combine(output, "dashboard.png"), FullPage = true });
        await job.ScreenshotAsync(new() { Path = Path.Combine(output, "dashboard-job.png"), FullPage = true });

        Assert.Empty(errors);
        foreach (var url in requests) Assert.StartsWith(sweep.Server.Url.ToString(), url);
    }

    private static async Task AssertFinished(IPage page)
    {
        var live = page.Locator("#live");
        await live.Filter(new() { HasText = "finished" }).WaitForAsync(new() { Timeout = 15000 });
        Assert.Equal("live done", await live.GetAttributeAsync("class")); // the calm colour, not the red of a lost link
    }
}
