using NnUnet.Core.Datasets;
using NnUnet.Core.Ensembling;
using NnUnet.Core.Imaging;
using NnUnet.Core.Imaging.Nifti;
using NnUnet.Core.Planning;
using NnUnet.Core.Preprocessing;
using NnUnet.Core.Resampling;
using TorchSharp;
using static TorchSharp.torch;
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
    private readonly InferenceMemoryOptions _memory;

    /// <param name="memory">Export chunk size and host memory budget; null: the defaults.</param>
    public PredictionExporter(NnUnetPlans plans, PlansConfiguration configuration, DatasetJson dataset, InferenceMemoryOptions? memory = null)
    {
        _memory = memory ?? InferenceMemoryOptions.Default;
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
    /// Logits (k, z, y, x) in the preprocessed array of <paramref name="properties"/>' case (any device, float16 or
    /// float32) to the raw image's segmentation and, with <paramref name="withProbabilities"/>, probabilities.
    /// Class channels are converted to float32 and resampled a chunk at a time (<see cref="InferenceMemoryOptions.ExportChunkBytes"/>),
    /// so that without probabilities the memory beyond the logits is a chunk plus a running argmax; with probabilities
    /// the (k, cropped) float32 array is needed anyway, and its size is checked against the host memory first.
    /// </summary>
    public ExportedPrediction Convert(Tensor logits, CaseProperties properties, bool withProbabilities, string caseId = "case")
    {
        ArgumentNullException.ThrowIfNull(logits);
        ArgumentNullException.ThrowIfNull(properties);
        int k = NumOutputChannels;
        if (logits.dim() != 4 || logits.shape[0] != k)
            throw new ArgumentException($"case {caseId}: logits must be ({k}, z, y, x), got ({string.Join(", ", logits.shape)})", nameof(logits));
        int[] preprocessedShape = [(int)logits.shape[1], (int)logits.shape[2], (int)logits.shape[3]];
        int[] croppedShape = properties.ShapeAfterCroppingAndBeforeResampling;
        float[] Resample(float[] values, int channels) =>
            PreprocessingInverse.ResampleToCroppedShape(values, channels, preprocessedShape, properties, _plans, _configuration);

        if (!withProbabilities)
            return new ExportedPrediction(ToSegmentationImage(LabelsChunked(logits, croppedShape, Resample), properties), null, k);

        long croppedVoxels = (long)croppedShape[0] * croppedShape[1] * croppedShape[2];
        int[] raw = properties.ShapeBeforeCropping;
        long rawVoxels = (long)raw[0] * raw[1] * raw[2];
        EnsureProbabilityMemory(caseId, k, croppedVoxels, rawVoxels);
        float[] probabilities = ResampleAll(logits, croppedShape, Resample);
        int[] labels = new int[croppedVoxels];
        if (_dataset.HasRegions)
        {
            Sigmoid(probabilities);
            for (int c = 0; c < k; c++) PaintRegion(probabilities.AsSpan((int)(c * croppedVoxels), (int)croppedVoxels), _outputLabels[c], labels);
        }
        else
        {
            SoftmaxOverChannels(probabilities, k, (int)croppedVoxels);
            var best = new float[croppedVoxels];
            for (int c = 0; c < k; c++) UpdateArgmax(probabilities.AsSpan((int)(c * croppedVoxels), (int)croppedVoxels), c, best, labels);
            MapIndicesToLabels(labels);
        }
        var image = ToSegmentationImage(labels, properties);
        var fill = new float[k];
        if (!_dataset.HasRegions) fill[0] = 1f; // outside the crop: certainly background
        float[] rawProbabilities = PreprocessingInverse.RevertCropping(probabilities, k, properties, _plans.TransposeForward, fill);
        return new ExportedPrediction(image, rawProbabilities, k);
    }

    /// <summary>Channels per export chunk: as many whole channels as <see cref="InferenceMemoryOptions.ExportChunkBytes"/> holds in float32 before and after resampling, at least one.</summary>
    internal int ChannelsPerChunk(long inputVoxels, long outputVoxels)
    {
        long perChannel = (inputVoxels + outputVoxels) * sizeof(float);
        return (int)Math.Clamp(_memory.ExportChunkBytes / Math.Max(1, perChannel), 1, NumOutputChannels);
    }

    /// <summary>
    /// Label values (z, y, x) of <paramref name="targetShape"/> from logits resampled by <paramref name="resample"/>,
    /// chunk by chunk: a running argmax (the first maximum wins, NaN counts as the largest, as torch's argmax), or for
    /// regions sigmoid &gt; 0.5 painted in regions_class_order.
    /// </summary>
    private int[] LabelsChunked(Tensor logits, int[] targetShape, Func<float[], int, float[]> resample)
    {
        int k = NumOutputChannels;
        int targetVoxels = checked(targetShape[0] * targetShape[1] * targetShape[2]);
        long inputVoxels = logits.shape[1] * logits.shape[2] * logits.shape[3];
        int chunk = ChannelsPerChunk(inputVoxels, targetVoxels);
        var labels = new int[targetVoxels];
        var best = _dataset.HasRegions ? null : new float[targetVoxels];
        for (int first = 0; first < k; first += chunk)
        {
            int count = Math.Min(chunk, k - first);
            float[] resampled = resample(ToCpuArray(logits, first, count), count);
            for (int c = 0; c < count; c++)
            {
                var plane = resampled.AsSpan(c * targetVoxels, targetVoxels);
                if (_dataset.HasRegions)
                {
                    Sigmoid(plane);
                    PaintRegion(plane, _outputLabels[first + c], labels);
                }
                else UpdateArgmax(plane, first + c, best!, labels);
            }
        }
        if (!_dataset.HasRegions) MapIndicesToLabels(labels);
        return labels;
    }

    /// <summary>All channels resampled into one (k, target) float32 array, a chunk of channels at a time.</summary>
    private float[] ResampleAll(Tensor logits, int[] targetShape, Func<float[], int, float[]> resample)
    {
        int k = NumOutputChannels;
        int targetVoxels = checked(targetShape[0] * targetShape[1] * targetShape[2]);
        long inputVoxels = logits.shape[1] * logits.shape[2] * logits.shape[3];
        int chunk = ChannelsPerChunk(inputVoxels, targetVoxels);
        if (chunk >= k) return resample(ToCpuArray(logits, 0, k), k);
        var all = GC.AllocateUninitializedArray<float>(checked(k * targetVoxels));
        for (int first = 0; first < k; first += chunk)
        {
            int count = Math.Min(chunk, k - first);
            float[] resampled = resample(ToCpuArray(logits, first, count), count);
            resampled.AsSpan(0, count * targetVoxels).CopyTo(all.AsSpan(first * targetVoxels));
        }
        return all;
    }

    private void EnsureProbabilityMemory(string caseId, int k, long croppedVoxels, long rawVoxels)
    {
        // the cropped probabilities, their transposed copy and the raw-shape result
        long values = k * Math.Max(croppedVoxels, rawVoxels);
        if (values > Array.MaxLength)
            throw new InferenceMemoryException($"case {caseId}: the probabilities of {k} classes x {rawVoxels} voxels ({values} values) exceed the largest array .NET can hold: predict without saving probabilities");
        long needed = k * (2 * croppedVoxels + rawVoxels) * sizeof(float);
        long available = _memory.HostAvailable();
        if (needed > available)
            throw new InferenceMemoryException($"case {caseId}: exporting the probabilities of {k} classes x {rawVoxels} voxels needs {HostMemory.Format(needed)} of host memory, only {HostMemory.Format(available)} is available: predict without saving probabilities");
    }

    /// <summary>Channels [first, first + count) as a float32 array on the CPU.</summary>
    private static float[] ToCpuArray(Tensor logits, int first, int count)
    {
        using var scope = torch.NewDisposeScope();
        var part = count == logits.shape[0] ? logits : logits.narrow(0, first, count);
        return part.detach().to(ScalarType.Float32, CPU).contiguous().data<float>().ToArray();
    }

    /// <summary>Running argmax: channel <paramref name="channel"/>'s values replace the best where strictly larger (or NaN over a number).</summary>
    private static void UpdateArgmax(ReadOnlySpan<float> plane, int channel, Span<float> best, Span<int> index)
    {
        if (channel == 0)
        {
            plane.CopyTo(best);
            index.Clear();
            return;
        }
        for (int v = 0; v < plane.Length; v++)
        {
            float x = plane[v];
            float b = best[v];
            if (x > b || (float.IsNaN(x) && !float.IsNaN(b)))
            {
                best[v] = x;
                index[v] = channel;
            }
        }
    }

    private static void Sigmoid(Span<float> values)
    {
        for (int i = 0; i < values.Length; i++) values[i] = 1f / (1f + MathF.Exp(-values[i]));
    }

    private static void PaintRegion(ReadOnlySpan<float> probabilities, int label, Span<int> labels)
    {
        for (int v = 0; v < probabilities.Length; v++)
            if (probabilities[v] > 0.5f) labels[v] = label;
    }

    /// <summary>Softmax over the channels of (k, n) float32 values in place (max subtracted first), in blocks of voxels so every pass reads memory in order.</summary>
    private static void SoftmaxOverChannels(float[] values, int k, int n)
    {
        const int block = 4096;
        Span<float> max = stackalloc float[block];
        Span<float> sum = stackalloc float[block];
        for (int start = 0; start < n; start += block)
        {
            int length = Math.Min(block, n - start);
            var m = max[..length];
            var s = sum[..length];
            values.AsSpan(start, length).CopyTo(m);
            for (int c = 1; c < k; c++)
            {
                var plane = values.AsSpan(c * n + start, length);
                for (int v = 0; v < length; v++) m[v] = MathF.Max(m[v], plane[v]);
            }
            s.Clear();
            for (int c = 0; c < k; c++)
            {
                var plane = values.AsSpan(c * n + start, length);
                for (int v = 0; v < length; v++)
                {
                    float e = MathF.Exp(plane[v] - m[v]);
                    plane[v] = e;
                    s[v] += e;
                }
            }
            for (int c = 0; c < k; c++)
            {
                var plane = values.AsSpan(c * n + start, length);
                for (int v = 0; v < length; v++) plane[v] /= s[v];
            }
        }
    }

    /// <summary>Channel indices to label values (regions_class_order / the label list), in place.</summary>
    private void MapIndicesToLabels(Span<int> indices)
    {
        bool identity = true;
        for (int i = 0; i < _outputLabels.Length; i++) identity &= _outputLabels[i] == i;
        if (identity) return;
        for (int v = 0; v < indices.Length; v++) indices[v] = _outputLabels[indices[v]];
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
        double[] spacing = _configuration.Spacing.Length == 3
            ? _configuration.Spacing
            : [Transposition.Permute(properties.Spacing, _plans.TransposeForward)[0], _configuration.Spacing[0], _configuration.Spacing[1]];
        var kw = _configuration.ResamplingFnProbabilitiesKwargs;
        int[] labels = LabelsChunked(logits, targetShape, (values, channels) =>
            Resampler.ResampleDataOrSegToShape(values, channels, shape, targetShape, spacing, spacing, kw.IsSeg, kw.Order, kw.OrderZ, kw.ForceSeparateZ));
        var bytes = new byte[labels.Length];
        for (int i = 0; i < bytes.Length; i++) bytes[i] = (byte)labels[i];
        return bytes;
    }
}
