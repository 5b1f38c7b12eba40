using static TorchSharp.torch;

namespace NnUnet.Training.Augmentation;

/// <summary>
/// The training augmentation seam (implemented by the augmentation pipeline in <c>NnUnet.Training.Augmentation</c>).
/// Input: a batch sampled with the enlarged initial patch (<see cref="Data.PatchGeometry.InitialPatchSize"/>):
/// <c>data</c> float32 (b, c, *initial), <c>seg</c> int16 (b, 1, *initial) with -1 outside the image / non-zero mask.
/// Output: the augmented batch centre-cropped to the final patch size (b, c, *final) and (b, 1, *final), seg still int16
/// (-1 may remain; the trainer maps it to 0 afterwards, as nnU-Net's RemoveLabel transform). All randomness must come
/// from <c>rng</c> (a generator on the tensors' device, seeded per batch) so batches are reproducible.
/// Cascade: seg arrives as (b, 2, *initial) with the previous stage's prediction in channel 1; the output data must carry
/// it as one-hot channels after the image channels (one per foreground label) and the output seg only channel 0.
/// </summary>
public interface IBatchAugmenter
{
    (Tensor data, Tensor seg) Apply(Tensor data, Tensor seg, Generator rng);
}
