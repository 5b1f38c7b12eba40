using NnUnet.Core.Datasets;
using NnUnet.Core.Ensembling;
using NnUnet.Core.Imaging;
using NnUnet.Core.Imaging.Nifti;
using NnUnet.Core.Planning;
using NnUnet.Core.Preprocessing;
using NnUnet.Core.Resampling;
using TorchSharp;
using static TorchSharp.torch;
using NnUnet.Training.Torch;
using NnUnet.Core.IO;

namespace NnUnet.Training.Inference;

/// <summary>A prediction in the raw image's array order and shape: the segmentation image (raw geometry) and, when
/// asked for, the probabilities (channels, z, y, x).</summary>
public sealed record ExportedPrediction(MedicalImage Segmentation, float[]? Probabilities, int ProbabilityChannels);

/// <summary>
/// nnU-Net's <c>export_prediction_from_logits</c>: logits in the preprocessed array (transposed, cropped, resampled)
/// are resampled back to the cropped shape (the plans' probability resampling: order 1, separate z with order 0),
/// turned into probabilities (softmax; sigmoid for regions) and a segmentation (argmax; regions: sigmoid &gt; 0.5
/// painted in <c>regions_class_order</c>), pasted into the bounding box of the raw shape, transposed back and written
/// with the raw geometry. Probabilities go to <c>CASE.npz</c> (key <c>probabilities</c>, (c, z, y, x) in raw array order,
/// voxels outside the crop: background 1, others 0) for ensembling; nnU-Net's <c>CASE.pkl</c> properties become
/// <c>CASE.pkl.json</c> (<see cref="CaseProperties"/>).
/// </summary>
public sealed class PredictionExporter
{
    public const string ProbabilitiesKey = ProbabilityMap.NpzKey;
    public const string ProbabilitiesSuffix = ".npz";
    public const string PropertiesSuffix = ".pkl.json";

    private readonly NnUnetPlans _plans;
    private readonly PlansConfiguration _configuration;
    private readonly DatasetJson _dataset;
    private readonly int[] _outputLabels;
    private readonly int _foregroundLabels;

    public PredictionExporter(NnUnetPlans plans, PlansConfiguration configuration, DatasetJson dataset)
    {
        _plans = plans ?? throw new ArgumentNullException(nameof(plans));
        _configuration = configuration ?? throw new ArgumentNullException(nameof(configuration));
        _dataset = dataset ?? throw new ArgumentNullException(nameof(dataset));
        Transposition.Validate(plans.TransposeForward, "transpose_forward");
        if (dataset.HasRegions)
        {
            _outputLabels = dataset.RegionsClassOrder
                            ?? throw new InvalidDataException($"{dataset.Source}: regions need regions_class_order");
            if (_outputLabels.Length != dataset.ForegroundRegions.Count)
                throw new InvalidDataException($"{dataset.Source}: regions_class_order has {_outputLabels.Length} entries for {dataset.ForegroundRegions.Count} regions");
        }
        else _outputLabels = dataset.AllLabels.ToArray();
        int foreground = 0;
        foreach (int label in dataset.AllLabels) if (label != 0) foreground++;
        _foregroundLabels = foreground;
    }

    /// <summary>Output channels the network must produce (labels incl. background, or foreground regions).</summary>
    public int NumOutputChannels => _outputLabels.Length;

    /// <summary>The segmentation's voxel type: uint8 below 255 foreground labels, else uint16 (as nnU-Net).</summary>
    public VoxelType SegmentationType => _foregroundLabels < 255 ? VoxelType.UInt8 : VoxelType.UInt16;

