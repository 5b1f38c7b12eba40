using NnUnet.Cluster.Sweeps;
using NnUnet.Core.Datasets;
using NnUnet.Core.Preprocessing;
using NnUnet.Core.Reproducibility;
using NnUnet.Training.Devices;

namespace NnUnet.Cli.Commands.Cluster;

/// <summary>
/// Writes the sweep's <c>sweep_manifest.json</c> beside its journal before any node starts (so hashing the dataset never
/// runs on the coordinator actor's thread), and tells on stderr which inputs changed since the sweep last started.
/// </summary>
internal static class SweepManifestStep
{
    public static string PathBeside(string journal) => Path.Combine(Path.GetDirectoryName(Path.GetFullPath(journal))!, SweepManifest.FileName);

    /// <param name="devices">The local workers' devices (embedded sweep); null for a coordinator, whose workers record their own.</param>
    public static SweepManifest Record(SweepDefinition definition, string resultsRoot, string? preprocessed, string journal, IReadOnlyList<string>? devices, bool simulate)
    {
        var paths = NnUnetPaths.FromEnvironment(preprocessed: preprocessed, results: resultsRoot);
        List<HashedFile> inputs = [];
        string? inputsError = null;
        try
        {
            EnsureSplits(paths, definition);
            inputs = FileDigest.HashAll(SweepInputs.ForSweep(paths, definition.DatasetName, definition.PlansName, definition.Configurations, definition.PredictTest),
                maxDegreeOfParallelism: Math.Max(1, Math.Min(4, System.Environment.ProcessorCount)));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidDataException or ArgumentException or KeyNotFoundException)
        {
            inputsError = e.Message;
            Console.Error.WriteLine($"warning: the sweep manifest records no input digests: {e.Message}");
        }

        var seeds = new SortedDictionary<string, long>(StringComparer.Ordinal);
        foreach (string configuration in definition.Configurations)
            foreach (int fold in definition.Folds)
            {
                string jobId = JobRecord.TrainJobId(configuration, fold);
                seeds[jobId] = FoldSeed.For(definition.SweepId, jobId);
            }
        var current = new SweepManifest
        {
            SweepId = definition.SweepId,
            Dataset = definition.DatasetName,
            Plans = definition.PlansName,
            Trainer = definition.TrainerName,
            Configurations = definition.Configurations,
            Folds = definition.Folds,
            PredictTest = definition.PredictTest,
            Budget = new TrainingBudget(definition.Epochs, definition.ItersPerEpoch, definition.ValIters),
            FoldSeeds = seeds,
            Inputs = inputs,
            InputsError = inputsError,
            Runs = [],
        };
        string path = PathBeside(journal);
        var (manifest, changes) = SweepManifest.RecordStart(path, current, DescribeEnvironment(devices, simulate), DateTime.UtcNow);
        if (changes.Count > 0)
        {
            Console.Error.WriteLine($"warning: {changes.Count} input file(s) differ from {path} (recorded at the sweep's previous start); resuming with the files as they are now:");
            foreach (var change in changes.Take(20)) Console.Error.WriteLine("  " + change);
            if (changes.Count > 20) Console.Error.WriteLine($"  ... and {changes.Count - 20} more (nnunet sweep-status --manifest {path})");
        }
        return manifest;
    }

    private static RuntimeEnvironment DescribeEnvironment(IReadOnlyList<string>? devices, bool simulate)
    {
        string? device = devices is null ? null : string.Join(", ", devices.Distinct());
        if (simulate) return RuntimeEnvironment.Current(device: device is null ? null : "simulated " + device);
        try
        {
            var (torchSharp, libTorch) = VersionReport.TorchVersions();
            return RuntimeEnvironment.Current(torchSharp, libTorch, devices is null ? null : string.Join(", ", devices.Distinct().Select(TorchDevices.Describe)));
        }
        catch (Exception e) when (e is DllNotFoundException or TypeInitializationException or ArgumentException)
        {
            // a coordinator-only node may not load libtorch: its workers record theirs in the fold manifests
            return RuntimeEnvironment.Current(device: device);
        }
    }

    /// <summary>The trainer writes nnU-Net's default splits when its first fold starts; writing them now (the same file,
    /// from the same case list) lets the manifest record their digest.</summary>
    private static void EnsureSplits(NnUnetPaths paths, SweepDefinition definition)
    {
        string preprocessed = paths.PreprocessedDatasetFolder(definition.DatasetName);
        if (File.Exists(Path.Combine(preprocessed, CrossValidationSplits.FileName))) return;
        string plansPath = Path.Combine(preprocessed, definition.PlansName + ".json");
        if (!File.Exists(plansPath)) return;
        var plans = NnUnet.Core.Planning.NnUnetPlans.Load(plansPath);
        foreach (string identifier in SweepInputs.DataIdentifiers(plans, definition.Configurations.Where(plans.Configurations.ContainsKey)))
        {
            string data = Path.Combine(preprocessed, identifier);
            if (!Directory.Exists(data)) continue;
            var cases = PreprocessedStore.ListCases(data);
            if (cases.Count > 0) CrossValidationSplits.LoadOrCreate(preprocessed, cases, out _);
            return;
        }
    }
}
