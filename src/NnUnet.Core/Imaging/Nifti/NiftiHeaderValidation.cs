namespace NnUnet.Core.Imaging.Nifti;

/// <summary>Checks a decoded header and fills its derived fields; every problem names the file and the field.</summary>
internal static class NiftiHeaderValidation
{
    public static void Validate(NiftiHeader h, string magic, string path)
    {
        CheckMagic(h.Version, magic, path);
        CheckDims(h, path);

        h.StoredType = h.DataTypeCode switch
        {
            2 => VoxelType.UInt8,
            4 => VoxelType.Int16,
            8 => VoxelType.Int32,
            16 => VoxelType.Float32,
            64 => VoxelType.Float64,
            256 => VoxelType.Int8,
            512 => VoxelType.UInt16,
            768 => VoxelType.UInt32,
            1024 => VoxelType.Int64,
            _ => throw Bad(path, $"datatype={h.DataTypeCode} ({DataTypeName(h.DataTypeCode)}) is not supported " +
                                 "(uint8, int8, int16, uint16, int32, uint32, int64, float32, float64 are)"),
        };
        int bits = NiftiLayout.BytesPerVoxel(h.StoredType) * 8;
        // bitpix 0 is tolerated (some old writers leave it unset); the datatype decides the layout.
        if (h.BitPix != 0 && h.BitPix != bits)
            throw Bad(path, $"bitpix={h.BitPix} does not match datatype {h.DataTypeCode} ({h.StoredType}, {bits} bits)");

        CheckDataOffset(h, path);
        CheckScaling(h, path);
        h.Geometry = NiftiGeometry.FromHeader(h, path, out string source);
        h.GeometrySource = source;
    }

    private static void CheckMagic(NiftiVersion version, string magic, string path)
    {
        string expected = version == NiftiVersion.Nifti1 ? "n+1" : "n+2";
        string pair = version == NiftiVersion.Nifti1 ? "ni1" : "ni2";
        if (magic.StartsWith(expected, StringComparison.Ordinal)) return;
        if (magic.StartsWith(pair, StringComparison.Ordinal))
            throw Bad(path, $"magic='{pair}' marks a .hdr/.img pair; only single-file NIfTI (.nii, .nii.gz) is supported");
        throw Bad(path, $"magic='{Printable(magic)}' is not '{expected}' (a sizeof_hdr of {(version == NiftiVersion.Nifti1 ? 348 : 540)} " +
                        $"without the NIfTI magic is an Analyze 7.5 file or garbage)");
    }

    private static void CheckDims(NiftiHeader h, string path)
    {
        long nd = h.Dim[0];
        if (nd < 1 || nd > 7) throw Bad(path, $"dim[0]={nd} must be between 1 and 7");
        for (int i = 1; i <= nd; i++)
            if (h.Dim[i] < 1) throw Bad(path, $"dim[{i}]={h.Dim[i]} must be at least 1");
        for (int i = 5; i <= nd; i++)
            if (h.Dim[i] > 1)
                throw Bad(path, $"dim[{i}]={h.Dim[i]}: images with more than 4 dimensions (x, y, z, channels) are not supported");
        long Size(int i) => i <= nd ? h.Dim[i] : 1;
        string[] names = ["x", "y", "z", "channels"];
        for (int i = 1; i <= 4; i++)
            if (Size(i) > int.MaxValue) throw Bad(path, $"dim[{i}]={Size(i)} ({names[i - 1]}) is too large");
        h.SizeX = (int)Size(1); h.SizeY = (int)Size(2); h.SizeZ = (int)Size(3); h.Channels = (int)Size(4);
        // Each factor is below 2^31, so the product of two fits in a long; check before each further multiply.
        long count = (long)h.SizeX * h.SizeY;
        if (count > Array.MaxLength / h.SizeZ || count * h.SizeZ > Array.MaxLength / h.Channels)
            throw Bad(path, $"dim={h.SizeX}x{h.SizeY}x{h.SizeZ}x{h.Channels} has more voxels than one array can hold ({Array.MaxLength})");
    }

    private static void CheckDataOffset(NiftiHeader h, string path)
    {
        double v = h.VoxOffset;
        if (!double.IsFinite(v) || v < 0 || v != Math.Floor(v) || v > long.MaxValue / 2)
            throw Bad(path, $"vox_offset={v} is not a valid byte offset");
        if (v == 0)
        {
            // nibabel and nifti1_io read a zero offset in a single file as "right after the header and extension flag".
            h.DataOffset = h.Version == NiftiVersion.Nifti1 ? NiftiLayout.Nifti1DataOffset : NiftiLayout.Nifti2DataOffset;
            return;
        }
        if (v < h.HeaderSize) throw Bad(path, $"vox_offset={v} points inside the {h.HeaderSize}-byte header");
        h.DataOffset = (long)v;
    }

    private static void CheckScaling(NiftiHeader h, string path)
    {
        double slope = h.SclSlope, inter = h.SclInter;
        // As nibabel: slope 0 or non-finite means "no scaling"; a valid slope needs a finite intercept.
        if (slope == 0 || !double.IsFinite(slope))
        {
            h.HasScaling = false;
        }
        else
        {
            if (!double.IsFinite(inter)) throw Bad(path, $"scl_inter={inter} is not finite while scl_slope={slope} is valid");
            h.HasScaling = !(slope == 1 && inter == 0);
        }
        h.OutputType = h.HasScaling ? VoxelScaling.OutputTypeFor(h.StoredType) : h.StoredType;
    }

    private static string DataTypeName(short code) => code switch
    {
        0 => "unknown",
        1 => "binary",
        32 => "complex64",
        128 => "RGB24",
        1536 => "float128",
        1792 => "complex128",
        2048 => "complex256",
        2304 => "RGBA32",
        _ => "not a NIfTI datatype",
    };

    private static string Printable(string s)
    {
        var chars = s.ToCharArray();
        for (int i = 0; i < chars.Length; i++) if (chars[i] < 32 || chars[i] > 126) chars[i] = '?';
        return new string(chars);
    }

    private static InvalidDataException Bad(string path, string what) => new($"{path}: {what}");
}
