namespace NnUnet.Training.Data;

/// <summary>
/// nnU-Net's <c>configure_rotation_dummyDA_mirroring_and_inital_patch_size</c>: rotation range, dummy-2D flag, mirror
/// axes and the enlarged patch loaded before the spatial transform so that rotating/scaling never shows a border.
/// </summary>
public sealed record PatchGeometry(int[] FinalPatchSize, int[] InitialPatchSize, double RotationRadians, bool DummyTwoD, int[] MirrorAxes)
{
    /// <summary>3D patches whose max/min(axis 0) ratio exceeds this are augmented in-plane only (nnU-Net's ANISO_THRESHOLD).</summary>
    public const double AnisotropyThreshold = 3.0;
    public static readonly (double Low, double High) ScaleRangeForPatch = (0.85, 1.25);

    public static PatchGeometry For(int[] patchSize)
    {
        int dims = patchSize.Length;
        if (dims is not (2 or 3)) throw new ArgumentException($"patch size must have 2 or 3 axes, got {dims}");
        int max = patchSize.Max(), min = patchSize.Min();
        double rotation;
        bool dummy2d = false;
        if (dims == 2)
            rotation = (max / (double)min > 1.5 ? 15.0 : 180.0) / 360 * 2 * Math.PI;
        else
        {
            dummy2d = max / (double)patchSize[0] > AnisotropyThreshold;
            // dummy 2D rotates in-plane by up to 180 degrees, as nnU-Net
            rotation = (dummy2d ? 180.0 : 30.0) / 360 * 2 * Math.PI;
        }
        var mirror = dims == 2 ? new[] { 0, 1 } : new[] { 0, 1, 2 };
        // nnU-Net enlarges all axes with the same rotation, then keeps axis 0 at its final size in dummy 2D
        int[] initial = ComputeInitialPatchSize(patchSize, rotation);
        if (dummy2d) initial[0] = patchSize[0];
        return new PatchGeometry(patchSize, initial, rotation, dummy2d, mirror);
    }

    /// <summary>
    /// batchgenerators' <c>get_patch_size</c>: the largest absolute coordinate of the patch-size vector rotated by the
    /// maximal angle about each axis in turn (capped at 90 degrees), divided by the smallest scale (0.85), truncated.
    /// </summary>
    public static int[] ComputeInitialPatchSize(int[] finalPatch, double maxRotation)
    {
        double angle = Math.Min(Math.PI / 2, Math.Abs(maxRotation));
        var shape = new double[finalPatch.Length];
        for (int i = 0; i < shape.Length; i++) shape[i] = finalPatch[i];
        if (finalPatch.Length == 3)
        {
            for (int axis = 0; axis < 3; axis++)
            {
                var rotated = RotateRowVector3([finalPatch[0], finalPatch[1], finalPatch[2]], axis, angle);
                for (int i = 0; i < 3; i++) shape[i] = Math.Max(shape[i], Math.Abs(rotated[i]));
            }
        }
        else
        {
            double c = Math.Cos(angle), s = Math.Sin(angle);
            double x = finalPatch[0], y = finalPatch[1];
            // row vector times [[c, -s], [s, c]]
            shape[0] = Math.Max(shape[0], Math.Abs(x * c + y * s));
            shape[1] = Math.Max(shape[1], Math.Abs(-x * s + y * c));
        }
        var result = new int[shape.Length];
        for (int i = 0; i < shape.Length; i++) result[i] = (int)(shape[i] / ScaleRangeForPatch.Low);
        return result;
    }

    // row vector v times the rotation matrix about one axis (batchgenerators' create_matrix_rotation_{x,y,z}_3d)
    private static double[] RotateRowVector3(double[] v, int axis, double angle)
    {
        double c = Math.Cos(angle), s = Math.Sin(angle);
        return axis switch
        {
            0 => [v[0], v[1] * c + v[2] * s, -v[1] * s + v[2] * c],
            1 => [v[0] * c - v[2] * s, v[1], v[0] * s + v[2] * c],
            _ => [v[0] * c + v[1] * s, -v[0] * s + v[1] * c, v[2]],
        };
    }
}
