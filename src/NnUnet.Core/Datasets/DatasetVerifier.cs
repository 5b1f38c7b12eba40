using System.Globalization;
using NnUnet.Core.Imaging;

namespace NnUnet.Core.Datasets;

public enum ProblemSeverity
{
    /// <summary>nnU-Net would stop or train on wrong data: fix before going on.</summary>
    Error,
    /// <summary>nnU-Net only warns (e.g. origin/direction differences between a case's files): check it.</summary>
    Warning,
}

/// <summary>One finding of <see cref="DatasetVerifier"/>; <see cref="CaseId"/> is null for dataset-level problems.</summary>
public sealed record DatasetProblem(ProblemSeverity Severity, string? CaseId, string Message)
{
    public override string ToString() =>
        (Severity == ProblemSeverity.Warning ? "warning: " : "error: ") + (CaseId is null ? Message : $"case {CaseId}: {Message}");
}

/// <summary>Everything <see cref="DatasetVerifier"/> found, in a stable order (dataset-level first, then cases in id order).</summary>
public sealed record DatasetVerificationReport(string DatasetFolder, int TrainingCases, IReadOnlyList<DatasetProblem> Problems)
{
    public int ErrorCount => Count(ProblemSeverity.Error);
    public int WarningCount => Count(ProblemSeverity.Warning);
    public bool HasErrors => ErrorCount > 0;

    private int Count(ProblemSeverity severity)
    {
        int count = 0;
        foreach (var p in Problems) if (p.Severity == severity) count++;
        return count;
    }
}

/// <summary>
/// Checks a raw dataset like nnU-Net's verify_dataset_integrity, but lists every problem instead of stopping at the first:
/// dataset.json validity, numTraining against the cases found, missing channel or label files, unexpected files in
/// imagesTr/labelsTr/imagesTs, unreadable files (with the reader's message), shape and spacing mismatches between a
/// case's channels and its label (errors; numpy allclose tolerances), origin and direction mismatches (warnings, as in
/// nnU-Net), NaN or infinite intensities (nnU-Net only checks NaN), label values not declared in dataset.json.
/// Reads files only; writes nothing.
/// </summary>
public static class DatasetVerifier
{
    /// <summary>At most this many distinct unexpected label values are listed per case.</summary>
    private const int MaxListedValues = 10;

