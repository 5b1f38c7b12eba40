using Akka.Actor;
using NnUnet.Cluster.Actors;
using NnUnet.Cluster.Backends;
using NnUnet.Cluster.Hosting;
using NnUnet.Cluster.Messages;
using NnUnet.Cluster.Sweeps;
using NnUnet.Core.Results;

namespace NnUnet.Cluster.Tests;

/// <summary>
/// Real Akka clusters on 127.0.0.1 (ports picked by the OS) in one test process: coordinator and worker systems,
/// a temp nnUNet_results folder with the SQLite journal. Every system verifies our messages (<see cref="VerifyOurMessages"/>:
/// every INnUnetMessage delivered on it, local ones included, is a MessagePack copy) rather than running with
/// serialize-messages = on, which checks every message or none: on the coordinator Akka.Persistence.Sql sends itself a
/// message holding a Task, and on any node Akka's own local ReachabilityChanged fails it and is dropped before the
/// split-brain resolver sees it (which made partition tests time out). Every coordinator-worker message
/// also crosses a real socket, and <see cref="SerializerTests"/> round-trips every message type.
/// </summary>
public sealed class LocalCluster : IDisposable
{
    /// <summary>Fast failure detection and hand-over for tests; production values are in cluster-config/base.hocon.</summary>
    public const string TestHocon = """
        akka.loglevel = WARNING
        akka.cluster.failure-detector.heartbeat-interval = 200ms
        akka.cluster.failure-detector.acceptable-heartbeat-pause = 1s
        akka.cluster.failure-detector.threshold = 8.0
        akka.cluster.split-brain-resolver.stable-after = 1s
        akka.cluster.gossip-interval = 200ms
        akka.cluster.leader-actions-interval = 200ms
        akka.cluster.unreachable-nodes-reaper-interval = 200ms
        akka.cluster.periodic-tasks-initial-delay = 100ms
        akka.cluster.singleton.hand-over-retry-interval = 200ms
        akka.cluster.singleton-proxy.singleton-identification-interval = 200ms
        akka.remote.dot-netty.tcp.batching.enabled = false
        nnunet.cluster.register-retry-interval = 300ms
        nnunet.cluster.report-resend-interval = 1s
        nnunet.cluster.progress-persist-interval = 0s
        nnunet.cluster.lease-check-interval = 200ms
        nnunet.cluster.snapshot-every = 25
        nnunet.cluster.stop-timeout = 5s
        nnunet.cluster.adoption-grace = 2s
        """;

    public string ResultsRoot { get; } = Directory.CreateTempSubdirectory("nnunet-cluster-").FullName;
    public string Database => Path.Combine(ResultsRoot, "Dataset004_Hippocampus", ResultLayout.SweepDatabaseFile);
    public SimulatedRunLog Log { get; } = new();
    private readonly List<ActorSystem> _systems = [];

    public static SweepDefinition Definition(string[] configs, int[] folds, int epochs, int maxAttempts = 3) =>
        SweepDefinition.Create("Dataset004_Hippocampus", "nnUNetPlans", "nnUNetTrainer", configs, folds, epochs, false, maxAttempts);

    public ActorSystem StartCoordinator(SweepDefinition definition, string? extraHocon = null, params Address[] seeds)
    {
        var config = ClusterConfig.Build(new NodeOptions(NodeKind.Coordinator, Seeds: seeds.Select(s => s.ToString()).ToArray(),
            SqliteJournalPath: Database, ExtraHocon: (extraHocon ?? "") + "\n" + VerifyOurMessages.Hocon + "\n" + TestHocon));
        var system = NnUnetClusterHost.StartSystem(config);
        _systems.Add(system);
        NnUnetClusterHost.StartCoordinator(system, NnUnetClusterHost.CoordinatorSettingsFrom(system.Settings.Config, definition, ResultsRoot));
        return system;
    }

    public ActorSystem StartWorker(Address seed, int workers, SimulatedBackendOptions options, string? extraHocon = null) =>
        StartWorkerNode(seed, workers, options, _ => Task.FromResult<SweepFinished>(null!), extraHocon).System;

