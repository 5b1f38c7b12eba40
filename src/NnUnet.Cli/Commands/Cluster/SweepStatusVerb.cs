using System.ComponentModel;
using NnUnet.Cluster.Hosting;
using NnUnet.Cluster.Messages;
using NnUnet.Cluster.Sweeps;
using Spectre.Console.Cli;

namespace NnUnet.Cli.Commands.Cluster;

/// <summary>How a short-lived client node finds the coordinator (<c>sweep-status</c>, <c>sweep-control</c>).</summary>
internal class CoordinatorClientSettings : ClusterAdmissionSettings
{
    [CommandOption("--seed <ADDRESS>")]
    [Description("a seed node of the cluster, e.g. akka.tcp://nnunet@10.0.0.5:4053")]
    public string[] Seeds { get; init; } = [];

    [CommandOption("--host <HOST>")]
    [DefaultValue("127.0.0.1")]
    public string Host { get; init; } = "127.0.0.1";

    [CommandOption("--config <FILE>")]
    [Description("the cluster's HOCON file, as given to its coordinator and workers (e.g. own TLS certificates, cluster-config/tls.hocon)")]
    public string? Config { get; init; }

    [CommandOption("--timeout <SECONDS>")]
    [DefaultValue(20)]
    public int TimeoutSeconds { get; init; } = 20;

    [CommandOption("--json")]
    public bool Json { get; init; }
}

internal sealed class SweepStatusVerbSettings : CoordinatorClientSettings
{
    [CommandOption("--manifest <PATH>")]
    [Description("print the sweep's reproducibility record instead of asking the cluster: a sweep_manifest.json, its folder, or a dataset (id or name, under nnUNet_results)")]
    public string? Manifest { get; init; }
}

/// <summary><c>nnunet sweep-status</c>: joins the cluster briefly as a client node and prints the coordinator's grid.</summary>
internal sealed class SweepStatusVerb : AsyncCommand<SweepStatusVerbSettings>
{
    public override async Task<int> ExecuteAsync(CommandContext context, SweepStatusVerbSettings settings, CancellationToken cancellationToken)
    {
        if (settings.Manifest is not null) return SweepManifestPrinter.Print(settings.Manifest, settings.Json);
        var snapshot = await ClusterCommandSupport.AskCoordinatorAsync<SweepView>(settings, NodeKind.Client, GetSweepView.Instance, cancellationToken);
        ClusterCommandSupport.Print(snapshot, settings.Json);
        return NnUnetApp.ExitOk;
    }
}