    /// <summary>
    /// Logits (k, z, y, x) in the preprocessed array of <paramref name="properties"/>' case (any device) to the raw
    /// image's segmentation and, with <paramref name="withProbabilities"/>, probabilities.
    /// </summary>
    public ExportedPrediction Convert(Tensor logits, CaseProperties properties, bool withProbabilities, string caseId = "case")
    {
        ArgumentNullException.ThrowIfNull(logits);
        ArgumentNullException.ThrowIfNull(properties);
        int k = NumOutputChannels;
        if (logits.dim() != 4 || logits.shape[0] != k)
            throw new ArgumentException($"case {caseId}: logits must be ({k}, z, y, x), got ({string.Join(", ", logits.shape)})", nameof(logits));
        int[] preprocessedShape = [(int)logits.shape[1], (int)logits.shape[2], (int)logits.shape[3]];
        float[] values = ToCpuArray(logits);

        float[] cropped = PreprocessingInverse.ResampleToCroppedShape(values, k, preprocessedShape, properties, _plans, _configuration);
        int[] croppedShape = properties.ShapeAfterCroppingAndBeforeResampling;

        using var scope = torch.NewDisposeScope();
        var croppedLogits = torch.tensor(cropped, [k, croppedShape[0], croppedShape[1], croppedShape[2]]);
        Tensor? probabilities = null;
        Tensor labelIndex;
        if (_dataset.HasRegions)
        {
            probabilities = torch.sigmoid(croppedLogits);
            labelIndex = PaintRegions(probabilities);
        }
        else
        {
            if (withProbabilities)
            {
                probabilities = torch.softmax(croppedLogits, 0);
                labelIndex = probabilities.argmax(0).to(ScalarType.Int32);
            }
            else labelIndex = croppedLogits.argmax(0).to(ScalarType.Int32); // same argmax, no softmax needed
            labelIndex = MapIndicesToLabels(labelIndex);
        }

        int[] labels = labelIndex.contiguous().data<int>().ToArray();
        var image = ToSegmentationImage(labels, properties);

        float[]? rawProbabilities = null;
        if (withProbabilities)
        {
            float[] probabilityValues = probabilities!.contiguous().data<float>().ToArray();
            var fill = new float[k];
            if (!_dataset.HasRegions) fill[0] = 1f; // outside the crop: certainly background
            rawProbabilities = PreprocessingInverse.RevertCropping(probabilityValues, k, properties, _plans.TransposeForward, fill);
        }
        return new ExportedPrediction(image, rawProbabilities, k);
    }

    private static float[] ToCpuArray(Tensor logits)
    {
        using var scope = torch.NewDisposeScope();
        return logits.detach().to(ScalarType.Float32, CPU).contiguous().data<float>().ToArray();
    }

    /// <summary>
    /// Regions: every region whose probability (k, z, y, x) exceeds 0.5 is painted with its label, later entries of
    /// regions_class_order on top; int32 (z, y, x).
    /// </summary>
    private Tensor PaintRegions(Tensor probabilities)
    {
        var labelIndex = torch.zeros(probabilities.shape[1..], ScalarType.Int32);
        for (int i = 0; i < _outputLabels.Length; i++)
        {
            using var label = TorchScalars.Of(_outputLabels[i]);
            labelIndex.masked_fill_(probabilities[i].gt(TorchScalars.Half), label);
        }
        return labelIndex;
    }

    private Tensor MapIndicesToLabels(Tensor indices)
    {
        bool identity = true;
        for (int i = 0; i < _outputLabels.Length; i++) identity &= _outputLabels[i] == i;
        if (identity) return indices;
        var lookup = torch.tensor(_outputLabels);
        return lookup.index_select(0, indices.flatten().to(ScalarType.Int64)).reshape(indices.shape);
    }

    private MedicalImage ToSegmentationImage(int[] croppedLabels, CaseProperties properties)
    {
        int[] raw = properties.ShapeBeforeCropping;
        if (SegmentationType == VoxelType.UInt8)
        {
            var bytes = new byte[croppedLabels.Length];
            for (int i = 0; i < bytes.Length; i++) bytes[i] = (byte)croppedLabels[i];
            var full = PreprocessingInverse.RevertCropping(bytes, 1, properties, _plans.TransposeForward, [(byte)0]);
            return new MedicalImage(1, raw[0], raw[1], raw[2], VoxelType.UInt8, full, properties.Geometry);
        }
        var shorts = new ushort[croppedLabels.Length];
        for (int i = 0; i < shorts.Length; i++) shorts[i] = (ushort)croppedLabels[i];
        var fullShorts = PreprocessingInverse.RevertCropping(shorts, 1, properties, _plans.TransposeForward, [(ushort)0]);
        return new MedicalImage(1, raw[0], raw[1], raw[2], VoxelType.UInt16, fullShorts, properties.Geometry);
    }

