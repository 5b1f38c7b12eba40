using System.Globalization;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using NnUnet.Core.Imaging;
using NnUnet.Core.Imaging.Nifti;

namespace NnUnet.Core.Datasets;

/// <summary>What <see cref="MsdConverter.Convert"/> produced.</summary>
public sealed record MsdConversionResult(string DatasetName, string TargetFolder, int TrainingCases, int TestCases, int Channels);

/// <summary>
/// Converts a Medical Segmentation Decathlon task (<c>TaskXX_Name</c>: 4D images with channels last, dataset.json with
/// <c>modality</c>, <c>labels</c> number -> name, <c>training</c>/<c>test</c> lists) into an nnU-Net v2 raw dataset
/// <c>DatasetNNN_Name</c> under nnUNet_raw, as nnU-Net's convert_MSD_dataset: 4D images are split into
/// <c>CASE_0000</c>, <c>CASE_0001</c>... files (3D images are copied as <c>CASE_0000</c>), labels are copied, dataset.json is
/// rewritten (labels name -> int, <c>channel_names</c>, <c>file_ending</c> ".nii.gz", training/test lists dropped).
/// Files whose names start with '.' or '_' (macOS debris in the MSD archives) are skipped, as nnU-Net does.
/// Differences: imagesTs may be absent; task names may contain '_'; the dataset is assembled in a temporary folder and
/// renamed at the end, so a failed conversion leaves no half dataset behind.
/// </summary>
public static partial class MsdConverter
{
    [GeneratedRegex(@"^Task(\d+)_(.+)$", RegexOptions.CultureInvariant)]
    private static partial Regex TaskNamePattern();

