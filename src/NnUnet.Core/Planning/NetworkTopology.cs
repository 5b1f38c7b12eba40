namespace NnUnet.Core.Planning;

/// <summary>
/// The U-Net's pooling and convolution layout for one patch, as nnU-Net's <c>get_pool_and_conv_props</c> decides it.
/// All per-axis arrays are in the configuration's axis order.
/// </summary>
/// <param name="NumPoolPerAxis">How often each axis is downsampled.</param>
/// <param name="Strides">Per stage the stride of its first conv; stage 0 is all ones.</param>
/// <param name="KernelSizes">Per stage the conv kernel (3, or 1 on axes still too coarse); the bottleneck is all threes.</param>
/// <param name="PatchSize">The patch padded up to a multiple of <paramref name="ShapeMustBeDivisibleBy"/>.</param>
/// <param name="ShapeMustBeDivisibleBy">2^(pools of that axis).</param>
public sealed record NetworkTopology(int[] NumPoolPerAxis, int[][] Strides, int[][] KernelSizes, int[] PatchSize, int[] ShapeMustBeDivisibleBy)
{
    /// <summary>Number of resolution stages (encoder stages including the bottleneck).</summary>
    public int NumStages => Strides.Length;

    /// <summary>
    /// Pools every axis that is large enough (at least <c>2 * minFeatureMapEdge</c>, a lone axis <c>3 * minFeatureMapEdge</c>)
    /// and whose current spacing is within a factor 2 of the finest such axis, until none qualifies. An axis' kernel becomes 3
    /// (and stays 3) once its current spacing is within a factor 2 of the finest current spacing. The patch may have
    /// fractional entries (it is clipped to a median shape, which can end in .5); the returned patch is whole.
    /// </summary>
    public static NetworkTopology Compute(ReadOnlySpan<double> spacing, ReadOnlySpan<double> patchSize, int minFeatureMapEdge = 4)
    {
        int dims = spacing.Length;
        if (dims is < 2 or > 3) throw new ArgumentException($"topology needs 2 or 3 axes, got spacing of length {dims}");
        if (patchSize.Length != dims) throw new ArgumentException($"patch size has {patchSize.Length} axes but spacing has {dims}");
        for (int d = 0; d < dims; d++)
        {
            if (!(spacing[d] > 0)) throw new ArgumentException($"spacing must be positive on every axis, got {spacing[d]} on axis {d}");
            if (!(patchSize[d] >= 1)) throw new ArgumentException($"patch size must be at least 1 on every axis, got {patchSize[d]} on axis {d}");
        }

        Span<double> currentSpacing = stackalloc double[dims];
        Span<double> currentSize = stackalloc double[dims];
        Span<bool> valid = stackalloc bool[dims];
        spacing.CopyTo(currentSpacing);
        patchSize.CopyTo(currentSize);
        var numPool = new int[dims];
        var kernel = new int[dims];
        Array.Fill(kernel, 1);

        var strides = new List<int[]> { Ones(dims) };
        var kernels = new List<int[]>();
        while (true)
        {
            // Axes big enough to be halved without the bottleneck falling below the minimum edge.
            int candidateCount = 0;
            double finestCandidateSpacing = double.PositiveInfinity;
            for (int d = 0; d < dims; d++)
            {
                valid[d] = currentSize[d] >= 2 * minFeatureMapEdge;
                if (!valid[d]) continue;
                candidateCount++;
                finestCandidateSpacing = Math.Min(finestCandidateSpacing, currentSpacing[d]);
            }
            if (candidateCount == 0) break;

            // Of those, only axes within a factor 2 of the finest one: coarse axes wait until the others catch up.
            int validCount = 0;
            int lastValid = -1;
            for (int d = 0; d < dims; d++)
            {
                valid[d] = valid[d] && currentSpacing[d] / finestCandidateSpacing < 2;
                if (valid[d]) { validCount++; lastValid = d; }
            }
            if (validCount == 0) break;
            if (validCount == 1 && currentSize[lastValid] < 3 * minFeatureMapEdge) break;

            double finestSpacing = double.PositiveInfinity;
            for (int d = 0; d < dims; d++) finestSpacing = Math.Min(finestSpacing, currentSpacing[d]);
            for (int d = 0; d < dims; d++)
                if (kernel[d] != 3 && currentSpacing[d] / finestSpacing < 2) kernel[d] = 3;

            var stride = new int[dims];
            for (int d = 0; d < dims; d++)
            {
                if (valid[d])
                {
                    stride[d] = 2;
                    numPool[d]++;
                    currentSpacing[d] *= 2;
                    currentSize[d] = Math.Ceiling(currentSize[d] / 2);
                }
                else stride[d] = 1;
            }
            strides.Add(stride);
            kernels.Add((int[])kernel.Clone());
        }

        var divisor = new int[dims];
        var padded = new int[dims];
        for (int d = 0; d < dims; d++)
        {
            divisor[d] = 1 << numPool[d];
            padded[d] = (int)(Math.Ceiling(patchSize[d] / divisor[d]) * divisor[d]);
        }
        var bottleneck = new int[dims];
        Array.Fill(bottleneck, 3);
        kernels.Add(bottleneck);
        return new NetworkTopology(numPool, strides.ToArray(), kernels.ToArray(), padded, divisor);
    }

    private static int[] Ones(int dims)
    {
        var ones = new int[dims];
        Array.Fill(ones, 1);
        return ones;
    }
}
