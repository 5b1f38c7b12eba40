using Akka.Actor;
using NnUnet.Cluster.Sweeps;
using NnUnet.Dashboard;

namespace NnUnet.Cli.Commands.Cluster;

/// <summary>Starts the web dashboard next to a coordinator or embedded sweep, unless <c>--no-dashboard</c>. A port already in use is a warning, not an error.</summary>
internal static class DashboardHookup
{
    public static async Task<DashboardServer?> StartAsync(SweepDefinitionSettings settings, ActorSystem system, SweepDefinition definition,
        string resultsRoot, CancellationToken ct)
    {
        if (settings.NoDashboard) return null;
        var (host, port) = DashboardOptions.ParseEndpoint(settings.Dashboard);
        var token = string.IsNullOrEmpty(settings.DashboardToken) ? DashboardOptions.NewToken() : settings.DashboardToken;
        var options = new DashboardOptions(host, port, token, resultsRoot, definition.DatasetName);
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
                                (options.IsLoopback ? "" : "  WARNING: listening beyond loopback"));
        return server;
    }
}
