using NnUnet.Training.Augmentation;
using TorchSharp;
using static TorchSharp.torch;

namespace NnUnet.Training.Data;

/// <summary>
/// No augmentation: only the centre crop from the initial to the final patch size (what nnU-Net's spatial transform
/// does with every random draw off). Used for validation batches and whenever augmentation is switched off.
/// </summary>
public sealed class CenterCropAugmenter(int[] finalPatchSize) : IBatchAugmenter
{
    public (Tensor data, Tensor seg) Apply(Tensor data, Tensor seg, Generator rng) => (Crop(data, finalPatchSize), Crop(seg, finalPatchSize));

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
