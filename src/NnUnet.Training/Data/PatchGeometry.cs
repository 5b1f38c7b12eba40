using NnUnet.Training.Augmentation;

namespace NnUnet.Training.Data;

/// <summary>
/// The patch geometry the sampler needs, from nnU-Net's <c>configure_rotation_dummyDA_mirroring_and_inital_patch_size</c>
/// as the augmentation defines it (<see cref="AugmentationOptions.ForPatch"/>, <see cref="SpatialAugmentation.InitialPatchSize"/>):
/// the final patch, the enlarged patch loaded before the spatial transform, the rotation range, dummy 2D and mirror axes.
/// </summary>
public sealed record PatchGeometry(int[] FinalPatchSize, int[] InitialPatchSize, double RotationRadians, bool DummyTwoD, int[] MirrorAxes)
{
    public static PatchGeometry For(int[] patchSize)
    {
        var options = AugmentationOptions.ForPatch(patchSize);
        return new PatchGeometry((int[])patchSize.Clone(), options.InitialPatchSize, options.Rotation.High, options.DummyTwoD, options.MirrorAxes);
    }
}
