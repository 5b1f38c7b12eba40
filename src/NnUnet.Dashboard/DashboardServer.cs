using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using NnUnet.Cluster.Messages;
using NnUnet.Cluster.Sweeps;
using NnUnet.Core.Selection;
using NnUnet.Core.Results;

namespace NnUnet.Dashboard;

/// <summary>
/// The sweep dashboard: an in-process Kestrel server with the grid page, a job page with live curves, a JSON API,
/// Server-Sent Events, Prometheus metrics and token-protected actions. Start it with <see cref="StartAsync"/> next to
/// the coordinator (or on any node: it talks to the singleton through <see cref="IDashboardSource"/>).
/// </summary>
public sealed class DashboardServer : IAsyncDisposable
{
    internal static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        Converters = { new JsonStringEnumConverter() },
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    private readonly WebApplication _app;
    private readonly IDisposable _subscription;

    /// <summary>Base URL actually bound (with the real port when 0 was asked for), e.g. <c>http://127.0.0.1:5080</c>.</summary>
    public Uri Url { get; }

    public string Token { get; }

    public DashboardState State { get; }

    /// <summary>The URL to open: the token rides in the fragment, which browsers never send to the server.</summary>
    public string BrowserUrl => $"{Url.ToString().TrimEnd('/')}/#token={Token}";

    private DashboardServer(WebApplication app, IDisposable subscription, Uri url, string token, DashboardState state)
    {
        _app = app;
        _subscription = subscription;
        Url = url;
        Token = token;
        State = state;
    }

