using System.ComponentModel;
using System.Globalization;
using NnUnet.Cli.Commands.Cluster;
using NnUnet.Cluster.Sweeps;
using NnUnet.Core.Datasets;
using NnUnet.Core.Demo;
using NnUnet.Core.Evaluation;
using NnUnet.Core.Planning;
using NnUnet.Core.Results;
using NnUnet.Core.Selection;
using Spectre.Console;
using Spectre.Console.Cli;

namespace NnUnet.Cli.Commands.Demo;

/// <summary>
/// <c>nnunet demo</c>: the whole pipeline, embedded on this machine, on a generated dataset: verify, fingerprint, plan,
/// preprocess, the sweep over every planned configuration x 5 folds with selection, postprocessing decision and test-set
/// prediction, then the final table. Every step is one of the ordinary verbs run in-process, so the demo shows exactly
/// what a user would type; each is resumable, hence re-running after Ctrl-C continues where it stopped.
/// </summary>
internal sealed class DemoCommand : Command<DemoCommand.Settings>
{
    internal sealed class Settings : DashboardSettings
    {
        [CommandOption("--work <DIR>")]
        [Description("work folder holding nnUNet_raw, nnUNet_preprocessed and nnUNet_results")]
        [DefaultValue("nnunet-demo")]
        public string Work { get; init; } = "nnunet-demo";

        [CommandOption("--quick")]
        [Description("smaller volumes and a smaller training budget (under 5 minutes on 2 CPU cores)")]
        public bool Quick { get; init; }

        [CommandOption("--epochs <E>")]
        [Description("epochs per fold (default 6, --quick 3)")]
        public int? Epochs { get; init; }

        [CommandOption("--iters-per-epoch <N>")]
        [Description("training iterations per epoch (default 20, --quick 12)")]
        public int? ItersPerEpoch { get; init; }

        [CommandOption("--workers <N>")]
        [Description("local CPU workers")]
        [DefaultValue(1)]
        public int Workers { get; init; } = 1;

        [CommandOption("--folds <FOLDS>")]
        [Description("folds to train, comma-separated")]
        [DefaultValue("0,1,2,3,4")]
        public string Folds { get; init; } = "0,1,2,3,4";
    }

    public const int DatasetId = 990;
    public const string DatasetShortName = "Demo";

    public override int Execute(CommandContext context, Settings settings, CancellationToken cancellationToken)
    {
        string work = Path.GetFullPath(settings.Work);
        var paths = new NnUnetPaths(Path.Combine(work, "nnUNet_raw"), Path.Combine(work, "nnUNet_preprocessed"), Path.Combine(work, "nnUNet_results"));
        foreach (var folder in new[] { paths.Raw!, paths.Preprocessed!, paths.Results! }) Directory.CreateDirectory(folder);
        // The verbs below read their roots like nnU-Net, from the environment.
        Environment.SetEnvironmentVariable(NnUnetPaths.RawVariable, paths.Raw);
        Environment.SetEnvironmentVariable(NnUnetPaths.PreprocessedVariable, paths.Preprocessed);
        Environment.SetEnvironmentVariable(NnUnetPaths.ResultsVariable, paths.Results);

        // chosen so both structures are learned within the times the README gives for the demo (measured, not assumed here)
        var profile = DemoProfile.For(settings.Quick);
        int epochs = settings.Epochs ?? profile.Epochs;
        int iters = settings.ItersPerEpoch ?? profile.ItersPerEpoch;
        string dataset = DatasetId.ToString(CultureInfo.InvariantCulture);
        AnsiConsole.MarkupLine($"[bold]nnU-Net demo[/] in [blue]{Markup.Escape(work)}[/]: {epochs} epochs x {iters} iterations per fold, {settings.Workers} CPU worker(s)");
        if (!settings.NoDashboard)
            AnsiConsole.MarkupLine($"dashboard: [blue]http://{Markup.Escape(settings.Dashboard)}/[/] once the sweep starts (its action token is printed then)");

        string datasetName = DatasetLocator.FormatName(DatasetId, DatasetShortName);
        if (!File.Exists(Path.Combine(paths.Raw!, datasetName, DatasetJson.FileName)))
        {
            AnsiConsole.MarkupLine("[grey]generating the synthetic dataset (organ + lesion, anisotropic CT-like volumes, 20 training + 5 test cases)[/]");
            SyntheticDataset.Write(paths.Raw!, DatasetId, DatasetShortName, profile.DatasetOptions);
        }

        var plans = Prepare(dataset, profile, Step);
        int sweepExit = NnUnetApp.Run([.. SweepArguments(plans, epochs, iters, settings.Workers, settings.Folds), .. settings.ToArguments(), .. settings.AdmissionArguments()]);
        // refused before it started (e.g. results of another budget in the same folder): the sweep said why and how on
        if (sweepExit is NnUnetApp.ExitInterrupted or NnUnetApp.ExitBadInput) return sweepExit;
        if (sweepExit != 0) throw new InvalidOperationException($"the sweep ended with exit code {sweepExit}; re-run nnunet demo to resume it");

        PrintResults(paths, datasetName);
        return NnUnetApp.ExitOk;
    }

