using System.Net;
using System.Text.Json;
using System.Text.RegularExpressions;
using NnUnet.Cluster.Messages;
using NnUnet.Cluster.Sweeps;
using NnUnet.Core.Selection;

namespace NnUnet.Dashboard.Tests;

/// <summary>Endpoints of a real Kestrel on a random loopback port over a fake source.</summary>
public sealed class EndpointTests : IAsyncLifetime
{
    private const string Token = "s3cret-token";
    private readonly FakeDashboardSource _source = new(FakeDashboardSource.Sample());
    private readonly string _results = Directory.CreateTempSubdirectory("nnunet-dash-").FullName;
    private DashboardServer _server = null!;
    private HttpClient _http = null!;

    public async Task InitializeAsync()
    {
        _server = await DashboardServer.StartAsync(new DashboardOptions(DashboardOptions.DefaultHost, 0, Token, _results), _source);
        _http = new HttpClient { BaseAddress = _server.Url, Timeout = TimeSpan.FromSeconds(10) };
    }

    public async Task DisposeAsync()
    {
        _http.Dispose();
        await _server.DisposeAsync();
        Directory.Delete(_results, true);
    }

    private static JobProgressed Progress(string job, int epoch, double seconds) =>
        new(job, 1, new EpochMetrics(epoch, 10, 1.0 / epoch, 1.1 / epoch, 0.1 * epoch, 0.08 * epoch, seconds), DateTime.UtcNow);

    private static SweepChanged Changed(JobView job, string kind, JobProgressed? p = null) =>
        new("sweep-abc", new SweepEventView(DateTime.UtcNow, kind, job.JobId, $"{job.JobId} {kind}"), job, SweepStatus.Running, p);

    [Fact]
    public void DefaultOptions_BindLoopbackOnly()
    {
        Assert.Equal("127.0.0.1", _server.Url.Host);
        Assert.Equal(("127.0.0.1", 5080), DashboardOptions.ParseEndpoint("5080"));
        Assert.Equal(("0.0.0.0", 80), DashboardOptions.ParseEndpoint("0.0.0.0:80"));
        Assert.Equal(("::1", 81), DashboardOptions.ParseEndpoint("[::1]:81"));
        Assert.True(new DashboardOptions("127.0.0.1", 1, "t").IsLoopback);
        Assert.False(new DashboardOptions("0.0.0.0", 1, "t").IsLoopback);
        Assert.Throws<ArgumentException>(() => DashboardOptions.ParseEndpoint("host:notaport"));
        Assert.Contains("#token=" + Token, _server.BrowserUrl);
    }

    [Fact]
    public async Task Post_WithoutOrWithWrongToken_IsRefused_AndNothingReachesTheCoordinator()
    {
        var none = await _http.PostAsync("/api/actions/pause", null);
        Assert.Equal(HttpStatusCode.Unauthorized, none.StatusCode);
        using var wrong = new HttpRequestMessage(HttpMethod.Post, "/api/actions/pause");
        wrong.Headers.Add(DashboardOptions.TokenHeader, Token + "x");
        Assert.Equal(HttpStatusCode.Unauthorized, (await _http.SendAsync(wrong)).StatusCode);
        Assert.Empty(_source.Commands);
        // GET on an action is not an action
        Assert.Equal(HttpStatusCode.MethodNotAllowed, (await _http.GetAsync("/api/actions/pause")).StatusCode);
    }

