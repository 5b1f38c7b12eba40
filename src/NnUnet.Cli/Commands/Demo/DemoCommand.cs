using System.ComponentModel;
using System.Globalization;
using NnUnet.Cli.Commands.Cluster;
using NnUnet.Core.Datasets;
using NnUnet.Core.Demo;
using NnUnet.Core.Evaluation;
using NnUnet.Core.Selection;
using Spectre.Console;
using Spectre.Console.Cli;
using NnUnet.Core.Results;

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
        [Description("smaller volumes and a smaller training budget (a few minutes on 2 CPU cores)")]
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
        int epochs = settings.Epochs ?? (settings.Quick ? 3 : 6);
        int iters = settings.ItersPerEpoch ?? (settings.Quick ? 12 : 20);
        string dataset = DatasetId.ToString(CultureInfo.InvariantCulture);
        AnsiConsole.MarkupLine($"[bold]nnU-Net demo[/] in [blue]{Markup.Escape(work)}[/]: {epochs} epochs x {iters} iterations per fold, {settings.Workers} CPU worker(s)");
        if (!settings.NoDashboard)
            AnsiConsole.MarkupLine($"dashboard: [blue]http://{Markup.Escape(settings.Dashboard)}/[/] once the sweep starts (its action token is printed then)");

        string datasetName = DatasetLocator.FormatName(DatasetId, DatasetShortName);
        if (!File.Exists(Path.Combine(paths.Raw!, datasetName, DatasetJson.FileName)))
        {
            AnsiConsole.MarkupLine("[grey]generating the synthetic dataset (organ + lesion, anisotropic CT-like volumes, 20 training + 5 test cases)[/]");
            SyntheticDataset.Write(paths.Raw!, DatasetId, DatasetShortName, settings.Quick
                ? new SyntheticDatasetOptions(Shape: [12, 32, 32])
                : new SyntheticDatasetOptions(Shape: [16, 40, 40]));
        }

        Step("verify", ["verify", dataset]);
        Step("fingerprint", ["fingerprint", dataset]);
        Step("plan", ["plan", dataset]);
        var plans = NnUnet.Core.Planning.NnUnetPlans.Load(Path.Combine(paths.Preprocessed!, datasetName, "nnUNetPlans.json"));
        // The cascade trains on the low-res preprocessed data of 3d_fullres' identifier: no preprocessing of its own.
        var toPreprocess = plans.ConfigurationNames.Where(c => plans.GetConfiguration(c).PreviousStage is null).ToList();
        Step("preprocess", ["preprocess", dataset, "-c", .. toPreprocess]);
        int sweepExit = NnUnetApp.Run(["sweep", dataset, "--epochs", epochs.ToString(CultureInfo.InvariantCulture),
            "--iters-per-epoch", iters.ToString(CultureInfo.InvariantCulture), "--val-iters", Math.Max(2, iters / 4).ToString(CultureInfo.InvariantCulture),
            "--workers", settings.Workers.ToString(CultureInfo.InvariantCulture), "--folds", settings.Folds, "--predict", .. settings.ToArguments()]);
        // refused before it started (e.g. results of another budget in the same folder): the sweep said why and how on
        if (sweepExit is NnUnetApp.ExitInterrupted or NnUnetApp.ExitBadInput) return sweepExit;
        if (sweepExit != 0) throw new InvalidOperationException($"the sweep ended with exit code {sweepExit}; re-run nnunet demo to resume it");

        PrintResults(paths, datasetName);
        return NnUnetApp.ExitOk;
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
