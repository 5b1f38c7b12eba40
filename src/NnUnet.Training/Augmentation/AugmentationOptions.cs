using NnUnet.Training.Data;

namespace NnUnet.Training.Augmentation;

/// <summary>
/// Probabilities and ranges of the nnU-Net v2 training augmentation (<c>nnUNetTrainer.get_training_transforms</c>).
/// The defaults are nnU-Net's; <see cref="ForPatch"/> adds its patch-size dependent choices (rotation range, dummy 2D,
/// mirror axes). Angles are in radians. Each probability is per sample unless its name says per channel / per axis.
/// </summary>
public sealed record AugmentationOptions
{
    /// <summary>max(patch)/patch[0] above this makes a 3D patch "anisotropic": dummy-2D augmentation (nnU-Net's ANISO_THRESHOLD).</summary>
    public const double AnisotropyThreshold = 3.0;

    /// <summary>The final patch size (z, y, x) or (y, x) the network sees.</summary>
    public required int[] PatchSize { get; init; }
    /// <summary>Rotation angle range per axis (radians); nnU-Net draws each axis' angle from it.</summary>
    public required Range1D Rotation { get; init; }
    /// <summary>3D patch whose spatial transforms run in-plane only (axis 0 untouched) and low-res skips axis 0.</summary>
    public bool DummyTwoD { get; init; }
    /// <summary>Spatial axes (0-based, of the patch) mirrored with probability <see cref="PMirrorPerAxis"/> each.</summary>
    public required int[] MirrorAxes { get; init; }
    /// <summary>Channels that the plans normalise with a mask (<c>use_mask_for_norm</c>): zeroed where seg &lt; 0 after augmentation.</summary>
    public bool[] MaskedChannels { get; init; } = [];

    public double PRotation { get; init; } = 0.2;
    public double PScaling { get; init; } = 0.2;
    /// <summary>Scale of the sampling grid (&gt; 1 samples a larger region: objects get smaller); one factor for all axes.</summary>
    public Range1D Scaling { get; init; } = (0.7, 1.4);

    public double PNoise { get; init; } = 0.1;
    /// <summary>Standard deviation of the additive Gaussian noise, one per sample for all channels.</summary>
    public Range1D NoiseSigma { get; init; } = (0, 0.1);

    public double PBlur { get; init; } = 0.2;
    public double PBlurPerChannel { get; init; } = 0.5;
    /// <summary>Blur sigma in voxels, drawn per channel and per axis.</summary>
    public Range1D BlurSigma { get; init; } = (0.5, 1.0);

    public double PBrightness { get; init; } = 0.15;
    public Range1D BrightnessMultiplier { get; init; } = (0.75, 1.25);

    public double PContrast { get; init; } = 0.15;
    public Range1D ContrastFactor { get; init; } = (0.75, 1.25);

    public double PLowResolution { get; init; } = 0.25;
    public double PLowResolutionPerChannel { get; init; } = 0.5;
    /// <summary>Zoom factor of the simulated low resolution (same for all axes of a channel).</summary>
    public Range1D LowResolutionZoom { get; init; } = (0.5, 1.0);

    public double PInvertedGamma { get; init; } = 0.1;
    public double PGamma { get; init; } = 0.3;
    public Range1D Gamma { get; init; } = (0.7, 1.5);

    public double PMirrorPerAxis { get; init; } = 0.5;

    /// <summary>For <c>3d_cascade_fullres</c>: the previous stage's prediction travels as seg channel 1 and becomes augmented one-hot data channels.</summary>
    public CascadeAugmentationOptions? Cascade { get; init; }

    /// <summary>Number of spatial axes of the patch (2 or 3).</summary>
    public int SpatialDims => PatchSize.Length;

    /// <summary>
    /// nnU-Net's <c>configure_rotation_dummyDA_mirroring_and_inital_patch_size</c> (the trainer's
    /// <see cref="PatchGeometry"/>): 2D patches rotate +-180 deg, or +-15 deg when max/min patch &gt; 1.5; 3D patches
    /// +-30 deg, or (dummy 2D, when max(patch)/patch[0] &gt; 3) +-180 deg in-plane. All axes are mirror axes.
    /// </summary>
    public static AugmentationOptions ForPatch(int[] patchSize, bool[]? useMaskForNorm = null)
    {
        ArgumentNullException.ThrowIfNull(patchSize);
        if (patchSize.Length is not (2 or 3))
            throw new ArgumentException($"patch size must have 2 or 3 axes, got ({string.Join(", ", patchSize)})", nameof(patchSize));
        foreach (int p in patchSize)
            if (p < 1) throw new ArgumentException($"patch size must be positive, got ({string.Join(", ", patchSize)})", nameof(patchSize));
        int max = patchSize.Max(), min = patchSize.Min();
        double deg = Math.PI / 180;
        bool dummy = false;
        double rotation;
        if (patchSize.Length == 2) rotation = (double)max / min > 1.5 ? 15 * deg : 180 * deg;
        else
        {
            dummy = (double)max / patchSize[0] > AnisotropyThreshold;
            rotation = dummy ? 180 * deg : 30 * deg;
        }
        return new AugmentationOptions
        {
            PatchSize = (int[])patchSize.Clone(),
            Rotation = (-rotation, rotation),
            DummyTwoD = dummy,
            MirrorAxes = patchSize.Length == 2 ? [0, 1] : [0, 1, 2],
            MaskedChannels = useMaskForNorm is null ? [] : (bool[])useMaskForNorm.Clone(),
        };
    }

    public static AugmentationOptions FromGeometry(PatchGeometry geometry, bool[]? useMaskForNorm = null)
    {
        ArgumentNullException.ThrowIfNull(geometry);
        return new AugmentationOptions
        {
            PatchSize = (int[])geometry.FinalPatchSize.Clone(),
            Rotation = (-geometry.RotationRadians, geometry.RotationRadians),
            DummyTwoD = geometry.DummyTwoD,
            MirrorAxes = (int[])geometry.MirrorAxes.Clone(),
            MaskedChannels = useMaskForNorm is null ? [] : (bool[])useMaskForNorm.Clone(),
        };
    }

    /// <summary>The patch to load so that the spatial transforms' final crop has no border (see <see cref="SpatialAugmentation.InitialPatchSize"/>).</summary>
    public int[] InitialPatchSize => SpatialAugmentation.InitialPatchSize(PatchSize, Rotation, DummyTwoD);
}
