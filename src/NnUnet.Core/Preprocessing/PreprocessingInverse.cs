using NnUnet.Core.Planning;
using NnUnet.Core.Resampling;

namespace NnUnet.Core.Preprocessing;

/// <summary>
/// Undoes <see cref="DefaultPreprocessor"/> for export (nnU-Net's <c>convert_predicted_logits_to_segmentation_with_correct_shape</c>
/// without the argmax): resample (c, preprocessed shape) logits or probabilities back to the cropped shape before
/// resampling with the plans' probability resampling (order 1, separate z order 0), then paste into the bounding box of
/// the raw shape and transpose back to the raw array order.
/// </summary>
public static class PreprocessingInverse
{
    /// <summary>
    /// Resamples (channels, <paramref name="preprocessedShape"/>) values, in the plans' transposed order, to
    /// <see cref="CaseProperties.ShapeAfterCroppingAndBeforeResampling"/> (nnU-Net's first export step).
    /// </summary>
    public static float[] ResampleToCroppedShape(float[] values, int channels, int[] preprocessedShape, CaseProperties properties,
        NnUnetPlans plans, PlansConfiguration configuration)
    {
        var transpose = plans.TransposeForward;
        double[] originalSpacing = Transposition.Permute(properties.Spacing, transpose);
        double[] currentSpacing = configuration.Spacing.Length == 3
            ? configuration.Spacing
            : [originalSpacing[0], configuration.Spacing[0], configuration.Spacing[1]];
        if (configuration.ResamplingFnProbabilities != Resampler.FunctionName)
            throw new InvalidDataException($"resampling_fn_probabilities '{configuration.ResamplingFnProbabilities}' is not supported (only {Resampler.FunctionName})");
        var kw = configuration.ResamplingFnProbabilitiesKwargs;
        return Resampler.ResampleDataOrSegToShape(values, channels, preprocessedShape, properties.ShapeAfterCroppingAndBeforeResampling,
            currentSpacing, originalSpacing, kw.IsSeg, kw.Order, kw.OrderZ, kw.ForceSeparateZ);
    }

    /// <summary>
    /// Transposes (channels, cropped shape in plans order) back to the raw order and pastes it into the bounding box of a
    /// (channels, raw shape) array whose other voxels hold <paramref name="fillPerChannel"/>[c] (nnU-Net: 0 for labels,
    /// probability 1 for the background channel and 0 for the others).
    /// </summary>
    public static T[] RevertCropping<T>(T[] cropped, int channels, CaseProperties properties, int[] transposeForward,
        ReadOnlySpan<T> fillPerChannel)
    {
        if (fillPerChannel.Length != channels)
            throw new ArgumentException($"need one fill value per channel ({channels}), got {fillPerChannel.Length}");
        Transposition.Validate(transposeForward, "transpose_forward");
        int[] croppedTransposed = properties.ShapeAfterCroppingAndBeforeResampling;
        int cropN = croppedTransposed[0] * croppedTransposed[1] * croppedTransposed[2];
        if (cropped.Length != (long)cropN * channels)
            throw new ArgumentException($"cropped array holds {cropped.Length} values, {channels} x ({string.Join(", ", croppedTransposed)}) expected");
        // back to raw order: output axis transposeForward[i] came from transposed axis i
        int[] backward = Backward(transposeForward);
        var croppedRaw = Transposition.Transpose(cropped, channels, croppedTransposed, backward);
        int[] croppedRawShape = Transposition.Permute(croppedTransposed, backward);
        int[] full = properties.ShapeBeforeCropping;
        var bbox = properties.BboxUsedForCropping;
        for (int a = 0; a < 3; a++)
            if (bbox[a][1] - bbox[a][0] != croppedRawShape[a])
                throw new InvalidDataException($"bbox [{bbox[a][0]}, {bbox[a][1]}) on axis {a} does not hold the cropped size {croppedRawShape[a]}");
        int n = full[0] * full[1] * full[2];
        var result = new T[(long)n * channels];
        for (int c = 0; c < channels; c++)
        {
            var dst = result.AsSpan(c * n, n);
            dst.Fill(fillPerChannel[c]);
            var src = croppedRaw.AsSpan(c * cropN, cropN);
            int rowLength = croppedRawShape[2];
            int o = 0;
            for (int z = bbox[0][0]; z < bbox[0][1]; z++)
            for (int y = bbox[1][0]; y < bbox[1][1]; y++)
            {
                src.Slice(o, rowLength).CopyTo(dst.Slice((z * full[1] + y) * full[2] + bbox[2][0], rowLength));
                o += rowLength;
            }
        }
        return result;
    }

    /// <summary>The inverse permutation (nnU-Net's transpose_backward).</summary>
    public static int[] Backward(ReadOnlySpan<int> transposeForward)
    {
        var backward = new int[3];
        for (int i = 0; i < 3; i++) backward[transposeForward[i]] = i;
        return backward;
    }
}
