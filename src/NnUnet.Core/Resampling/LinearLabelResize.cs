namespace NnUnet.Core.Resampling;

/// <summary>
/// batchgenerators' <c>resize_segmentation</c> with order 1, all labels in one pass. For each label nnU-Net resizes the
/// binary mask with scipy's order-1 zoom, which sums <c>(w_z * w_y) * w_x</c> over the 8 taps in C order (taps outside
/// the label add an exact 0), and writes the label where that sum is &gt;= 0.5, labels ascending so the largest such
/// label wins. Evaluating those sums per output voxel, in the same order, gives the same bits as scipy, so voxels whose
/// mask is exactly 0.5 (common at symmetric positions) get the same label. No per-label mask is allocated.
/// </summary>
internal static class LinearLabelResize
{
    public static void Resize(ReadOnlyMemory<float> source, int[] shape, Memory<float> destination, int[] newShape, bool parallel)
    {
        var inShape = SplineResize.As3D(shape, nameof(shape));
        var outShape = SplineResize.As3D(newShape, nameof(newShape));
        var kz = AxisKernel.ForResize(inShape[0], outShape[0], 1);
        var ky = AxisKernel.ForResize(inShape[1], outShape[1], 1);
        var kx = AxisKernel.ForResize(inShape[2], outShape[2], 1);
        // source index of each tap, per output coordinate, per axis
        var iz = TapIndices(kz); var iy = TapIndices(ky); var ix = TapIndices(kx);
        int d1 = inShape[1], d2 = inShape[2];
        int m1 = outShape[1], m2 = outShape[2];
        int rows = outShape[0] * m1;
        if (!parallel)
        {
            for (int row = 0; row < rows; row++) ResizeRow(source.Span, destination.Span, row, m1, m2, d1, d2, iz, iy, ix, kz, ky, kx);
            return;
        }
        Parallel.For(0, rows, row => ResizeRow(source.Span, destination.Span, row, m1, m2, d1, d2, iz, iy, ix, kz, ky, kx));
    }

    private static int[] TapIndices(AxisKernel k)
    {
        var idx = new int[2 * k.OutputLength];
        for (int o = 0; o < k.OutputLength; o++)
        {
            idx[2 * o] = k.SourceIndex(k.Start[o]);
            idx[2 * o + 1] = k.SourceIndex(k.Start[o] + 1);
        }
        return idx;
    }

    private static void ResizeRow(ReadOnlySpan<float> src, Span<float> dst, int row, int m1, int m2, int d1, int d2,
        int[] iz, int[] iy, int[] ix, AxisKernel kz, AxisKernel ky, AxisKernel kx)
    {
        int z = row / m1, y = row % m1;
        Span<float> labels = stackalloc float[8];
        Span<double> products = stackalloc double[8];
        var wz = kz.Weights; var wy = ky.Weights; var wx = kx.Weights;
        var outRow = dst.Slice(row * m2, m2);
        for (int x = 0; x < m2; x++)
        {
            int t = 0;
            for (int a = 0; a < 2; a++)
            for (int b = 0; b < 2; b++)
            {
                int rowBase = (iz[2 * z + a] * d1 + iy[2 * y + b]) * d2;
                double wzy = wz[2 * z + a] * wy[2 * y + b];
                for (int c = 0; c < 2; c++)
                {
                    labels[t] = src[rowBase + ix[2 * x + c]];
                    products[t] = wzy * wx[2 * x + c];
                    t++;
                }
            }
            // inside a region every tap holds the same label and the weights sum to 1 (>= 0.5): no sums needed
            float firstLabel = labels[0];
            bool uniform = true;
            for (int i = 1; i < 8; i++) if (labels[i] != firstLabel) { uniform = false; break; }
            if (uniform)
            {
                outRow[x] = firstLabel;
                continue;
            }
            float best = 0f;
            bool found = false;
            for (int i = 0; i < 8; i++)
            {
                float label = labels[i];
                bool seenBefore = false;
                for (int j = 0; j < i; j++) if (labels[j] == label) { seenBefore = true; break; }
                if (seenBefore) continue;
                double sum = 0;
                for (int j = i; j < 8; j++) if (labels[j] == label) sum += products[j];
                if (sum >= 0.5 && (!found || label > best)) { best = label; found = true; }
            }
            outRow[x] = best;
        }
    }
}
