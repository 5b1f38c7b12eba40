using TorchSharp;
using static TorchSharp.torch;

namespace NnUnet.Training.Augmentation;

/// <summary>
/// Augments one training batch on the device its tensors live on.
/// <c>data</c> is (b, c, [z,] y, x) float; <c>seg</c> is (b, 1, [z,] y, x) float or long with -1 outside the
/// non-zero mask. All randomness comes from <paramref name="rng"/>, so a given generator state gives the same batch.
/// </summary>
public interface IBatchAugmenter
{
    (Tensor data, Tensor seg) Apply(Tensor data, Tensor seg, torch.Generator rng);
}
