using System.ComponentModel;
using Akka.Actor;
using NnUnet.Cluster.Hosting;
using Spectre.Console.Cli;

namespace NnUnet.Cli.Commands.Cluster;

internal sealed class SweepStatusVerbSettings : ClusterAdmissionSettings
{
    [CommandOption("--seed <ADDRESS>")]
    [Description("a seed node of the cluster, e.g. akka.tcp://nnunet@10.0.0.5:4053")]
    public string[] Seeds { get; init; } = [];

    [CommandOption("--host <HOST>")]
    [DefaultValue("127.0.0.1")]
    public string Host { get; init; } = "127.0.0.1";

    [CommandOption("--timeout <SECONDS>")]
    [DefaultValue(20)]
    public int TimeoutSeconds { get; init; } = 20;

    [CommandOption("--json")]
    public bool Json { get; init; }

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
        var seeds = ClusterCommandSupport.SplitList(settings.Seeds).ToArray();
        if (seeds.Length == 0) throw new ArgumentException("--seed is required: the coordinator's address, e.g. akka.tcp://nnunet@HOST:4053");
        var credential = await ClusterAdmission.ResolveAsync(settings, null, ClusterAdmission.Role.Reads, cancellationToken);
        var config = ClusterConfig.Build(new NodeOptions(NodeKind.Client, settings.Host, 0, seeds, CredentialFolder: credential));
        var system = NnUnetClusterHost.StartSystem(config);
        try
        {
            var deadline = DateTime.UtcNow.AddSeconds(settings.TimeoutSeconds);
            while (true)
            {
                try
                {
                    var snapshot = await NnUnetClusterHost.GetViewAsync(system, TimeSpan.FromSeconds(3));
                    ClusterCommandSupport.Print(snapshot, settings.Json);
                    return NnUnetApp.ExitOk;
                }
                catch (AskTimeoutException) when (DateTime.UtcNow < deadline) { }
                catch (AskTimeoutException)
                {
                    throw new TimeoutException($"no coordinator answered within {settings.TimeoutSeconds} s via {string.Join(", ", seeds)}");
                }
            }
        }
        finally
        {
            await ClusterCommandSupport.ShutdownAsync(system);
        }
    }
}