    /// <summary>A worker node whose end-of-sweep watcher (<paramref name="watchFinish"/>) starts before its workers, as in `nnunet worker`.</summary>
    public (ActorSystem System, Task<SweepFinished> Finished) StartWorkerNode(Address seed, int workers, SimulatedBackendOptions options,
        Func<ActorSystem, Task<SweepFinished>> watchFinish, string? extraHocon = null)
    {
        var system = StartWorkerSystem(seed, extraHocon);
        var finished = watchFinish(system);
        NnUnetClusterHost.StartWorkers(system, Enumerable.Range(0, workers).Select(i => $"sim{i}").ToArray(),
            device => new SimulatedTrainingBackend(options, device));
        return (system, finished);
    }

    /// <summary>A worker node without worker actors yet (a test starts its own).</summary>
    public ActorSystem StartWorkerSystem(Address seed, string? extraHocon = null)
    {
        var config = ClusterConfig.Build(new NodeOptions(NodeKind.Worker, Seeds: [seed.ToString()],
            ExtraHocon: (extraHocon ?? "") + "\n" + VerifyOurMessages.Hocon + "\n" + TestHocon));
        var system = NnUnetClusterHost.StartSystem(config);
        _systems.Add(system);
        return system;
    }

    /// <summary>
    /// A node with one simulated worker (20 ms epochs) that talks to the coordinator through an actor made by
    /// <paramref name="filter"/> from the node's coordinator proxy: a test drops or delays chosen messages there.
    /// <paramref name="tune"/> adjusts the worker's settings (resend or liveness intervals).
    /// </summary>
    public void StartWorkerThrough(Address seed, Func<IActorRef, Props> filter, Func<WorkerSettings, WorkerSettings> tune)
    {
        var node = StartWorkerSystem(seed);
        var filtered = node.ActorOf(filter(NnUnetClusterHost.CoordinatorProxy(node)));
        var self = AddressOf(node);
        node.ActorOf(SweepWorker.Props(tune(new WorkerSettings($"{self.Host}:{self.Port}/lossy", self.ToString(), "sim",
            new SimulatedTrainingBackend(Backend(TimeSpan.FromMilliseconds(20)), "sim"), filtered, TimeSpan.FromMilliseconds(300)))));
    }

    public SimulatedBackendOptions Backend(TimeSpan epoch, Func<JobSpec, int, string?>? failAt = null, Action<JobSpec, int>? afterEpoch = null) =>
        new() { EpochDuration = _ => epoch, FailAt = failAt ?? ((_, _) => null), AfterEpoch = afterEpoch, Log = Log };

    public static Address AddressOf(ActorSystem system) => Akka.Cluster.Cluster.Get(system).SelfAddress;

    /// <summary>Polls the read model until the sweep has finished (or fails the test after the timeout).</summary>
    public static Task<SweepView> WaitFinished(ActorSystem asker, TimeSpan timeout) =>
        WaitUntil(asker, s => s.Status is SweepStatus.Completed or SweepStatus.FinishedWithFailures, timeout, "sweep did not finish in time");

    /// <summary>Polls the read model (through the singleton proxy of <paramref name="asker"/>) until the condition holds.</summary>
    public static Task<SweepView> WaitUntil(ActorSystem asker, Func<SweepView, bool> condition, TimeSpan timeout, string what)
    {
        SweepView? last = null;
        return Eventually.Until(async () =>
            {
                last = await NnUnetClusterHost.GetViewAsync(asker, TimeSpan.FromSeconds(2));
                return condition(last) ? last : null;
            }, timeout,
            () => what + "; last state:\n" + (last is null ? "(no answer)"
                : string.Join("\n", last.Jobs.Select(j => $"{j.JobId} {j.Status} attempt {j.Attempt} {j.WorkerId} {j.LastError}"))),
            transient: e => e is AskTimeoutException);
    }

    /// <summary>Ends a worker system like a crash: no graceful leave, the cluster has to notice and down it.</summary>
    public static async Task Crash(ActorSystem system)
    {
        await system.Terminate();
    }

    public void Dispose()
    {
        foreach (var s in _systems) s.Terminate().Wait(TimeSpan.FromSeconds(10));
        try { Directory.Delete(ResultsRoot, true); } catch (IOException) { }
    }

    /// <summary>HOCON for a node that will be "crashed": terminating it does not leave the cluster gracefully.</summary>
    public const string CrashableHocon = """
        akka.coordinated-shutdown.run-by-actor-system-terminate = off
        akka.cluster.run-coordinated-shutdown-when-down = off
        """;
}
