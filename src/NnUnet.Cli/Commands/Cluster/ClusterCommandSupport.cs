using System.ComponentModel;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using Akka.Actor;
using NnUnet.Cluster.Hosting;
using NnUnet.Cluster.Messages;
using NnUnet.Cluster.Sweeps;
using NnUnet.Core.Datasets;
using Spectre.Console;
using Spectre.Console.Cli;

namespace NnUnet.Cli.Commands.Cluster;

/// <summary>Options that define a sweep (shared by <c>sweep</c> and <c>coordinator</c>).</summary>
internal class SweepDefinitionSettings : DashboardSettings
{
    [CommandArgument(0, "<DATASET>")]
    [Description("dataset id (4), name (Dataset004_Hippocampus) or folder")]
    public string Dataset { get; init; } = "";

    [CommandOption("-c|--configurations <CONFIG>")]
    [Description("configurations to train (repeat or comma-separate); default: every configuration in the plans")]
    public string[] Configurations { get; init; } = [];

    [CommandOption("--folds <FOLDS>")]
    [Description("folds, comma-separated")]
    [DefaultValue("0,1,2,3,4")]
    public string Folds { get; init; } = "0,1,2,3,4";

    [CommandOption("--epochs <E>")]
    [Description("epochs per fold (nnU-Net: 1000)")]
    [DefaultValue(1000)]
    public int Epochs { get; init; } = 1000;

    [CommandOption("-p|--plans <NAME>")]
    [DefaultValue("nnUNetPlans")]
    public string Plans { get; init; } = "nnUNetPlans";

    [CommandOption("--trainer <NAME>")]
    [DefaultValue("nnUNetTrainer")]
    public string Trainer { get; init; } = "nnUNetTrainer";

    [CommandOption("--predict")]
    [Description("after the selection, predict imagesTs with the best configuration")]
    public bool Predict { get; init; }

    [CommandOption("--predict-shards <N>")]
    [Description("with --predict: split the test set into N shard jobs that free workers run side by side, then a merge job (default: sweep: one per local worker; coordinator: 4). Recorded in the journal: a resumed sweep keeps its split")]
    public int? PredictShards { get; init; }

    [CommandOption("--max-attempts <N>")]
    [Description("failed attempts before a job is marked failed")]
    [DefaultValue(3)]
    public int MaxAttempts { get; init; } = 3;

    [CommandOption("--results <DIR>")]
    [Description("nnUNet_results (default: the environment variable)")]
    public string? Results { get; init; }

    [CommandOption("--preprocessed <DIR>")]
    [Description("nnUNet_preprocessed (default: the environment variable)")]
    public string? Preprocessed { get; init; }

    [CommandOption("--journal <FILE>")]
    [Description("SQLite journal file (default: nnUNet_results/DATASET/sweeps.db)")]
    public string? Journal { get; init; }

    [CommandOption("--config <FILE>")]
    [Description("extra HOCON layered over cluster-config/ (e.g. cluster-config/postgres-journal.hocon)")]
    public string? Config { get; init; }

    [CommandOption("--iters-per-epoch <N>")]
    [Description("training iterations per epoch of every fold (nnU-Net: 250); part of the sweep, sent to every worker")]
    [DefaultValue(SweepDefinition.NnUnetItersPerEpoch)]
    public int ItersPerEpoch { get; init; } = SweepDefinition.NnUnetItersPerEpoch;

    [CommandOption("--val-iters <N>")]
    [Description("validation iterations per epoch for the online pseudo-Dice (nnU-Net: 50); part of the sweep")]
    [DefaultValue(SweepDefinition.NnUnetValIters)]
    public int ValIters { get; init; } = SweepDefinition.NnUnetValIters;

    [CommandOption("--simulate")]
    [Description("run jobs with the simulated backend (no training; writes small stand-in files)")]
    public bool Simulate { get; init; }

    [CommandOption("--sim-epoch-ms <MS>")]
    [Description("length of a simulated epoch")]
    [DefaultValue(200)]
    public int SimulatedEpochMs { get; init; } = 200;

    [CommandOption("--json")]
    [Description("print the final grid as JSON")]
    public bool Json { get; init; }

    [CommandOption("--continue-training")]
    [Description("fold folders holding another run's results with the same settings but fewer epochs: continue them from their final checkpoints to --epochs")]
    public bool ContinueTraining { get; init; }

    [CommandOption("--overwrite")]
    [Description("fold folders holding another run's results: move them to nnUNet_results/DATASET/superseded/<date>/ first, then train from scratch")]
    public bool Overwrite { get; init; }

    [CommandOption("--results-suffix <NAME>")]
    [Description("train beside existing results: the trainer folders become TRAINER_NAME__PLANS__CONFIG")]
    public string? ResultsSuffix { get; init; }

