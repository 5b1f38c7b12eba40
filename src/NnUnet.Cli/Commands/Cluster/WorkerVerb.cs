using System.ComponentModel;
using NnUnet.Cluster.Actors;
using NnUnet.Cluster.Hosting;
using NnUnet.Cluster.Messages;
using NnUnet.Cluster.Sweeps;
using Spectre.Console.Cli;

namespace NnUnet.Cli.Commands.Cluster;

internal sealed class WorkerVerbSettings : CommandSettings
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
    [Description("address other nodes reach this node at; auto: the local address of the route to the first seed (never 127.0.1.1 from `hostname -i`)")]
    [DefaultValue("127.0.0.1")]
    public string Host { get; init; } = "127.0.0.1";

    [CommandOption("--port <PORT>")]
    [Description("0 = any free port")]
    [DefaultValue(0)]
    public int Port { get; init; }

    [CommandOption("--results <DIR>")]
    [Description("where this node mounts nnUNet_results, if not at the coordinator's path")]
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

    [CommandOption("--release-idle-after <SECONDS>")]
    [Description("exit 0 when none of this node's workers has had a job for this long (frees the node's GPUs on a SLURM allocation while the grid has fewer ready jobs than GPUs, e.g. the cascade waiting for the low-res folds)")]
    public int? ReleaseIdleAfter { get; init; }

    [CommandOption("--stay")]
    [Description("keep running after the sweep finished (serve the next sweep)")]
    public bool Stay { get; init; }

    public override Spectre.Console.ValidationResult Validate() =>
        ReleaseIdleAfter is <= 0
            ? Spectre.Console.ValidationResult.Error($"--release-idle-after {ReleaseIdleAfter}: give a number of seconds above 0")
            : base.Validate();

}

/// <summary><c>nnunet worker</c>: joins the cluster and runs one worker actor per GPU (or CPU slot).</summary>
internal sealed class WorkerVerb : AsyncCommand<WorkerVerbSettings>
{
    public override async Task<int> ExecuteAsync(CommandContext context, WorkerVerbSettings settings, CancellationToken cancellationToken)
    {
        var seeds = ClusterCommandSupport.SplitList(settings.Seeds).ToArray();
        if (seeds.Length == 0) throw new ArgumentException("--seed is required: the coordinator's address, e.g. akka.tcp://nnunet@HOST:4053");
        var devices = ClusterCommandSupport.Devices(settings.Gpus, settings.Cpu, settings.Simulate);
        var backends = TrainingBackends.Resolve(settings.Simulate, settings.SimulatedEpochMs,
            settings.SimulatedStall is null ? null : SimulatedStalls.Parse(settings.SimulatedStall));
        var config = ClusterConfig.Build(new NodeOptions(NodeKind.Worker, NodeAddress.Resolve(settings.Host, seeds), settings.Port, seeds, settings.Config));
        using var cts = ClusterCommandSupport.CancelOnCtrlC(cancellationToken);

        var results = settings.Results is null ? null : Path.GetFullPath(settings.Results);
        var cancelled = Task.Delay(Timeout.Infinite, cts.Token).ContinueWith(_ => { }, TaskScheduler.Default);
        // one per device, for the life of the process: a job keeps running when this node is removed (the coordinator
        // crashed) and the next node's worker re-attaches to it
        var runners = devices.Select(_ => new JobRunner(outlivesWorker: true)).ToArray();
        var released = settings.ReleaseIdleAfter is { } idleSeconds
            ? JobRunner.WhenAllIdleFor(runners, TimeSpan.FromSeconds(idleSeconds), cts.Token).ContinueWith(_ => { }, TaskScheduler.Default)
            : Task.Delay(Timeout.Infinite, cts.Token).ContinueWith(_ => { }, TaskScheduler.Default);
        while (true)
        {
            var system = NnUnetClusterHost.StartSystem(config);
            var self = Akka.Cluster.Cluster.Get(system).SelfAddress.ToString();
            if (seeds.Contains(self, StringComparer.Ordinal))
            {
                // A worker that is its own seed forms a cluster without a coordinator and waits forever (seen when the
                // coordinator's port was taken by this node's port 0 before the coordinator bound it).
                await ClusterCommandSupport.ShutdownAsync(system);
                Console.Error.WriteLine($"error: seed {self} is this worker node's own address; a worker joins a coordinator, it cannot start a cluster alone (is the coordinator running on that port?)");
                return NnUnetApp.ExitProblems;
            }
            // with --stay the node never exits on a sweep's end
            var finished = settings.Stay ? new TaskCompletionSource<SweepFinished>().Task : NnUnetClusterHost.WhenSweepFinishedOnWorkerNode(system);
            NnUnetClusterHost.StartWorkers(system, devices, backends, results, runners);
            Console.Error.WriteLine($"worker node {Akka.Cluster.Cluster.Get(system).SelfAddress}: {devices.Length} worker(s) [{string.Join(", ", devices)}], seeds {string.Join(", ", seeds)}");

            var ended = await Task.WhenAny(finished, system.WhenTerminated, cancelled, released);
            if (ended == released && !cts.IsCancellationRequested)
            {
                // leaving (not crashing) tells the coordinator at once; nothing runs here to re-queue
                Console.Error.WriteLine($"no job for {settings.ReleaseIdleAfter} s on this node's {devices.Length} worker(s): leaving the cluster to free its devices (--release-idle-after)");
                await ClusterCommandSupport.ShutdownAsync(system);
                return NnUnetApp.ExitOk;
            }
            if (ended == system.WhenTerminated)
            {
                // Removed from the cluster (the coordinator crashed or was cut off: keep-oldest downs the side without it).
                // A downed ActorSystem cannot join again, so start a fresh one that keeps trying the seeds until the
                // coordinator is back; the running jobs go on meanwhile, and the new node's workers re-attach to them
                // and register with them (a restarted coordinator adopts them; one that re-queued them cancels them).
                if (settings.ExitWhenRemoved)
                {
                    foreach (var runner in runners) runner.Stop(system.Settings.Config.GetTimeSpan("nnunet.cluster.stop-timeout", TimeSpan.FromSeconds(120)));
                    Console.Error.WriteLine("error: this node was removed from the cluster (coordinator unreachable); restart it to rejoin");
                    return NnUnetApp.ExitProblems;
                }
                var running = runners.Select(r => r.Current?.Spec).OfType<JobSpec>().Select(s => $"{s.JobId} attempt {s.Attempt}").ToArray();
                Console.Error.WriteLine("this node was removed from the cluster (coordinator unreachable); rejoining with a new node" +
                    (running.Length > 0 ? $"; {string.Join(", ", running)} keeps running" : ""));
                continue;
            }
            // Ctrl-C: each running job is cancelled and writes its checkpoint (resumed from it later)
            var stopTimeout = system.Settings.Config.GetTimeSpan("nnunet.cluster.stop-timeout", TimeSpan.FromSeconds(120));
            foreach (var runner in runners) runner.Stop(stopTimeout);
            await ClusterCommandSupport.ShutdownAsync(system);
            if (ended == cancelled) return NnUnetApp.ExitInterrupted;
            Console.Error.WriteLine($"sweep {finished.Result.SweepId} finished ({finished.Result.Status}); worker exits");
            return NnUnetApp.ExitOk;
        }
    }
}
