using System.ComponentModel;
using System.Globalization;
using System.Text.Json;
using NnUnet.Core.Datasets;
using NnUnet.Core.Fingerprinting;
using Spectre.Console;
using Spectre.Console.Cli;
using NnUnet.Core.IO;

namespace NnUnet.Cli.Commands.Datasets;

/// <summary><c>nnunet fingerprint DATASET</c>: writes nnUNet_preprocessed/DatasetXXX/dataset_fingerprint.json.</summary>
public sealed class FingerprintCommand : Command<FingerprintCommand.Settings>
{
    public sealed class Settings : ParallelDatasetSettings
    {
        [CommandOption("--clean")]
        [Description("recompute even if dataset_fingerprint.json exists (otherwise it is reused)")]
        public bool Clean { get; init; }

        [CommandOption("--foreground-samples <N>")]
        [Description("foreground voxels sampled per channel over the whole dataset (default 100000000, as nnU-Net); fewer use less memory")]
        public long? ForegroundSamples { get; init; }

        public override ValidationResult Validate() =>
            ForegroundSamples is <= 0 ? ValidationResult.Error("--foreground-samples must be positive") : base.Validate();

        [CommandOption("--verify")]
        [Description("verify the dataset first (as nnunet verify) and stop if it has errors")]
        public bool Verify { get; init; }
    }

    public override int Execute(CommandContext context, Settings settings, CancellationToken cancellationToken)
    {
        var console = CommandConsole.Create();
        var paths = settings.Paths();
        var location = DatasetLocator.Locate(settings.Dataset, paths);
        string outputFolder = paths.PreprocessedDatasetFolder(location.Name);
        var dataset = RawDataset.Open(location);

        if (settings.Verify)
        {
            var report = DatasetVerifier.Verify(location.RawFolder, settings.Parallelism, null, cancellationToken);
            if (report.HasErrors)
            {
                foreach (var p in report.Problems) Console.Error.WriteLine(p.ToString());
                Console.Error.WriteLine($"{location.Name}: {report.ErrorCount} error(s); fix them or run without --verify");
                return NnUnetApp.ExitProblems;
            }
        }

        DatasetFingerprint fingerprint;
        bool reused = false;
        if (settings.Json)
            fingerprint = DatasetFingerprintExtractor.Run(dataset, outputFolder, settings.Clean, settings.Parallelism, out reused, null, Samples(settings), cancellationToken);
        else
        {
            DatasetFingerprint? result = null;
            console.Progress().AutoClear(true).Start(progress =>
            {
                var task = progress.AddTask($"fingerprint {location.Name}", maxValue: Math.Max(1, dataset.TrainingCases.Count));
                result = DatasetFingerprintExtractor.Run(dataset, outputFolder, settings.Clean, settings.Parallelism, out reused,
                    () => task.Increment(1), Samples(settings), cancellationToken);
            });
            fingerprint = result!;
        }

        string path = Path.Combine(outputFolder, DatasetFingerprintExtractor.FileName);
        if (settings.Json)
        {
            JsonStdout.Writer.WriteLine(JsonSerializer.Serialize(fingerprint, IndentedJson.Options));
            return NnUnetApp.ExitOk;
        }
        console.MarkupLineInterpolated($"{(reused ? "reused existing" : "wrote")} {path} ({fingerprint.Spacings.Count} cases{(reused ? "; --clean recomputes" : "")})");
        console.MarkupLineInterpolated($"median relative size after cropping: {fingerprint.MedianRelativeSizeAfterCropping.ToString("G4", CultureInfo.InvariantCulture)}");
        var table = new Table().AddColumns("channel", "name", "mean", "std", "median", "p0.5", "p99.5", "min", "max");
        foreach (var (channel, p) in fingerprint.ForegroundIntensityPropertiesPerChannel)
        {
            int index = int.Parse(channel, CultureInfo.InvariantCulture);
            string name = index < dataset.Json.NumChannels ? dataset.Json.ChannelNames[index] : "?";
            table.AddRow(Markup.Escape(channel), Markup.Escape(name), F(p.Mean), F(p.Std), F(p.Median), F(p.Percentile00_5), F(p.Percentile99_5), F(p.Min), F(p.Max));
        }
        console.Write(table);
        return NnUnetApp.ExitOk;
    }

    private static long Samples(Settings settings) => settings.ForegroundSamples ?? DatasetFingerprintExtractor.DefaultTotalForegroundSamples;

    private static string F(double v) => v.ToString("G6", CultureInfo.InvariantCulture);
}
