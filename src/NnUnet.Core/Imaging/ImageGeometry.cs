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

    /// <summary>
    /// The 4x4 voxel-to-world affine in RAS (NIfTI's and nibabel's convention): column j is
    /// direction column j times spacing j, the last column the origin; ITK's LPS becomes RAS by negating rows x and y.
    /// </summary>
    public double[,] ToRasAffine()
    {
        var affine = new double[4, 4];
        for (int row = 0; row < 3; row++)
        {
            double flip = row < 2 ? -1 : 1;
            for (int col = 0; col < 3; col++) affine[row, col] = flip * Direction[row * 3 + col] * Spacing[col];
            affine[row, 3] = flip * Origin[row];
        }
        affine[3, 3] = 1;
        return affine;
    }

    /// <summary>
    /// Geometry of a RAS voxel-to-world affine (4x4, or 3x4 without the last row): spacing = column norms,
    /// direction = normalised columns, both converted to LPS as ITK does (rows x and y negated).
    /// Throws <see cref="ArgumentException"/> for non-finite entries, a zero-length column or a singular direction.
    /// </summary>
    public static ImageGeometry FromRasAffine(double[,] affine)
    {
        ArgumentNullException.ThrowIfNull(affine);
        if (affine.GetLength(0) < 3 || affine.GetLength(1) != 4)
            throw new ArgumentException($"affine must be 4x4 (or 3x4), got {affine.GetLength(0)}x{affine.GetLength(1)}");
        for (int row = 0; row < 3; row++)
            for (int col = 0; col < 4; col++)
                if (!double.IsFinite(affine[row, col]))
                    throw new ArgumentException($"affine[{row},{col}]={affine[row, col]} is not finite");
        var spacing = new double[3];
        var direction = new double[9];
        var origin = new double[3];
        for (int col = 0; col < 3; col++)
        {
            double norm = Math.Sqrt(affine[0, col] * affine[0, col] + affine[1, col] * affine[1, col] + affine[2, col] * affine[2, col]);
            if (norm == 0) throw new ArgumentException($"affine column {col} has zero length (zero spacing along axis {"xyz"[col]})");
            spacing[col] = norm;
            for (int row = 0; row < 3; row++) direction[row * 3 + col] = (row < 2 ? -1 : 1) * affine[row, col] / norm;
        }
        for (int row = 0; row < 3; row++) origin[row] = (row < 2 ? -1 : 1) * affine[row, 3];
        double det = Determinant3(direction);
        if (Math.Abs(det) < 1e-6) throw new ArgumentException($"affine columns are (nearly) parallel: direction determinant {det}");
        return new ImageGeometry(spacing, origin, direction);
    }

    private static double Determinant3(double[] m) =>
        m[0] * (m[4] * m[8] - m[5] * m[7]) - m[1] * (m[3] * m[8] - m[5] * m[6]) + m[2] * (m[3] * m[7] - m[4] * m[6]);

    public bool Equals(ImageGeometry? other) =>
        other is not null && Spacing.AsSpan().SequenceEqual(other.Spacing) &&
        Origin.AsSpan().SequenceEqual(other.Origin) && Direction.AsSpan().SequenceEqual(other.Direction);

    public override int GetHashCode() => HashCode.Combine(Spacing[0], Spacing[1], Spacing[2], Origin[0], Origin[1], Origin[2]);
}
