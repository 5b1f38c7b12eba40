using System.ComponentModel;
using Akka.Actor;
using NnUnet.Cluster.Sweeps;
using NnUnet.Dashboard;
using Spectre.Console.Cli;

namespace NnUnet.Cli.Commands.Cluster;

/// <summary>The dashboard's options, on every verb that hosts it (<c>sweep</c>, <c>coordinator</c>, <c>demo</c>).</summary>
internal class DashboardSettings : ClusterAdmissionSettings
{
    public const string DefaultEndpoint = "127.0.0.1:5080";

    [CommandOption("--dashboard <HOST:PORT>")]
    [Description("where the web dashboard listens (loopback unless you name another address)")]
    [DefaultValue(DefaultEndpoint)]
    public string Dashboard { get; init; } = DefaultEndpoint;

    [CommandOption("--no-dashboard")]
    [Description("do not start the web dashboard")]
    public bool NoDashboard { get; init; }

    [CommandOption("--dashboard-token <TOKEN>")]
    [Description("token the dashboard's actions (pause, resume, retry, cancel) require; default: a random one, printed at start")]
    public string? DashboardToken { get; init; }

    /// <summary>The same options as arguments of another verb (the demo runs <c>sweep</c> with them).</summary>
    public string[] ToArguments() => NoDashboard ? ["--no-dashboard"]
        : string.IsNullOrEmpty(DashboardToken) ? ["--dashboard", Dashboard] : ["--dashboard", Dashboard, "--dashboard-token", DashboardToken];
}

/// <summary>Starts the web dashboard next to a coordinator or embedded sweep, unless <c>--no-dashboard</c>. A port already in use is a warning, not an error.</summary>
internal static class DashboardHookup
{
    public static async Task<DashboardServer?> StartAsync(DashboardSettings settings, ActorSystem system, SweepDefinition definition,
        string resultsRoot, CancellationToken ct)
    {
        if (settings.NoDashboard) return null;
        var (host, port) = DashboardOptions.ParseEndpoint(settings.Dashboard);
        var token = string.IsNullOrEmpty(settings.DashboardToken) ? DashboardOptions.NewToken() : settings.DashboardToken;
        var options = new DashboardOptions(host, port, token, resultsRoot, definition.DatasetName,
            InsecureTransport: NnUnet.Cluster.Hosting.ClusterConfig.IsPlainTcp(system.Settings.Config));
        DashboardServer server;
        try
        {
            server = await DashboardServer.StartAsync(options, new AkkaDashboardSource(system), ct);
        }
        catch (IOException e)
        {
            // the sweep matters more than its web view: a taken port costs the dashboard, not the run
            Console.Error.WriteLine($"dashboard: WARNING cannot listen on {settings.Dashboard} ({e.Message}); running without it " +
                                    "(pick a free one with --dashboard HOST:PORT, or --no-dashboard to silence this)");
            return null;
        }
        Console.Error.WriteLine($"dashboard: {server.BrowserUrl}  (actions need token {server.Token})" +
                                (options.IsLoopback ? "" : "  (listening beyond loopback: reading needs the token too)"));
        return server;
    }
}
