using System.Diagnostics;
using Akka.Actor;
using NnUnet.Cluster.Backends;
using NnUnet.Cluster.Hosting;
using NnUnet.Cluster.Tests.Faults;
using Xunit.Abstractions;

namespace NnUnet.Cluster.Tests.Load;

/// <summary>
/// A real `nnunet coordinator` process holds 1,000 simulated GPU workers spread over 8 worker ActorSystems (in this
/// test process, every message over a real socket) and a 5,001-job sweep (2 configurations x 2,500 folds + select,
/// one instant epoch each, so the coordinator is the bottleneck). Asserts no message loss: every job completed,
/// each exactly once. The coordinator also hosts the dashboard, and 200 Server-Sent-Events clients follow
/// <c>/api/events</c> from before the first worker starts until the coordinator exits: each must stay connected and
/// receive the event of the sweep's end. Reports assignment throughput, the coordinator process's peak working set
/// and the events each SSE client received (figures in docs/reliability.md).
/// </summary>
[Trait("Category", "Load")]
[Collection(ProcessTests.Collection)]
public sealed class ThousandWorkersLoadTests(ITestOutputHelper output) : IDisposable
{
    private const int Systems = 8, WorkersPerSystem = 125, Folds = 2500, SseClients = 200;
    // No node fails here: this test measures dispatch and message loss, not failure detection (the Faults tests do).
    // The workers' retries are production's (base.hocon), not the fast test settings: with those, 1,000 workers re-sent
    // every report unanswered after 1 s and re-registered every 300 ms, starving the test process (8 worker systems,
    // 1,000 workers, 200 SSE readers on 2 cores) further. Its heartbeats then arrived seconds apart (10-20 s with other
    // test processes beside it), worker systems marked each other unreachable, and Akka's split-brain resolver downed
    // nodes that were working (every node, the coordinator included, before down-all-when-unstable was turned off).
    // The failure detector here waits longer than the test's bound, so only a real loss of messages can fail it. The
    // coordinator's start-job-transit likewise: a StartJob that spends more than 5 s in the starved process's mailboxes
    // is taken for lost and re-queued (by design; LostStartJobTests), and an instant simulated job can then finish on
    // the first worker before the cancel that follows the StartJob reaches it: one job run twice.
    private const string PatientFailureDetection = """
        akka.cluster.failure-detector.heartbeat-interval = 1s
        akka.cluster.failure-detector.acceptable-heartbeat-pause = 180s
        akka.cluster.split-brain-resolver.stable-after = 15s
        nnunet.cluster.register-retry-interval = 2s
        nnunet.cluster.report-resend-interval = 10s
        """;
    private readonly ProcessCluster _cluster = new($"""
        akka.loglevel = WARNING
        {PatientFailureDetection}
        nnunet.cluster.start-job-transit = 120s
        nnunet.cluster.progress-persist-interval = 30s
        nnunet.cluster.snapshot-every = 500
        """);
    private readonly List<ActorSystem> _systems = [];

    public void Dispose()
    {
        foreach (var s in _systems) s.Terminate().Wait(TimeSpan.FromSeconds(20));
        _cluster.Dispose();
    }

