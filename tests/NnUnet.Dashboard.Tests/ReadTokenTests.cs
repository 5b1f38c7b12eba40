using System.Net;
using System.Text.Json;

namespace NnUnet.Dashboard.Tests;

/// <summary>
/// A dashboard bound beyond loopback needs its token for reading too (pages, API, events, metrics); a loopback one
/// stays readable without it. The tests may listen on loopback only, so the beyond-loopback rule is switched on with
/// <see cref="DashboardOptions.TokenForReading"/> (what a non-loopback bind defaults to, asserted separately).
/// </summary>
public sealed class ReadTokenTests
{
    private const string Token = "read-s3cret";

    [Fact]
    public void Only_a_dashboard_beyond_loopback_needs_the_token_for_reading()
    {
        Assert.True(new DashboardOptions("0.0.0.0", 5080, Token).ReadNeedsToken);
        Assert.True(new DashboardOptions("10.0.0.5", 5080, Token).ReadNeedsToken);
        Assert.False(new DashboardOptions("127.0.0.1", 5080, Token).ReadNeedsToken);
        Assert.False(new DashboardOptions("localhost", 5080, Token).ReadNeedsToken);
    }

    [Fact]
    public async Task Beyond_loopback_every_read_needs_the_token_by_header_query_or_cookie()
    {
        var source = new FakeDashboardSource(FakeDashboardSource.Sample());
        await using var server = await DashboardServer.StartAsync(new DashboardOptions(DashboardOptions.DefaultHost, 0, Token, TokenForReading: true), source);
        using var bare = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false, UseCookies = false }) { BaseAddress = server.Url, Timeout = TimeSpan.FromSeconds(10) };

        foreach (var path in new[] { "/", "/jobs/2d/fold_0", "/assets/app.js", "/api/sweep", "/api/jobs", "/api/cluster", "/api/events", "/metrics" })
        {
            using var response = await bare.GetAsync(path, HttpCompletionOption.ResponseHeadersRead);
            Assert.True(HttpStatusCode.Unauthorized == response.StatusCode, $"{path} without token: {response.StatusCode}");
            Assert.Contains("needs its token", await response.Content.ReadAsStringAsync());
        }
        using (var wrong = new HttpRequestMessage(HttpMethod.Get, "/api/sweep"))
        {
            wrong.Headers.Add(DashboardOptions.TokenHeader, Token + "x");
            Assert.Equal(HttpStatusCode.Unauthorized, (await bare.SendAsync(wrong)).StatusCode);
        }

        // an API client: the header
        using (var withHeader = new HttpRequestMessage(HttpMethod.Get, "/api/sweep"))
        {
            withHeader.Headers.Add(DashboardOptions.TokenHeader, Token);
            var sweep = await bare.SendAsync(withHeader);
            Assert.Equal(HttpStatusCode.OK, sweep.StatusCode);
            Assert.Equal("sweep-abc", JsonDocument.Parse(await sweep.Content.ReadAsStringAsync()).RootElement.GetProperty("snapshot").GetProperty("sweepId").GetString());
        }
        Assert.Equal(HttpStatusCode.OK, (await bare.GetAsync($"/metrics?token={Token}")).StatusCode);

        // a browser: the printed URL carries ?token=; the page sets the cookie and reloads without it
        Assert.Contains($"/?token={Token}#token={Token}", server.BrowserUrl);
        var open = await bare.GetAsync($"/?token={Token}");
        Assert.Equal(HttpStatusCode.Redirect, open.StatusCode);
        Assert.Equal("/", open.Headers.Location!.OriginalString);
        var cookie = Assert.Single(open.Headers.GetValues("Set-Cookie"));
        Assert.StartsWith($"{DashboardOptions.TokenCookie}={Token}", cookie);
        Assert.Contains("httponly", cookie, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("samesite=strict", cookie, StringComparison.OrdinalIgnoreCase);

        var jar = new CookieContainer();
        jar.Add(server.Url, new Cookie(DashboardOptions.TokenCookie, Token));
        using var browser = new HttpClient(new HttpClientHandler { CookieContainer = jar }) { BaseAddress = server.Url, Timeout = TimeSpan.FromSeconds(10) };
        Assert.Contains("<html", await browser.GetStringAsync("/"));
        Assert.Contains("members", await browser.GetStringAsync("/api/cluster"));
        using (var events = await browser.GetAsync("/api/events", HttpCompletionOption.ResponseHeadersRead))
        {
            Assert.Equal(HttpStatusCode.OK, events.StatusCode);
            Assert.Equal("text/event-stream", events.Content.Headers.ContentType!.MediaType);
        }

        // the cookie reads; it does not act: an action still needs the header
        Assert.Equal(HttpStatusCode.Unauthorized, (await browser.PostAsync("/api/actions/pause", null)).StatusCode);
        Assert.Empty(source.Commands);
    }

    [Fact]
    public async Task On_loopback_reading_needs_no_token_and_an_insecure_cluster_is_flagged()
    {
        var source = new FakeDashboardSource(FakeDashboardSource.Sample());
        await using var server = await DashboardServer.StartAsync(new DashboardOptions(DashboardOptions.DefaultHost, 0, Token, InsecureTransport: true), source);
        using var http = new HttpClient { BaseAddress = server.Url, Timeout = TimeSpan.FromSeconds(10) };
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/api/sweep")).StatusCode);
        Assert.DoesNotContain("?token=", server.BrowserUrl);
        var cluster = JsonDocument.Parse(await http.GetStringAsync("/api/cluster")).RootElement;
        Assert.True(cluster.GetProperty("insecure").GetBoolean());
        Assert.Equal("tcp", cluster.GetProperty("transport").GetString());
        Assert.Contains("--insecure", cluster.GetProperty("warning").GetString());
        Assert.Contains("security-warning", await http.GetStringAsync("/"));
        Assert.Contains("cluster.insecure", await http.GetStringAsync("/assets/app.js"));
    }
}
