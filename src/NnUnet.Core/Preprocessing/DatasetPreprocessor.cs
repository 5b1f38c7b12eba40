using NnUnet.Core.Datasets;
using NnUnet.Core.Imaging;
using NnUnet.Core.Planning;
using NnUnet.Core.IO;

namespace NnUnet.Core.Preprocessing;

/// <summary>Outcome of one case of a preprocessing run.</summary>
/// <param name="Skipped">The case was already complete in the output folder (resume).</param>
/// <param name="Error">Why the case failed (null on success); the file or problem is named.</param>
public sealed record CasePreprocessingResult(string CaseId, bool Skipped, string? Error)
{
    public bool Failed => Error is not null;
}

/// <summary>
/// Preprocesses every training case of a raw dataset for one configuration into
/// <c>nnUNet_preprocessed/DatasetXXX/&lt;data_identifier&gt;/</c>, cases in parallel. Unlike nnU-Net (which deletes the
/// folder first) it resumes: cases already complete are skipped, unless the settings that shape the output (recorded in
/// <see cref="SettingsFileName"/>) changed since they were written. A failing case is reported and the others still run.
/// </summary>
public sealed class DatasetPreprocessor
{
    private readonly NnUnetPlans _plans;
    private readonly DatasetJson _datasetJson;
    private readonly Func<string, MedicalImage> _readImage;

    /// <param name="readImage">Reads one image file (NIfTI in the CLI); the seam keeps this class free of file formats.</param>
    public DatasetPreprocessor(NnUnetPlans plans, DatasetJson datasetJson, Func<string, MedicalImage> readImage)
    {
        _plans = plans;
        _datasetJson = datasetJson;
        _readImage = readImage;
    }

    /// <summary>Output folder of <paramref name="configurationName"/> under the dataset's preprocessed folder.</summary>
    public string OutputFolder(string preprocessedDatasetFolder, string configurationName) =>
        Path.Combine(preprocessedDatasetFolder, _plans.GetConfiguration(configurationName).DataIdentifier);

