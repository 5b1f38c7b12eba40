using System.ComponentModel;
using System.Globalization;
using System.Text.Json;
using NnUnet.Core.Datasets;
using NnUnet.Core.Imaging.Nifti;
using NnUnet.Core.Planning;
using NnUnet.Core.Preprocessing;
using Spectre.Console;
using Spectre.Console.Cli;
using NnUnet.Core.IO;

namespace NnUnet.Cli.Commands.Preprocessing;

/// <summary>
/// <c>nnunet preprocess DATASET -c 2d 3d_fullres 3d_lowres [-np N]</c>: nnU-Net's preprocessing of every training case
/// for the chosen configurations, resumable, one progress bar per configuration.
/// </summary>
internal sealed class PreprocessCommand : Command<PreprocessCommand.Settings>
{
    internal sealed class Settings : CommandSettings
    {
        [CommandArgument(0, "<DATASET>")]
        [Description("Dataset id (4), name (Dataset004_Hippocampus) or raw dataset folder")]
        public string Dataset { get; init; } = "";

        [CommandArgument(1, "[CONFIGURATIONS]")]
        [Description("More configurations after -c, nnU-Net style: -c 2d 3d_fullres")]
        public string[] MoreConfigurations { get; init; } = [];

        [CommandOption("-c|--configurations <NAME>")]
        [Description("Configurations to preprocess (repeat or list after -c). Default: 2d 3d_fullres 3d_lowres; those missing in the plans are skipped")]
        public string[] Configurations { get; init; } = [];

        [CommandOption("-j|--np|--num-processes <N>")]
        [Description("Cases preprocessed at the same time (each also uses all cores for resampling). One value for all configurations, or repeat once per configuration (--np 8 --np 4). Default 2")]
        public int[] NumProcesses { get; init; } = [];

        [CommandOption("-p|--plans <NAME>")]
        [Description("Plans identifier: reads nnUNet_preprocessed/DATASET/<NAME>.json. Default nnUNetPlans")]
        [DefaultValue("nnUNetPlans")]
        public string Plans { get; init; } = "nnUNetPlans";

        [CommandOption("--raw <DIR>")]
        [Description("nnUNet_raw folder (default: environment variable nnUNet_raw)")]
        public string? Raw { get; init; }

        [CommandOption("--preprocessed <DIR>")]
        [Description("nnUNet_preprocessed folder (default: environment variable nnUNet_preprocessed)")]
        public string? Preprocessed { get; init; }

        [CommandOption("--json")]
        [Description("Print a JSON summary (per configuration: done, skipped, failed cases) instead of text")]
        public bool Json { get; init; }

        public override ValidationResult Validate()
        {
            foreach (int n in NumProcesses)
                if (n < 1) return ValidationResult.Error("--np must be at least 1");
            return ValidationResult.Success();
        }
    }

    public override int Execute(CommandContext context, Settings settings, CancellationToken cancellationToken)
    {
        var paths = NnUnetPaths.FromEnvironment(settings.Raw, settings.Preprocessed);
        var location = DatasetLocator.Locate(settings.Dataset, paths);
        var raw = RawDataset.Open(location);
        string preprocessedFolder = paths.PreprocessedDatasetFolder(location.Name);
        string plansPath = Path.Combine(preprocessedFolder, settings.Plans + ".json");
        if (!File.Exists(plansPath))
            throw new FileNotFoundException($"{plansPath} does not exist: run nnunet plan {settings.Dataset} first", plansPath);
        var plans = NnUnetPlans.Load(plansPath);

        var requested = new List<string>(settings.Configurations);
        requested.AddRange(settings.MoreConfigurations);
        if (requested.Count == 0) requested.AddRange(["2d", "3d_fullres", "3d_lowres"]);
        if (settings.NumProcesses.Length > 1 && settings.NumProcesses.Length != requested.Count)
            throw new ArgumentException($"--np was given {settings.NumProcesses.Length} times for {requested.Count} configurations: give it once or once per configuration");
        var configurations = new List<(string Name, int Processes)>();
        for (int i = 0; i < requested.Count; i++)
        {
            string name = requested[i];
            int processes = settings.NumProcesses.Length == 0 ? 2 : settings.NumProcesses[Math.Min(i, settings.NumProcesses.Length - 1)];
            if (plans.Configurations.ContainsKey(name)) { if (!configurations.Exists(c => c.Name == name)) configurations.Add((name, processes)); }
            else if (!settings.Json) AnsiConsole.MarkupLineInterpolated(CultureInfo.InvariantCulture, $"[yellow]configuration {name} is not in {plansPath}; skipped[/]");
        }

        var runner = new DatasetPreprocessor(plans, raw.Json, NiftiReader.Read);
        var cases = raw.TrainingCases;
        var summary = new Dictionary<string, IReadOnlyList<CasePreprocessingResult>>();
        foreach (var (configuration, processes) in configurations)
        {
            string output = runner.OutputFolder(preprocessedFolder, configuration);
            IReadOnlyList<CasePreprocessingResult> results;
            if (settings.Json || Console.IsOutputRedirected)
                results = runner.Run(configuration, cases, output, processes, null, cancellationToken);
            else
            {
                results = [];
                AnsiConsole.Progress()
                    .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn(), new SpinnerColumn())
                    .Start(ctx =>
                    {
                        var task = ctx.AddTask($"{location.Name} {configuration}", maxValue: cases.Count);
                        results = runner.Run(configuration, cases, output, processes, _ => task.Increment(1), cancellationToken);
                    });
            }
            summary[configuration] = results;
            if (!settings.Json) Report(configuration, output, results);
        }

        // like nnU-Net: the labels next to the preprocessed data, for validation where only nnUNet_preprocessed is mounted
        runner.CopyGroundTruth(cases, preprocessedFolder);

        bool anyFailed = false;
        foreach (var results in summary.Values)
            foreach (var r in results) anyFailed |= r.Failed;
        if (settings.Json)
        {
            var json = new Dictionary<string, object>();
            foreach (var (configuration, results) in summary)
            {
                var done = new List<string>(); var skipped = new List<string>(); var failed = new Dictionary<string, string>();
                foreach (var r in results)
                {
                    if (r.Failed) failed[r.CaseId] = r.Error!;
                    else if (r.Skipped) skipped.Add(r.CaseId);
                    else done.Add(r.CaseId);
                }
                json[configuration] = new { output = runner.OutputFolder(preprocessedFolder, configuration), done, skipped, failed };
            }
            JsonStdout.Writer.WriteLine(JsonSerializer.Serialize(json, IndentedJson.Options));
        }
        return anyFailed ? NnUnetApp.ExitProblems : NnUnetApp.ExitOk;
    }

    private static void Report(string configuration, string output, IReadOnlyList<CasePreprocessingResult> results)
    {
        int done = 0, skipped = 0, failed = 0;
        foreach (var r in results)
        {
            if (r.Failed)
            {
                failed++;
                Console.Error.WriteLine($"error: {configuration}: case {r.CaseId} failed: {r.Error}");
            }
            else if (r.Skipped) skipped++;
            else done++;
        }
        AnsiConsole.MarkupLineInterpolated(CultureInfo.InvariantCulture, $"{configuration}: {done} preprocessed, {skipped} already done, {failed} failed -> {output}");
    }
}
