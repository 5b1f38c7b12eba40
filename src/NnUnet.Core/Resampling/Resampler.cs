namespace NnUnet.Core.Resampling;

/// <summary>
/// nnU-Net v2's <c>default_resampling.py</c>: images, segmentations and probabilities, (c, z, y, x) float32 C-order,
/// resampled to a new shape with optional "separate z" handling of anisotropic data. Used by preprocessing (data order 3,
/// seg order 1) and by export (probabilities / logits order 1 back to the cropped original shape).
/// </summary>
public static class Resampler
{
    /// <summary>The plans' name of the resampling function this class implements (resampling_fn_data/seg/probabilities).</summary>
    public const string FunctionName = "resample_data_or_seg_to_shape";

    /// <summary>nnU-Net's ANISO_THRESHOLD: max/min spacing above this means "anisotropic".</summary>
    public const double AnisotropyThreshold = 3.0;

    /// <summary><c>get_do_separate_z</c>: max(spacing) / min(spacing) &gt; threshold.</summary>
    public static bool GetDoSeparateZ(ReadOnlySpan<double> spacing, double anisotropyThreshold = AnisotropyThreshold)
    {
        double max = double.NegativeInfinity, min = double.PositiveInfinity;
        foreach (double s in spacing) { if (s > max) max = s; if (s < min) min = s; }
        return max / min > anisotropyThreshold;
    }

    /// <summary><c>get_lowres_axis</c>: every axis whose spacing equals the largest (max / s == 1).</summary>
    public static int[] GetLowResAxis(ReadOnlySpan<double> spacing)
    {
        double max = double.NegativeInfinity;
        foreach (double s in spacing) if (s > max) max = s;
        int count = 0;
        foreach (double s in spacing) if (max / s == 1) count++;
        var axes = new int[count];
        int j = 0;
        for (int i = 0; i < spacing.Length; i++) if (max / spacing[i] == 1) axes[j++] = i;
        return axes;
    }

    /// <summary>
    /// <c>determine_do_sep_z_and_axis</c>: forced or decided from the current spacing, else the new spacing; when two or
    /// three axes tie for the largest spacing there is no single low-resolution axis and no separate z.
    /// </summary>
    public static (bool DoSeparateZ, int? Axis) DetermineDoSeparateZAndAxis(bool? forceSeparateZ, double[] currentSpacing,
        double[] newSpacing, double anisotropyThreshold = AnisotropyThreshold)
    {
        bool doSeparateZ;
        int[]? axes;
        if (forceSeparateZ is { } force)
        {
            doSeparateZ = force;
            axes = force ? GetLowResAxis(currentSpacing) : null;
        }
        else if (GetDoSeparateZ(currentSpacing, anisotropyThreshold))
        {
            doSeparateZ = true;
            axes = GetLowResAxis(currentSpacing);
        }
        else if (GetDoSeparateZ(newSpacing, anisotropyThreshold))
        {
            doSeparateZ = true;
            axes = GetLowResAxis(newSpacing);
        }
        else
        {
            doSeparateZ = false;
            axes = null;
        }
        if (axes is null) return (doSeparateZ, null);
        if (axes.Length != 1) return (false, null);
        return (doSeparateZ, axes[0]);
    }

    /// <summary><c>compute_new_shape</c>: round(old_spacing / new_spacing * old_shape) per axis (round half to even, as Python).</summary>
    public static int[] ComputeNewShape(ReadOnlySpan<int> oldShape, ReadOnlySpan<double> oldSpacing, ReadOnlySpan<double> newSpacing)
    {
        if (oldShape.Length != oldSpacing.Length || oldShape.Length != newSpacing.Length)
            throw new ArgumentException($"shape has {oldShape.Length} axes, spacings {oldSpacing.Length} and {newSpacing.Length}");
        var result = new int[oldShape.Length];
        for (int i = 0; i < result.Length; i++)
            result[i] = (int)Math.Round(oldSpacing[i] / newSpacing[i] * oldShape[i], MidpointRounding.ToEven);
        return result;
    }

    /// <summary>
    /// <c>resample_data_or_seg_to_shape</c>: decides separate-z from the spacings, then <see cref="ResampleDataOrSeg"/>.
    /// <paramref name="data"/> is (channels, shape) C-order; returns (channels, newShape). When the shape does not change
    /// the input array itself is returned, as nnU-Net does.
    /// </summary>
    public static float[] ResampleDataOrSegToShape(float[] data, int channels, int[] shape, int[] newShape,
        double[] currentSpacing, double[] newSpacing, bool isSeg, int order, int orderZ, bool? forceSeparateZ)
    {
        var (doSeparateZ, axis) = DetermineDoSeparateZAndAxis(forceSeparateZ, currentSpacing, newSpacing);
        return ResampleDataOrSeg(data, channels, shape, newShape, isSeg, axis, order, doSeparateZ, orderZ);
    }

