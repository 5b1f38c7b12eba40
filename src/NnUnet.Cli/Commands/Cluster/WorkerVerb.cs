using System.ComponentModel;
using NnUnet.Cluster.Hosting;
using NnUnet.Cluster.Messages;
using Spectre.Console.Cli;

namespace NnUnet.Cli.Commands.Cluster;

internal sealed class WorkerVerbSettings : ClusterAdmissionSettings
{
    [CommandOption("--seed <ADDRESS>")]
    [Description("seed node(s), e.g. akka.tcp://nnunet@10.0.0.5:4053 (repeat or comma-separate)")]
    public string[] Seeds { get; init; } = [];

    [CommandOption("--gpus <IDS>")]
    [Description("GPUs of this node to use, comma-separated; default: every CUDA device")]
    public string? Gpus { get; init; }

    [CommandOption("--cpu <N>")]
    [Description("N CPU workers instead of GPUs")]
    public int? Cpu { get; init; }

    [CommandOption("--host <HOST>")]
    [Description("address other nodes reach this node at")]
    [DefaultValue("127.0.0.1")]
    public string Host { get; init; } = "127.0.0.1";

    [CommandOption("--port <PORT>")]
    [Description("0 = any free port")]
    [DefaultValue(0)]
    public int Port { get; init; }

    [CommandOption("--results <DIR>")]
    [Description("where this node mounts nnUNet_results, if not at the coordinator's path (its .nnunet-cluster holds the cluster credential)")]
    public string? Results { get; init; }

    [CommandOption("--config <FILE>")]
    public string? Config { get; init; }

    [CommandOption("--simulate")]
    [Description("run jobs with the simulated backend")]
    public bool Simulate { get; init; }

    [CommandOption("--sim-epoch-ms <MS>")]
    [DefaultValue(200)]
    public int SimulatedEpochMs { get; init; } = 200;

    [CommandOption("--sim-stall <POINT>")]
    [Description("fault injection with --simulate: the first attempt of each job stalls inside a checkpoint write (checkpoint:EPOCH:MS), in a long validation that reports a case about every second (validation:MS), or hangs without progress (hang:MS)")]
    public string? SimulatedStall { get; init; }

    [CommandOption("--exit-when-removed")]
    [Description("exit 1 when this node is removed from the cluster (default: start a new node and rejoin the seeds)")]
    public bool ExitWhenRemoved { get; init; }

    [CommandOption("--stay")]
    [Description("keep running after the sweep finished (serve the next sweep)")]
    public bool Stay { get; init; }

}

/// <summary><c>nnunet worker</c>: joins the cluster and runs one worker actor per GPU (or CPU slot).</summary>
internal sealed class WorkerVerb : AsyncCommand<WorkerVerbSettings>
{
    public override async Task<int> ExecuteAsync(CommandContext context, WorkerVerbSettings settings, CancellationToken cancellationToken)
    {
        var seeds = ClusterCommandSupport.SplitList(settings.Seeds).ToArray();
        if (seeds.Length == 0) throw new ArgumentException("--seed is required: the coordinator's address, e.g. akka.tcp://nnunet@HOST:4053");
        // said before anything else (waiting for a cluster credential that no coordinator will make, for one)
        var ownAddress = $"akka.tcp://{ClusterConfig.SystemName}@{settings.Host}:{settings.Port}";
        if (settings.Port != 0 && seeds.FirstOrDefault(seed => ClusterConfig.ToTlsAddress(seed).TrimEnd('/') == ClusterConfig.ToTlsAddress(ownAddress)) is { } ownSeed)
        {
            Console.Error.WriteLine(OwnSeedError(ownSeed));
            return NnUnetApp.ExitProblems;
        }
        var devices = ClusterCommandSupport.Devices(settings.Gpus, settings.Cpu, settings.Simulate);
        var backends = TrainingBackends.Resolve(settings.Simulate, settings.SimulatedEpochMs,
            settings.SimulatedStall is null ? null : SimulatedStalls.Parse(settings.SimulatedStall));
        using var cts = ClusterCommandSupport.CancelOnCtrlC(cancellationToken);
        var results = settings.Results is null ? null : Path.GetFullPath(settings.Results);
        string? credential;
        try { credential = await ClusterAdmission.ResolveAsync(settings, results, ClusterAdmission.Role.WaitsFor, cts.Token); }
        catch (OperationCanceledException) { return NnUnetApp.ExitInterrupted; }
        var config = ClusterConfig.Build(new NodeOptions(NodeKind.Worker, settings.Host, settings.Port, seeds, settings.Config, CredentialFolder: credential));

        var cancelled = Task.Delay(Timeout.Infinite, cts.Token).ContinueWith(_ => { }, TaskScheduler.Default);
        while (true)
        {
            var system = NnUnetClusterHost.StartSystem(config);
            var self = Akka.Cluster.Cluster.Get(system).SelfAddress.ToString();
            // with TLS the node's own address is akka.ssl.tcp:// while seeds may be written akka.tcp://
            if (seeds.Any(seed => ClusterConfig.ToTlsAddress(seed) == ClusterConfig.ToTlsAddress(self)))
            {
                // A worker that is its own seed forms a cluster without a coordinator and waits forever (seen when the
                // coordinator's port was taken by this node's port 0 before the coordinator bound it).
                await ClusterCommandSupport.ShutdownAsync(system);
                Console.Error.WriteLine(OwnSeedError(self));
                return NnUnetApp.ExitProblems;
            }
            // with --stay the node never exits on a sweep's end
            var finished = settings.Stay ? new TaskCompletionSource<SweepFinished>().Task : NnUnetClusterHost.WhenSweepFinishedOnWorkerNode(system);
            NnUnetClusterHost.StartWorkers(system, devices, backends, results);
            Console.Error.WriteLine($"worker node {Akka.Cluster.Cluster.Get(system).SelfAddress}: {devices.Length} worker(s) [{string.Join(", ", devices)}], seeds {string.Join(", ", seeds)}");

            var ended = await Task.WhenAny(finished, system.WhenTerminated, cancelled);
            if (ended == system.WhenTerminated)
            {
                // Removed from the cluster (the coordinator crashed or was cut off: keep-oldest downs the side without it).
                // A downed ActorSystem cannot join again, so start a fresh one that keeps trying the seeds until the
                // coordinator is back; its job was cancelled on the way down and resumes from its checkpoint.
                if (settings.ExitWhenRemoved)
                {
                    Console.Error.WriteLine("error: this node was removed from the cluster (coordinator unreachable); restart it to rejoin");
                    return NnUnetApp.ExitProblems;
                }
                Console.Error.WriteLine("this node was removed from the cluster (coordinator unreachable); rejoining with a new node");
                continue;
            }
            await ClusterCommandSupport.ShutdownAsync(system);
            if (ended == cancelled) return NnUnetApp.ExitInterrupted;
            Console.Error.WriteLine($"sweep {finished.Result.SweepId} finished ({finished.Result.Status}); worker exits");
            return NnUnetApp.ExitOk;
        }
    }

    private static string OwnSeedError(string seed) =>
        $"error: seed {seed} is this worker node's own address; a worker joins a coordinator, it cannot start a cluster alone (is the coordinator running on that port?)";
}
