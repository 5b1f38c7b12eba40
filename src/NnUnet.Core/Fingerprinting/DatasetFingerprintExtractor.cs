using System.Text.Json;
using NnUnet.Core.Datasets;
using NnUnet.Core.Imaging;
using NnUnet.Core.Preprocessing;
using NnUnet.Core.IO;

namespace NnUnet.Core.Fingerprinting;

/// <summary>What the fingerprint keeps of one case: its spacing and shape after cropping, the relative size of the crop
/// and, per channel, the sampled foreground intensities (empty when the case has no foreground).</summary>
public sealed record CaseFingerprint(string CaseId, int[] ShapeAfterCrop, double[] Spacing, double RelativeSizeAfterCropping, float[][] ForegroundSamples);

/// <summary>
/// nnU-Net v2's dataset fingerprint (experiment_planning/dataset_fingerprint/fingerprint_extractor.py). Per case: read
/// the channels (float32) and the label, crop to non-zero (<see cref="Cropping"/>), record spacing (z, y, x), shape after
/// cropping and <c>prod(after) / prod(before)</c>; sample the foreground (label &gt; 0 after cropping) of every channel
/// with replacement: a fresh <c>RandomState(1234)</c> per case, <c>choice(values, n, replace=True)</c> channel after
/// channel, <c>n = int(1e8 // cases)</c>. Pooled per channel: mean, median, std, min, max, 0.5 and 99.5 percentiles, with
/// numpy's arithmetic (<see cref="NumpyStatistics"/>; float32 unless some case had no foreground, which makes numpy's
/// concatenation float64, reproduced too). <c>median_relative_size_after_cropping</c> is the median over cases.
/// </summary>
public static class DatasetFingerprintExtractor
{
    public const string FileName = "dataset_fingerprint.json";
    /// <summary>nnU-Net samples 1e8 foreground voxels per channel over the whole dataset.</summary>
    public const long DefaultTotalForegroundSamples = 100_000_000;
    public const int SamplingSeed = 1234;


    /// <summary><c>int(1e8 // numCases)</c>.</summary>
    public static int SamplesPerCase(int numCases, long totalSamples = DefaultTotalForegroundSamples)
    {
        if (numCases < 1) throw new ArgumentException("a fingerprint needs at least one training case");
        return checked((int)(totalSamples / numCases));
    }

    /// <summary>
    /// Fingerprint of <paramref name="dataset"/> written to <c>{preprocessedDatasetFolder}/dataset_fingerprint.json</c>;
    /// an existing file is loaded and returned unless <paramref name="clean"/>. dataset.json is copied next to it (as
    /// nnU-Net's preprocessing does). <paramref name="reused"/> tells whether the existing file was used.
    /// </summary>
    public static DatasetFingerprint Run(RawDataset dataset, string preprocessedDatasetFolder, bool clean, int maxParallelism,
        out bool reused, Action? onCaseDone = null, long totalSamples = DefaultTotalForegroundSamples, CancellationToken cancellationToken = default)
    {
        string path = Path.Combine(preprocessedDatasetFolder, FileName);
        Directory.CreateDirectory(preprocessedDatasetFolder);
        File.Copy(dataset.DatasetJsonPath, Path.Combine(preprocessedDatasetFolder, DatasetJson.FileName), overwrite: true);
        if (!clean && File.Exists(path))
        {
            reused = true;
            return Load(path);
        }
        var fingerprint = Extract(dataset, maxParallelism, onCaseDone, totalSamples, cancellationToken);
        Save(path, fingerprint);
        reused = false;
        return fingerprint;
    }