    [CommandOption("--lock-lease <SECONDS>")]
    [Description("lease of the results locks this sweep holds and renews; a crashed holder's lock is taken over after it")]
    [DefaultValue(60.0)]
    public double LockLeaseSeconds { get; init; } = 60;

    public override Spectre.Console.ValidationResult Validate() =>
        ContinueTraining && Overwrite ? Spectre.Console.ValidationResult.Error("--continue-training and --overwrite exclude each other: continue the old folds, or move them aside")
        : LockLeaseSeconds <= 0 ? Spectre.Console.ValidationResult.Error($"--lock-lease must be > 0, got {LockLeaseSeconds}")
        : ResultsNaming.CheckSuffix(ResultsSuffix) is { } error ? Spectre.Console.ValidationResult.Error(error)
        : base.Validate();

    public ProtectionChoice Protection => new(ContinueTraining, Overwrite, TimeSpan.FromSeconds(LockLeaseSeconds));

    /// <summary>The plans file the sweep's configurations come from (its hash is recorded with the results), or null.</summary>
    public string? PlansFile(SweepDefinition definition)
    {
        var paths = NnUnetPaths.FromEnvironment(preprocessed: Preprocessed, results: Results);
        if (paths.Preprocessed is null) return null;
        var file = Path.Combine(paths.PreprocessedDatasetFolder(definition.DatasetName), definition.PlansName + ".json");
        return File.Exists(file) ? file : null;
    }

    public (SweepDefinition definition, string resultsRoot) Resolve(int defaultPredictShards)
    {
        if (PredictShards is < 1) throw new ArgumentException($"--predict-shards must be >= 1, got {PredictShards}");
        var paths = NnUnetPaths.FromEnvironment(preprocessed: Preprocessed, results: Results);
        var resultsRoot = paths.RequireResults();
        var dataset = DatasetLocator.ResolveName(Dataset, paths);
        var configs = ClusterCommandSupport.SplitList(Configurations);
        if (configs.Count == 0)
        {
            var plansPath = Path.Combine(paths.PreprocessedDatasetFolder(dataset), Plans + ".json");
            if (!File.Exists(plansPath))
                throw new FileNotFoundException($"{plansPath} does not exist: plan the dataset first or name the configurations with -c");
            configs = NnUnet.Core.Planning.NnUnetPlans.Load(plansPath).ConfigurationNames.ToList();
        }
        var folds = ClusterCommandSupport.ParseInts(Folds, "--folds");
        // the real trainer's cascade folds read the low-res prediction of every training case, which only the five
        // low-res folds together produce: a sweep over fewer folds would schedule cascade jobs that can only fail
        if (!Simulate && configs.Contains(SweepDefinition.Cascade) && !new SortedSet<int>(folds).SetEquals([0, 1, 2, 3, 4]))
            throw new ArgumentException($"{SweepDefinition.Cascade} trains on the {SweepDefinition.Lowres} predictions of every training case, " +
                $"which all five {SweepDefinition.Lowres} folds produce: use --folds 0,1,2,3,4, or leave {SweepDefinition.Cascade} out with -c");
        return (SweepDefinition.Create(dataset, Plans, ResultsNaming.WithSuffix(Trainer, ResultsSuffix), configs, folds, Epochs, Predict, MaxAttempts, ItersPerEpoch, ValIters,
            PredictShards ?? defaultPredictShards), resultsRoot);
    }
}

/// <summary><c>--results-suffix NAME</c>: results beside the existing ones, under the trainer name TRAINER_NAME (as nnU-Net users name trainer variants).</summary>
internal static class ResultsNaming
{
    public static string WithSuffix(string trainer, string? suffix) => string.IsNullOrEmpty(suffix) ? trainer : $"{trainer}_{suffix}";

    public static string? CheckSuffix(string? suffix) =>
        suffix is null ? null
        : suffix.Length == 0 || suffix.Contains("__") || suffix.Any(c => !(char.IsAsciiLetterOrDigit(c) || c is '_' or '-' or '.'))
            ? $"--results-suffix '{suffix}': use letters, digits, '-', '.' or single '_' (it becomes part of a folder name TRAINER_NAME__PLANS__CONFIG)"
            : null;
}