    /// <summary>Verifies the dataset in <paramref name="datasetFolder"/>; <paramref name="onCaseChecked"/> is called after each
    /// case (from worker threads) for progress reporting.</summary>
    public static DatasetVerificationReport Verify(string datasetFolder, int maxParallelism = 1, Action? onCaseChecked = null,
        CancellationToken cancellationToken = default)
    {
        var problems = new List<DatasetProblem>();
        RawDataset dataset;
        try
        {
            dataset = RawDataset.Open(datasetFolder);
        }
        catch (Exception ex) when (ex is InvalidDataException or IOException)
        {
            problems.Add(new DatasetProblem(ProblemSeverity.Error, null, ex.Message));
            return new DatasetVerificationReport(datasetFolder, 0, problems);
        }
        var json = dataset.Json;
        if (json.UsesLegacyModalityKey)
            problems.Add(new DatasetProblem(ProblemSeverity.Warning, null, $"{dataset.DatasetJsonPath}: uses the legacy key 'modality'; nnU-Net v2 calls it 'channel_names'"));
        if (dataset.TrainingCases.Count != json.NumTraining)
            problems.Add(new DatasetProblem(ProblemSeverity.Error, null,
                $"dataset.json declares numTraining = {json.NumTraining} but {dataset.TrainingCases.Count} training cases were found"));
        if (!dataset.UsesExplicitCaseList)
        {
            if (!Directory.Exists(dataset.LabelsTrFolder))
                problems.Add(new DatasetProblem(ProblemSeverity.Error, null, $"{dataset.LabelsTrFolder} does not exist"));
            CheckImageFolder(dataset.ImagesTrFolder, json, problems);
            CheckLabelFolder(dataset, problems);
            if (Directory.Exists(dataset.ImagesTsFolder))
            {
                CheckImageFolder(dataset.ImagesTsFolder, json, problems);
                foreach (var testCase in dataset.TestCases)
                    foreach (string file in testCase.ImageFiles)
                        if (!File.Exists(file))
                            problems.Add(new DatasetProblem(ProblemSeverity.Error, testCase.Id, $"missing test image file {file}"));
            }
        }

        var perCase = new List<DatasetProblem>[dataset.TrainingCases.Count];
        var options = new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, maxParallelism), CancellationToken = cancellationToken };
        Parallel.For(0, perCase.Length, options, i =>
        {
            perCase[i] = CheckCase(dataset.TrainingCases[i], json);
            onCaseChecked?.Invoke();
        });
        foreach (var list in perCase) problems.AddRange(list);
        return new DatasetVerificationReport(dataset.Folder, dataset.TrainingCases.Count, problems);
    }

    /// <summary>Checks one training case: files present and readable, geometry consistent, values valid.</summary>
    public static List<DatasetProblem> CheckCase(RawCase rawCase, DatasetJson json)
    {
        var problems = new List<DatasetProblem>();
        void Error(string message) => problems.Add(new DatasetProblem(ProblemSeverity.Error, rawCase.Id, message));
        void Warn(string message) => problems.Add(new DatasetProblem(ProblemSeverity.Warning, rawCase.Id, message));

        var images = new MedicalImage?[rawCase.ImageFiles.Count];
        for (int c = 0; c < images.Length; c++)
        {
            string file = rawCase.ImageFiles[c];
            if (!File.Exists(file))
            {
                Error($"missing image file {file} (channel {c}: {ChannelName(json, c)})");
                continue;
            }
            images[c] = TryRead(rawCase.Id, file, Error);
        }
        MedicalImage? label = null;
        if (rawCase.LabelFile is not null)
        {
            if (!File.Exists(rawCase.LabelFile)) Error($"missing label file {rawCase.LabelFile}");
            else label = TryRead(rawCase.Id, rawCase.LabelFile, Error);
        }

        MedicalImage? reference = null;
        string? referenceFile = null;
        for (int c = 0; c < images.Length; c++)
        {
            var image = images[c];
            if (image is null) continue;
            string file = rawCase.ImageFiles[c];
            if (image.Channels != 1)
                Error($"{file} holds {image.Channels} channels; each imagesTr file must hold one channel (use nnunet convert-msd for 4D MSD images)");
            CheckFinite(file, image, Error);
            if (reference is null)
            {
                reference = image;
                referenceFile = file;
            }
            else CompareGeometry(referenceFile!, reference, file, image, Error, Warn);
        }
        if (label is not null)
        {
            string labelFile = rawCase.LabelFile!;
            if (label.Channels != 1) Error($"label file {labelFile} holds {label.Channels} channels, expected 1");
            if (reference is not null) CompareGeometry(referenceFile!, reference, labelFile, label, Error, Warn);
            CheckLabelValues(labelFile, label, json, Error);
        }
        return problems;
    }

    private static MedicalImage? TryRead(string caseId, string file, Action<string> error)
    {
        try
        {
            return RawCaseReader.ReadFile(caseId, file);
        }
        catch (InvalidDataException ex)
        {
            // The message already says "case X: cannot read F: reason"; drop the case prefix (the problem carries it).
            string prefix = $"case {caseId}: ";
            error(ex.Message.StartsWith(prefix, StringComparison.Ordinal) ? ex.Message[prefix.Length..] : ex.Message);
            return null;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or OutOfMemoryException)
        {
            error($"cannot read {file}: {ex.Message}");
            return null;
        }
    }

    private static void CompareGeometry(string referenceFile, MedicalImage reference, string file, MedicalImage image,
        Action<string> error, Action<string> warn)
    {
        string name = Path.GetFileName(file), referenceName = Path.GetFileName(referenceFile);
        if (image.SizeZ != reference.SizeZ || image.SizeY != reference.SizeY || image.SizeX != reference.SizeX)
            error($"shape mismatch: {name} is {RawCaseReader.FormatShape(image)}, {referenceName} is {RawCaseReader.FormatShape(reference)}");
        if (!RawCaseReader.AllClose(image.Geometry.Spacing, reference.Geometry.Spacing))
            error($"spacing mismatch: {name} has {RawCaseReader.Format(image.Geometry.Spacing)}, {referenceName} has {RawCaseReader.Format(reference.Geometry.Spacing)}");
        if (!RawCaseReader.AllClose(image.Geometry.Origin, reference.Geometry.Origin))
            warn($"origin mismatch: {name} has {RawCaseReader.Format(image.Geometry.Origin)}, {referenceName} has {RawCaseReader.Format(reference.Geometry.Origin)}");
        if (!RawCaseReader.AllClose(image.Geometry.Direction, reference.Geometry.Direction))
            warn($"direction mismatch: {name} has {RawCaseReader.Format(image.Geometry.Direction)}, {referenceName} has {RawCaseReader.Format(reference.Geometry.Direction)}");
    }

    private static void CheckFinite(string file, MedicalImage image, Action<string> error)
    {
        long nan = 0, infinite = 0;
        // Switch on the declared type: the runtime lets some arrays pass as others of the same size (sbyte[] as byte[]).
        switch (image.Type)
        {
            case VoxelType.Float32:
                foreach (float v in (float[])image.Voxels)
                {
                    if (float.IsNaN(v)) nan++;
                    else if (float.IsInfinity(v)) infinite++;
                }
                break;
            case VoxelType.Float64:
                foreach (double v in (double[])image.Voxels)
                {
                    if (double.IsNaN(v)) nan++;
                    else if (double.IsInfinity(v)) infinite++;
                }
                break;
            default:
                return; // integer voxels are always finite
        }
        if (nan > 0) error($"{file} contains {nan} NaN voxels; replace them with a meaningful value");
        if (infinite > 0) error($"{file} contains {infinite} infinite voxels; replace them with a meaningful value");
    }

    private static void CheckLabelValues(string file, MedicalImage label, DatasetJson json, Action<string> error)
    {
        // dataset.json guarantees the allowed values are 0..max (ignore label last), so a range test suffices.
        var allowed = json.AllowedSegmentationValues;
        int maxAllowed = allowed[^1];
        int n = checked((int)label.VoxelsPerChannel);
        var values = new float[n];
        label.CopyChannelTo(0, values);
        var unexpected = new SortedSet<float>();
        long unexpectedVoxels = 0, nanVoxels = 0;
        foreach (float v in values)
        {
            if (float.IsNaN(v))
            {
                nanVoxels++;
                continue;
            }
            if (v >= 0 && v <= maxAllowed && v == MathF.Floor(v)) continue;
            unexpectedVoxels++;
            if (unexpected.Count < MaxListedValues) unexpected.Add(v);
        }
        if (nanVoxels > 0) error($"label file {file} contains {nanVoxels} NaN voxels");
        if (unexpectedVoxels > 0)
        {
            var listed = new List<string>();
            foreach (float v in unexpected) listed.Add(v.ToString("G9", CultureInfo.InvariantCulture));
            error($"label file {file} has values not declared in dataset.json: {string.Join(", ", listed)}" +
                  $"{(unexpected.Count == MaxListedValues ? ", ..." : "")} ({unexpectedVoxels} voxels; declared: {string.Join(", ", allowed)})");
        }
    }

    private static void CheckImageFolder(string folder, DatasetJson json, List<DatasetProblem> problems)
    {
        foreach (string name in RawDataset.VisibleFileNames(folder))
        {
            if (!RawDataset.TryParseImageFileName(name, json.FileEnding, out string caseId, out int channel))
                problems.Add(new DatasetProblem(ProblemSeverity.Error, null,
                    $"unexpected file {Path.Combine(folder, name)}: image files must be named CASE_XXXX{json.FileEnding} (XXXX = channel)"));
            else if (channel >= json.NumChannels)
                problems.Add(new DatasetProblem(ProblemSeverity.Error, caseId,
                    $"unexpected file {Path.Combine(folder, name)}: channel {channel} but dataset.json declares {json.NumChannels} channel(s)"));
        }
        foreach (string dir in Directory.Exists(folder) ? Directory.EnumerateDirectories(folder) : [])
            problems.Add(new DatasetProblem(ProblemSeverity.Error, null, $"unexpected folder {dir}"));
    }

    private static void CheckLabelFolder(RawDataset dataset, List<DatasetProblem> problems)
    {
        if (!Directory.Exists(dataset.LabelsTrFolder)) return;
        var caseIds = new HashSet<string>(dataset.TrainingCaseIds, StringComparer.Ordinal);
        string ending = dataset.Json.FileEnding;
        foreach (string name in RawDataset.VisibleFileNames(dataset.LabelsTrFolder))
        {
            string path = Path.Combine(dataset.LabelsTrFolder, name);
            if (!name.EndsWith(ending, StringComparison.Ordinal))
                problems.Add(new DatasetProblem(ProblemSeverity.Error, null, $"unexpected file {path}: label files must be named CASE{ending}"));
            else if (!caseIds.Contains(name[..^ending.Length]))
                problems.Add(new DatasetProblem(ProblemSeverity.Error, name[..^ending.Length], $"label file {path} has no images in imagesTr"));
        }
        foreach (string dir in Directory.EnumerateDirectories(dataset.LabelsTrFolder))
            problems.Add(new DatasetProblem(ProblemSeverity.Error, null, $"unexpected folder {dir}"));
    }

    private static string ChannelName(DatasetJson json, int channel) =>
        channel < json.ChannelNames.Count ? json.ChannelNames[channel] : "undeclared";
}