    /// <summary>Computes the fingerprint of all training cases, <paramref name="maxParallelism"/> cases at a time.</summary>
    public static DatasetFingerprint Extract(RawDataset dataset, int maxParallelism = 1, Action? onCaseDone = null,
        long totalSamples = DefaultTotalForegroundSamples, CancellationToken cancellationToken = default)
    {
        var cases = dataset.TrainingCases;
        int samples = SamplesPerCase(cases.Count, totalSamples);
        var results = new CaseFingerprint[cases.Count];
        var options = new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, maxParallelism), CancellationToken = cancellationToken };
        try
        {
            Parallel.For(0, cases.Count, options, i =>
            {
                results[i] = AnalyzeCase(cases[i], samples);
                onCaseDone?.Invoke();
            });
        }
        catch (AggregateException ex)
        {
            // One clear error: the failing case's own exception, or every failing case's message.
            var inner = ex.Flatten().InnerExceptions;
            if (inner.Count == 1) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(inner[0]).Throw();
            var messages = new List<string>(inner.Count);
            foreach (var e in inner) messages.Add(e.Message);
            throw new InvalidDataException($"{inner.Count} cases failed:\n" + string.Join("\n", messages), ex);
        }
        // The per-case samples are ours: let Combine drop each as soon as it is pooled (1e8 floats per channel).
        return Combine(results, dataset.Json.NumChannels, releaseSamples: true);
    }

    /// <summary>Reads and analyses one training case.</summary>
    public static CaseFingerprint AnalyzeCase(RawCase rawCase, int samplesPerChannel)
    {
        var images = RawCaseReader.ReadImages(rawCase);
        var label = RawCaseReader.ReadLabel(rawCase);
        if (label.SizeZ != images.SizeZ || label.SizeY != images.SizeY || label.SizeX != images.SizeX)
            throw new InvalidDataException($"case {rawCase.Id}: label {rawCase.LabelFile} has shape ({label.SizeZ}, {label.SizeY}, {label.SizeX}), the images ({images.SizeZ}, {images.SizeY}, {images.SizeX})");
        double[] spacing = RawCaseReader.SpacingForNnUnet(rawCase.ImageFiles[0], images.Geometry);
        return AnalyzeCase(rawCase.Id, images, label, samplesPerChannel, spacing);
    }

    /// <summary>Analyses one case held in memory (images: c channels; label: one channel of the same shape).
    /// <paramref name="spacingZyx"/> defaults to the images' geometry (see <see cref="RawCaseReader.SpacingForNnUnet"/> for 2D files).</summary>
    public static CaseFingerprint AnalyzeCase(string caseId, MedicalImage images, MedicalImage label, int samplesPerChannel, double[]? spacingZyx = null)
    {
        float[] data = images.ToFloat32();
        foreach (float v in data)
            if (float.IsNaN(v)) throw new InvalidDataException($"case {caseId}: the images contain NaN values (run nnunet verify)");
        CropResult crop;
        try
        {
            crop = Cropping.CropToNonzero(data, images.Channels, images.SpatialShape, label.ToFloat32());
        }
        catch (ArgumentException ex)
        {
            throw new InvalidDataException($"case {caseId}: {ex.Message}", ex);
        }

        int n = checked((int)crop.VoxelsPerChannel);
        var foreground = new List<int>();
        var seg = crop.Seg;
        for (int i = 0; i < n; i++) if (seg[i] > 0) foreground.Add(i);

        var random = new NumpyRandomState(SamplingSeed);
        var samples = new float[crop.Channels][];
        var drawn = foreground.Count > 0 ? new int[samplesPerChannel] : [];
        for (int c = 0; c < crop.Channels; c++)
        {
            if (foreground.Count == 0)
            {
                samples[c] = [];
                continue;
            }
            random.ChoiceWithReplacement(foreground.Count, drawn);
            var channel = crop.Data.AsSpan(c * n, n);
            var values = new float[samplesPerChannel];
            for (int s = 0; s < values.Length; s++) values[s] = channel[foreground[drawn[s]]];
            samples[c] = values;
        }
        return new CaseFingerprint(caseId, crop.Shape, spacingZyx ?? images.Geometry.SpacingZyx, crop.RelativeSize, samples);
    }

    /// <summary>Pools per-case results (in case order) into the dataset fingerprint. With <paramref name="releaseSamples"/>
    /// each case's samples of a channel are replaced by an empty array once pooled, to bound memory.</summary>
    public static DatasetFingerprint Combine(IReadOnlyList<CaseFingerprint> cases, int numChannels, bool releaseSamples = false)
    {
        if (cases.Count == 0) throw new ArgumentException("a fingerprint needs at least one training case");
        var properties = new Dictionary<string, IntensityProperties>();
        bool anyCaseWithoutForeground = false;
        long total = 0;
        foreach (var c in cases)
        {
            if (c.ForegroundSamples.Length != numChannels)
                throw new InvalidDataException($"case {c.CaseId}: has {c.ForegroundSamples.Length} channels, dataset.json declares {numChannels}");
            anyCaseWithoutForeground |= c.ForegroundSamples[0].Length == 0;
            total += c.ForegroundSamples[0].Length;
        }
        if (total == 0) throw new InvalidDataException("no training case has foreground (label > 0): intensity statistics cannot be computed");

        for (int channel = 0; channel < numChannels; channel++)
        {
            var pooled = new float[total];
            long offset = 0;
            foreach (var c in cases)
            {
                c.ForegroundSamples[channel].CopyTo(pooled, offset);
                offset += c.ForegroundSamples[channel].Length;
                if (releaseSamples) c.ForegroundSamples[channel] = [];
            }
            // numpy concatenates an empty list (a case without foreground) as float64, which makes all statistics float64.
            properties[channel.ToString(System.Globalization.CultureInfo.InvariantCulture)] =
                anyCaseWithoutForeground ? StatisticsOf(Array.ConvertAll(pooled, v => (double)v)) : StatisticsOf(pooled);
        }

        var relativeSizes = new double[cases.Count];
        var shapes = new List<int[]>(cases.Count);
        var spacings = new List<double[]>(cases.Count);
        for (int i = 0; i < cases.Count; i++)
        {
            relativeSizes[i] = cases[i].RelativeSizeAfterCropping;
            shapes.Add(cases[i].ShapeAfterCrop);
            spacings.Add(cases[i].Spacing);
        }
        return new DatasetFingerprint(properties, Median(relativeSizes), shapes, spacings);
    }

    // 0.5, 50, 99.5 as nnU-Net, plus 0 and 100 for min and max.
    private static readonly double[] Quantiles = [0.5, 50, 99.5, 0, 100];

    /// <summary>Pooled statistics of float32 samples, as numpy computes them (reorders <paramref name="samples"/>).</summary>
    public static IntensityProperties StatisticsOf(float[] samples)
    {
        var (mean, std) = NumpyStatistics.MeanStd(samples);
        double[] p = NumpyStatistics.Percentiles(samples.AsSpan(), Quantiles);
        return new IntensityProperties(mean, p[1], std, p[3], p[4], p[2], p[0]);
    }

    /// <summary>Pooled statistics of float64 samples, as numpy computes them (reorders <paramref name="samples"/>).</summary>
    public static IntensityProperties StatisticsOf(double[] samples)
    {
        var (mean, std) = NumpyStatistics.MeanStd(samples);
        double[] p = NumpyStatistics.Percentiles(samples.AsSpan(), Quantiles);
        return new IntensityProperties(mean, p[1], std, p[3], p[4], p[2], p[0]);
    }

    public static DatasetFingerprint Load(string path)
    {
        try
        {
            var fingerprint = JsonSerializer.Deserialize<DatasetFingerprint>(File.ReadAllText(path))
                              ?? throw new InvalidDataException($"{path}: empty fingerprint");
            if (fingerprint.Spacings is null || fingerprint.ShapesAfterCrop is null || fingerprint.ForegroundIntensityPropertiesPerChannel is null)
                throw new InvalidDataException($"{path}: missing spacings, shapes_after_crop or foreground_intensity_properties_per_channel");
            if (fingerprint.Spacings.Count != fingerprint.ShapesAfterCrop.Count)
                throw new InvalidDataException($"{path}: {fingerprint.Spacings.Count} spacings but {fingerprint.ShapesAfterCrop.Count} shapes");
            return fingerprint;
        }
        catch (JsonException ex)
        {
            throw new InvalidDataException($"{path}: not a valid dataset fingerprint ({ex.Message}); re-run nnunet fingerprint with --clean", ex);
        }
    }

    /// <summary>Writes the fingerprint atomically (temp file + rename).</summary>
    public static void Save(string path, DatasetFingerprint fingerprint)
    {
        AtomicFile.WriteAllText(path, JsonSerializer.Serialize(fingerprint, IndentedJson.Options) + "\n");
    }

    /// <summary>numpy <c>median</c> of float64 values.</summary>
    private static double Median(double[] values)
    {
        var sorted = (double[])values.Clone();
        Array.Sort(sorted);
        int mid = sorted.Length / 2;
        return sorted.Length % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
    }
}
