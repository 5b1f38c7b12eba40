using Microsoft.Playwright;

namespace NnUnet.Dashboard.Tests;

/// <summary>
/// Debian's chromium driven by Playwright (no browser is ever downloaded), one per test: its pages collect JavaScript
/// errors in <see cref="Errors"/>.
/// </summary>
internal sealed class Chromium : IAsyncDisposable
{
    private const string Executable = "/usr/bin/chromium";
    private readonly IPlaywright _playwright;
    public IBrowser Browser { get; }
    public List<string> Errors { get; } = [];

    private Chromium(IPlaywright playwright, IBrowser browser) => (_playwright, Browser) = (playwright, browser);

    public static async Task<Chromium> LaunchAsync()
    {
        Assert.True(File.Exists(Executable), $"{Executable} is missing: apt-get install -y chromium (scripts/setup.sh does)");
        Environment.SetEnvironmentVariable("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1");
        var playwright = await Playwright.CreateAsync();
        var browser = await playwright.Chromium.LaunchAsync(new()
        {
            ExecutablePath = Executable,
            Args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
        });
        return new Chromium(playwright, browser);
    }

    /// <summary>A page of the given size whose uncaught JavaScript errors go to <see cref="Errors"/>.</summary>
    public async Task<IPage> NewPageAsync(int width = 1280, int height = 900)
    {
        var page = await Browser.NewPageAsync(new() { ViewportSize = new() { Width = width, Height = height } });
        page.PageError += (_, e) => { lock (Errors) Errors.Add(e); };
        return page;
    }

    public async ValueTask DisposeAsync()
    {
        await Browser.DisposeAsync();
        _playwright.Dispose();
    }
}
