using System.ComponentModel;
using System.Globalization;
using System.Text;
using System.Text.Json;
using NnUnet.Cli.Commands.Datasets;
using NnUnet.Core.Datasets;
using NnUnet.Core.Fingerprinting;
using NnUnet.Core.Planning;
using Spectre.Console;
using Spectre.Console.Cli;
using NnUnet.Core.IO;

namespace NnUnet.Cli.Commands.Planning;

/// <summary>
/// <c>nnunet plan DATASET</c>: nnUNet_preprocessed/DatasetXXX/dataset_fingerprint.json + dataset.json -> nnUNetPlans.json.
/// <c>nnunet plan --fingerprint FILE --dataset-json FILE</c>: plans from those two files alone (no dataset folders needed).
/// </summary>
public sealed class PlanCommand : Command<PlanCommand.Settings>
{
    public sealed class Settings : RootsSettings
    {
        [CommandArgument(0, "[DATASET]")]
        [Description("dataset id (4 or 004), name (Dataset004_Hippocampus) or folder; reads its fingerprint from nnUNet_preprocessed and writes nnUNetPlans.json there")]
        public string? Dataset { get; init; }

        [CommandOption("--fingerprint <FILE>")]
        [Description("plan from this dataset_fingerprint.json instead of a dataset (needs --dataset-json)")]
        public string? Fingerprint { get; init; }

        [CommandOption("--dataset-json <FILE>")]
        [Description("the dataset.json that goes with --fingerprint")]
        public string? DatasetJson { get; init; }

        [CommandOption("--gpu-memory-gb <GB>")]
        [Description("GPU memory target in GB (default 8, as nnU-Net); patch and batch sizes scale with it")]
        [DefaultValue(8.0)]
        public double GpuMemoryGb { get; init; } = 8.0;

        [CommandOption("-p|--plans|--plans-name <NAME>")]
        [Description("plans identifier: file name and data_identifier prefix (default nnUNetPlans)")]
        [DefaultValue("nnUNetPlans")]
        public string PlansName { get; init; } = "nnUNetPlans";

        [CommandOption("-o|--output <FILE>")]
        [Description("with --fingerprint: also write the plans to this file")]
        public string? Output { get; init; }

        [CommandOption("--json")]
        [Description("print the plans JSON to stdout instead of a summary")]
        public bool Json { get; init; }

        public bool FromFiles => Fingerprint is not null || DatasetJson is not null;

        public override ValidationResult Validate()
        {
            if (Dataset is not null && FromFiles)
                return ValidationResult.Error("give either DATASET or --fingerprint FILE --dataset-json FILE, not both");
            if (Dataset is null && !FromFiles)
                return ValidationResult.Error("give a DATASET, or --fingerprint FILE and --dataset-json FILE");
            if (FromFiles && (Fingerprint is null || DatasetJson is null))
                return ValidationResult.Error("--fingerprint and --dataset-json go together");
            if (Output is not null && !FromFiles)
                return ValidationResult.Error("--output is for --fingerprint mode; with a DATASET the plans go to nnUNet_preprocessed");
            if (!(GpuMemoryGb > 0) || double.IsInfinity(GpuMemoryGb))
                return ValidationResult.Error($"--gpu-memory-gb must be a positive number, got {GpuMemoryGb.ToString(CultureInfo.InvariantCulture)}");
            if (string.IsNullOrWhiteSpace(PlansName) || PlansName.IndexOfAny(Path.GetInvalidFileNameChars()) >= 0)
                return ValidationResult.Error($"--plans '{PlansName}' is not a valid file name");
            return ValidationResult.Success();
        }
    }

    public override int Execute(CommandContext context, Settings settings, CancellationToken cancellationToken)
    {
        var options = new PlannerOptions(settings.GpuMemoryGb, settings.PlansName);
        return settings.FromFiles ? PlanFromFiles(settings, options) : PlanDataset(settings, options);
    }

    private static int PlanFromFiles(Settings settings, PlannerOptions options)
    {
        string fingerprintPath = Path.GetFullPath(settings.Fingerprint!);
        string datasetJsonPath = Path.GetFullPath(settings.DatasetJson!);
        var fingerprint = LoadFingerprint(fingerprintPath);
        var datasetJson = Core.Datasets.DatasetJson.Load(datasetJsonPath);
        string name = DatasetNameFor(datasetJsonPath, fingerprintPath, datasetJson);

        var plans = ExperimentPlanner.Plan(fingerprint, InfoFor(name, datasetJson), options);
        string? written = null;
        IReadOnlyList<string> kept = [];
        if (settings.Output is not null)
        {
            written = Path.GetFullPath(settings.Output);
            kept = PlansFile.SaveKeepingCustomConfigurations(plans, written);
        }
        Report(settings, plans, datasetJson, written, kept);
        return NnUnetApp.ExitOk;
    }