    /// <summary>
    /// <c>resample_data_or_seg</c>. Data: skimage resize (edge, no anti-aliasing) with <paramref name="order"/>.
    /// Segmentation (<paramref name="isSeg"/>): batchgenerators' <c>resize_segmentation</c> — for order &gt; 0 every
    /// label present (ascending, negative ones included) is resized as a binary mask and written where the mask is
    /// &gt;= 0.5, later labels overwriting earlier ones; order 0 is a nearest resize. With <paramref name="doSeparateZ"/>
    /// each slice across <paramref name="axis"/> is resized in-plane, then the stack is resampled along that axis with
    /// <paramref name="orderZ"/> (scipy <c>map_coordinates</c>, no clipping; for segmentations with orderZ &gt; 0 label
    /// by label, kept where the interpolated mask rounds to 1).
    /// </summary>
    public static float[] ResampleDataOrSeg(float[] data, int channels, int[] shape, int[] newShape, bool isSeg, int? axis,
        int order, bool doSeparateZ, int orderZ)
    {
        if (shape.Length != 3 || newShape.Length != 3)
            throw new ArgumentException($"expected 3 spatial axes, got shape ({string.Join(", ", shape)}) and new shape ({string.Join(", ", newShape)})");
        if (channels < 1) throw new ArgumentException($"channels must be positive, got {channels}", nameof(channels));
        SplineMath.ValidateOrder(order);
        long inVoxels = SplineResize.Volume(shape), outVoxels = SplineResize.Volume(newShape);
        if (data.LongLength != inVoxels * channels)
            throw new ArgumentException($"data holds {data.LongLength} values, {channels} channel(s) of ({string.Join(", ", shape)}) need {inVoxels * channels}");
        if (shape.AsSpan().SequenceEqual(newShape)) return data;
        if (doSeparateZ)
        {
            if (axis is not (0 or 1 or 2)) throw new ArgumentException("separate z needs the low-resolution axis (0, 1 or 2)", nameof(axis));
            SplineMath.ValidateOrder(orderZ);
        }

        var result = GC.AllocateUninitializedArray<float>(checked((int)(outVoxels * channels)));
        for (int c = 0; c < channels; c++)
        {
            var src = new ReadOnlyMemory<float>(data, (int)(c * inVoxels), (int)inVoxels);
            var dst = new Memory<float>(result, (int)(c * outVoxels), (int)outVoxels);
            if (doSeparateZ) ResampleSeparateZ(src, shape, dst, newShape, isSeg, axis!.Value, order, orderZ);
            else if (isSeg) ResizeSegmentation(src, shape, dst, newShape, order, parallel: true);
            else SplineResize.Resize(src, shape, dst, newShape, order, parallel: true);
        }
        return result;
    }

    /// <summary>
    /// batchgenerators <c>resize_segmentation</c> on one volume (or one slice with shape length 2). Order 1 (nnU-Net's
    /// default) evaluates every label's mask per voxel in scipy's tap order (<see cref="LinearLabelResize"/>), so voxels
    /// whose mask is exactly 0.5 get nnU-Net's label; order 3 resizes float64 masks label by label; order 0 is nearest.
    /// </summary>
    public static void ResizeSegmentation(ReadOnlyMemory<float> source, int[] shape, Memory<float> destination, int[] newShape,
        int order, bool parallel = true)
    {
        if (order == 0)
        {
            SplineResize.Resize(source, shape, destination, newShape, 0, parallel);
            return;
        }
        if (order == 1)
        {
            LinearLabelResize.Resize(source, shape, destination, newShape, parallel);
            return;
        }
        var src = source.Span;
        var labels = Labels.SortedUnique(src);
        int outCount = (int)SplineResize.Volume(SplineResize.As3D(newShape, nameof(newShape)));
        var dst = destination.Span[..outCount];
        dst.Clear();
        var mask = new double[src.Length];
        var resized = new double[outCount];
        foreach (float label in labels)
        {
            for (int i = 0; i < src.Length; i++) mask[i] = src[i] == label ? 1.0 : 0.0;
            SplineResize.Resize<double>(mask, shape, resized, newShape, order, parallel);
            for (int i = 0; i < outCount; i++) if (resized[i] >= 0.5) dst[i] = label;
        }
    }

