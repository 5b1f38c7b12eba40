using System.Numerics;

namespace NnUnet.Core.Resampling;

/// <summary>
/// Resamples one axis of a C-order (d0, d1, d2) float volume with an <see cref="AxisKernel"/>. Spline prefilter and
/// interpolation are both separable, and operators on different axes commute, so a full n-d spline resize is the same as
/// "prefilter + interpolate" along each axis in turn (up to rounding); this is what makes it much cheaper than scipy's
/// 4x4x4-tap loop.
/// <para>
/// The contiguous axis is filtered line by line. The strided axes are filtered as planes: rows along the filtered axis,
/// a strip of up to <see cref="StripWidth"/> contiguous samples wide, so the recursion runs over whole rows with vector
/// arithmetic and stays in cache. Work is split over lines or strips with Parallel.For; scratch buffers are per worker.
/// </para>
/// </summary>
internal static class AxisPass
{
    private const int StripWidth = 128;

    public static void Run<T>(ReadOnlyMemory<T> source, int d0, int d1, int d2, int axis, AxisKernel kernel,
        Memory<T> destination, bool parallel) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int[] dims = [d0, d1, d2];
        if (dims[axis] != kernel.InputLength)
            throw new ArgumentException($"axis {axis} has {dims[axis]} samples, the kernel expects {kernel.InputLength}");
        long expectedIn = (long)d0 * d1 * d2;
        long expectedOut = expectedIn / dims[axis] * kernel.OutputLength;
        if (source.Length < expectedIn || destination.Length < expectedOut)
            throw new ArgumentException("source or destination is smaller than the volume it describes");
        if (axis == 2) RunLines(source, d0 * d1, d2, kernel, destination, parallel);
        else RunPlanes(source, d0, d1, d2, axis, kernel, destination, parallel);
    }

    private static void RunLines<T>(ReadOnlyMemory<T> source, int lines, int n, AxisKernel kernel, Memory<T> destination,
        bool parallel) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int m = kernel.OutputLength;
        // small chunks of lines per work item keep the scheduling cost negligible and the load balanced
        int chunk = Math.Max(1, Math.Min(64, lines / (Environment.ProcessorCount * 8)));
        int items = (lines + chunk - 1) / chunk;
        ForEach(items, parallel, () => new double[kernel.PaddedLength], (item, scratch) =>
        {
            var src = source.Span;
            var dst = destination.Span;
            int end = Math.Min(lines, (item + 1) * chunk);
            for (int line = item * chunk; line < end; line++)
                ResampleLine(src.Slice(line * n, n), kernel, scratch, dst.Slice(line * m, m));
        });
    }

    private static void ResampleLine<T>(ReadOnlySpan<T> line, AxisKernel kernel, double[] scratch, Span<T> output)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int p = kernel.Padding, n = line.Length;
        var padded = scratch.AsSpan(0, kernel.PaddedLength);
        double gain = kernel.Order == 3 ? SplineMath.CubicGain : 1.0;
        padded[..p].Fill(double.CreateTruncating(line[0]) * gain);
        VectorOps.WidenScaled(line, padded.Slice(p, n), gain);
        padded[(p + n)..].Fill(double.CreateTruncating(line[n - 1]) * gain);
        if (kernel.Order == 3) SplineMath.PrefilterLine(padded);
        var start = kernel.Start;
        var w = kernel.Weights;
        switch (kernel.Order)
        {
            case 0:
                for (int k = 0; k < output.Length; k++) output[k] = T.CreateTruncating(padded[start[k]]);
                break;
            case 1:
                for (int k = 0; k < output.Length; k++)
                {
                    int s = start[k];
                    output[k] = T.CreateTruncating(padded[s] * w[2 * k] + padded[s + 1] * w[2 * k + 1]);
                }
                break;
            default:
                for (int k = 0; k < output.Length; k++)
                {
                    int s = start[k], o = 4 * k;
                    output[k] = T.CreateTruncating(padded[s] * w[o] + padded[s + 1] * w[o + 1] + padded[s + 2] * w[o + 2] + padded[s + 3] * w[o + 3]);
                }
                break;
        }
    }

    private static void RunPlanes<T>(ReadOnlyMemory<T> source, int d0, int d1, int d2, int axis, AxisKernel kernel,
        Memory<T> destination, bool parallel) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int m = kernel.OutputLength;
        // axis 1: one plane per z-slice, rows d2 apart; axis 0: one plane per y-row, rows d1*d2 apart
        int planes = axis == 1 ? d0 : d1;
        int n = axis == 1 ? d1 : d0;
        int inRowStride = axis == 1 ? d2 : d1 * d2;
        int outRowStride = inRowStride;
        int strips = (d2 + StripWidth - 1) / StripWidth;
        int planeRows = kernel.Order == 3 ? kernel.PaddedLength : 0;
        ForEach(planes * strips, parallel, () => new double[(planeRows + 1) * StripWidth], (item, scratch) =>
        {
            int plane = item / strips, strip = item % strips;
            int x0 = strip * StripWidth;
            int width = Math.Min(StripWidth, d2 - x0);
            long inBase = axis == 1 ? (long)plane * n * d2 + x0 : (long)plane * d2 + x0;
            long outBase = axis == 1 ? (long)plane * m * d2 + x0 : (long)plane * d2 + x0;
            var src = source.Span;
            var dst = destination.Span;
            var acc = scratch.AsSpan(planeRows * StripWidth, width);
            var start = kernel.Start;
            var w = kernel.Weights;
            int taps = kernel.Taps;
            if (kernel.Order == 3)
            {
                var rows = scratch.AsSpan(0, planeRows * width);
                for (int r = 0; r < planeRows; r++)
                    VectorOps.WidenScaled(src.Slice((int)(inBase + (long)kernel.SourceIndex(r) * inRowStride), width),
                        rows.Slice(r * width, width), SplineMath.CubicGain);
                SplineMath.PrefilterRows(rows, planeRows, width);
                for (int k = 0; k < m; k++)
                {
                    for (int t = 0; t < taps; t++)
                        VectorOps.MultiplyAdd(acc, rows.Slice((start[k] + t) * width, width), w[k * taps + t], t == 0);
                    VectorOps.Narrow(acc, dst.Slice((int)(outBase + (long)k * outRowStride), width));
                }
            }
            else if (kernel.Order == 1)
            {
                for (int k = 0; k < m; k++)
                {
                    for (int t = 0; t < 2; t++)
                        VectorOps.MultiplyAddSamples(acc, src.Slice((int)(inBase + (long)kernel.SourceIndex(start[k] + t) * inRowStride), width),
                            w[k * 2 + t], t == 0);
                    VectorOps.Narrow(acc, dst.Slice((int)(outBase + (long)k * outRowStride), width));
                }
            }
            else
            {
                for (int k = 0; k < m; k++)
                    src.Slice((int)(inBase + (long)kernel.SourceIndex(start[k]) * inRowStride), width)
                        .CopyTo(dst.Slice((int)(outBase + (long)k * outRowStride), width));
            }
        });
    }

    /// <summary>Runs <paramref name="body"/> for items 0..count-1, each worker with its own scratch.</summary>
    private static void ForEach(int count, bool parallel, Func<double[]> scratchFactory, Action<int, double[]> body)
    {
        if (!parallel || count == 1 || Environment.ProcessorCount == 1)
        {
            var scratch = scratchFactory();
            for (int i = 0; i < count; i++) body(i, scratch);
            return;
        }
        Parallel.For(0, count, scratchFactory, (i, _, scratch) => { body(i, scratch); return scratch; }, _ => { });
    }
}