    public static async Task<DashboardServer> StartAsync(DashboardOptions options, IDashboardSource source, CancellationToken cancellationToken = default)
    {
        if (string.IsNullOrEmpty(options.Token)) throw new ArgumentException("dashboard: the action token must not be empty");
        var state = new DashboardState();
        var subscription = source.Subscribe(change =>
        {
            if (state.Apply(change)) _ = AnnounceEndAsync(options, source, state);
        });
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [], ContentRootPath = AppContext.BaseDirectory });
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(k =>
        {
            if (options.Host == "localhost") k.ListenLocalhost(options.Port);
            else if (IPAddress.TryParse(options.Host, out var ip)) k.Listen(ip, options.Port);
            else throw new ArgumentException($"--dashboard: '{options.Host}' is neither an IP address nor localhost");
        });
        var app = builder.Build();
        Map(app, options, source, state);
        try
        {
            await app.StartAsync(cancellationToken);
        }
        catch
        {
            subscription.Dispose();
            await app.DisposeAsync();
            throw;
        }
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        return new DashboardServer(app, subscription, new Uri(address.Replace("[::]", "localhost")), options.Token, state);
    }

    public async ValueTask DisposeAsync()
    {
        _subscription.Dispose();
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(2));
        await _app.StopAsync(stop.Token);
        await _app.DisposeAsync();
    }

    private static void Map(WebApplication app, DashboardOptions options, IDashboardSource source, DashboardState state)
    {
        app.MapGet("/", () => Asset("index.html"));
        app.MapGet("/jobs/{**id}", () => Asset("job.html"));
        app.MapGet("/assets/{name}", (string name) => Asset(name));

        app.MapGet("/api/sweep", async (CancellationToken ct) => JsonResult(SweepBody(options, await source.GetSnapshotAsync(ct))));
        app.MapGet("/api/jobs", async (CancellationToken ct) => JsonResult((await source.GetSnapshotAsync(ct)).Jobs));
        app.MapGet("/api/jobs/{**id}", async (string id, CancellationToken ct) =>
        {
            var snapshot = await source.GetSnapshotAsync(ct);
            var job = Array.Find(snapshot.Jobs, j => j.JobId == id);
            return job is null ? Results.NotFound(new { error = $"no job '{id}' in sweep {snapshot.SweepId}" })
                : JsonResult(new { job, history = DashboardState.WithStoredCurves(state.History(id), StoredCurves(options, snapshot, job), job.TotalEpochs) });
        });
        app.MapGet("/api/cluster", async (CancellationToken ct) =>
        {
            var snapshot = await source.GetSnapshotAsync(ct);
            return JsonResult(new { members = source.GetMembers(), workers = snapshot.Workers });
        });
        app.MapGet("/api/events", (HttpContext http) => StreamEventsAsync(http, state, app.Lifetime.ApplicationStopping));
        app.MapGet("/metrics", async (CancellationToken ct) =>
            Results.Text(state.Metrics(await source.GetSnapshotAsync(ct)), "text/plain; version=0.0.4; charset=utf-8"));

        app.MapPost("/api/actions/{action}", async (string action, HttpContext http, CancellationToken ct) =>
        {
            if (!TokenMatches(http.Request.Headers[DashboardOptions.TokenHeader].ToString(), options.Token))
                return Results.Json(new { ok = false, message = $"missing or wrong {DashboardOptions.TokenHeader}" }, Json, statusCode: StatusCodes.Status401Unauthorized);
            string? jobId = http.Request.Query["job"].FirstOrDefault();
            string? workerId = http.Request.Query["worker"].FirstOrDefault();
            SweepControlAction? kind = action switch
            {
                "pause" => SweepControlAction.Pause,
                "resume" => SweepControlAction.Resume,
                "retry" => SweepControlAction.RetryJob,
                "cancel" => SweepControlAction.CancelJob,
                "release" => SweepControlAction.ReleaseWorker,
                _ => null,
            };
            if (kind is null) return Results.Json(new { ok = false, message = $"unknown action '{action}' (pause, resume, retry, cancel, release)" }, Json, statusCode: 404);
            if (kind is SweepControlAction.RetryJob or SweepControlAction.CancelJob && string.IsNullOrEmpty(jobId))
                return Results.Json(new { ok = false, message = $"{action} needs ?job=JOB_ID" }, Json, statusCode: 400);
            if (kind is SweepControlAction.ReleaseWorker && string.IsNullOrEmpty(workerId))
                return Results.Json(new { ok = false, message = "release needs ?worker=WORKER_ID" }, Json, statusCode: 400);
            var result = await source.ControlAsync(new SweepControl(kind.Value, jobId, workerId), ct);
            return Results.Json(result, Json, statusCode: result.Ok ? 200 : 409);
        });
    }

    /// <summary>Constant-time comparison of UTF-8 bytes, so response timing does not leak how much of a guess was right.</summary>
    internal static bool TokenMatches(string? presented, string expected)
    {
        if (string.IsNullOrEmpty(presented)) return false;
        return CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(presented), Encoding.UTF8.GetBytes(expected));
    }

    private static IResult JsonResult(object value) => Results.Json(value, Json);

    /// <summary>The fold's progress.json when this node sees the results folder (the coordinator's usually does).</summary>
    private static TrainingCurves? StoredCurves(DashboardOptions options, SweepView snapshot, JobView job)
    {
        var definition = snapshot.Definition;
        string? dataset = options.DatasetName ?? definition?.DatasetName;
        if (options.ResultsRoot is null || dataset is null || definition is null || job.Kind != JobKind.Train || job.Configuration is null) return null;
        return TrainingCurves.TryLoad(ResultLayout.FoldFolder(options.ResultsRoot, dataset, definition.TrainerName, definition.PlansName,
            job.Configuration, job.Fold));
    }

    /// <summary>The body of <c>/api/sweep</c> and of the end announcement: the snapshot and the selection.</summary>
    internal static object SweepBody(DashboardOptions options, SweepView snapshot) => new { snapshot, selection = ReadSelection(options, snapshot) };

    /// <summary>
    /// The last change ended the sweep: read the final snapshot now, while the coordinator still answers (the process
    /// that hosts a sweep stops soon after its end), and hand it to the clients. Best effort: without an answer the
    /// pages keep what the changes told them.
    /// </summary>
    private static async Task AnnounceEndAsync(DashboardOptions options, IDashboardSource source, DashboardState state)
    {
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            var snapshot = await source.GetSnapshotAsync(timeout.Token);
            if (DashboardState.IsOver(snapshot.Status)) state.AnnounceEnd(SweepBody(options, snapshot));
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // the coordinator stopped first (or does not answer): nothing better to announce
        }
    }

    /// <summary>The final selection, when the selection job (or <c>nnunet find-best</c>) wrote best_configuration.json.</summary>
    internal static object? ReadSelection(DashboardOptions options, SweepView snapshot)
    {
        string? dataset = options.DatasetName ?? snapshot.Definition?.DatasetName;
        if (options.ResultsRoot is null || dataset is null) return null;
        var path = ResultLayout.BestConfigurationJson(ResultLayout.DatasetFolder(options.ResultsRoot, dataset));
        if (!File.Exists(path)) return null;
        try
        {
            var best = BestConfiguration.Load(path);
            return new
            {
                path,
                best = best.Best.Name,
                kind = best.Best.Kind,
                configurations = best.Best.Configurations,
                folds = best.Folds,
                diceAfterPostprocessing = best.ForegroundMeanDiceAfterPostprocessing,
                postprocessingSteps = best.PostprocessingSteps,
                candidates = best.Candidates.Select(c => new { c.Name, c.Kind, dice = c.ForegroundMeanDice }).ToArray(),
            };
        }
        catch (Exception e) when (e is InvalidDataException or IOException or JsonException or InvalidOperationException or FormatException)
        {
            return new { path, error = e.Message };
        }
    }

    /// <summary>The change stream of one client; it ends when the client goes or the server stops (the page then knows the stream is over).</summary>
    private static async Task StreamEventsAsync(HttpContext http, DashboardState state, CancellationToken serverStopping)
    {
        http.Response.Headers.ContentType = "text/event-stream";
        http.Response.Headers.CacheControl = "no-cache";
        http.Response.Headers["X-Accel-Buffering"] = "no";
        var channel = state.Connect();
        using var streamEnds = CancellationTokenSource.CreateLinkedTokenSource(http.RequestAborted, serverStopping);
        var ct = streamEnds.Token;
        try
        {
            await http.Response.WriteAsync("retry: 2000\nevent: hello\ndata: {}\n\n", ct);
            await http.Response.Body.FlushAsync(ct);
            while (!ct.IsCancellationRequested)
            {
                // a comment line every 15 s keeps proxies and idle timeouts from closing the stream
                using var wait = CancellationTokenSource.CreateLinkedTokenSource(ct);
                wait.CancelAfter(TimeSpan.FromSeconds(15));
                bool ready;
                try { ready = await channel.Reader.WaitToReadAsync(wait.Token); }
                catch (OperationCanceledException) when (!ct.IsCancellationRequested) { await http.Response.WriteAsync(": keep-alive\n\n", ct); await http.Response.Body.FlushAsync(ct); continue; }
                if (!ready) break;
                while (channel.Reader.TryRead(out var frame))
                    await http.Response.WriteAsync(frame, ct);
                await http.Response.Body.FlushAsync(ct);
            }
        }
        catch (OperationCanceledException) { }
        catch (IOException) { }
        finally { state.Disconnect(channel); }
    }

    private static IResult Asset(string name)
    {
        var stream = typeof(DashboardServer).Assembly.GetManifestResourceStream("NnUnet.Dashboard.Assets." + name);
        if (stream is null) return Results.NotFound();
        string type = Path.GetExtension(name) switch
        {
            ".html" => "text/html; charset=utf-8",
            ".js" => "text/javascript; charset=utf-8",
            ".css" => "text/css; charset=utf-8",
            _ => "application/octet-stream",
        };
        return Results.Stream(stream, type);
    }
}