    private static void ResampleSeparateZ(ReadOnlyMemory<float> source, int[] shape, Memory<float> destination, int[] newShape,
        bool isSeg, int axis, int order, int orderZ)
    {
        // 1) every slice across the low-resolution axis resized in-plane (own clipping per slice, as skimage per call)
        int[] inPlane = InPlane(shape, axis);
        int[] outPlane = InPlane(newShape, axis);
        int slices = shape[axis];
        int[] stackShape = [newShape[0], newShape[1], newShape[2]];
        stackShape[axis] = slices;
        int inSlice = inPlane[0] * inPlane[1], outSlice = outPlane[0] * outPlane[1];
        bool needZ = shape[axis] != newShape[axis];
        var stack = needZ ? GC.AllocateUninitializedArray<float>(checked(slices * outSlice)) : null;
        var stackMemory = needZ ? stack.AsMemory() : destination;
        Parallel.For(0, slices, () => (new float[inSlice], new float[outSlice]), (s, _, buffers) =>
        {
            var (inBuffer, outBuffer) = buffers;
            GatherSlice(source.Span, shape, axis, s, inBuffer);
            if (isSeg) ResizeSegmentation(inBuffer, inPlane, outBuffer, outPlane, order, parallel: false);
            else SplineResize.Resize<float>(inBuffer, inPlane, outBuffer, outPlane, order, parallel: false);
            ScatterSlice(outBuffer, stackShape, axis, s, stackMemory.Span);
            return buffers;
        }, _ => { });
        if (!needZ) return;

        // 2) along the low-resolution axis with order_z: map_coordinates at (k + 0.5) * in/out - 0.5, mode 'nearest'
        var kernel = AxisKernel.ForResize(slices, newShape[axis], orderZ);
        if (!isSeg || orderZ == 0)
        {
            AxisPass.Run(stack!, stackShape[0], stackShape[1], stackShape[2], axis, kernel, destination, parallel: true);
            return;
        }
        var labels = Labels.SortedUnique(stack);
        var dst = destination.Span;
        dst.Clear();
        var mask = new double[stack!.Length];
        var moved = new double[dst.Length];
        foreach (float label in labels)
        {
            for (int i = 0; i < mask.Length; i++) mask[i] = stack[i] == label ? 1.0 : 0.0;
            AxisPass.Run<double>(mask, stackShape[0], stackShape[1], stackShape[2], axis, kernel, moved, parallel: true);
            // nnU-Net keeps np.round(value) > 0.5, i.e. value > 0.5 (0.5 itself rounds to 0)
            for (int i = 0; i < moved.Length; i++) if (moved[i] > 0.5) dst[i] = label;
        }
    }

    private static int[] InPlane(int[] shape, int axis) => axis switch
    {
        0 => [shape[1], shape[2]],
        1 => [shape[0], shape[2]],
        _ => [shape[0], shape[1]],
    };

    /// <summary>Copies slice <paramref name="index"/> across <paramref name="axis"/> of a volume into a contiguous 2D buffer.</summary>
    private static void GatherSlice(ReadOnlySpan<float> volume, int[] shape, int axis, int index, Span<float> slice)
    {
        int d1 = shape[1], d2 = shape[2];
        switch (axis)
        {
            case 0:
                volume.Slice(index * d1 * d2, d1 * d2).CopyTo(slice);
                break;
            case 1:
                for (int z = 0; z < shape[0]; z++) volume.Slice((z * d1 + index) * d2, d2).CopyTo(slice.Slice(z * d2, d2));
                break;
            default:
                for (int z = 0; z < shape[0]; z++)
                for (int y = 0; y < d1; y++) slice[z * d1 + y] = volume[(z * d1 + y) * d2 + index];
                break;
        }
    }

    /// <summary>The inverse of <see cref="GatherSlice"/>.</summary>
    private static void ScatterSlice(ReadOnlySpan<float> slice, int[] shape, int axis, int index, Span<float> volume)
    {
        int d1 = shape[1], d2 = shape[2];
        switch (axis)
        {
            case 0:
                slice[..(d1 * d2)].CopyTo(volume.Slice(index * d1 * d2, d1 * d2));
                break;
            case 1:
                for (int z = 0; z < shape[0]; z++) slice.Slice(z * d2, d2).CopyTo(volume.Slice((z * d1 + index) * d2, d2));
                break;
            default:
                for (int z = 0; z < shape[0]; z++)
                for (int y = 0; y < d1; y++) volume[(z * d1 + y) * d2 + index] = slice[z * d1 + y];
                break;
        }
    }
}

/// <summary>Distinct label values of a segmentation, ascending.</summary>
internal static class Labels
{
    public static float[] SortedUnique(ReadOnlySpan<float> values)
    {
        // label maps hold few distinct values: a short list with a last-seen shortcut beats hashing every voxel
        var seen = new List<float>();
        float last = float.NaN;
        foreach (float v in values)
        {
            if (v == last) continue;
            last = v;
            if (!seen.Contains(v)) seen.Add(v);
        }
        var result = seen.ToArray();
        Array.Sort(result);
        return result;
    }
}
