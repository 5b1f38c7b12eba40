namespace NnUnet.Core.Imaging.Nifti;

/// <summary>
/// NIfTI orientation fields to and from <see cref="ImageGeometry"/> (LPS, as SimpleITK reports it).
/// Reading follows the NIfTI standard's method order: sform when sform_code &gt; 0, else the qform quaternion when
/// qform_code &gt; 0, else pixdim alone (as ITK: diagonal RAS affine, i.e. LPS direction diag(-1,-1,1), origin 0).
/// </summary>
internal static class NiftiGeometry
{
    /// <summary>Builds the geometry from a header whose dims are already validated. Throws InvalidDataException naming the field.</summary>
    public static ImageGeometry FromHeader(NiftiHeader h, string path, out string source)
    {
        int nd = (int)h.Dim[0];
        // Spatial pixdim of existing axes must be finite; axes beyond dim[0] (a 2D file's z) default to 1 like nifti1_io.
        var voxelSize = new double[3];
        for (int axis = 0; axis < 3; axis++)
        {
            double p = h.Pixdim[axis + 1];
            if (axis < nd)
            {
                if (!double.IsFinite(p)) throw Bad(path, $"pixdim[{axis + 1}]={p} is not a finite voxel size");
                // Negative sizes carry no orientation in NIfTI (qfac and the quaternion do): use the magnitude, as ITK.
                voxelSize[axis] = Math.Abs(p);
            }
            else voxelSize[axis] = double.IsFinite(p) && p > 0 ? p : 1;
        }

        var ras = new double[4, 4];
        ras[3, 3] = 1;
        if (h.SformCode > 0)
        {
            source = "sform";
            double[][] rows = [h.SrowX, h.SrowY, h.SrowZ];
            string[] names = ["srow_x", "srow_y", "srow_z"];
            for (int r = 0; r < 3; r++)
                for (int c = 0; c < 4; c++)
                {
                    if (!double.IsFinite(rows[r][c])) throw Bad(path, $"{names[r]}[{c}]={rows[r][c]} is not finite");
                    ras[r, c] = rows[r][c];
                }
        }
        else if (h.QformCode > 0)
        {
            source = "qform";
            RequireNonZeroSpacing(voxelSize, path, "qform");
            double b = h.QuaternB, c = h.QuaternC, d = h.QuaternD;
            if (!double.IsFinite(b) || !double.IsFinite(c) || !double.IsFinite(d))
                throw Bad(path, $"quatern_b/c/d=({b}, {c}, {d}) are not finite");
            double qx = h.QoffsetX, qy = h.QoffsetY, qz = h.QoffsetZ;
            if (!double.IsFinite(qx) || !double.IsFinite(qy) || !double.IsFinite(qz))
                throw Bad(path, $"qoffset_x/y/z=({qx}, {qy}, {qz}) are not finite");
            double bcd = b * b + c * c + d * d;
            // Stored as float32, so b²+c²+d² may exceed 1 by rounding; more than that is a broken quaternion.
            if (bcd > 1 + 1e-5) throw Bad(path, $"quatern_b/c/d=({b}, {c}, {d}) have b²+c²+d²={bcd} > 1");
            double a = 1 - bcd;
            if (a < 1e-7)
            {
                // 180° rotation: a is 0 and (b, c, d) is normalised, as nifti1_io does.
                double inv = 1 / Math.Sqrt(bcd);
                b *= inv; c *= inv; d *= inv; a = 0;
            }
            else a = Math.Sqrt(a);
            double qfac = h.Pixdim[0] < 0 ? -1 : 1; // nifti1_io: anything but negative counts as +1
            double[,] rot =
            {
                { a * a + b * b - c * c - d * d, 2 * (b * c - a * d), 2 * (b * d + a * c) },
                { 2 * (b * c + a * d), a * a + c * c - b * b - d * d, 2 * (c * d - a * b) },
                { 2 * (b * d - a * c), 2 * (c * d + a * b), a * a + d * d - c * c - b * b },
            };
            for (int r = 0; r < 3; r++)
            {
                ras[r, 0] = rot[r, 0] * voxelSize[0];
                ras[r, 1] = rot[r, 1] * voxelSize[1];
                ras[r, 2] = rot[r, 2] * voxelSize[2] * qfac;
            }
            ras[0, 3] = qx; ras[1, 3] = qy; ras[2, 3] = qz;
        }
        else
        {
            source = "pixdim";
            RequireNonZeroSpacing(voxelSize, path, "pixdim");
            ras[0, 0] = voxelSize[0]; ras[1, 1] = voxelSize[1]; ras[2, 2] = voxelSize[2];
        }

        try
        {
            return ImageGeometry.FromRasAffine(ras);
        }
        catch (ArgumentException e)
        {
            throw Bad(path, $"{source}: {e.Message}");
        }
    }

