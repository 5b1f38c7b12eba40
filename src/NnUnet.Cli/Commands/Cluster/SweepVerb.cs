using System.ComponentModel;
using Akka.Actor;
using NnUnet.Cluster.Hosting;
using NnUnet.Cluster.Messages;
using NnUnet.Cluster.Sweeps;
using Spectre.Console;
using Spectre.Console.Cli;
using NnUnet.Core.Results;

namespace NnUnet.Cli.Commands.Cluster;

internal sealed class SweepVerbSettings : SweepDefinitionSettings
{
    [CommandOption("--workers <N>")]
    [Description("local CPU workers (ignored with --gpus); default: one per CUDA device, else 1")]
    public int? Workers { get; init; }

    [CommandOption("--gpus <IDS>")]
    [Description("local GPUs to use, comma-separated (one worker each)")]
    public string? Gpus { get; init; }

}

/// <summary>
/// <c>nnunet sweep</c>: the embedded cluster: coordinator and local workers in one process (a one-node Akka cluster on
/// loopback), journal in SQLite next to the results. Re-running the same command resumes the sweep.
/// </summary>
internal sealed class SweepVerb : AsyncCommand<SweepVerbSettings>
{
    public override async Task<int> ExecuteAsync(CommandContext context, SweepVerbSettings settings, CancellationToken cancellationToken)
    {
        var devices = settings.Gpus is null && settings.Workers is { } n
            ? ClusterCommandSupport.Devices(null, n, settings.Simulate)
            : ClusterCommandSupport.Devices(settings.Gpus, null, settings.Simulate);
        // one test-set shard per local worker: they all predict at once
        var (definition, resultsRoot) = settings.Resolve(defaultPredictShards: devices.Length);
        var backends = TrainingBackends.Resolve(settings.Simulate, settings.SimulatedEpochMs);
        var journal = settings.Journal ?? ResultLayout.DefaultSweepDatabase(resultsRoot, definition.DatasetName);
        // one process, but its port on 127.0.0.1 is open to every local user: admitted like any cluster
        var credential = await ClusterAdmission.ResolveAsync(settings, resultsRoot, ClusterAdmission.Role.Creates, cancellationToken);
        var config = ClusterConfig.Build(new NodeOptions(NodeKind.Embedded, SqliteJournalPath: journal, ConfigFile: settings.Config, CredentialFolder: credential));
        // before anything is written (journal included): another run's results are never overwritten unasked
        using var locks = SweepResultsProtection.Protect(definition, resultsRoot, settings.PlansFile(definition), settings.Protection, "sweep");
        // the record of this run's inputs, once it is sure the run may write here
        SweepManifestStep.Record(definition, resultsRoot, settings.Preprocessed, journal, devices, settings.Simulate);
        using var cts = ClusterCommandSupport.CancelOnCtrlC(cancellationToken);

        var system = NnUnetClusterHost.StartSystem(config);
        var finished = NnUnetClusterHost.WhenSweepFinishedLocally(system);
        NnUnetClusterHost.StartCoordinator(system, NnUnetClusterHost.CoordinatorSettingsFrom(system.Settings.Config, definition, resultsRoot));
        NnUnetClusterHost.StartWorkers(system, devices, backends);
        await using var dashboard = await DashboardHookup.StartAsync(settings, system, definition, resultsRoot, cts.Token);
        Console.Error.WriteLine($"sweep {definition.SweepId}: {string.Join(", ", definition.Configurations)} x folds {string.Join(",", definition.Folds)}; " +
                                $"{devices.Length} worker(s) [{string.Join(", ", devices)}]; journal {journal}");
        await ClusterCommandSupport.WarnIfTheJournalKeepsOtherShardsAsync(system, definition, cts.Token);

        var last = await FollowAsync(system, finished, cts.Token);
        if (cts.IsCancellationRequested)
        {
            await ClusterCommandSupport.ShutdownAsync(system);
            return NnUnetApp.ExitInterrupted;
        }
        last = await NnUnetClusterHost.GetViewAsync(system, TimeSpan.FromSeconds(10));
        await ClusterCommandSupport.ShutdownAsync(system);
        ClusterCommandSupport.Print(last, settings.Json);
        return ClusterCommandSupport.ExitCodeFor(last.Status);
    }

    /// <summary>Shows the sweep's progress until it finishes or Ctrl-C.</summary>
    internal static async Task<SweepView?> FollowAsync(ActorSystem system, Task<SweepFinished> finished, CancellationToken ct)
    {
        SweepView? last = null;
        await Datasets.CommandConsole.Create().Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
            .StartAsync(async progress =>
            {
                var bar = progress.AddTask("starting", maxValue: 1);
                // a node removed from the cluster (downed) terminates its system: stop following then, or wait forever
                while (!finished.IsCompleted && !ct.IsCancellationRequested && !system.WhenTerminated.IsCompleted)
                {
                    try
                    {
                        last = await NnUnetClusterHost.GetViewAsync(system, TimeSpan.FromSeconds(5));
                        double done = 0;
                        foreach (var job in last.Jobs)
                            done += job.Status == JobDisplayStatus.Completed ? 1
                                : job.Status == JobDisplayStatus.Running && job.TotalEpochs > 0 ? (double)job.Epoch / job.TotalEpochs : 0;
                        bar.MaxValue = Math.Max(1, last.TotalJobs);
                        bar.Value = done;
                        var running = last.Jobs.Where(j => j.Status == JobDisplayStatus.Running).Select(j => $"{j.JobId} {j.Epoch}/{j.TotalEpochs}");
                        bar.Description = Markup.Escape($"{last.CompletedJobs}/{last.TotalJobs} done" + (last.FailedJobs > 0 ? $", {last.FailedJobs} failed" : "") +
                                                         $" | {string.Join(", ", running)}");
                    }
                    catch (AskTimeoutException) { }
                    await Task.WhenAny(finished, system.WhenTerminated, Task.Delay(1000, ct).ContinueWith(_ => { }, TaskScheduler.Default));
                }
            });
        return last;
    }
}