    [Fact]
    public async Task Coordinator_Holds1000Workers_And5000Jobs_EveryJobCompletedExactlyOnce()
    {
        var clock = Stopwatch.StartNew();
        int dashboardPort = ProcessCluster.FreePort();
        var coordinator = _cluster.Coordinator("-c", "2d,3d_fullres", "--folds", string.Join(",", Enumerable.Range(0, Folds)), "--epochs", "1",
            "--dashboard", $"127.0.0.1:{dashboardPort}");

        // 200 SSE clients on the coordinator's dashboard, all connected (each got its "hello") before any worker exists
        using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = SseClients + 8 })
        {
            BaseAddress = new Uri($"http://127.0.0.1:{dashboardPort}"),
            Timeout = System.Threading.Timeout.InfiniteTimeSpan,
        };
        await WaitForDashboard(http, coordinator, TimeSpan.FromSeconds(60));
        var clients = Enumerable.Range(0, SseClients).Select(_ => new SseClient()).ToArray();
        using var stopClients = new CancellationTokenSource(TimeSpan.FromSeconds(200));
        var reading = clients.Select(c => c.ReadAsync(http, stopClients.Token)).ToArray();
        await Task.WhenAll(clients.Select(c => c.Connected.Task)).WaitAsync(TimeSpan.FromSeconds(60));

        var log = new SimulatedRunLog();
        var backend = new SimulatedBackendOptions { EpochDuration = _ => TimeSpan.Zero, Log = log };
        for (int s = 0; s < Systems; s++)
        {
            // admitted as every worker of this user is: with the credential the coordinator made in nnUNet_results
            var config = ClusterConfig.Build(new NodeOptions(NodeKind.Worker, Seeds: [_cluster.Seed],
                ExtraHocon: LocalCluster.TestHocon + "\n" + PatientFailureDetection, CredentialFolder: ClusterCredential.DefaultFolder(_cluster.Results)));
            var system = NnUnetClusterHost.StartSystem(config);
            _systems.Add(system);
            NnUnetClusterHost.StartWorkers(system, Enumerable.Range(0, WorkersPerSystem).Select(i => $"sim{s}-{i}").ToArray(),
                device => new SimulatedTrainingBackend(backend, device));
        }

        long peakWorkingSet = 0;
        var coordinatorProcess = coordinator.Process;
        while (!coordinatorProcess.WaitForExit(200))
        {
            try { coordinatorProcess.Refresh(); peakWorkingSet = Math.Max(peakWorkingSet, coordinatorProcess.PeakWorkingSet64); }
            catch (InvalidOperationException) { break; }
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(170), "sweep did not finish in time:\n" + Tail(coordinator.Text));
        }
        ProcessCluster.AssertExits(coordinator, 0, TimeSpan.FromSeconds(10), "coordinator");
        var total = clock.Elapsed;

        using var grid = ProcessCluster.FinalGrid(coordinator);
        var jobs = grid.RootElement.GetProperty("jobs").EnumerateArray().ToArray();
        Assert.Equal(2 * Folds + 1, jobs.Length);
        Assert.Equal("completed", grid.RootElement.GetProperty("status").GetString());
        var completedRuns = log.Runs.Where(r => r.Completed).GroupBy(r => r.JobId).ToDictionary(g => g.Key, g => g.Count());
        foreach (var job in jobs)
        {
            var id = job.GetProperty("job_id").GetString()!;
            Assert.Equal("completed", job.GetProperty("status").GetString());
            Assert.True(completedRuns.TryGetValue(id, out var n) && n == 1, $"{id} completed {n} times");
        }
        Assert.Equal(jobs.Length, completedRuns.Count);

        // every SSE client followed the sweep to its end: connected until the coordinator went away, and got the
        // event whose status says the sweep completed (the last one published)
        await Task.WhenAll(reading).WaitAsync(TimeSpan.FromSeconds(30));
        foreach (var c in clients)
        {
            Assert.True(c.Error is null, $"an SSE client failed: {c.Error}");
            Assert.True(c.SawSweepCompleted, $"an SSE client missed the end of the sweep ({c.Changes} events)");
        }
        var perClient = clients.Select(c => c.Changes).Order().ToArray();
        var readersEnded = clock.Elapsed;
        int workers = grid.RootElement.GetProperty("workers").GetArrayLength();
        var firstAssigned = jobs.Min(j => j.GetProperty("started_at").GetDateTime());
        var lastFinished = jobs.Max(j => j.GetProperty("finished_at").GetDateTime());
        var sweepSeconds = (lastFinished - firstAssigned).TotalSeconds;
        output.WriteLine($"LOAD: {jobs.Length} jobs on {workers} registered workers ({Systems} systems): sweep {sweepSeconds:F1} s from first assignment " +
            $"to last completion = {jobs.Length / sweepSeconds:F0} assignments/s; whole test {total.TotalSeconds:F0} s; coordinator peak working set " +
            $"{peakWorkingSet / (1024 * 1024)} MiB; runs {log.Runs.Count} (cancelled {log.Runs.Count(r => r.Cancelled)})");
        output.WriteLine($"SSE: {SseClients} clients all saw the end; change events per client min {perClient[0]}, median {perClient[perClient.Length / 2]}, " +
            $"max {perClient[^1]} (each client's queue keeps the newest 1,000 when it falls behind); all streams closed {readersEnded.TotalSeconds:F0} s into the test");
    }

    private static Task WaitForDashboard(HttpClient http, ProcessCluster.Running coordinator, TimeSpan timeout) =>
        Eventually.Until(async () =>
        {
            using var response = await http.GetAsync("/api/cluster");
            return response.IsSuccessStatusCode;
        }, timeout, () => "the coordinator's dashboard did not answer:\n" + Tail(coordinator.Text), transient: e => e is HttpRequestException);

    /// <summary>One <c>/api/events</c> reader: counts change events, notes the sweep's end; the stream ends when the coordinator exits.</summary>
    private sealed class SseClient
    {
        public TaskCompletionSource Connected { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public int Changes { get; private set; }
        public bool SawSweepCompleted { get; private set; }
        public Exception? Error { get; private set; }

        public async Task ReadAsync(HttpClient http, CancellationToken ct)
        {
            try
            {
                using var response = await http.GetAsync("/api/events", HttpCompletionOption.ResponseHeadersRead, ct);
                response.EnsureSuccessStatusCode();
                using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(ct));
                string? eventName = null;
                while (await reader.ReadLineAsync(ct) is { } line)
                {
                    if (line.StartsWith("event: ", StringComparison.Ordinal)) eventName = line["event: ".Length..];
                    else if (line.StartsWith("data: ", StringComparison.Ordinal))
                    {
                        if (eventName == "hello") Connected.TrySetResult();
                        else if (eventName == "change")
                        {
                            Changes++;
                            if (line.Contains("\"status\":\"Completed\"", StringComparison.Ordinal)) SawSweepCompleted = true;
                        }
                    }
                }
            }
            // the coordinator shutting down ends the response; anything before the end of the sweep is a failure
            catch (Exception e) when (e is IOException or HttpRequestException && SawSweepCompleted) { }
            catch (Exception e)
            {
                Error = e;
                Connected.TrySetException(e);
            }
        }
    }

    private static string Tail(string text) => text.Length > 4000 ? text[^4000..] : text;
}
