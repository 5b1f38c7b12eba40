using NnUnet.Training.Augmentation;
using static TorchSharp.torch;

namespace NnUnet.Training.Data;

/// <summary>
/// No augmentation: only the centre crop from the initial to the final patch size (what nnU-Net's spatial transform
/// does with every random draw off). Used for validation batches and whenever augmentation is switched off.
/// With <paramref name="cascadeForegroundLabels"/> (cascade), seg arrives as (b, 2, ...) and the previous stage's
/// prediction in channel 1 becomes one-hot data channels appended after the image channels, as nnU-Net's validation
/// transforms (<c>MoveSegAsOneHotToDataTransform</c>, no random cascade augmentation).
/// </summary>
public sealed class CenterCropAugmenter(int[] finalPatchSize, int[]? cascadeForegroundLabels = null) : IBatchAugmenter
{
    public (Tensor data, Tensor seg) Apply(Tensor data, Tensor seg, Generator rng)
    {
        if (cascadeForegroundLabels is null) return (Crop(data, finalPatchSize), Crop(seg, finalPatchSize));
        if (seg.dim() < 2 || seg.shape[1] != 2)
            throw new ArgumentException($"cascade: seg must be (b, 2, ...) with the previous stage's prediction in channel 1, got ({string.Join(", ", seg.shape)})", nameof(seg));
        using var scope = NewDisposeScope();
        var croppedData = Crop(data, finalPatchSize);
        var croppedSeg = Crop(seg, finalPatchSize);
        var samples = new Tensor[data.shape[0]];
        for (long i = 0; i < samples.Length; i++)
        {
            // (1, *spatial) of sample i: OneHot squeezes exactly that leading axis; -1 (outside) matches no label
            var oneHot = CascadeAugmentation.OneHot(croppedSeg[i].narrow(0, 1, 1), cascadeForegroundLabels, croppedData.dtype);
            samples[i] = cat([croppedData[i], oneHot], 0);
        }
        return (stack(samples).MoveToOuterDisposeScope(), croppedSeg.narrow(1, 0, 1).MoveToOuterDisposeScope());
    }

    /// <summary>Centre crop of the trailing spatial axes to <paramref name="size"/> (start = (in - out) / 2, floored).</summary>
    public static Tensor Crop(Tensor input, int[] size)
    {
        int offset = (int)input.dim() - size.Length;
        var result = input.alias();
        for (int d = 0; d < size.Length; d++)
        {
            long have = input.shape[offset + d];
            if (have < size[d]) throw new ArgumentException($"centre crop: axis {d} has {have} voxels, the patch needs {size[d]}");
            if (have == size[d]) continue;
            var next = result.narrow(offset + d, (have - size[d]) / 2, size[d]);
            result.Dispose();
            result = next;
        }
        return result;
    }
}