internal static class ClusterCommandSupport
{
    public static List<string> SplitList(IEnumerable<string> values) =>
        values.SelectMany(v => v.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)).ToList();

    public static int[] ParseInts(string text, string option)
    {
        var result = new List<int>();
        foreach (var part in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (!int.TryParse(part, NumberStyles.None, CultureInfo.InvariantCulture, out var value))
                throw new ArgumentException($"{option}: '{part}' is not a non-negative integer");
            result.Add(value);
        }
        if (result.Count == 0) throw new ArgumentException($"{option}: no value given");
        return result.ToArray();
    }

    /// <summary>Devices of this node's workers: --gpus 0,1 | --cpu N | auto (every CUDA device, else one CPU worker).</summary>
    public static string[] Devices(string? gpus, int? cpu, bool simulate)
    {
        if (gpus is not null && cpu is not null) throw new ArgumentException("give either --gpus or --cpu, not both");
        if (gpus is not null) return ParseInts(gpus, "--gpus").Select(g => $"cuda:{g}").ToArray();
        if (cpu is not null)
        {
            if (cpu < 1) throw new ArgumentException($"--cpu must be >= 1, got {cpu}");
            return Enumerable.Repeat("cpu", cpu.Value).ToArray();
        }
        int count = simulate ? 0 : TrainingBackends.DetectGpuCount();
        return count > 0 ? Enumerable.Range(0, count).Select(g => $"cuda:{g}").ToArray() : ["cpu"];
    }

    /// <summary>Cancels on the first Ctrl-C (clean stop: checkpoints written); a second one kills the process as usual.</summary>
    public static CancellationTokenSource CancelOnCtrlC(CancellationToken outer)
    {
        var cts = CancellationTokenSource.CreateLinkedTokenSource(outer);
        Console.CancelKeyPress += (_, e) =>
        {
            if (cts.IsCancellationRequested) return;
            e.Cancel = true;
            Console.Error.WriteLine("stopping: cancelling running jobs (checkpoints are kept); run the same command again to resume");
            cts.Cancel();
        };
        return cts;
    }

    /// <summary>
    /// Joins the cluster briefly as a node of <paramref name="kind"/> (client: asks only; operator: may command) with
    /// the cluster credential, asks the coordinator (through the singleton proxy, again until it answers or
    /// <c>--timeout</c> passes) and leaves. For <c>sweep-status</c> and <c>sweep-control</c>.
    /// </summary>
    public static async Task<T> AskCoordinatorAsync<T>(CoordinatorClientSettings settings, NodeKind kind, INnUnetMessage question, CancellationToken ct)
    {
        var seeds = SplitList(settings.Seeds).ToArray();
        if (seeds.Length == 0) throw new ArgumentException("--seed is required: the coordinator's address, e.g. akka.tcp://nnunet@HOST:4053");
        int timeoutSeconds = settings.TimeoutSeconds;
        var credential = await ClusterAdmission.ResolveAsync(settings, null, ClusterAdmission.Role.Reads, ct);
        var system = NnUnetClusterHost.StartSystem(ClusterConfig.Build(new NodeOptions(kind, settings.Host, 0, seeds, ConfigFile: settings.Config, CredentialFolder: credential)));
        try
        {
            var deadline = DateTime.UtcNow.AddSeconds(timeoutSeconds);
            while (true)
            {
                try
                {
                    return await NnUnetClusterHost.CoordinatorProxy(system).Ask<T>(question, TimeSpan.FromSeconds(3), ct);
                }
                catch (AskTimeoutException) when (DateTime.UtcNow < deadline) { }
                catch (AskTimeoutException)
                {
                    throw new TimeoutException($"no coordinator answered within {timeoutSeconds} s via {string.Join(", ", seeds)}");
                }
            }
        }
        finally
        {
            await ShutdownAsync(system);
        }
    }

    /// <summary>
    /// A resumed sweep keeps the test-set split its journal recorded (<see cref="SweepDefinition.KeptShardsNotice"/>):
    /// when this run asked for another one, says so on stderr, once, before following the sweep. The coordinator (still
    /// recovering, or starting on a fresh node) has 30 s to answer; one that does not is followed all the same.
    /// </summary>
    public static async Task WarnIfTheJournalKeepsOtherShardsAsync(ActorSystem system, SweepDefinition asked, CancellationToken ct)
    {
        if (!asked.PredictTest) return;
        try
        {
            var view = await NnUnetClusterHost.CoordinatorProxy(system).Ask<SweepView>(GetSweepView.Instance, TimeSpan.FromSeconds(30), ct);
            if (view.Definition?.KeptShardsNotice(asked) is { } notice) Console.Error.WriteLine("warning: " + notice);
        }
        catch (AskTimeoutException) { }
        catch (OperationCanceledException) { } // Ctrl-C: the caller stops
    }

    /// <summary>Leaves the cluster and stops the node (coordinated shutdown: workers cancel their jobs first).</summary>
    public static async Task ShutdownAsync(ActorSystem system)
    {
        await CoordinatedShutdown.Get(system).Run(CoordinatedShutdown.ClrExitReason.Instance);
        await system.WhenTerminated.WaitAsync(TimeSpan.FromSeconds(180));
    }

    public static readonly JsonSerializerOptions JsonOptions = new()
    {
        WriteIndented = true,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower) },
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
    };

    public static void Print(SweepView snapshot, bool json)
    {
        if (json)
        {
            JsonStdout.Writer.WriteLine(JsonSerializer.Serialize(snapshot, JsonOptions));
            return;
        }
        var table = new Table().Border(TableBorder.Rounded)
            .AddColumns("job", "status", "phase", "attempt", "re-queues", "epoch", "EMA pseudo-Dice (best)", "worker", "ETA", "last error");
        foreach (var job in snapshot.Jobs)
        {
            var status = job.Status switch
            {
                JobDisplayStatus.Completed => "[green]completed[/]",
                JobDisplayStatus.Running => "[blue]running[/]",
                JobDisplayStatus.Failed => "[red]failed[/]",
                JobDisplayStatus.Blocked => "[red]blocked[/]",
                JobDisplayStatus.Cancelled => "[yellow]cancelled[/]",
                var s => s.ToString().ToLowerInvariant(),
            };
            table.AddRow(Markup.Escape(job.JobId), status, PhaseText(job), job.Attempt.ToString(CultureInfo.InvariantCulture),
                job.Requeues.ToString(CultureInfo.InvariantCulture),
                job.Kind == JobKind.Train ? $"{job.Epoch}/{job.TotalEpochs}" : "",
                job.Kind == JobKind.Train && job.BestEmaPseudoDice is { } d ? d.ToString("F4", CultureInfo.InvariantCulture) : "",
                Markup.Escape(job.WorkerId ?? ""), job.EtaSeconds is { } eta && job.Status != JobDisplayStatus.Completed ? FormatDuration(eta) : "",
                Markup.Escape(Truncate(job.LastError ?? "", 60)));
        }
        AnsiConsole.Write(table);
        if (snapshot.Workers.Length > 0) AnsiConsole.Write(WorkerTable(snapshot.Workers));
        int registered = snapshot.Workers.Count(w => w.Registered), quarantined = snapshot.Workers.Count(w => w.Registered && w.Quarantined);
        AnsiConsole.MarkupLine(Markup.Escape(
            $"sweep {snapshot.SweepId}: {snapshot.Status.ToString().ToLowerInvariant()}, {snapshot.CompletedJobs}/{snapshot.TotalJobs} jobs completed, " +
            $"{snapshot.FailedJobs} failed, {registered} worker(s)" + (quarantined > 0 ? $" ({quarantined} quarantined)" : "") +
            (snapshot.EtaSeconds is > 0 and { } e ? $", about {FormatDuration(e)} left" : "")));
        if (snapshot.Waiting is { } waiting) AnsiConsole.MarkupLine("[yellow]" + Markup.Escape("waiting: " + waiting) + "[/]");
    }

    /// <summary>Per worker: what it runs, whether it is quarantined (until when, and why), its failures in a row and its last failure.</summary>
    private static Table WorkerTable(WorkerView[] workers)
    {
        var table = new Table().Border(TableBorder.Rounded).AddColumns("worker", "device", "state", "job", "failures in a row", "last failure");
        foreach (var w in workers)
        {
            string state = w.Quarantined ? $"[red]quarantined until {w.QuarantinedUntil:HH:mm:ss} UTC[/]" + (w.Registered ? "" : " (not registered)")
                : w.JobId is not null ? "[blue]running[/]" : "idle";
            table.AddRow(Markup.Escape(w.WorkerId), Markup.Escape(w.Device), state, Markup.Escape(w.JobId is null ? "" : $"{w.JobId} (attempt {w.Attempt})"),
                w.FailuresInARow.ToString(CultureInfo.InvariantCulture),
                Markup.Escape(Truncate(w.LastFailure is null ? "" : $"{w.LastFailureAt:HH:mm:ss} {w.LastFailure}", 80)));
        }
        return table;
    }

    /// <summary>A running job's phase and its progress within it ("validating 3/40"), from the worker's liveness report.</summary>
    public static string PhaseText(JobView job) => job.Phase is { } phase
        ? phase.ToString().ToLowerInvariant() + (job.PhaseTotal > 0 ? $" {job.PhaseDone}/{job.PhaseTotal}" : "")
        : "";

    public static string FormatDuration(double seconds)
    {
        var t = TimeSpan.FromSeconds(Math.Max(0, seconds));
        return t.TotalHours >= 1 ? $"{(int)t.TotalHours}h{t.Minutes:D2}m" : t.TotalMinutes >= 1 ? $"{t.Minutes}m{t.Seconds:D2}s" : $"{t.Seconds}s";
    }

    private static string Truncate(string s, int n) => s.Length <= n ? s : s[..(n - 1)] + "…";

    public static int ExitCodeFor(SweepStatus status) => status == SweepStatus.Completed ? NnUnetApp.ExitOk : NnUnetApp.ExitProblems;
}