    /// <summary>
    /// Runs <paramref name="cases"/> for one configuration with up to <paramref name="degreeOfParallelism"/> cases at a
    /// time; <paramref name="onCaseDone"/> is called (from worker threads) as each case finishes. Results are in case order.
    /// </summary>
    public IReadOnlyList<CasePreprocessingResult> Run(string configurationName, IReadOnlyList<RawCase> cases, string outputFolder,
        int degreeOfParallelism, Action<CasePreprocessingResult>? onCaseDone = null, CancellationToken cancellationToken = default)
    {
        var preprocessor = new DefaultPreprocessor(_plans, configurationName, _datasetJson);
        Directory.CreateDirectory(outputFolder);
        int channels = _datasetJson.NumChannels;
        // finished cases are only reused when they were made with the same settings
        bool settingsUnchanged = RecordSettings(outputFolder, configurationName);
        var results = new CasePreprocessingResult[cases.Count];
        var options = new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, degreeOfParallelism), CancellationToken = cancellationToken };
        Parallel.For(0, cases.Count, options, i =>
        {
            var rawCase = cases[i];
            CasePreprocessingResult result;
            if (settingsUnchanged && PreprocessedStore.IsComplete(outputFolder, rawCase.Id, channels))
                result = new CasePreprocessingResult(rawCase.Id, Skipped: true, Error: null);
            else
            {
                try
                {
                    var preprocessed = RunCase(preprocessor, rawCase);
                    PreprocessedStore.Save(outputFolder, preprocessed);
                    result = new CasePreprocessingResult(rawCase.Id, Skipped: false, Error: null);
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    result = new CasePreprocessingResult(rawCase.Id, Skipped: false, Error: ex.Message);
                }
            }
            results[i] = result;
            onCaseDone?.Invoke(result);
        });
        return results;
    }

    /// <summary>Folder under the preprocessed dataset folder holding copies of the training labels (nnU-Net's).</summary>
    public const string GroundTruthFolderName = "gt_segmentations";

    /// <summary>
    /// Copies each case's label file to <c>gt_segmentations/CASE{file_ending}</c> of the preprocessed dataset folder, as
    /// nnU-Net does after preprocessing, so validation works where only nnUNet_preprocessed is mounted. Files already
    /// there with the same size and a timestamp not older than the source are left alone. Returns the number copied.
    /// </summary>
    public int CopyGroundTruth(IReadOnlyList<RawCase> cases, string preprocessedDatasetFolder)
    {
        string target = Path.Combine(preprocessedDatasetFolder, GroundTruthFolderName);
        Directory.CreateDirectory(target);
        int copied = 0;
        foreach (var rawCase in cases)
        {
            if (rawCase.LabelFile is not { } source || !File.Exists(source)) continue;
            string destination = Path.Combine(target, rawCase.Id + _datasetJson.FileEnding);
            var src = new FileInfo(source);
            var dst = new FileInfo(destination);
            if (dst.Exists && dst.Length == src.Length && dst.LastWriteTimeUtc >= src.LastWriteTimeUtc) continue;
            AtomicFile.Copy(source, destination);
            copied++;
        }
        return copied;
    }

    /// <summary>Name of the file in the output folder recording the settings its cases were made with.</summary>
    public const string SettingsFileName = "preprocessing_settings.json";

    /// <summary>
    /// Writes what determines the output (resolved configuration, transpose, intensity statistics, labels) to
    /// <see cref="SettingsFileName"/>; returns false when a different record was there (then nothing is reused).
    /// </summary>
    private bool RecordSettings(string outputFolder, string configurationName)
    {
        var record = new System.Text.Json.Nodes.JsonObject
        {
            ["configuration"] = System.Text.Json.JsonSerializer.SerializeToNode(_plans.GetConfiguration(configurationName), NnUnetPlans.JsonOptions),
            ["transpose_forward"] = System.Text.Json.JsonSerializer.SerializeToNode(_plans.TransposeForward),
            ["foreground_intensity_properties_per_channel"] = System.Text.Json.JsonSerializer.SerializeToNode(_plans.ForegroundIntensityPropertiesPerChannel),
            ["labels"] = System.Text.Json.JsonSerializer.SerializeToNode(_datasetJson.AllLabels),
            ["regions"] = _datasetJson.HasRegions,
            ["ignore_label"] = _datasetJson.IgnoreLabel,
        };
        string text = record.ToJsonString(IndentedJson.Options);
        string path = Path.Combine(outputFolder, SettingsFileName);
        bool unchanged = !File.Exists(path) || File.ReadAllText(path) == text;
        if (!File.Exists(path) || !unchanged)
        {
            AtomicFile.WriteAllText(path, text);
        }
        return unchanged;
    }

    /// <summary>Reads a case's channel files (and label) and preprocesses it in memory.</summary>
    public PreprocessedCase RunCase(DefaultPreprocessor preprocessor, RawCase rawCase)
    {
        var image = ReadChannels(rawCase);
        MedicalImage? label = null;
        if (rawCase.LabelFile is { } labelFile)
        {
            if (!File.Exists(labelFile)) throw new FileNotFoundException($"case {rawCase.Id}: label file {labelFile} does not exist", labelFile);
            label = _readImage(labelFile);
            if (!label.SpatialShape.AsSpan().SequenceEqual(image.SpatialShape))
                throw new InvalidDataException($"case {rawCase.Id}: label {labelFile} has shape ({string.Join(", ", label.SpatialShape)}), the image ({string.Join(", ", image.SpatialShape)})");
        }
        return preprocessor.Run(rawCase.Id, image, label);
    }

    /// <summary>Stacks the case's one-channel image files into one (c, z, y, x) float32 image (nnU-Net reads them the same way).</summary>
    public MedicalImage ReadChannels(RawCase rawCase)
    {
        if (rawCase.ImageFiles.Count != _datasetJson.NumChannels)
            throw new InvalidDataException($"case {rawCase.Id}: has {rawCase.ImageFiles.Count} image file(s), dataset.json names {_datasetJson.NumChannels} channel(s)");
        MedicalImage? first = null;
        float[]? voxels = null;
        int n = 0;
        for (int c = 0; c < rawCase.ImageFiles.Count; c++)
        {
            string file = rawCase.ImageFiles[c];
            if (!File.Exists(file)) throw new FileNotFoundException($"case {rawCase.Id}: image file {file} does not exist", file);
            var img = _readImage(file);
            if (img.Channels != 1)
                throw new InvalidDataException($"case {rawCase.Id}: {file} has {img.Channels} channels; nnU-Net expects one file per channel");
            if (first is null)
            {
                first = img;
                n = checked((int)img.VoxelsPerChannel);
                voxels = new float[(long)n * rawCase.ImageFiles.Count];
            }
            else
            {
                if (!img.SpatialShape.AsSpan().SequenceEqual(first.SpatialShape))
                    throw new InvalidDataException($"case {rawCase.Id}: {file} has shape ({string.Join(", ", img.SpatialShape)}), channel 0 has ({string.Join(", ", first.SpatialShape)})");
                if (!SameSpacing(img.Geometry, first.Geometry))
                    throw new InvalidDataException($"case {rawCase.Id}: {file} has spacing ({string.Join(", ", img.Geometry.Spacing)}), channel 0 has ({string.Join(", ", first.Geometry.Spacing)})");
            }
            img.CopyChannelTo(0, voxels.AsSpan(c * n, n));
        }
        return MedicalImage.FromFloat(voxels!, rawCase.ImageFiles.Count, first!.SizeZ, first.SizeY, first.SizeX, first.Geometry);
    }

    private static bool SameSpacing(ImageGeometry a, ImageGeometry b)
    {
        for (int i = 0; i < 3; i++)
            if (Math.Abs(a.Spacing[i] - b.Spacing[i]) > 1e-5 * Math.Max(1, Math.Abs(a.Spacing[i]))) return false;
        return true;
    }
}
