using Akka.Actor;
using NnUnet.Cluster.Backends;
using NnUnet.Cluster.Hosting;
using NnUnet.Cluster.Sweeps;
using NnUnet.Core.Results;

namespace NnUnet.Dashboard.Tests;

/// <summary>
/// A real embedded sweep (one-node Akka cluster on 127.0.0.1, SQLite journal in a temp nnUNet_results, simulated
/// training backend) with the dashboard started on it exactly as <c>nnunet sweep</c> does: over <see cref="AkkaDashboardSource"/>.
/// </summary>
internal sealed class SimulatedSweep : IAsyncDisposable
{
    public const string Token = "test-token-0123";
    public string ResultsRoot { get; } = Directory.CreateTempSubdirectory("nnunet-dash-sweep-").FullName;
    public ActorSystem System { get; }
    public DashboardServer Server { get; private set; } = null!;
    public SweepDefinition Definition { get; }

    private readonly TimeSpan _epoch;
    private readonly int _workers;
    private string? _brokenDevice;
    private TimeSpan _validation;

    private SimulatedSweep(SweepDefinition definition, TimeSpan epoch, int workers)
    {
        _epoch = epoch;
        _workers = workers;
        Definition = definition;
        var journal = ResultLayout.DefaultSweepDatabase(ResultsRoot, definition.DatasetName);
        var config = ClusterConfig.Build(new NodeOptions(NodeKind.Embedded, SqliteJournalPath: journal,
            ExtraHocon: "akka.loglevel = WARNING\nnnunet.cluster.progress-persist-interval = 5s\nnnunet.cluster.liveness-interval = 1s"));
        System = NnUnetClusterHost.StartSystem(config);
        NnUnetClusterHost.StartCoordinator(System, NnUnetClusterHost.CoordinatorSettingsFrom(System.Settings.Config, definition, ResultsRoot));
    }

    /// <summary>
    /// The sweep with its dashboard; its workers start at once unless <paramref name="deferWorkers"/>, in which case the
    /// test calls <see cref="StartWorkers"/> when it is ready for jobs to run (e.g. after pausing the sweep).
    /// </summary>
    /// <param name="brokenDevice">a device (sim0, sim1, ...) whose worker fails every job at once, as one that cannot write the results folder.</param>
    /// <param name="validation">how long each fold's validation lasts (a case reported about every second).</param>
    public static async Task<SimulatedSweep> StartAsync(string[] configurations, int[] folds, int epochs, TimeSpan epoch, int workers,
        bool deferWorkers = false, string? brokenDevice = null, TimeSpan validation = default, int predictShards = 0)
    {
        var sweep = new SimulatedSweep(SweepDefinition.Create("Dataset004_Hippocampus", "nnUNetPlans", "nnUNetTrainer", configurations, folds, epochs,
                predictTest: predictShards > 0, predictShards: Math.Max(1, predictShards)),
            epoch, workers) { _brokenDevice = brokenDevice, _validation = validation };
        sweep.Server = await DashboardServer.StartAsync(new DashboardOptions(DashboardOptions.DefaultHost, 0, Token, sweep.ResultsRoot),
            new AkkaDashboardSource(sweep.System));
        if (!deferWorkers) sweep.StartWorkers();
        return sweep;
    }

    public void StartWorkers()
    {
        var options = new SimulatedBackendOptions { EpochDuration = _ => _epoch, StallInValidation = _ => _validation };
        var broken = new SimulatedBackendOptions
        {
            EpochDuration = _ => _epoch,
            FailAt = (spec, _) => $"Access to the path '{JobOutputs.FoldFolder(spec)}' is denied.",
        };
        NnUnetClusterHost.StartWorkers(System, Enumerable.Range(0, _workers).Select(i => $"sim{i}").ToArray(),
            device => new SimulatedTrainingBackend(device == _brokenDevice ? broken : options, device));
    }

    private bool _dashboardStopped;

    /// <summary>Stops the dashboard (the sweep itself stays up).</summary>
    public async Task StopDashboardAsync()
    {
        if (_dashboardStopped) return;
        _dashboardStopped = true;
        await Server.DisposeAsync();
    }

    /// <summary>
    /// The end of <c>nnunet sweep</c>: the actor system (with the coordinator the dashboard asks) goes first, then the
    /// dashboard, when the command returns; a page that asks the server in between gets no snapshot.
    /// </summary>
    public async Task StopAsTheSweepCommandDoesAsync()
    {
        await System.Terminate().WaitAsync(TimeSpan.FromSeconds(15));
        await StopDashboardAsync();
    }

    public async ValueTask DisposeAsync()
    {
        await StopDashboardAsync();
        await System.Terminate().WaitAsync(TimeSpan.FromSeconds(15));
        try { Directory.Delete(ResultsRoot, true); } catch (IOException) { }
    }
}
