namespace NnUnet.Core.Planning;

/// <summary>
/// nnU-Net's proxy for GPU memory: the number of feature-map elements a PlainConvUNet (conv strides, no deep supervision)
/// produces for one sample, i.e. dynamic_network_architectures' <c>PlainConvUNet.compute_conv_feature_map_size</c>.
/// The planner compares it against reference values, so the unit is "elements", not bytes.
/// </summary>
public static class VramEstimator
{
    /// <summary>
    /// Sum over the network's conv outputs: each encoder conv of stage s gives <c>F_s * prod(size_s)</c>; each decoder level
    /// (one per skip, i.e. stages 0..n-2) has its convs at <c>F_l * prod(size_l)</c> plus the transposed conv's output of the
    /// same size; the final 1x1 segmentation head adds <c>numClasses * prod(patch)</c>. Sizes use floor division by the
    /// strides, as the original does (the planner only passes patches divisible by them).
    /// </summary>
    public static long FeatureMapSize(ReadOnlySpan<int> patchSize, int[][] strides, ReadOnlySpan<int> featuresPerStage,
        ReadOnlySpan<int> convsPerStageEncoder, ReadOnlySpan<int> convsPerStageDecoder, int numClasses)
    {
        int stages = strides.Length;
        int dims = patchSize.Length;
        if (stages < 1) throw new ArgumentException("the network needs at least one stage");
        if (featuresPerStage.Length != stages || convsPerStageEncoder.Length != stages)
            throw new ArgumentException($"features ({featuresPerStage.Length}) and encoder conv counts ({convsPerStageEncoder.Length}) must have one entry per stage ({stages})");
        if (convsPerStageDecoder.Length != stages - 1)
            throw new ArgumentException($"decoder conv counts must have {stages - 1} entries (stages - 1), got {convsPerStageDecoder.Length}");
        if (numClasses < 1) throw new ArgumentException($"numClasses must be at least 1, got {numClasses}");

        // Spatial element count of every stage's output.
        Span<int> size = stackalloc int[dims];
        patchSize.CopyTo(size);
        Span<long> voxelsPerStage = stackalloc long[stages];
        for (int s = 0; s < stages; s++)
        {
            if (strides[s].Length != dims) throw new ArgumentException($"stride of stage {s} has {strides[s].Length} axes, the patch has {dims}");
            long voxels = 1;
            for (int d = 0; d < dims; d++)
            {
                size[d] /= strides[s][d];
                voxels *= size[d];
            }
            voxelsPerStage[s] = voxels;
        }

        long total = 0;
        for (int s = 0; s < stages; s++)
            total += convsPerStageEncoder[s] * featuresPerStage[s] * voxelsPerStage[s];

        // Decoder levels run from the deepest skip (stage n-2) up to stage 0; level l works at stage l's resolution and width.
        for (int level = stages - 2; level >= 0; level--)
        {
            int decoderIndex = stages - 2 - level;
            total += convsPerStageDecoder[decoderIndex] * featuresPerStage[level] * voxelsPerStage[level];
            total += featuresPerStage[level] * voxelsPerStage[level]; // transposed conv output
        }

        // Without deep supervision only the full-resolution head exists; it sits on the top decoder level (stage 0's size).
        // A single-stage network has no decoder and, as in the original, no head is counted.
        if (stages > 1) total += numClasses * voxelsPerStage[0];
        return total;
    }
}
