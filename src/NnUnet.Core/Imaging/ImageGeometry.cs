namespace NnUnet.Core.Imaging;

/// <summary>
/// Physical placement of an image, reported the way SimpleITK reports it (nnU-Net depends on that):
/// spacing, origin and direction are in ITK index order (x, y, z) and LPS world coordinates.
/// <para>
/// Axis convention of the whole project: voxel arrays are C-order <c>(c, z, y, x)</c> with x fastest,
/// exactly the memory order of a NIfTI file and of nnU-Net's numpy arrays (SimpleITK's numpy view).
/// Per-axis lists that describe an array (shapes, "array spacings", patch sizes) are therefore (z, y, x);
/// only this type speaks (x, y, z), as ITK does. Convert with <see cref="SpacingZyx"/>.
/// </para>
/// </summary>
/// <param name="Spacing">Voxel size along i, j, k (x, y, z) in mm.</param>
/// <param name="Origin">World position (LPS, mm) of voxel (0,0,0).</param>
/// <param name="Direction">Row-major 3x3 matrix whose columns are the world directions (LPS) of the i, j, k axes.</param>
public sealed record ImageGeometry(double[] Spacing, double[] Origin, double[] Direction)
{
    public static ImageGeometry Identity(double sx = 1, double sy = 1, double sz = 1) =>
        new([sx, sy, sz], [0, 0, 0], [1, 0, 0, 0, 1, 0, 0, 0, 1]);

    /// <summary>Spacing in array order (z, y, x), as nnU-Net stores it.</summary>
    public double[] SpacingZyx => [Spacing[2], Spacing[1], Spacing[0]];

    public bool Equals(ImageGeometry? other) =>
        other is not null && Spacing.AsSpan().SequenceEqual(other.Spacing) &&
        Origin.AsSpan().SequenceEqual(other.Origin) && Direction.AsSpan().SequenceEqual(other.Direction);

    public override int GetHashCode() => HashCode.Combine(Spacing[0], Spacing[1], Spacing[2], Origin[0], Origin[1], Origin[2]);
}