    /// <summary>
    /// The qform for a geometry: rotation quaternion (b, c, d), qfac (pixdim[0]) and offset, from the RAS affine's
    /// normalised columns (a reflection goes into qfac = -1). Shear cannot be expressed; the sform carries it exactly.
    /// </summary>
    public static (double B, double C, double D, double Qfac) ToQuaternion(ImageGeometry g)
    {
        var ras = g.ToRasAffine();
        var m = new double[3, 3];
        for (int col = 0; col < 3; col++)
        {
            double n = Math.Sqrt(ras[0, col] * ras[0, col] + ras[1, col] * ras[1, col] + ras[2, col] * ras[2, col]);
            for (int r = 0; r < 3; r++) m[r, col] = ras[r, col] / n;
        }
        double det = m[0, 0] * (m[1, 1] * m[2, 2] - m[1, 2] * m[2, 1])
                   - m[0, 1] * (m[1, 0] * m[2, 2] - m[1, 2] * m[2, 0])
                   + m[0, 2] * (m[1, 0] * m[2, 1] - m[1, 1] * m[2, 0]);
        double qfac = 1;
        if (det < 0)
        {
            qfac = -1;
            for (int r = 0; r < 3; r++) m[r, 2] = -m[r, 2];
        }

        // Quaternion of a rotation matrix, branch chosen for numerical stability (same scheme as nifti1_io).
        double a, b, c, d;
        double trace = m[0, 0] + m[1, 1] + m[2, 2] + 1;
        if (trace > 0.5)
        {
            a = 0.5 * Math.Sqrt(trace);
            b = 0.25 * (m[2, 1] - m[1, 2]) / a;
            c = 0.25 * (m[0, 2] - m[2, 0]) / a;
            d = 0.25 * (m[1, 0] - m[0, 1]) / a;
        }
        else
        {
            double xd = 1 + m[0, 0] - (m[1, 1] + m[2, 2]);
            double yd = 1 + m[1, 1] - (m[0, 0] + m[2, 2]);
            double zd = 1 + m[2, 2] - (m[0, 0] + m[1, 1]);
            if (xd > 1)
            {
                b = 0.5 * Math.Sqrt(xd);
                c = 0.25 * (m[0, 1] + m[1, 0]) / b;
                d = 0.25 * (m[0, 2] + m[2, 0]) / b;
                a = 0.25 * (m[2, 1] - m[1, 2]) / b;
            }
            else if (yd > 1)
            {
                c = 0.5 * Math.Sqrt(yd);
                b = 0.25 * (m[0, 1] + m[1, 0]) / c;
                d = 0.25 * (m[1, 2] + m[2, 1]) / c;
                a = 0.25 * (m[0, 2] - m[2, 0]) / c;
            }
            else
            {
                d = 0.5 * Math.Sqrt(zd);
                b = 0.25 * (m[0, 2] + m[2, 0]) / d;
                c = 0.25 * (m[1, 2] + m[2, 1]) / d;
                a = 0.25 * (m[1, 0] - m[0, 1]) / d;
            }
            if (a < 0) { b = -b; c = -c; d = -d; }
        }
        double norm = Math.Sqrt(a * a + b * b + c * c + d * d);
        return (b / norm, c / norm, d / norm, qfac);
    }

    private static void RequireNonZeroSpacing(double[] voxelSize, string path, string source)
    {
        for (int axis = 0; axis < 3; axis++)
            if (voxelSize[axis] == 0)
                throw Bad(path, $"pixdim[{axis + 1}]=0: zero voxel size (geometry from {source})");
    }

    private static InvalidDataException Bad(string path, string what) => new($"{path}: {what}");
}