    /// <summary>
    /// Converts and writes <c>outputFileTruncated + file_ending</c> (NIfTI, raw geometry) and, with
    /// <paramref name="saveProbabilities"/>, <c>outputFileTruncated.npz</c> and <c>outputFileTruncated.pkl.json</c>.
    /// </summary>
    public ExportedPrediction Export(Tensor logits, CaseProperties properties, string outputFileTruncated, bool saveProbabilities)
    {
        string caseId = Path.GetFileName(outputFileTruncated);
        var prediction = Convert(logits, properties, saveProbabilities, caseId);
        string directory = Path.GetDirectoryName(Path.GetFullPath(outputFileTruncated))!;
        Directory.CreateDirectory(directory);
        if (saveProbabilities)
        {
            var raw = properties.ShapeBeforeCropping;
            NpzFile.Write<float>(outputFileTruncated + ProbabilitiesSuffix, ProbabilitiesKey, prediction.Probabilities,
                [prediction.ProbabilityChannels, raw[0], raw[1], raw[2]]);
            AtomicFile.Write(outputFileTruncated + PropertiesSuffix, path =>
                File.WriteAllBytes(path, System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(properties, PreprocessedStore.JsonOptions)));
        }
        string segmentationPath = outputFileTruncated + _dataset.FileEnding;
        if (!segmentationPath.EndsWith(".nii.gz", StringComparison.Ordinal) && !segmentationPath.EndsWith(".nii", StringComparison.Ordinal))
            throw new NotSupportedException($"dataset file ending '{_dataset.FileEnding}': only NIfTI (.nii.gz, .nii) is written");
        NiftiWriter.Write(segmentationPath, prediction.Segmentation); // writes a temporary file and renames it
        return prediction;
    }

    /// <summary>
    /// nnU-Net's <c>resample_and_save</c> for the cascade: logits of the low-resolution configuration resampled to
    /// <paramref name="targetShape"/> (the next stage's preprocessed shape; both spacings are this configuration's, as
    /// nnU-Net does), then argmax (or regions). Returns the label map (z, y, x) in the preprocessed (transposed) order.
    /// </summary>
    public byte[] ResampleSegmentationToShape(Tensor logits, int[] targetShape, CaseProperties properties)
    {
        int k = NumOutputChannels;
        if (logits.dim() != 4 || logits.shape[0] != k)
            throw new ArgumentException($"logits must be ({k}, z, y, x), got ({string.Join(", ", logits.shape)})", nameof(logits));
        if (_foregroundLabels >= 255) throw new NotSupportedException("cascade inputs with 255 or more foreground labels are not supported");
        int[] shape = [(int)logits.shape[1], (int)logits.shape[2], (int)logits.shape[3]];
        float[] values = ToCpuArray(logits);
        double[] spacing = _configuration.Spacing.Length == 3
            ? _configuration.Spacing
            : [Transposition.Permute(properties.Spacing, _plans.TransposeForward)[0], _configuration.Spacing[0], _configuration.Spacing[1]];
        var kw = _configuration.ResamplingFnProbabilitiesKwargs;
        float[] resampled = Resampler.ResampleDataOrSegToShape(values, k, shape, targetShape, spacing, spacing, kw.IsSeg, kw.Order, kw.OrderZ, kw.ForceSeparateZ);

        using var scope = torch.NewDisposeScope();
        var t = torch.tensor(resampled, [k, targetShape[0], targetShape[1], targetShape[2]]);
        Tensor labelIndex;
        if (_dataset.HasRegions)
        {
            labelIndex = PaintRegions(torch.sigmoid(t));
        }
        else labelIndex = MapIndicesToLabels(t.argmax(0).to(ScalarType.Int32));
        return labelIndex.to(ScalarType.Byte).contiguous().data<byte>().ToArray();
    }
}
