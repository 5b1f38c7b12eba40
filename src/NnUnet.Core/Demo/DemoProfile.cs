namespace NnUnet.Core.Demo;

/// <summary>
/// Size, planning memory target and training budget of one demo run. The volumes are about a thousandth of a CT scan's,
/// so the GPU memory target handed to nnU-Net's planner is scaled down with them (nnU-Net's
/// <c>-gpu_memory_target</c>; the reference is 8 GB for a real scan): the planner then meets the same situation as on
/// real data, a full-resolution patch that covers only a small part of the median image, and plans all four
/// configurations by its own rules (3d_lowres and 3d_cascade_fullres included). Nothing in the plans is edited.
/// </summary>
/// <param name="Name">"quick" or "default".</param>
/// <param name="Shape">Array shape (z, y, x) of the synthetic cases before their random size jitter.</param>
/// <param name="GpuMemoryGb">GPU memory target passed to <c>nnunet plan --gpu-memory-gb</c>.</param>
/// <param name="Epochs">Epochs per fold.</param>
/// <param name="ItersPerEpoch">Training iterations per epoch.</param>
public sealed record DemoProfile(string Name, int[] Shape, double GpuMemoryGb, int Epochs, int ItersPerEpoch)
{
    /// <summary>Plans patch 8x20x16 at 3x1x1 mm (a tenth of the 16x40x40 median image), hence 3d_lowres at 3x1.51x1.51 mm
    /// with 12x16x16 patches and the cascade; 2d 40x40.</summary>
    public static readonly DemoProfile Quick = new("quick", [16, 40, 40], 0.01, 3, 12);

    /// <summary>Plans 3d_fullres 10x20x20 (9 % of the 20x48x48 median), 3d_lowres at 3.09x1.56x1.56 mm with 12x20x20
    /// patches and the cascade; 2d 48x48.</summary>
    public static readonly DemoProfile Default = new("default", [20, 48, 48], 0.015, 6, 20);

    public static DemoProfile For(bool quick) => quick ? Quick : Default;

    public SyntheticDatasetOptions DatasetOptions => new(Shape: Shape);
}