    public static MsdConversionResult Convert(string taskFolder, NnUnetPaths paths, int? targetId = null, int maxParallelism = 1,
        Action? onFileDone = null, CancellationToken cancellationToken = default)
    {
        taskFolder = Path.TrimEndingDirectorySeparator(Path.GetFullPath(taskFolder));
        if (!Directory.Exists(taskFolder)) throw new DirectoryNotFoundException($"MSD task folder {taskFolder} does not exist");
        string taskName = Path.GetFileName(taskFolder);
        var match = TaskNamePattern().Match(taskName);
        if (!match.Success) throw new ArgumentException($"{taskFolder}: an MSD task folder must be named TaskXX_Name (e.g. Task04_Hippocampus)");
        int id = targetId ?? int.Parse(match.Groups[1].ValueSpan, NumberStyles.None, CultureInfo.InvariantCulture);
        string datasetName = DatasetLocator.FormatName(id, match.Groups[2].Value);

        string imagesTr = Path.Combine(taskFolder, "imagesTr");
        string labelsTr = Path.Combine(taskFolder, "labelsTr");
        string imagesTs = Path.Combine(taskFolder, "imagesTs");
        string jsonPath = Path.Combine(taskFolder, "dataset.json");
        if (!Directory.Exists(imagesTr)) throw new DirectoryNotFoundException($"{imagesTr} does not exist: not an MSD task folder");
        if (!Directory.Exists(labelsTr)) throw new DirectoryNotFoundException($"{labelsTr} does not exist: not an MSD task folder");
        if (!File.Exists(jsonPath)) throw new FileNotFoundException($"{jsonPath} does not exist: not an MSD task folder", jsonPath);
        var datasetJson = ConvertDatasetJson(jsonPath);

        string raw = paths.RequireRaw();
        EnsureIdIsFree(id, paths);
        string target = Path.Combine(raw, datasetName);
        string staging = Path.Combine(raw, "." + datasetName + ".converting-" + Environment.ProcessId);
        if (Directory.Exists(staging)) Directory.Delete(staging, recursive: true);

        var jobs = new List<(string Source, string TargetFolder, bool Split)>();
        var trainImages = MsdFiles(imagesTr);
        var testImages = Directory.Exists(imagesTs) ? MsdFiles(imagesTs) : [];
        foreach (string f in trainImages) jobs.Add((f, Path.Combine(staging, "imagesTr"), true));
        foreach (string f in testImages) jobs.Add((f, Path.Combine(staging, "imagesTs"), true));
        foreach (string f in MsdFiles(labelsTr)) jobs.Add((f, Path.Combine(staging, "labelsTr"), false));
        try
        {
            Directory.CreateDirectory(Path.Combine(staging, "imagesTr"));
            Directory.CreateDirectory(Path.Combine(staging, "labelsTr"));
            if (testImages.Count > 0) Directory.CreateDirectory(Path.Combine(staging, "imagesTs"));
            var channelCounts = new int[jobs.Count];
            var options = new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, maxParallelism), CancellationToken = cancellationToken };
            try
            {
                Parallel.For(0, jobs.Count, options, i =>
                {
                    var (source, folder, split) = jobs[i];
                    if (split) channelCounts[i] = Split4D(source, folder);
                    else File.Copy(source, Path.Combine(folder, Path.GetFileName(source)));
                    onFileDone?.Invoke();
                });
            }
            catch (AggregateException ex)
            {
                var inner = ex.Flatten().InnerExceptions;
                if (inner.Count == 1) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(inner[0]).Throw();
                throw new InvalidDataException($"{inner.Count} files failed:\n" + string.Join("\n", inner.Select(e => e.Message)), ex);
            }
            int declaredChannels = datasetJson.NumChannels;
            for (int i = 0; i < jobs.Count; i++)
                if (jobs[i].Split && channelCounts[i] != declaredChannels)
                    throw new InvalidDataException($"{jobs[i].Source} has {channelCounts[i]} channels, {jsonPath} declares {declaredChannels} modalities");
            datasetJson.Save(Path.Combine(staging, DatasetJson.FileName));
            Directory.Move(staging, target);
        }
        catch
        {
            if (Directory.Exists(staging)) Directory.Delete(staging, recursive: true);
            throw;
        }
        return new MsdConversionResult(datasetName, target, trainImages.Count, testImages.Count, datasetJson.NumChannels);
    }

    /// <summary>The v2 dataset.json of an MSD dataset.json: labels name -> int, channel_names, file_ending; lists dropped.</summary>
    public static DatasetJson ConvertDatasetJson(string msdJsonPath)
    {
        JsonObject old;
        try
        {
            old = JsonNode.Parse(File.ReadAllText(msdJsonPath)) as JsonObject
                  ?? throw new InvalidDataException($"{msdJsonPath}: the top level must be a JSON object");
        }
        catch (System.Text.Json.JsonException ex)
        {
            throw new InvalidDataException($"{msdJsonPath}: not valid JSON ({ex.Message})", ex);
        }
        if (old["labels"] is not JsonObject oldLabels) throw new InvalidDataException($"{msdJsonPath}: field 'labels' must be an object {{\"0\": \"background\", ...}}");
        if (old["modality"] is not JsonObject modality) throw new InvalidDataException($"{msdJsonPath}: field 'modality' must be an object {{\"0\": \"CT\", ...}}");

        var labels = new JsonObject();
        foreach (var (value, nameNode) in oldLabels)
        {
            if (!int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out int labelValue))
                throw new InvalidDataException($"{msdJsonPath}: field 'labels' has key \"{value}\": MSD labels map numbers to names");
            if (nameNode is not JsonValue name || name.GetValueKind() != System.Text.Json.JsonValueKind.String)
                throw new InvalidDataException($"{msdJsonPath}: field 'labels.{value}' must be a name (string)");
            labels[name.GetValue<string>()] = labelValue;
        }
        var converted = new JsonObject();
        foreach (var (key, node) in old)
        {
            switch (key)
            {
                case "modality" or "training" or "test":
                    continue;
                case "labels":
                    converted["labels"] = labels;
                    break;
                default:
                    converted[key] = node?.DeepClone();
                    break;
            }
        }
        converted["file_ending"] = ".nii.gz";
        converted["channel_names"] = modality.DeepClone();
        if (!converted.ContainsKey("numTraining") && old["training"] is JsonArray training) converted["numTraining"] = training.Count;
        return DatasetJson.Parse(converted.ToJsonString(), msdJsonPath + " (converted)");
    }

    /// <summary>Writes each channel of a (possibly 4D) image as <c>CASE_XXXX.nii.gz</c>; 3D files are copied as <c>CASE_0000</c>.</summary>
    private static int Split4D(string source, string targetFolder)
    {
        string caseId = Path.GetFileName(source)[..^".nii.gz".Length];
        MedicalImage image;
        try
        {
            image = NiftiReader.Read(source);
        }
        catch (Exception ex) when (ex is InvalidDataException or IOException or NotSupportedException or ArgumentException)
        {
            throw new InvalidDataException($"cannot read {source}: {ex.Message}", ex);
        }
        if (image.Channels == 1)
        {
            File.Copy(source, Path.Combine(targetFolder, RawDataset.ImageFileName(caseId, 0, ".nii.gz")));
            return 1;
        }
        int n = checked((int)image.VoxelsPerChannel);
        var elementType = MedicalImage.ElementType(image.Type);
        for (int c = 0; c < image.Channels; c++)
        {
            var voxels = Array.CreateInstance(elementType, n);
            Array.Copy(image.Voxels, (long)c * n, voxels, 0, n);
            var channel = new MedicalImage(1, image.SizeZ, image.SizeY, image.SizeX, image.Type, voxels, image.Geometry);
            NiftiWriter.Write(Path.Combine(targetFolder, RawDataset.ImageFileName(caseId, c, ".nii.gz")), channel);
        }
        return image.Channels;
    }

    private static List<string> MsdFiles(string folder)
    {
        var files = new List<string>();
        foreach (string name in RawDataset.VisibleFileNames(folder))
            if (!name.StartsWith('_') && name.EndsWith(".nii.gz", StringComparison.Ordinal)) files.Add(Path.Combine(folder, name));
        return files;
    }

    private static void EnsureIdIsFree(int id, NnUnetPaths paths)
    {
        var taken = new List<string>();
        foreach (string? root in new[] { paths.Raw, paths.Preprocessed, paths.Results })
        {
            if (root is null || !Directory.Exists(root)) continue;
            foreach (string dir in Directory.EnumerateDirectories(root, "Dataset*"))
                if (DatasetLocator.TryParseName(Path.GetFileName(dir), out int existing, out _) && existing == id) taken.Add(dir);
        }
        if (taken.Count > 0)
            throw new InvalidDataException($"dataset id {id} is already taken by {string.Join(", ", taken)}; choose another with --id");
    }
}
