using System.Numerics;

namespace NnUnet.Core.Resampling;

/// <summary>
/// <c>skimage.transform.resize(image, new_shape, order, mode='edge', anti_aliasing=False, clip=True)</c> for float32
/// volumes in C order (z, y, x); a 2D image is a volume with one slice. skimage resize is
/// <c>scipy.ndimage.zoom(grid_mode=True, mode='nearest')</c> followed by clipping to the input's [min, max]; this class
/// computes the same values separably (see <see cref="AxisPass"/>), in double precision per line, stored as
/// <c>T</c> (float32 or float64) between axes.
/// Differences to skimage are rounding only (about 1e-6 relative for order 3).
/// </summary>
public static class SplineResize
{
    /// <summary>Resizes a (z, y, x) volume to <paramref name="newShape"/> with spline order 0, 1 or 3.</summary>
    public static float[] Resize(float[] source, int[] shape, int[] newShape, int order)
    {
        var destination = GC.AllocateUninitializedArray<float>(checked((int)Volume(newShape)));
        Resize<float>(source, shape, destination, newShape, order, parallel: true);
        return destination;
    }

    /// <summary>
    /// Resizes <paramref name="source"/> (shape <paramref name="shape"/>, 3 axes; length 2 means one slice) into
    /// <paramref name="destination"/>. With <paramref name="parallel"/> false everything runs on the calling thread
    /// (for callers that parallelise over many small images themselves).
    /// </summary>
    public static void Resize<T>(ReadOnlyMemory<T> source, int[] shape, Memory<T> destination, int[] newShape, int order,
        bool parallel = true) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var inShape = As3D(shape, nameof(shape));
        var outShape = As3D(newShape, nameof(newShape));
        SplineMath.ValidateOrder(order);
        long inCount = Volume(inShape), outCount = Volume(outShape);
        if (source.Length < inCount)
            throw new ArgumentException($"source holds {source.Length} values, shape ({string.Join(", ", shape)}) needs {inCount}");
        if (destination.Length < outCount)
            throw new ArgumentException($"destination holds {destination.Length} values, shape ({string.Join(", ", newShape)}) needs {outCount}");
        var src = source[..(int)inCount];
        var dst = destination[..(int)outCount];
        var (min, max) = MinMax(src.Span);
        ResampleAxes(src, inShape, dst, outShape, order, parallel);
        // skimage clips to the input range (order 3 overshoots; for 0 and 1 this only removes rounding)
        Clip(dst.Span, min, max);
    }

    /// <summary>Resamples every axis whose length changes, in turn, with spline <paramref name="order"/>; no clipping.</summary>
    internal static void ResampleAxes<T>(ReadOnlyMemory<T> source, int[] inShape, Memory<T> destination, int[] outShape,
        int order, bool parallel) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int changed = 0;
        for (int a = 0; a < 3; a++) if (inShape[a] != outShape[a]) changed++;
        if (changed == 0)
        {
            // zoom factor 1 reproduces the samples (the spline interpolates them); skip the arithmetic
            source.Span.CopyTo(destination.Span);
            return;
        }
        var current = source;
        int[] dims = [inShape[0], inShape[1], inShape[2]];
        // contiguous axis first; each pass writes a fresh buffer, the last writes the destination
        foreach (int axis in (ReadOnlySpan<int>)[2, 1, 0])
        {
            if (dims[axis] == outShape[axis]) continue;
            changed--;
            var kernel = AxisKernel.ForResize(dims[axis], outShape[axis], order);
            int[] next = [dims[0], dims[1], dims[2]];
            next[axis] = outShape[axis];
            Memory<T> target = changed == 0 ? destination : GC.AllocateUninitializedArray<T>(checked((int)Volume(next)));
            AxisPass.Run(current, dims[0], dims[1], dims[2], axis, kernel, target, parallel);
            current = target;
            dims = next;
        }
    }

    internal static int[] As3D(int[] shape, string name)
    {
        if (shape.Length is not (2 or 3))
            throw new ArgumentException($"expected 2 or 3 axes, got {shape.Length}", name);
        var s = shape.Length == 3 ? [shape[0], shape[1], shape[2]] : new[] { 1, shape[0], shape[1] };
        foreach (int d in s)
            if (d < 1) throw new ArgumentException($"shape ({string.Join(", ", shape)}) has a non-positive axis", name);
        return s;
    }

    internal static long Volume(ReadOnlySpan<int> shape)
    {
        long v = 1;
        foreach (int d in shape) v *= d;
        return v;
    }

    internal static (T Min, T Max) MinMax<T>(ReadOnlySpan<T> values) where T : unmanaged, IFloatingPointIeee754<T>
    {
        T min = T.PositiveInfinity, max = T.NegativeInfinity;
        for (int i = 0; i < values.Length; i++)
        {
            T v = values[i];
            if (v < min) min = v;
            if (v > max) max = v;
        }
        return (min, max);
    }

    internal static void Clip<T>(Span<T> values, T min, T max) where T : unmanaged, IFloatingPointIeee754<T>
    {
        for (int i = 0; i < values.Length; i++)
        {
            T v = values[i];
            if (v < min) values[i] = min;
            else if (v > max) values[i] = max;
        }
    }
}