    [Fact]
    public async Task Post_WithToken_SendsTheCommand()
    {
        async Task<HttpResponseMessage> Post(string url)
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, url);
            request.Headers.Add(DashboardOptions.TokenHeader, Token);
            return await _http.SendAsync(request);
        }
        Assert.Equal(HttpStatusCode.OK, (await Post("/api/actions/pause")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await Post("/api/actions/retry?job=3d_fullres/fold_0")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await Post("/api/actions/cancel?job=2d/fold_0")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await Post("/api/actions/release?worker=10.0.0.7:4053/cuda:1")).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await Post("/api/actions/retry")).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await Post("/api/actions/release")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await Post("/api/actions/explode")).StatusCode);
        Assert.Equal([new SweepControl(SweepControlAction.Pause, null), new SweepControl(SweepControlAction.RetryJob, "3d_fullres/fold_0"),
            new SweepControl(SweepControlAction.CancelJob, "2d/fold_0"), new SweepControl(SweepControlAction.ReleaseWorker, null, "10.0.0.7:4053/cuda:1")], _source.Commands);
    }

    [Fact]
    public void TokenComparison_IsExact()
    {
        Assert.True(DashboardServer.TokenMatches("abc", "abc"));
        Assert.False(DashboardServer.TokenMatches("abd", "abc"));
        Assert.False(DashboardServer.TokenMatches("ab", "abc"));
        Assert.False(DashboardServer.TokenMatches("", "abc"));
        Assert.False(DashboardServer.TokenMatches(null, "abc"));
    }

    [Fact]
    public async Task JsonApi_ServesSnapshotJobsClusterAndHistory()
    {
        using var sweep = JsonDocument.Parse(await _http.GetStringAsync("/api/sweep"));
        var snapshot = sweep.RootElement.GetProperty("snapshot");
        Assert.Equal("sweep-abc", snapshot.GetProperty("sweepId").GetString());
        Assert.Equal("Running", snapshot.GetProperty("status").GetString());
        Assert.Equal(JsonValueKind.Null, sweep.RootElement.GetProperty("selection").ValueKind);

        using var jobs = JsonDocument.Parse(await _http.GetStringAsync("/api/jobs"));
        Assert.Equal(4, jobs.RootElement.GetArrayLength());

        using var cluster = JsonDocument.Parse(await _http.GetStringAsync("/api/cluster"));
        Assert.Equal("coordinator", cluster.RootElement.GetProperty("members")[0].GetProperty("roles")[0].GetString());
        Assert.Equal(2, cluster.RootElement.GetProperty("workers").GetArrayLength());

        var running = _source.Snapshot.Jobs[0];
        _source.Push(Changed(running, "progress", Progress(running.JobId, 1, 2.0)));
        _source.Push(Changed(running, "progress", Progress(running.JobId, 2, 3.0)));
        using var job = JsonDocument.Parse(await _http.GetStringAsync("/api/jobs/2d/fold_0"));
        var history = job.RootElement.GetProperty("history");
        Assert.Equal(2, history.GetArrayLength());
        Assert.Equal(2, history[1].GetProperty("epoch").GetInt32());
        Assert.Equal(0.16, history[1].GetProperty("emaPseudoDice").GetDouble(), 10);
        Assert.Equal(0.01 * Math.Pow(0.9, 0.9), history[1].GetProperty("learningRate").GetDouble(), 12);
        Assert.Equal(HttpStatusCode.NotFound, (await _http.GetAsync("/api/jobs/2d/fold_7")).StatusCode);
    }

    [Fact]
    public void History_ReRunFromCheckpoint_ReplacesRepeatedEpochs()
    {
        var state = new DashboardState();
        var job = FakeDashboardSource.Job("2d", 0, JobDisplayStatus.Running, 3, "w0");
        for (int e = 1; e <= 4; e++) state.Apply(Changed(job, "progress", Progress(job.JobId, e, 1)));
        state.Apply(Changed(job, "progress", Progress(job.JobId, 3, 5) with { Attempt = 2 }));
        var history = state.History(job.JobId);
        Assert.Equal([1, 2, 3], history.Select(h => h.Epoch));
        Assert.Equal(2, history[2].Attempt);
    }

    [Fact]
    public async Task Metrics_ArePrometheusText()
    {
        var running = _source.Snapshot.Jobs[0];
        _source.Push(Changed(running, "assigned"));
        _source.Push(Changed(running, "failed"));
        _source.Push(Changed(running, "progress", Progress(running.JobId, 1, 0.7)));
        _source.Push(Changed(running, "progress", Progress(running.JobId, 2, 20)));
        var response = await _http.GetAsync("/metrics");
        Assert.Equal("text/plain", response.Content.Headers.ContentType!.MediaType);
        Assert.Contains("version=0.0.4", response.Content.Headers.ContentType.ToString());
        var text = await response.Content.ReadAsStringAsync();
        // every line is a comment or "name{labels} value"
        foreach (var line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries))
            Assert.Matches(@"^(# (HELP|TYPE) \w+ .+|[a-z_]+(\{[a-z]+=""[^""]+""\})? -?[0-9.eE+-]+)$", line);
        Assert.Contains("nnunet_jobs{state=\"running\"} 1\n", text);
        Assert.Contains("nnunet_jobs{state=\"failed\"} 1\n", text);
        Assert.Contains("nnunet_jobs{state=\"completed\"} 1\n", text);
        Assert.Contains("nnunet_workers{state=\"busy\"} 1\n", text);
        Assert.Contains("nnunet_workers{state=\"idle\"} 1\n", text);
        Assert.Contains("nnunet_job_assignments_total 1\n", text);
        Assert.Contains("nnunet_job_failures_total 1\n", text);
        Assert.Contains("nnunet_epoch_duration_seconds_bucket{le=\"1\"} 1\n", text);
        Assert.Contains("nnunet_epoch_duration_seconds_bucket{le=\"30\"} 2\n", text);
        Assert.Contains("nnunet_epoch_duration_seconds_count 2\n", text);
        Assert.Contains("nnunet_epoch_duration_seconds_sum 20.7\n", text);
        Assert.Contains("nnunet_workers_quarantined 0\n", text);
        Assert.Contains("nnunet_worker_quarantined{worker=\"w1\"} 0\n", text);
    }

    [Fact]
    public async Task Metrics_ShowQuarantinedWorkers_WithTheirFailuresAndLastFailureTime()
    {
        var failedAt = new DateTime(2026, 12, 7, 1, 0, 0, DateTimeKind.Utc);
        _source.Snapshot = _source.Snapshot with
        {
            Workers = [_source.Snapshot.Workers[0], _source.Snapshot.Workers[1] with
            {
                Quarantined = true, QuarantinedUntil = failedAt.AddMinutes(5), QuarantineReason = "worker w1 quarantined for 5 min after 3 failures in a row: denied",
                LastFailure = "2d/fold_1 attempt 1: denied", LastFailureAt = failedAt, FailuresInARow = 0, Quarantines = 1,
            }, new WorkerView("gone", "", "", null, null, Quarantined: true, QuarantinedUntil: failedAt, FailuresInARow: 2, Registered: false)],
        };
        _source.Push(Changed(_source.Snapshot.Jobs[0], "quarantined"));
        var text = await _http.GetStringAsync("/metrics");
        foreach (var line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries))
            Assert.Matches(@"^(# (HELP|TYPE) \w+ .+|[a-z_]+(\{[a-z]+=""[^""]+""\})? -?[0-9.eE+-]+)$", line);
        Assert.Contains("nnunet_workers{state=\"busy\"} 1\nnnunet_workers{state=\"idle\"} 0\nnnunet_workers{state=\"quarantined\"} 1\n", text);
        Assert.Contains("nnunet_workers_quarantined 2\n", text); // the one not registered now too
        Assert.Contains("nnunet_worker_quarantined{worker=\"w1\"} 1\n", text);
        Assert.Contains("nnunet_worker_quarantined{worker=\"w0\"} 0\n", text);
        Assert.Contains("nnunet_worker_failures_in_a_row{worker=\"gone\"} 2\n", text);
        Assert.Contains($"nnunet_worker_last_failure_timestamp_seconds{{worker=\"w1\"}} {new DateTimeOffset(failedAt).ToUnixTimeSeconds()}\n", text);
        Assert.Contains("nnunet_worker_quarantines_total 1\n", text);
    }

    [Fact]
    public async Task Events_StreamChangesAsServerSentEvents()
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/api/events");
        using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType!.MediaType);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        Assert.Equal("retry: 2000", await reader.ReadLineAsync());
        Assert.Equal("event: hello", await reader.ReadLineAsync());
        var job = _source.Snapshot.Jobs[3] with { Status = JobDisplayStatus.Running };
        _source.Push(Changed(job, "assigned"));
        string? line;
        while ((line = await reader.ReadLineAsync()) != "event: change") Assert.NotNull(line);
        var data = await reader.ReadLineAsync();
        Assert.StartsWith("data: ", data);
        using var json = JsonDocument.Parse(data!["data: ".Length..]);
        Assert.Equal("3d_fullres/fold_1", json.RootElement.GetProperty("job").GetProperty("jobId").GetString());
        Assert.Equal("Running", json.RootElement.GetProperty("job").GetProperty("status").GetString());
    }

    [Fact]
    public async Task TheEnd_IsAnnouncedWithTheFinalSnapshot_AlsoToLaterClients_AndTheStreamsEndWhenTheServerStops()
    {
        var source = new FakeDashboardSource(FakeDashboardSource.Sample());
        var server = await DashboardServer.StartAsync(new DashboardOptions(DashboardOptions.DefaultHost, 0, Token, _results), source);
        using var http = new HttpClient { BaseAddress = server.Url, Timeout = TimeSpan.FromSeconds(20) };
        async Task<StreamReader> Connect()
        {
            var response = await http.GetAsync("/api/events", HttpCompletionOption.ResponseHeadersRead);
            var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
            Assert.Equal("retry: 2000", await reader.ReadLineAsync());
            Assert.Equal("event: hello", await reader.ReadLineAsync());
            return reader;
        }
        static async Task<JsonDocument> NextFinished(StreamReader reader)
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
            string? line;
            while ((line = await reader.ReadLineAsync(timeout.Token)) != "event: finished") Assert.NotNull(line);
            return JsonDocument.Parse((await reader.ReadLineAsync(timeout.Token))!["data: ".Length..]);
        }
        using var before = await Connect();

        // the last job completes: the coordinator's snapshot is final (no ETA, no job on any worker)
        var last = source.Snapshot.Jobs[0] with { Status = JobDisplayStatus.Completed, WorkerId = null };
        source.Snapshot = source.Snapshot with
        {
            Status = SweepStatus.FinishedWithFailures, Jobs = [last, .. source.Snapshot.Jobs[1..]], CompletedJobs = 2, EtaSeconds = 0,
            Workers = [.. source.Snapshot.Workers.Select(w => w with { JobId = null, Attempt = null })],
        };
        source.Push(Changed(last, "completed") with { Status = SweepStatus.FinishedWithFailures });
        using (var end = await NextFinished(before))
        {
            var snapshot = end.RootElement.GetProperty("snapshot");
            Assert.Equal("FinishedWithFailures", snapshot.GetProperty("status").GetString());
            Assert.Equal(2, snapshot.GetProperty("completedJobs").GetInt32());
            Assert.All(snapshot.GetProperty("workers").EnumerateArray(), w => Assert.Equal(JsonValueKind.Null, w.GetProperty("jobId").ValueKind));
            Assert.True(end.RootElement.TryGetProperty("selection", out _));
        }
        using var after = await Connect(); // a page opened after the end is told at once
        using (var end = await NextFinished(after))
            Assert.Equal("FinishedWithFailures", end.RootElement.GetProperty("snapshot").GetProperty("status").GetString());

        // stopping the server ends every stream (the page takes that calmly after the end)
        await server.DisposeAsync();
        Assert.Equal("", (await before.ReadToEndAsync().WaitAsync(TimeSpan.FromSeconds(10))).Trim());
        Assert.Equal("", (await after.ReadToEndAsync().WaitAsync(TimeSpan.FromSeconds(10))).Trim());
    }

    [Fact]
    public async Task Pages_AreServedByTheApp_WithoutExternalAssets()
    {
        foreach (var url in new[] { "/", "/jobs/2d/fold_0", "/assets/app.js", "/assets/style.css" })
        {
            var response = await _http.GetAsync(url);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            var body = await response.Content.ReadAsStringAsync();
            Assert.DoesNotMatch(new Regex(@"(src|href)=""(https?:)?//"), body);
            Assert.DoesNotContain("cdn", body, StringComparison.OrdinalIgnoreCase);
        }
        Assert.Equal(HttpStatusCode.NotFound, (await _http.GetAsync("/assets/nothing.js")).StatusCode);
    }

    [Fact]
    public async Task FinalSelection_IsReadFromBestConfigurationJson()
    {
        var dataset = Path.Combine(_results, "Dataset004_Hippocampus");
        Directory.CreateDirectory(dataset);
        var single = new SelectionCandidate("nnUNetTrainer__nnUNetPlans__3d_fullres", "single", ["3d_fullres"], ["m3d"], "src3d", 0.91);
        var ensemble = new SelectionCandidate("ensemble___a___b___0_1", "ensemble", ["2d", "3d_fullres"], ["m2d", "m3d"], "ens", 0.89);
        new BestConfiguration
        {
            Dataset = "Dataset004_Hippocampus", Trainer = "nnUNetTrainer", Plans = "nnUNetPlans", Folds = [0, 1], Best = single,
            ForegroundMeanDiceAfterPostprocessing = 0.915, PostprocessingFile = "pp.json", PostprocessingSteps = ["keep largest component of label 1"],
            Candidates = [single, ensemble],
        }.Save(Path.Combine(dataset, BestConfiguration.FileName));
        using var sweep = JsonDocument.Parse(await _http.GetStringAsync("/api/sweep"));
        var selection = sweep.RootElement.GetProperty("selection");
        Assert.Equal(single.Name, selection.GetProperty("best").GetString());
        Assert.Equal(0.915, selection.GetProperty("diceAfterPostprocessing").GetDouble(), 10);
        Assert.Equal(2, selection.GetProperty("candidates").GetArrayLength());
        Assert.Equal("keep largest component of label 1", selection.GetProperty("postprocessingSteps")[0].GetString());

        File.WriteAllText(Path.Combine(dataset, BestConfiguration.FileName), "{\"name\": 3");
        using var broken = JsonDocument.Parse(await _http.GetStringAsync("/api/sweep"));
        Assert.Contains(BestConfiguration.FileName, broken.RootElement.GetProperty("selection").GetProperty("path").GetString());
        Assert.True(broken.RootElement.GetProperty("selection").TryGetProperty("error", out _));
    }
}
