using NnUnet.Core.Datasets;
using NnUnet.Core.Planning;
using NnUnet.Core.Preprocessing;

namespace NnUnet.Core.Reproducibility;

/// <summary>
/// The files a sweep, or one of its folds, reads: plans, splits, dataset.json and fingerprint, the preprocessed data of
/// each configuration, the reference segmentations, and the raw images and labels (the test images too when the sweep
/// predicts them). Recorded paths start with the root's variable name (<c>nnUNet_raw/...</c>, <c>nnUNet_preprocessed/...</c>).
/// </summary>
public static class SweepInputs
{
    public const string RawRootName = "nnUNet_raw";
    public const string PreprocessedRootName = "nnUNet_preprocessed";

    /// <summary>Every input of a sweep over <paramref name="configurations"/>, sorted by recorded path: whole folders are
    /// listed, so a case added or removed shows up too.</summary>
    /// <exception cref="FileNotFoundException">The plans file does not exist.</exception>
    public static List<ManifestInput> ForSweep(NnUnetPaths paths, string datasetName, string plansName, IEnumerable<string> configurations, bool includeTestImages)
    {
        var inputs = new List<ManifestInput>();
        string preprocessed = paths.PreprocessedDatasetFolder(datasetName);
        var plans = LoadPlans(preprocessed, plansName);
        AddIfExists(inputs, paths, preprocessed, plansName + ".json", CrossValidationSplits.FileName, DatasetJson.FileName, "dataset_fingerprint.json");
        AddFolder(inputs, paths, Path.Combine(preprocessed, DatasetPreprocessor.GroundTruthFolderName));
        foreach (string identifier in DataIdentifiers(plans, configurations))
            AddFolder(inputs, paths, Path.Combine(preprocessed, identifier));

        if (RawFolder(paths, datasetName) is { } raw)
        {
            AddIfExists(inputs, paths, raw, DatasetJson.FileName);
            AddFolder(inputs, paths, Path.Combine(raw, "imagesTr"));
            AddFolder(inputs, paths, Path.Combine(raw, "labelsTr"));
            if (includeTestImages) AddFolder(inputs, paths, Path.Combine(raw, "imagesTs"));
        }
        inputs.Sort((a, b) => string.CompareOrdinal(a.RecordedPath, b.RecordedPath));
        return inputs;
    }

    /// <summary>
    /// The inputs one training fold reads: plans, splits, dataset.json, and for each of its training and validation cases
    /// the configuration's preprocessed files, the reference segmentation and the raw image channels and label.
    /// </summary>
    /// <exception cref="FileNotFoundException">The plans or the splits file does not exist.</exception>
    public static List<ManifestInput> ForFold(NnUnetPaths paths, string datasetName, string plansName, string configuration, int fold)
    {
        var inputs = new List<ManifestInput>();
        string preprocessed = paths.PreprocessedDatasetFolder(datasetName);
        var plans = LoadPlans(preprocessed, plansName);
        string splitsPath = Path.Combine(preprocessed, CrossValidationSplits.FileName);
        if (!File.Exists(splitsPath)) throw new FileNotFoundException($"{splitsPath} does not exist: the fold's cases are unknown", splitsPath);
        AddIfExists(inputs, paths, preprocessed, plansName + ".json", CrossValidationSplits.FileName, DatasetJson.FileName);

        var splits = CrossValidationSplits.Load(splitsPath);
        var cases = new SortedSet<string>(StringComparer.Ordinal);
        if (fold >= 0 && fold < splits.Count)
        {
            cases.UnionWith(splits[fold].Train);
            cases.UnionWith(splits[fold].Val);
        }
        string data = Path.Combine(preprocessed, plans.GetConfiguration(configuration).DataIdentifier);
        string gt = Path.Combine(preprocessed, DatasetPreprocessor.GroundTruthFolderName);
        string? raw = RawFolder(paths, datasetName);
        DatasetJson? dataset = raw is not null && File.Exists(Path.Combine(raw, DatasetJson.FileName)) ? DatasetJson.Load(Path.Combine(raw, DatasetJson.FileName)) : null;
        foreach (string caseId in cases)
        {
            AddIfExists(inputs, paths, data, caseId + PreprocessedStore.DataSuffix, caseId + PreprocessedStore.SegSuffix, caseId + PreprocessedStore.PropertiesSuffix);
            if (dataset is null) continue;
            AddIfExists(inputs, paths, gt, caseId + dataset.FileEnding);
            for (int channel = 0; channel < dataset.NumChannels; channel++)
                AddIfExists(inputs, paths, Path.Combine(raw!, "imagesTr"), $"{caseId}_{channel:D4}{dataset.FileEnding}");
            AddIfExists(inputs, paths, Path.Combine(raw!, "labelsTr"), caseId + dataset.FileEnding);
        }
        inputs.Sort((a, b) => string.CompareOrdinal(a.RecordedPath, b.RecordedPath));
        return inputs;
    }

    /// <summary>The preprocessed data folders the configurations read (the cascade shares 3d_fullres'), in order, once each.</summary>
    public static List<string> DataIdentifiers(NnUnetPlans plans, IEnumerable<string> configurations)
    {
        var identifiers = new List<string>();
        foreach (string configuration in configurations)
        {
            string identifier = plans.GetConfiguration(configuration).DataIdentifier;
            if (!identifiers.Contains(identifier)) identifiers.Add(identifier);
        }
        return identifiers;
    }

    /// <summary>The name a file gets in a manifest: its root's variable name and the path below that root.</summary>
    public static string RecordedPath(NnUnetPaths paths, string fullPath)
    {
        foreach (var (root, name) in new[] { (paths.Preprocessed, PreprocessedRootName), (paths.Raw, RawRootName) })
        {
            if (root is null) continue;
            string relative = Path.GetRelativePath(Path.GetFullPath(root), Path.GetFullPath(fullPath));
            if (!relative.StartsWith("..", StringComparison.Ordinal) && !Path.IsPathRooted(relative))
                return name + "/" + relative.Replace(Path.DirectorySeparatorChar, '/');
        }
        return Path.GetFullPath(fullPath);
    }

    private static NnUnetPlans LoadPlans(string preprocessedDatasetFolder, string plansName)
    {
        string path = Path.Combine(preprocessedDatasetFolder, plansName + ".json");
        if (!File.Exists(path)) throw new FileNotFoundException($"{path} does not exist: plan the dataset first", path);
        return NnUnetPlans.Load(path);
    }

    private static string? RawFolder(NnUnetPaths paths, string datasetName)
    {
        if (paths.Raw is null) return null;
        string folder = Path.Combine(paths.Raw, datasetName);
        return Directory.Exists(folder) ? folder : null;
    }

    private static void AddIfExists(List<ManifestInput> inputs, NnUnetPaths paths, string folder, params string[] names)
    {
        foreach (string name in names)
        {
            string path = Path.Combine(folder, name);
            if (File.Exists(path)) inputs.Add(new ManifestInput(path, RecordedPath(paths, path)));
        }
    }

    private static void AddFolder(List<ManifestInput> inputs, NnUnetPaths paths, string folder)
    {
        if (!Directory.Exists(folder)) return;
        foreach (string path in Directory.EnumerateFiles(folder))
        {
            // a writer's temporary file (AtomicFile: hidden) is not an input
            if (Path.GetFileName(path).StartsWith('.')) continue;
            inputs.Add(new ManifestInput(path, RecordedPath(paths, path)));
        }
    }
}