    private static int PlanDataset(Settings settings, PlannerOptions options)
    {
        var paths = settings.Paths();
        string name = DatasetLocator.ResolveName(settings.Dataset!, paths);
        string preprocessedFolder = paths.PreprocessedDatasetFolder(name);

        string fingerprintPath = Path.Combine(preprocessedFolder, DatasetFingerprintExtractor.FileName);
        if (!File.Exists(fingerprintPath))
            throw new FileNotFoundException($"{fingerprintPath} does not exist: run 'nnunet fingerprint {settings.Dataset}' first", fingerprintPath);
        var fingerprint = LoadFingerprint(fingerprintPath);

        // nnU-Net reads the raw dataset.json and copies it next to the plans; without the raw data (e.g. on a training node)
        // the copy already in nnUNet_preprocessed is used.
        string preprocessedDatasetJson = Path.Combine(preprocessedFolder, Core.Datasets.DatasetJson.FileName);
        string? rawDatasetJson = FindRawDatasetJson(settings.Dataset!, name, paths);
        string datasetJsonPath = rawDatasetJson ?? preprocessedDatasetJson;
        if (!File.Exists(datasetJsonPath))
            throw new FileNotFoundException(
                $"no dataset.json for {name}: neither {Path.Combine(paths.Raw ?? "$nnUNet_raw", name, Core.Datasets.DatasetJson.FileName)} nor {preprocessedDatasetJson} exists",
                preprocessedDatasetJson);
        var datasetJson = Core.Datasets.DatasetJson.Load(datasetJsonPath);

        var plans = ExperimentPlanner.Plan(fingerprint, InfoFor(name, datasetJson), options);
        if (rawDatasetJson is not null && !SameFile(rawDatasetJson, preprocessedDatasetJson))
            AtomicFile.Copy(rawDatasetJson, preprocessedDatasetJson);
        string plansPath = PlansFile.PathFor(preprocessedFolder, options.PlansName);
        var kept = PlansFile.SaveKeepingCustomConfigurations(plans, plansPath);
        Report(settings, plans, datasetJson, plansPath, kept);
        return NnUnetApp.ExitOk;
    }

    /// <summary>nnU-Net sizes the segmentation head in its memory estimate by the number of <c>labels</c> entries, the ignore
    /// label included.</summary>
    internal static PlannerDatasetInfo InfoFor(string datasetName, DatasetJson datasetJson) =>
        new(datasetName, datasetJson.ChannelNames, datasetJson.Labels.Count + (datasetJson.HasIgnoreLabel ? 1 : 0), datasetJson.NumTraining);

    private static DatasetFingerprint LoadFingerprint(string path) =>
        File.Exists(path)
            ? DatasetFingerprintExtractor.Load(path)
            : throw new FileNotFoundException($"{path} does not exist", path);

    /// <summary>The DatasetXXX_Name folder holding dataset.json or the fingerprint, else dataset.json's "name", else the folder name.</summary>
    private static string DatasetNameFor(string datasetJsonPath, string fingerprintPath, DatasetJson datasetJson)
    {
        foreach (string file in new[] { datasetJsonPath, fingerprintPath })
        {
            string folderName = Path.GetFileName(Path.GetDirectoryName(file)) ?? "";
            if (DatasetLocator.TryParseName(folderName, out _, out _)) return folderName;
        }
        if (datasetJson.Document["name"] is { } nameNode && nameNode.GetValueKind() == JsonValueKind.String
            && !string.IsNullOrWhiteSpace(nameNode.GetValue<string>()))
            return nameNode.GetValue<string>();
        return Path.GetFileName(Path.GetDirectoryName(datasetJsonPath)) ?? "dataset";
    }

    private static string? FindRawDatasetJson(string argument, string name, NnUnetPaths paths)
    {
        if (Directory.Exists(argument) && File.Exists(Path.Combine(argument, Core.Datasets.DatasetJson.FileName)))
            return Path.GetFullPath(Path.Combine(argument, Core.Datasets.DatasetJson.FileName));
        if (paths.Raw is null) return null;
        string candidate = Path.Combine(paths.Raw, name, Core.Datasets.DatasetJson.FileName);
        return File.Exists(candidate) ? candidate : null;
    }

    private static bool SameFile(string a, string b) =>
        string.Equals(Path.GetFullPath(a), Path.GetFullPath(b), StringComparison.Ordinal);

