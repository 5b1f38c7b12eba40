using System.IO.Compression;
using System.Runtime.InteropServices;
using NnUnet.Core.IO;

namespace NnUnet.Core.Imaging.Nifti;

/// <summary>Options of <see cref="NiftiWriter.Write(string, MedicalImage, NiftiWriteOptions)"/>.</summary>
public sealed record NiftiWriteOptions
{
    public static NiftiWriteOptions Default { get; } = new();

    /// <summary>Header version; null writes NIfTI-1 unless a dimension exceeds 32767, which needs NIfTI-2.</summary>
    public NiftiVersion? Version { get; init; }

    /// <summary>gzip level for <c>.nii.gz</c>. Fastest by default: about twice as fast as Optimal for a few % more bytes.</summary>
    public CompressionLevel Compression { get; init; } = CompressionLevel.Fastest;
}

/// <summary>
/// Writes a <see cref="MedicalImage"/> as a single-file NIfTI (gzip-compressed when the path ends in <c>.nii.gz</c>).
/// The file is written to a temporary file in the same folder and renamed over the target, so readers never see a
/// half-written image. The header carries both qform and sform (code 1, scanner) from the LPS geometry converted to RAS,
/// pixdim = spacing, scl_slope 1 / scl_inter 0, units mm; 4D (dim[4] = channels) when the image has several channels.
/// </summary>
public static class NiftiWriter
{
    private const int ChunkBytes = 1 << 24;
    private const int XformScanner = 1;
    private const int UnitsMm = 2, UnitsSeconds = 8;

    public static void Write(string path, MedicalImage image) => Write(path, image, NiftiWriteOptions.Default);

    public static void Write(string path, MedicalImage image, NiftiWriteOptions options)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(image);
        ArgumentNullException.ThrowIfNull(options);
        bool gzip = path.EndsWith(".nii.gz", StringComparison.OrdinalIgnoreCase);
        if (!gzip && !path.EndsWith(".nii", StringComparison.OrdinalIgnoreCase))
            throw new ArgumentException($"{path}: a NIfTI file name must end in .nii or .nii.gz", nameof(path));
        CheckGeometry(image.Geometry, path);

        bool needsNifti2 = image.SizeX > short.MaxValue || image.SizeY > short.MaxValue || image.SizeZ > short.MaxValue ||
                           image.Channels > short.MaxValue;
        var version = options.Version ?? (needsNifti2 ? NiftiVersion.Nifti2 : NiftiVersion.Nifti1);
        if (version == NiftiVersion.Nifti1 && needsNifti2)
            throw new ArgumentException($"{path}: shape {image.SizeX}x{image.SizeY}x{image.SizeZ}x{image.Channels} exceeds NIfTI-1's 32767 per axis; write NIfTI-2");
        byte[] header = NiftiLayout.Encode(HeaderFields(image, version), version);

        using var file = AtomicFile.Create(path);
        if (gzip)
        {
            using var compressed = new GZipStream(file.Stream, options.Compression, leaveOpen: true);
            WriteContent(compressed, header, image);
        }
        else WriteContent(file.Stream, header, image);
        file.Commit();
    }

    private static void CheckGeometry(ImageGeometry g, string path)
    {
        if (g.Spacing.Length != 3 || g.Origin.Length != 3 || g.Direction.Length != 9)
            throw new ArgumentException($"{path}: geometry needs 3 spacings, 3 origin values and a 3x3 direction");
        for (int i = 0; i < 3; i++)
            if (!double.IsFinite(g.Spacing[i]) || g.Spacing[i] <= 0)
                throw new ArgumentException($"{path}: spacing[{i}]={g.Spacing[i]} must be positive and finite");
        try
        {
            ImageGeometry.FromRasAffine(g.ToRasAffine()); // same checks the reader applies: finite, non-singular
        }
        catch (ArgumentException e)
        {
            throw new ArgumentException($"{path}: geometry cannot be written: {e.Message}", e);
        }
    }

    private static NiftiLayout.WriteFields HeaderFields(MedicalImage image, NiftiVersion version)
    {
        var g = image.Geometry;
        var ras = g.ToRasAffine();
        var (b, c, d, qfac) = NiftiGeometry.ToQuaternion(g);
        bool fourD = image.Channels > 1;
        var f = new NiftiLayout.WriteFields
        {
            DataTypeCode = (short)image.Type,
            BitPix = (short)(NiftiLayout.BytesPerVoxel(image.Type) * 8),
            VoxOffset = version == NiftiVersion.Nifti1 ? NiftiLayout.Nifti1DataOffset : NiftiLayout.Nifti2DataOffset,
            SclSlope = 1,
            SclInter = 0,
            QformCode = XformScanner,
            SformCode = XformScanner,
            QuaternB = b, QuaternC = c, QuaternD = d,
            QoffsetX = ras[0, 3], QoffsetY = ras[1, 3], QoffsetZ = ras[2, 3],
            XyztUnits = fourD ? UnitsMm | UnitsSeconds : UnitsMm,
            Description = "NnUnetCluster",
        };
        f.Dim[0] = fourD ? 4 : 3;
        f.Dim[1] = image.SizeX; f.Dim[2] = image.SizeY; f.Dim[3] = image.SizeZ; f.Dim[4] = image.Channels;
        for (int i = 5; i < 8; i++) f.Dim[i] = 1;
        f.Pixdim[0] = qfac;
        f.Pixdim[1] = g.Spacing[0]; f.Pixdim[2] = g.Spacing[1]; f.Pixdim[3] = g.Spacing[2];
        for (int i = 4; i < 8; i++) f.Pixdim[i] = 1;
        for (int col = 0; col < 4; col++)
        {
            f.SrowX[col] = ras[0, col];
            f.SrowY[col] = ras[1, col];
            f.SrowZ[col] = ras[2, col];
        }
        return f;
    }

    private static void WriteContent(Stream stream, byte[] header, MedicalImage image)
    {
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("NIfTI writing needs a little-endian machine");
        stream.Write(header);
        switch (image.Type)
        {
            case VoxelType.UInt8: WriteArray(stream, (byte[])image.Voxels); break;
            case VoxelType.Int8: WriteArray(stream, (sbyte[])image.Voxels); break;
            case VoxelType.Int16: WriteArray(stream, (short[])image.Voxels); break;
            case VoxelType.UInt16: WriteArray(stream, (ushort[])image.Voxels); break;
            case VoxelType.Int32: WriteArray(stream, (int[])image.Voxels); break;
            case VoxelType.UInt32: WriteArray(stream, (uint[])image.Voxels); break;
            case VoxelType.Int64: WriteArray(stream, (long[])image.Voxels); break;
            case VoxelType.Float32: WriteArray(stream, (float[])image.Voxels); break;
            case VoxelType.Float64: WriteArray(stream, (double[])image.Voxels); break;
            default: throw new InvalidOperationException($"unexpected voxel type {image.Type}");
        }
    }

    private static void WriteArray<T>(Stream stream, T[] values) where T : unmanaged
    {
        int chunk = ChunkBytes / System.Runtime.CompilerServices.Unsafe.SizeOf<T>();
        for (int start = 0; start < values.Length; start += chunk)
            stream.Write(MemoryMarshal.AsBytes(values.AsSpan(start, Math.Min(chunk, values.Length - start))));
    }
}
