using System.ComponentModel;
using NnUnet.Cluster.Hosting;
using Spectre.Console.Cli;
using NnUnet.Core.Results;

namespace NnUnet.Cli.Commands.Cluster;

internal sealed class CoordinatorVerbSettings : SweepDefinitionSettings
{
    [CommandOption("--host <HOST>")]
    [Description("address the workers reach this node at; auto: the first IPv4 address of an interface that is up, not loopback (or the route to --seed for a stand-by)")]
    [DefaultValue("127.0.0.1")]
    public string Host { get; init; } = "127.0.0.1";

    [CommandOption("--port <PORT>")]
    [Description("port the workers reach this node at (a first coordinator is its own seed, so not 0)")]
    [DefaultValue(4053)]
    public int Port { get; init; } = 4053;

    [CommandOption("--seed <ADDRESS>")]
    [Description("join an existing cluster (stand-by coordinator); default: this node is the seed")]
    public string[] Seeds { get; init; } = [];

    [CommandOption("--linger <SECONDS>")]
    [Description("keep serving sweep-status this long after the sweep finished")]
    [DefaultValue(5)]
    public int LingerSeconds { get; init; } = 5;

    [CommandOption("--stay")]
    [Description("keep running after the sweep finished, until Ctrl-C: the cluster then serves `nnunet predict --cluster` submissions (start the workers with --stay too)")]
    public bool Stay { get; init; }

    public override Spectre.Console.ValidationResult Validate() =>
        Port is < 0 or > 65535 ? Spectre.Console.ValidationResult.Error($"--port {Port} is not a port")
        : Port == 0 && Seeds.Length == 0
            ? Spectre.Console.ValidationResult.Error("--port 0: the first coordinator is the cluster's seed, which workers must be able to name; give a fixed --port")
            : base.Validate();
}

/// <summary><c>nnunet coordinator</c>: hosts the sweep's coordinator singleton for workers on other nodes.</summary>
internal sealed class CoordinatorVerb : AsyncCommand<CoordinatorVerbSettings>
{
    public override async Task<int> ExecuteAsync(CommandContext context, CoordinatorVerbSettings settings, CancellationToken cancellationToken)
    {
        // the workers are not known yet: a few shards, so that several workers share the test set
        var (definition, resultsRoot) = settings.Resolve(defaultPredictShards: 4);
        var journal = settings.Journal ?? ResultLayout.DefaultSweepDatabase(resultsRoot, definition.DatasetName);
        var joinSeeds = ClusterCommandSupport.SplitList(settings.Seeds).ToArray();
        var host = NodeAddress.Resolve(settings.Host, joinSeeds);
        var self = $"akka.tcp://{ClusterConfig.SystemName}@{host}:{settings.Port}";
        var seeds = joinSeeds.Length > 0 ? joinSeeds : [self];
        var credential = await ClusterAdmission.ResolveAsync(settings, resultsRoot, ClusterAdmission.Role.Creates, cancellationToken);
        var config = ClusterConfig.Build(new NodeOptions(NodeKind.Coordinator, host, settings.Port, seeds, settings.Config, journal, CredentialFolder: credential));
        // before anything is written (journal included): another run's results are never overwritten unasked
        using var locks = SweepResultsProtection.Protect(definition, resultsRoot, settings.PlansFile(definition), settings.Protection, "coordinator");
        // the record of this run's inputs, once it is sure the run may write here
        SweepManifestStep.Record(definition, resultsRoot, settings.Preprocessed, journal, devices: null, settings.Simulate);
        using var cts = ClusterCommandSupport.CancelOnCtrlC(cancellationToken);

        var system = NnUnetClusterHost.StartSystem(config);
        // with --stay the node serves prediction submissions after the sweep: only Ctrl-C (or being downed) ends it
        var finished = settings.Stay ? new TaskCompletionSource<NnUnet.Cluster.Messages.SweepFinished>().Task : NnUnetClusterHost.WhenSweepFinishedLocally(system);
        NnUnetClusterHost.StartCoordinator(system, NnUnetClusterHost.CoordinatorSettingsFrom(system.Settings.Config, definition, resultsRoot));
        await using var dashboard = await DashboardHookup.StartAsync(settings, system, definition, resultsRoot, cts.Token);
        Console.Error.WriteLine($"coordinator of sweep {definition.SweepId} at {self}; journal {journal}; start workers with: nnunet worker --seed {self}");
        await ClusterCommandSupport.WarnIfTheJournalKeepsOtherShardsAsync(system, definition, cts.Token);

        // the singleton may live on another coordinator node: then this node only follows through the proxy
        await SweepVerb.FollowAsync(system, finished, cts.Token);
        if (cts.IsCancellationRequested)
        {
            await ClusterCommandSupport.ShutdownAsync(system);
            return NnUnetApp.ExitInterrupted;
        }
        if (system.WhenTerminated.IsCompleted && !finished.IsCompleted)
        {
            // downed by the split-brain resolver (e.g. the side without the oldest node): the sweep goes on elsewhere
            // or resumes from the journal when a coordinator starts again
            Console.Error.WriteLine("error: this coordinator node stopped before the sweep finished (removed from the cluster by the split-brain resolver, or shut down); start it again to rejoin");
            return NnUnetApp.ExitProblems;
        }
        var last = await NnUnetClusterHost.GetViewAsync(system, TimeSpan.FromSeconds(10));
        await Task.Delay(TimeSpan.FromSeconds(settings.LingerSeconds), cts.Token).ContinueWith(_ => { }, TaskScheduler.Default);
        await ClusterCommandSupport.ShutdownAsync(system);
        ClusterCommandSupport.Print(last, settings.Json);
        return ClusterCommandSupport.ExitCodeFor(last.Status);
    }
}
