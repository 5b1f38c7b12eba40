using System.Runtime.CompilerServices;
using Akka.Actor;
using Akka.Cluster.Tools.PublishSubscribe;
using Akka.Cluster.Tools.Singleton;
using Akka.Configuration;
using Akka.Pattern;
using NnUnet.Cluster.Actors;
using NnUnet.Cluster.Backends;
using NnUnet.Cluster.Messages;
using NnUnet.Cluster.Sweeps;

namespace NnUnet.Cluster.Hosting;

/// <summary>
/// Starting the pieces of a node: the actor system (joining its seeds, or itself), the coordinator singleton, the
/// proxy to it, and the worker actors. The CLI verbs and the tests use only this.
/// </summary>
public static class NnUnetClusterHost
{
    public const string CoordinatorManagerName = "sweep-coordinator";
    public const string CoordinatorProxyName = "sweep-coordinator-proxy";

    /// <summary>Starts the actor system; with no seed nodes configured the node forms a cluster of its own.</summary>
    public static ActorSystem StartSystem(Config config)
    {
        var system = ClusterTls.IsPinned(config)
            ? ActorSystem.Create(ClusterConfig.SystemName, ClusterTls.PinnedSetup(ref config))
            : ActorSystem.Create(ClusterConfig.SystemName, config);
        var cluster = Akka.Cluster.Cluster.Get(system);
        if (config.GetStringList("akka.cluster.seed-nodes").Count == 0) cluster.Join(cluster.SelfAddress);
        return system;
    }

    /// <summary>Coordinator settings from <c>nnunet.cluster</c> in the node's configuration.</summary>
    public static CoordinatorSettings CoordinatorSettingsFrom(Config config, SweepDefinition definition, string resultsRoot, IResultStore? resultStore = null)
    {
        var c = config.GetConfig("nnunet.cluster");
        return new CoordinatorSettings(definition, Path.GetFullPath(resultsRoot), resultStore ?? new FileResultStore(),
            c.GetTimeSpan("heartbeat-lease"), c.GetTimeSpan("lease-check-interval"), c.GetTimeSpan("progress-persist-interval"),
            c.GetInt("snapshot-every"), AdoptionGrace: c.GetTimeSpan("adoption-grace"),
            Limits: new FailureLimits(c.GetInt("max-requeues", FailureLimits.DefaultMaxRequeues))
            {
                QuarantineAfterFailures = c.GetInt("quarantine-after-failures", FailureLimits.DefaultQuarantineAfterFailures),
                QuarantineFastFailure = c.GetTimeSpan("quarantine-fast-failure", FailureLimits.Default.QuarantineFastFailure),
                QuarantineBackoff = c.GetTimeSpan("quarantine-backoff", FailureLimits.Default.QuarantineBackoff),
                QuarantineMaxBackoff = c.GetTimeSpan("quarantine-max-backoff", FailureLimits.Default.QuarantineMaxBackoff),
            },
            StallTimeout: c.GetTimeSpan("stall-timeout", TimeSpan.FromMinutes(30)),
            StartJobTransit: c.GetTimeSpan("start-job-transit", TimeSpan.FromSeconds(5)));
    }

    /// <summary>
    /// The coordinator as a cluster singleton on the <c>coordinator</c> role, under a back-off supervisor so that a
    /// journal failure (which stops a persistent actor) restarts it with recovery instead of leaving the sweep headless.
    /// </summary>
    public static IActorRef StartCoordinator(ActorSystem system, CoordinatorSettings settings)
    {
        var supervised = BackoffSupervisor.Props(Backoff.OnStop(SweepCoordinator.Props(settings), "sweep",
                TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(30), 0.2, -1)
            // hand-over: the child stops once its journal writes are done, then the supervisor stops too
            .WithFinalStopMessage(m => m is SweepCoordinator.Stop));
        return system.ActorOf(ClusterSingletonManager.Props(supervised, SweepCoordinator.Stop.Instance,
            ClusterSingletonManagerSettings.Create(system).WithRole("coordinator")), CoordinatorManagerName);
    }

    private static readonly ConditionalWeakTable<ActorSystem, IActorRef> Proxies = new();
    private static readonly Lock ProxyGate = new();

