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
/// each exactly once. Reports assignment throughput and the coordinator process's peak working set (figures in
/// docs/reliability.md).
/// </summary>
[Trait("Category", "Load")]
[Collection(ProcessTests.Collection)]
public sealed class ThousandWorkersLoadTests(ITestOutputHelper output) : IDisposable
{
    private const int Systems = 8, WorkersPerSystem = 125, Folds = 2500;
    private readonly ProcessCluster _cluster = new("""
        akka.loglevel = WARNING
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
        var coordinator = _cluster.Coordinator("-c", "2d,3d_fullres", "--folds", string.Join(",", Enumerable.Range(0, Folds)), "--epochs", "1");
        var log = new SimulatedRunLog();
        var backend = new SimulatedBackendOptions { EpochDuration = _ => TimeSpan.Zero, Log = log };
        for (int s = 0; s < Systems; s++)
        {
            var config = ClusterConfig.Build(new NodeOptions(NodeKind.Worker, Seeds: [_cluster.Seed],
                ExtraHocon: LocalCluster.TestHocon + "\nakka.cluster.failure-detector.acceptable-heartbeat-pause = 5s\n"));
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
        int workers = grid.RootElement.GetProperty("workers").GetArrayLength();
        var firstAssigned = jobs.Min(j => j.GetProperty("started_at").GetDateTime());
        var lastFinished = jobs.Max(j => j.GetProperty("finished_at").GetDateTime());
        var sweepSeconds = (lastFinished - firstAssigned).TotalSeconds;
        output.WriteLine($"LOAD: {jobs.Length} jobs on {workers} registered workers ({Systems} systems): sweep {sweepSeconds:F1} s from first assignment " +
            $"to last completion = {jobs.Length / sweepSeconds:F0} assignments/s; whole test {total.TotalSeconds:F0} s; coordinator peak working set " +
            $"{peakWorkingSet / (1024 * 1024)} MiB; runs {log.Runs.Count} (cancelled {log.Runs.Count(r => r.Cancelled)})");
    }

    private static string Tail(string text) => text.Length > 4000 ? text[^4000..] : text;
}
