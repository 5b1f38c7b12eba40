using System.ComponentModel;
using System.Globalization;
using NnUnet.Core.Datasets;
using NnUnet.Core.Evaluation;
using NnUnet.Core.Selection;
using NnUnet.Cli.Commands.Datasets;
using Spectre.Console;
using Spectre.Console.Cli;
using NnUnet.Core.Results;

namespace NnUnet.Cli.Commands.Selection;

/// <summary>
/// <c>nnunet find-best DATASET [-c CONFIG...] [--folds F...]</c>: nnU-Net's find_best_configuration (cross-validation
/// summaries, pair ensembles, the winner, its postprocessing; writes best_configuration.json, inference_information.json
/// and inference_instructions.txt into nnUNet_results/DatasetXXX/).
/// </summary>
public sealed class FindBestCommand : Command<FindBestCommand.Settings>
{
    public sealed class Settings : DatasetSettings
    {
        [CommandOption("-c|--configurations <CONFIG>")]
        [Description("configurations to consider, in tie-break order (repeat or comma-separate; default: 2d,3d_fullres,3d_lowres,3d_cascade_fullres; those the plans lack are skipped)")]
        public string[]? Configurations { get; init; }

        [CommandOption("-f|--folds <FOLDS>")]
        [Description("folds whose validation predictions are merged (repeat or comma-separate; default: 0,1,2,3,4)")]
        public string[]? Folds { get; init; }

        internal IReadOnlyList<string> ConfigurationList => Split(Configurations);

        internal IReadOnlyList<int> FoldList
        {
            get
            {
                var folds = new List<int>();
                foreach (string part in Split(Folds))
                {
                    if (!int.TryParse(part, NumberStyles.None, CultureInfo.InvariantCulture, out int fold))
                        throw new ArgumentException($"--folds: '{part}' is not a non-negative integer");
                    folds.Add(fold);
                }
                return folds;
            }
        }

        private static List<string> Split(string[]? values)
        {
            var result = new List<string>();
            foreach (string v in values ?? []) result.AddRange(v.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
            return result;
        }

        [CommandOption("--trainer <NAME>")]
        [Description("trainer name in the model folder names (default nnUNetTrainer)")]
        [DefaultValue("nnUNetTrainer")]
        public string Trainer { get; init; } = "nnUNetTrainer";

        [CommandOption("-p|--plans <NAME>")]
        [Description("plans identifier (default nnUNetPlans)")]
        [DefaultValue("nnUNetPlans")]
        public string Plans { get; init; } = "nnUNetPlans";

        [CommandOption("--disable-ensembling")]
        [Description("only single configurations, no pair ensembles")]
        public bool DisableEnsembling { get; init; }

        [CommandOption("-j|--np|--parallel <N>")]
        [Description("cases processed at the same time (default: one per core, at most 8)")]
        public int Parallel { get; init; }

        public override ValidationResult Validate()
        {
            if (string.IsNullOrWhiteSpace(Dataset)) return ValidationResult.Error("give a DATASET");
            if (Parallel < 0) return ValidationResult.Error($"--parallel must be 0 or more, got {Parallel}");
            IReadOnlyList<int> folds;
            try { folds = FoldList; }
            catch (ArgumentException ex) { return ValidationResult.Error(ex.Message); }
            if (folds.Distinct().Count() != folds.Count)
                return ValidationResult.Error($"--folds lists a fold twice: {string.Join(",", folds)}");
            var configs = ConfigurationList;
            if (configs.Distinct(StringComparer.Ordinal).Count() != configs.Count)
                return ValidationResult.Error($"-c lists a configuration twice: {string.Join(",", configs)}");
            return ValidationResult.Success();
        }
    }

    public override int Execute(CommandContext context, Settings settings, CancellationToken cancellationToken)
    {
        var paths = NnUnetPaths.FromEnvironment(settings.Raw, settings.Preprocessed, settings.Results);
        var options = new SelectionOptions
        {
            Configurations = settings.ConfigurationList is { Count: > 0 } c ? c : SelectionOptions.DefaultConfigurations,
            Folds = settings.FoldList is { Count: > 0 } f ? f : [0, 1, 2, 3, 4],
            Trainer = settings.Trainer,
            Plans = settings.Plans,
            AllowEnsembling = !settings.DisableEnsembling,
            DegreeOfParallelism = settings.Parallel,
        };
        var console = settings.Json ? AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) }) : AnsiConsole.Console;
        BestConfiguration result = null!;
        console.Status().Start("selecting the best configuration", status =>
        {
            result = BestConfigurationFinder.Run(paths, settings.Dataset, options with
            {
                Log = line => console.MarkupLine($"[grey]{Markup.Escape(line)}[/]"),
            });
        });
        string resultsFolder = paths.ResultsDatasetFolder(result.Dataset);
        if (settings.Json)
        {
            JsonStdout.Writer.Write(File.ReadAllText(ResultLayout.BestConfigurationJson(resultsFolder)));
            JsonStdout.Writer.WriteLine();
            return NnUnetApp.ExitOk;
        }
        var table = new Table().AddColumns("candidate", "kind", "foreground mean Dice");
        foreach (var candidate in result.Candidates)
        {
            string name = candidate.Name == result.Best.Name ? $"[bold green]{Markup.Escape(candidate.Name)}[/]" : Markup.Escape(candidate.Name);
            table.AddRow(name, candidate.Kind, PythonJson.FormatFloat(candidate.ForegroundMeanDice));
        }
        console.Write(table);
        console.MarkupLine($"best: [bold]{Markup.Escape(result.Best.Name)}[/], Dice {PythonJson.FormatFloat(result.Best.ForegroundMeanDice)}, " +
                           $"after postprocessing {PythonJson.FormatFloat(result.ForegroundMeanDiceAfterPostprocessing)}");
        console.MarkupLine(result.PostprocessingSteps.Count == 0
            ? "postprocessing: none"
            : $"postprocessing: {Markup.Escape(string.Join("; ", result.PostprocessingSteps))}");
        console.MarkupLine($"written: {Markup.Escape(ResultLayout.BestConfigurationJson(resultsFolder))}, " +
                           $"{ResultLayout.InferenceInformationFile}, {ResultLayout.InferenceInstructionsFile}");
        return NnUnetApp.ExitOk;
    }
}
