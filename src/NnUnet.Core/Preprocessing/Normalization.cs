using NnUnet.Core.Fingerprinting;

namespace NnUnet.Core.Preprocessing;

/// <summary>
/// nnU-Net v2's intensity normalisation schemes (<c>preprocessing/normalization/default_normalization_schemes.py</c>),
/// applied in place to one float32 channel. The arithmetic is float32 in numpy's order (statistics summed with numpy's
/// float32 pairwise summation), so results match nnU-Net to the bit on the same input.
/// </summary>
public abstract class ImageNormalization
{
    protected ImageNormalization(bool useMaskForNorm, IntensityProperties? intensityProperties)
    {
        UseMaskForNorm = useMaskForNorm;
        IntensityProperties = intensityProperties;
    }

    public bool UseMaskForNorm { get; }
    public IntensityProperties? IntensityProperties { get; }

    /// <summary>True when, with <see cref="UseMaskForNorm"/>, voxels outside the mask (seg &lt; 0) are left at zero.</summary>
    public abstract bool LeavesPixelsOutsideMaskAtZeroIfUseMaskForNormIsTrue { get; }

    /// <summary>
    /// Normalises <paramref name="image"/> in place. <paramref name="seg"/> is the cropped segmentation of the same voxels
    /// (-1 outside the non-zero mask); only schemes using the mask read it.
    /// </summary>
    public abstract void Run(Span<float> image, ReadOnlySpan<sbyte> seg);

    /// <summary>Epsilon nnU-Net divides by at least (float32 target type).</summary>
    protected const double Epsilon = 1e-8;

    /// <summary>The scheme named in the plans' <c>normalization_schemes</c> (class names as in nnU-Net).</summary>
    public static ImageNormalization Create(string schemeName, bool useMaskForNorm, IntensityProperties? intensityProperties) =>
        schemeName switch
        {
            nameof(CTNormalization) => new CTNormalization(useMaskForNorm, intensityProperties
                ?? throw new ArgumentException("CTNormalization needs the foreground intensity properties of its channel (plans: foreground_intensity_properties_per_channel)")),
            nameof(ZScoreNormalization) => new ZScoreNormalization(useMaskForNorm, intensityProperties),
            nameof(NoNormalization) => new NoNormalization(useMaskForNorm, intensityProperties),
            nameof(RescaleTo01Normalization) => new RescaleTo01Normalization(useMaskForNorm, intensityProperties),
            nameof(RGBTo01Normalization) => new RGBTo01Normalization(useMaskForNorm, intensityProperties),
            _ => throw new ArgumentException($"unknown normalization scheme '{schemeName}' (known: CTNormalization, ZScoreNormalization, NoNormalization, RescaleTo01Normalization, RGBTo01Normalization)"),
        };
}

/// <summary>
/// Per-image z-score. With the mask: mean and std over voxels with seg &gt;= 0, only those updated, the rest untouched
/// (zero after cropping). Without: the whole image.
/// </summary>
public sealed class ZScoreNormalization(bool useMaskForNorm, IntensityProperties? intensityProperties)
    : ImageNormalization(useMaskForNorm, intensityProperties)
{
    public override bool LeavesPixelsOutsideMaskAtZeroIfUseMaskForNormIsTrue => true;

    public override void Run(Span<float> image, ReadOnlySpan<sbyte> seg)
    {
        if (UseMaskForNorm)
        {
            if (seg.Length != image.Length)
                throw new ArgumentException($"use_mask_for_norm needs a segmentation of the image's {image.Length} voxels, got {seg.Length}");
            int count = 0;
            foreach (sbyte s in seg) if (s >= 0) count++;
            if (count == 0) return; // nnU-Net would produce NaN statistics and change nothing (empty selection)
            var selected = GC.AllocateUninitializedArray<float>(count);
            int j = 0;
            for (int i = 0; i < image.Length; i++) if (seg[i] >= 0) selected[j++] = image[i];
            var (mean, std) = NumpyFloat32.MeanStd(selected);
            float divisor = Divisor(std);
            for (int i = 0; i < image.Length; i++)
                if (seg[i] >= 0) image[i] = (image[i] - mean) / divisor;
        }
        else
        {
            if (image.IsEmpty) return;
            var (mean, std) = NumpyFloat32.MeanStd(image);
            float divisor = Divisor(std);
            for (int i = 0; i < image.Length; i++) image[i] = (image[i] - mean) / divisor;
        }
    }

    private static float Divisor(float std) => std > Epsilon ? std : (float)Epsilon;
}

/// <summary>CT: clip to the dataset's [0.5, 99.5] foreground percentiles, subtract the foreground mean, divide by its std.</summary>
public sealed class CTNormalization(bool useMaskForNorm, IntensityProperties intensityProperties)
    : ImageNormalization(useMaskForNorm, intensityProperties)
{
    public override bool LeavesPixelsOutsideMaskAtZeroIfUseMaskForNormIsTrue => false;

    public override void Run(Span<float> image, ReadOnlySpan<sbyte> seg)
    {
        var p = IntensityProperties!;
        // numpy applies the Python-float statistics to a float32 array in float32
        float lower = (float)p.Percentile00_5, upper = (float)p.Percentile99_5;
        float mean = (float)p.Mean;
        float divisor = (float)Math.Max(p.Std, Epsilon);
        for (int i = 0; i < image.Length; i++)
        {
            float v = image[i];
            if (v < lower) v = lower;
            else if (v > upper) v = upper;
            image[i] = (v - mean) / divisor;
        }
    }
}