    /// <summary>
    /// The proxy through which every node talks to the coordinator, wherever the singleton currently lives. Created once
    /// per actor system and remembered: looking it up by name under load could time out and create a second one
    /// ("actor name is not unique"), and the dashboard calls this from many request threads at once.
    /// </summary>
    public static IActorRef CoordinatorProxy(ActorSystem system)
    {
        lock (ProxyGate)
        {
            if (Proxies.TryGetValue(system, out var proxy)) return proxy;
            proxy = system.ActorOf(ClusterSingletonProxy.Props($"/user/{CoordinatorManagerName}",
                ClusterSingletonProxySettings.Create(system).WithRole("coordinator")), CoordinatorProxyName);
            Proxies.Add(system, proxy);
            return proxy;
        }
    }

    /// <summary>Starts one worker actor per device ("cuda:0", "cpu", ...). Worker ids are <c>host:port/device</c> (plus #n for repeated devices).</summary>
    public static IReadOnlyList<IActorRef> StartWorkers(ActorSystem system, IReadOnlyList<string> devices, TrainingBackendFactory backends,
        string? resultsRootOverride = null, IReadOnlyList<JobRunner>? runners = null)
    {
        if (devices.Count == 0) throw new ArgumentException("a worker node needs at least one device (--gpus or --cpu)");
        if (runners is not null && runners.Count != devices.Count) throw new ArgumentException($"{runners.Count} job runners for {devices.Count} devices");
        var proxy = CoordinatorProxy(system);
        var self = Akka.Cluster.Cluster.Get(system).SelfAddress;
        var c = system.Settings.Config.GetConfig("nnunet.cluster");
        var workers = new List<IActorRef>();
        var seen = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var device in devices)
        {
            seen[device] = seen.TryGetValue(device, out var n) ? n + 1 : 0;
            var workerId = $"{self.Host}:{self.Port}/{device}" + (seen[device] > 0 ? $"#{seen[device]}" : "");
            var settings = new WorkerSettings(workerId, self.ToString(), device, backends(device), proxy,
                c.GetTimeSpan("register-retry-interval"), resultsRootOverride, c.GetTimeSpan("stop-timeout"), c.GetTimeSpan("report-resend-interval"),
                c.GetTimeSpan("liveness-interval", TimeSpan.FromSeconds(10)), runners?[workers.Count]);
            workers.Add(system.ActorOf(SweepWorker.Props(settings), "worker-" + device.Replace(':', '-') + (seen[device] > 0 ? $"-{seen[device]}" : "")));
        }
        system.ActorOf(CoordinatorIncarnationWatch.Props(), "coordinator-incarnation-watch");
        return workers;
    }

    /// <summary>Asks the coordinator (through the proxy) for the read model.</summary>
    public static Task<SweepView> GetViewAsync(ActorSystem system, TimeSpan timeout) =>
        CoordinatorProxy(system).Ask<SweepView>(GetSweepView.Instance, timeout);

    /// <summary>Completes when this node's coordinator publishes <see cref="SweepFinished"/> (coordinator or embedded node).</summary>
    public static Task<SweepFinished> WhenSweepFinishedLocally(ActorSystem system) => WatchFinish(system, subscribeTopic: false);

    /// <summary>
    /// Completes when the sweep this worker node serves has finished: the coordinator's <see cref="SweepTopics.Finished"/>
    /// message, or its direct answer to one of this node's workers (a worker that asks for work, or idles, when
    /// nothing is left to run). The direct answer covers a node that joined just before or after the end, whose topic
    /// subscription had not reached the coordinator's node yet. Call it before starting the workers.
    /// </summary>
    public static Task<SweepFinished> WhenSweepFinishedOnWorkerNode(ActorSystem system) => WatchFinish(system, subscribeTopic: true);

    private static Task<SweepFinished> WatchFinish(ActorSystem system, bool subscribeTopic)
    {
        var done = new TaskCompletionSource<SweepFinished>(TaskCreationOptions.RunContinuationsAsynchronously);
        var listener = system.ActorOf(Props.Create(() => new FinishListener(done, subscribeTopic)));
        system.EventStream.Subscribe(listener, typeof(SweepFinished));
        return done.Task;
    }

    private sealed class FinishListener : ReceiveActor
    {
        public FinishListener(TaskCompletionSource<SweepFinished> done, bool subscribeTopic)
        {
            if (subscribeTopic) DistributedPubSub.Get(Context.System).Mediator.Tell(new Subscribe(SweepTopics.Finished, Self));
            Receive<SubscribeAck>(_ => { });
            Receive<SweepFinished>(f =>
            {
                done.TrySetResult(f);
                Context.Stop(Self);
            });
        }
    }
}