    private static void Report(Settings settings, NnUnetPlans plans, DatasetJson datasetJson, string? writtenTo, IReadOnlyList<string> kept)
    {
        if (settings.Json)
        {
            JsonStdout.Writer.WriteLine(plans.ToJson());
            return;
        }

        // Bound to Console.Out at call time, so redirected output (tests, pipes) gets the summary.
        var console = CommandConsole.Create();
        if (Console.IsOutputRedirected) console.Profile.Width = Math.Max(console.Profile.Width, 120); // a log file has no width; don't wrap at 80
        console.MarkupLineInterpolated($"[bold]{plans.DatasetName}[/]: {plans.PlansName}, GPU memory target {settings.GpuMemoryGb.ToString("0.##", CultureInfo.InvariantCulture)} GB");
        console.WriteLine(
            $"median spacing {Join(plans.OriginalMedianSpacingAfterTransp, "0.####")} and shape {Join(plans.OriginalMedianShapeAfterTransp)} (transpose_forward [{string.Join(", ", plans.TransposeForward)}])");

        var table = new Table().AddColumns("configuration", "spacing", "median", "patch", "batch", "stages", "batch dice", "memory est./budget");
        int labels = InfoFor(plans.DatasetName, datasetJson).NumLabelsIncludingBackground;
        var cascades = new List<string>();
        foreach (string name in plans.ConfigurationNames)
        {
            var configuration = plans.GetConfiguration(name);
            var kwargs = configuration.Architecture.ArchKwargs;
            if (configuration.PreviousStage is { } previous) cascades.Add($"{name} takes the predictions of {previous}");
            bool is2d = kwargs.SpatialDims == 2;
            double budget = (is2d ? ExperimentPlanner.ReferenceVram2d : ExperimentPlanner.ReferenceVram3d) * settings.GpuMemoryGb / ExperimentPlanner.ReferenceGpuMemoryGb
                            / 2 * (is2d ? ExperimentPlanner.ReferenceBatchSize2d : ExperimentPlanner.ReferenceBatchSize3d);
            string memory = TryEstimate(configuration, labels) is long estimate
                ? $"{(estimate / 1e6).ToString("0", CultureInfo.InvariantCulture)}M/{(budget / 1e6).ToString("0", CultureInfo.InvariantCulture)}M"
                : "-";
            table.AddRow(Markup.Escape(name), Join(configuration.Spacing, "0.###"), Join(configuration.MedianImageSizeInVoxels, "0.#"),
                Join(configuration.PatchSize), configuration.BatchSize.ToString(CultureInfo.InvariantCulture),
                kwargs.NStages.ToString(CultureInfo.InvariantCulture), configuration.BatchDice ? "yes" : "no", memory);
        }
        console.Write(table);

        var anyConfiguration = plans.GetConfiguration(plans.ConfigurationNames.First());
        var normalisation = new StringBuilder();
        for (int c = 0; c < anyConfiguration.NormalizationSchemes.Length; c++)
        {
            if (c > 0) normalisation.Append(", ");
            string channel = c < datasetJson.ChannelNames.Count ? datasetJson.ChannelNames[c] : c.ToString(CultureInfo.InvariantCulture);
            normalisation.Append(channel).Append(": ").Append(anyConfiguration.NormalizationSchemes[c]);
            if (anyConfiguration.UseMaskForNorm[c]) normalisation.Append(" (non-zero mask)");
        }
        console.WriteLine($"normalisation: {normalisation}");
        foreach (string cascade in cascades) console.WriteLine(cascade);
        if (kept.Count > 0) console.WriteLine($"kept custom configurations from the existing file: {string.Join(", ", kept)}");
        if (writtenTo is not null) console.WriteLine($"wrote {writtenTo}");
    }

    /// <summary>The estimate only exists for planner-shaped configurations; a hand-edited one may not fit the formula.</summary>
    private static long? TryEstimate(PlansConfiguration configuration, int labels)
    {
        var kwargs = configuration.Architecture.ArchKwargs;
        if (kwargs.Strides.Length != kwargs.NStages || kwargs.FeaturesPerStage.Length != kwargs.NStages
            || kwargs.NConvPerStage.Length != kwargs.NStages || kwargs.NConvPerStageDecoder.Length != kwargs.NStages - 1)
            return null;
        return ExperimentPlanner.EstimateFeatureMapSize(configuration, labels);
    }

    private static string Join(double[] values, string format)
    {
        var parts = new string[values.Length];
        for (int i = 0; i < values.Length; i++) parts[i] = values[i].ToString(format, CultureInfo.InvariantCulture);
        return string.Join("x", parts);
    }

    private static string Join(int[] values) => string.Join("x", values);
}