    /// <summary>verify, fingerprint, plan (with the profile's GPU memory target) and preprocess every configuration
    /// that has data of its own; returns the plans.</summary>
    internal static NnUnetPlans Prepare(string dataset, DemoProfile profile, Action<string, string[]> step)
    {
        step("verify", ["verify", dataset]);
        step("fingerprint", ["fingerprint", dataset]);
        step("plan", ["plan", dataset, "--gpu-memory-gb", profile.GpuMemoryGb.ToString(CultureInfo.InvariantCulture)]);
        var paths = NnUnetPaths.FromEnvironment();
        string datasetName = DatasetLocator.ResolveName(dataset, paths);
        var plans = NnUnetPlans.Load(Path.Combine(paths.PreprocessedDatasetFolder(datasetName), "nnUNetPlans.json"));
        // The cascade trains on the data of 3d_fullres' identifier: no preprocessing of its own.
        var toPreprocess = plans.ConfigurationNames.Where(c => plans.GetConfiguration(c).PreviousStage is null).ToList();
        step("preprocess", ["preprocess", dataset, "-c", .. toPreprocess]);
        return plans;
    }

    /// <summary>
    /// The <c>nnunet sweep</c> command line of the demo: every planned configuration x the folds, selection and test-set
    /// prediction. The cascade reads the low-res predictions of every training case, which only all five low-res folds
    /// produce, so a run over fewer folds leaves it out (and says so) instead of failing.
    /// </summary>
    internal static List<string> SweepArguments(NnUnetPlans plans, int epochs, int itersPerEpoch, int workers, string folds)
    {
        var configurations = plans.ConfigurationNames.ToList();
        var foldSet = new SortedSet<int>(ClusterCommandSupport.ParseInts(folds, "--folds"));
        if (configurations.Contains(SweepDefinition.Cascade) && !foldSet.SetEquals([0, 1, 2, 3, 4]))
        {
            configurations.Remove(SweepDefinition.Cascade);
            AnsiConsole.MarkupLine($"[yellow]{SweepDefinition.Cascade} left out: it needs all five {SweepDefinition.Lowres} folds, --folds {Markup.Escape(folds)} trains {foldSet.Count}[/]");
        }
        return ["sweep", plans.DatasetName, "-c", string.Join(',', configurations),
            "--epochs", epochs.ToString(CultureInfo.InvariantCulture),
            "--iters-per-epoch", itersPerEpoch.ToString(CultureInfo.InvariantCulture),
            "--val-iters", Math.Max(2, itersPerEpoch / 4).ToString(CultureInfo.InvariantCulture),
            "--workers", workers.ToString(CultureInfo.InvariantCulture), "--folds", folds, "--predict"];
    }

    private static void Step(string name, string[] args)
    {
        AnsiConsole.Write(new Rule($"[yellow]{name}[/]").LeftJustified());
        int exit = NnUnetApp.Run(args);
        if (exit != 0) throw new InvalidOperationException($"demo step '{name}' (nnunet {string.Join(' ', args)}) failed with exit code {exit}");
    }

    /// <summary>CV Dice of every candidate, the choice and its postprocessing, and the Dice of the test-set predictions.</summary>
    private static void PrintResults(NnUnetPaths paths, string datasetName)
    {
        string resultsFolder = paths.ResultsDatasetFolder(datasetName);
        var best = BestConfiguration.Load(ResultLayout.BestConfigurationJson(resultsFolder));
        var table = new Table().Title("cross-validation (foreground mean Dice)").AddColumn("candidate").AddColumn("kind").AddColumn(new TableColumn("CV Dice").RightAligned());
        foreach (var candidate in best.Candidates)
        {
            string name = candidate.Name == best.Best.Name ? $"[green]{Markup.Escape(candidate.Name)} (chosen)[/]" : Markup.Escape(candidate.Name);
            table.AddRow(name, candidate.Kind, candidate.ForegroundMeanDice.ToString("F4", CultureInfo.InvariantCulture));
        }
        AnsiConsole.Write(table);
        AnsiConsole.MarkupLine($"postprocessing: {(best.PostprocessingSteps.Count == 0 ? "none kept" : Markup.Escape(string.Join("; ", best.PostprocessingSteps)))}" +
                               $" -> CV Dice {best.ForegroundMeanDiceAfterPostprocessing.ToString("F4", CultureInfo.InvariantCulture)}");

        var dataset = DatasetJson.Load(Path.Combine(paths.Raw!, datasetName, DatasetJson.FileName));
        string references = Path.Combine(paths.Raw!, datasetName, "labelsTs");
        string predictions = ResultLayout.TestPredictions(resultsFolder);
        var summary = SegmentationEvaluator.EvaluateFolderAndSave(references, predictions, LabelOrRegion.ForDataset(dataset), dataset.IgnoreLabel,
            dataset.FileEnding, SegmentationEvaluator.DefaultDegreeOfParallelism);
        var test = new Table().Title($"test set ({summary.MetricPerCase.Count} cases, predictions in {Markup.Escape(predictions)})").AddColumn("label").AddColumn(new TableColumn("Dice").RightAligned());
        foreach (var (label, metrics) in summary.Mean)
            test.AddRow(Markup.Escape(label), metrics.Dice.ToString("F4", CultureInfo.InvariantCulture));
        test.AddRow("[bold]foreground mean[/]", $"[bold]{summary.ForegroundMean.Dice.ToString("F4", CultureInfo.InvariantCulture)}[/]");
        AnsiConsole.Write(test);
    }
}