/// <summary>Leaves intensities as they are (float32).</summary>
public sealed class NoNormalization(bool useMaskForNorm, IntensityProperties? intensityProperties)
    : ImageNormalization(useMaskForNorm, intensityProperties)
{
    public override bool LeavesPixelsOutsideMaskAtZeroIfUseMaskForNormIsTrue => false;

    public override void Run(Span<float> image, ReadOnlySpan<sbyte> seg) { }
}

/// <summary>Per image: subtract the minimum, divide by the new maximum (at least 1e-8).</summary>
public sealed class RescaleTo01Normalization(bool useMaskForNorm, IntensityProperties? intensityProperties)
    : ImageNormalization(useMaskForNorm, intensityProperties)
{
    public override bool LeavesPixelsOutsideMaskAtZeroIfUseMaskForNormIsTrue => false;

    public override void Run(Span<float> image, ReadOnlySpan<sbyte> seg)
    {
        if (image.IsEmpty) return;
        float min = float.PositiveInfinity;
        foreach (float v in image) if (v < min) min = v;
        float max = float.NegativeInfinity;
        for (int i = 0; i < image.Length; i++)
        {
            image[i] -= min;
            if (image[i] > max) max = image[i];
        }
        float divisor = max > Epsilon ? max : (float)Epsilon;
        for (int i = 0; i < image.Length; i++) image[i] /= divisor;
    }
}

/// <summary>8-bit RGB channels: divide by 255; values outside [0, 255] are an error.</summary>
public sealed class RGBTo01Normalization(bool useMaskForNorm, IntensityProperties? intensityProperties)
    : ImageNormalization(useMaskForNorm, intensityProperties)
{
    public override bool LeavesPixelsOutsideMaskAtZeroIfUseMaskForNormIsTrue => false;

    public override void Run(Span<float> image, ReadOnlySpan<sbyte> seg)
    {
        foreach (float v in image)
            if (!(v >= 0 && v <= 255))
                throw new InvalidDataException($"RGBTo01Normalization expects 8-bit values in [0, 255], found {v}: these do not look like RGB images");
        for (int i = 0; i < image.Length; i++) image[i] /= 255f;
    }
}

/// <summary>numpy's float32 reductions: pairwise summation in blocks of 8192 (the ufunc buffer), accumulated in order.</summary>
internal static class NumpyFloat32
{
    private const int BufferSize = 8192;

    public static float Sum(ReadOnlySpan<float> values)
    {
        float total = 0f;
        for (int start = 0; start < values.Length; start += BufferSize)
            total += Pairwise(values.Slice(start, Math.Min(BufferSize, values.Length - start)));
        return total;
    }

    /// <summary><c>a.mean()</c> and <c>a.std()</c> of a float32 array, as numpy computes them.</summary>
    public static (float Mean, float Std) MeanStd(ReadOnlySpan<float> values)
    {
        int n = values.Length;
        float mean = (float)((double)Sum(values) / n);
        // np.var: mean kept as a float32 array divided in float32, squared deviations summed again
        float arrayMean = Sum(values) / n;
        // squared deviations block by block (numpy materialises them; the sums are the same)
        Span<float> block = new float[BufferSize];
        float total = 0f;
        for (int start = 0; start < n; start += BufferSize)
        {
            int length = Math.Min(BufferSize, n - start);
            var source = values.Slice(start, length);
            for (int i = 0; i < length; i++)
            {
                float d = source[i] - arrayMean;
                block[i] = d * d;
            }
            total += Pairwise(block[..length]);
        }
        float variance = (float)((double)total / n);
        return (mean, MathF.Sqrt(variance));
    }

    private static float Pairwise(ReadOnlySpan<float> a)
    {
        int n = a.Length;
        if (n < 8)
        {
            float res = 0f;
            for (int i = 0; i < n; i++) res += a[i];
            return res;
        }
        if (n <= 128)
        {
            float r0 = a[0], r1 = a[1], r2 = a[2], r3 = a[3], r4 = a[4], r5 = a[5], r6 = a[6], r7 = a[7];
            int i = 8;
            for (; i < n - n % 8; i += 8)
            {
                r0 += a[i]; r1 += a[i + 1]; r2 += a[i + 2]; r3 += a[i + 3];
                r4 += a[i + 4]; r5 += a[i + 5]; r6 += a[i + 6]; r7 += a[i + 7];
            }
            float res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7));
            for (; i < n; i++) res += a[i];
            return res;
        }
        int half = n / 2;
        half -= half % 8;
        return Pairwise(a[..half]) + Pairwise(a[half..]);
    }
}
