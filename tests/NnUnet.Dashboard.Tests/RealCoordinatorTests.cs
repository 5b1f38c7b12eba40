using System.Net;
using System.Text.Json;

namespace NnUnet.Dashboard.Tests;

/// <summary>The dashboard over a real coordinator and simulated workers: history, cluster members, actions.</summary>
public sealed class RealCoordinatorTests
{
    [Fact]
    public async Task LiveSweep_ShowsEpochHistoryMembersAndObeysPauseResume()
    {
        await using var sweep = await SimulatedSweep.StartAsync(["2d"], [0, 1], 30, TimeSpan.FromMilliseconds(80), workers: 2);
        using var http = new HttpClient { BaseAddress = sweep.Server.Url, Timeout = TimeSpan.FromSeconds(10) };

        // per-epoch history arrives through the published changes
        var history = await Eventually.Until(async () =>
        {
            var doc = JsonDocument.Parse(await http.GetStringAsync("/api/jobs/2d/fold_0"));
            return doc.RootElement.GetProperty("history").GetArrayLength() >= 3 ? doc : null;
        }, TimeSpan.FromSeconds(30), () => "no epoch history for 2d/fold_0", transient: e => e is HttpRequestException);
        var points = history.RootElement.GetProperty("history");
        Assert.Equal(1, points[0].GetProperty("epoch").GetInt32());
        Assert.Equal(2, points[1].GetProperty("epoch").GetInt32());
        Assert.True(points[1].GetProperty("epochSeconds").GetDouble() > 0);

        using var cluster = JsonDocument.Parse(await http.GetStringAsync("/api/cluster"));
        var member = cluster.RootElement.GetProperty("members")[0];
        Assert.Equal("Up", member.GetProperty("status").GetString());
        Assert.True(member.GetProperty("reachable").GetBoolean());
        Assert.Contains("coordinator", member.GetProperty("roles").EnumerateArray().Select(r => r.GetString()));
        Assert.Equal(2, cluster.RootElement.GetProperty("workers").GetArrayLength());

        Assert.Equal(HttpStatusCode.Unauthorized, (await http.PostAsync("/api/actions/pause", null)).StatusCode);
        async Task<HttpStatusCode> Post(string url)
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, url);
            request.Headers.Add(DashboardOptions.TokenHeader, SimulatedSweep.Token);
            return (await http.SendAsync(request)).StatusCode;
        }
        Assert.Equal(HttpStatusCode.OK, await Post("/api/actions/pause"));
        using (var paused = JsonDocument.Parse(await http.GetStringAsync("/api/sweep")))
            Assert.Equal("Paused", paused.RootElement.GetProperty("snapshot").GetProperty("status").GetString());
        Assert.Equal(HttpStatusCode.OK, await Post("/api/actions/cancel?job=2d/fold_1"));
        Assert.Equal(HttpStatusCode.Conflict, await Post("/api/actions/retry?job=no/such_job"));
        Assert.Equal(HttpStatusCode.OK, await Post("/api/actions/resume"));

        var metrics = await http.GetStringAsync("/metrics");
        Assert.Contains("nnunet_jobs{state=\"cancelled\"} 1\n", metrics);
        Assert.Matches(@"nnunet_job_assignments_total [1-9]", metrics);
        Assert.Matches(@"nnunet_epoch_duration_seconds_count [1-9]", metrics);
    }
}
