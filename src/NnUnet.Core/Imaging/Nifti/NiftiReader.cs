using System.Buffers.Binary;
using System.Numerics;
using System.Runtime.InteropServices;

namespace NnUnet.Core.Imaging.Nifti;

/// <summary>
/// Reads NIfTI-1 and NIfTI-2 single files (<c>.nii</c>, <c>.nii.gz</c>; gzip is detected from the content), little or
/// big endian, into a <see cref="MedicalImage"/> in (c, z, y, x) order with SimpleITK's geometry.
/// <para>
/// Voxels stream from the (decompressing) stream straight into the typed array, big-endian data is swapped in place.
/// scl_slope/scl_inter apply as in nibabel: slope 0 or non-finite means no scaling; slope 1 with intercept 0 keeps the
/// stored type. Otherwise the result is float32 for sources that float32 holds exactly (8/16-bit integers, float32)
/// and float64 for the others (int32, uint32, int64, float64), each value computed as
/// <c>(double)raw * slope + inter</c> in float64 (exactly nibabel's <c>get_fdata</c>) and then rounded once to float32
/// where the result is float32.
/// </para>
/// Every problem with a file raises <see cref="InvalidDataException"/> whose message starts with the path and names the
/// field (a missing file raises <see cref="FileNotFoundException"/>).
/// </summary>
public static class NiftiReader
{
    private const int ChunkBytes = 1 << 24;
    // deflate's maximum compression ratio is 1032:1 (258-byte matches coded in 2 bits); a little slack for headers
    private const long MaxDeflateRatio = 1040;

    /// <summary>Reads and validates the header only (shape, type, geometry); the voxels are not read.</summary>
    public static NiftiHeader ReadHeader(string path)
    {
        using var file = OpenRead(path);
        bool gzipped = IsGzip(file, path);
        using Stream stream = gzipped ? GzipDecompression.Open(file) : new NonClosingStream(file);
        return ReadHeaderFrom(stream, path, gzipped);
    }

    /// <summary>Reads the whole image. 4D files become channels (dim[4]); 2D files are volumes with SizeZ = 1.</summary>
    public static MedicalImage Read(string path)
    {
        using var file = OpenRead(path);
        bool gzipped = IsGzip(file, path);
        using Stream stream = gzipped ? GzipDecompression.Open(file) : new NonClosingStream(file);
        var header = ReadHeaderFrom(stream, path, gzipped);
        long dataBytes = header.VoxelCount * header.BytesPerVoxel;
        if (!gzipped && file.Length < header.DataOffset + dataBytes)
            throw new InvalidDataException(
                $"{path}: file is truncated: {file.Length} bytes, but vox_offset {header.DataOffset} + {dataBytes} bytes of voxels " +
                $"(dim {header.SizeX}x{header.SizeY}x{header.SizeZ}x{header.Channels} of {header.StoredType}) are needed");

        // Deflate cannot expand data more than ~1032:1, so a gzip file of n bytes holds at most ~1032 n bytes: dims
        // that claim more are a lie, rejected here before the voxel array is allocated (a 10 KB file must not cost GBs).
        if (gzipped && header.DataOffset + dataBytes > file.Length * MaxDeflateRatio)
            throw new InvalidDataException(
                $"{path}: dim {header.SizeX}x{header.SizeY}x{header.SizeZ}x{header.Channels} of {header.StoredType} needs " +
                $"{dataBytes} bytes of voxels, more than a {file.Length}-byte gzip file can hold: the header's dims are wrong or the file is truncated");

        Skip(stream, header.DataOffset - header.HeaderSize, path);
        Array voxels = header.StoredType switch
        {
            VoxelType.UInt8 => ReadArray<byte>(stream, header, path),
            VoxelType.Int8 => ReadArray<sbyte>(stream, header, path),
            VoxelType.Int16 => ReadArray<short>(stream, header, path),
            VoxelType.UInt16 => ReadArray<ushort>(stream, header, path),
            VoxelType.Int32 => ReadArray<int>(stream, header, path),
            VoxelType.UInt32 => ReadArray<uint>(stream, header, path),
            VoxelType.Int64 => ReadArray<long>(stream, header, path),
            VoxelType.Float32 => ReadArray<float>(stream, header, path),
            VoxelType.Float64 => ReadArray<double>(stream, header, path),
            _ => throw new InvalidOperationException("validated datatype"),
        };
        if (gzipped) VerifyGzipComplete(stream, file, header.DataOffset + dataBytes, path);

        if (header.HasScaling) voxels = VoxelScaling.Apply(voxels, header.StoredType, header.OutputType, header.SclSlope, header.SclInter);
        return new MedicalImage(header.Channels, header.SizeZ, header.SizeY, header.SizeX, header.OutputType, voxels, header.Geometry);
    }

    private static FileStream OpenRead(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        return new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1 << 16, FileOptions.SequentialScan);
    }

    private static bool IsGzip(FileStream file, string path)
    {
        Span<byte> magic = stackalloc byte[2];
        int n = file.ReadAtLeast(magic, 2, throwOnEndOfStream: false);
        file.Position = 0;
        if (n < 2) throw new InvalidDataException($"{path}: file is empty or truncated ({file.Length} bytes): no NIfTI header");
        return magic[0] == 0x1f && magic[1] == 0x8b;
    }

    private static NiftiHeader ReadHeaderFrom(Stream stream, string path, bool gzipped)
    {
        Span<byte> bytes = stackalloc byte[NiftiLayout.Nifti2HeaderSize];
        ReadFully(stream, bytes[..4], path, "sizeof_hdr");
        var detected = NiftiLayout.DetectVersion(bytes[..4]) ?? throw new InvalidDataException(
            $"{path}: sizeof_hdr={BinaryPrimitives.ReadInt32LittleEndian(bytes)} is neither 348 (NIfTI-1) nor 540 (NIfTI-2) " +
            "in either byte order: not a NIfTI file");
        int size = detected.Version == NiftiVersion.Nifti1 ? NiftiLayout.Nifti1HeaderSize : NiftiLayout.Nifti2HeaderSize;
        ReadFully(stream, bytes[4..size], path, "header");
        var header = NiftiLayout.Decode(bytes[..size], detected.Version, detected.BigEndian, out string magic);
        header.IsGzipped = gzipped;
        NiftiHeaderValidation.Validate(header, magic, path);
        return header;
    }

    private static T[] ReadArray<T>(Stream stream, NiftiHeader header, string path) where T : unmanaged
    {
        var result = GC.AllocateUninitializedArray<T>(checked((int)header.VoxelCount));
        int elementSize = header.BytesPerVoxel;
        int chunk = ChunkBytes / elementSize;
        for (int start = 0; start < result.Length; start += chunk)
        {
            var bytes = MemoryMarshal.AsBytes(result.AsSpan(start, Math.Min(chunk, result.Length - start)));
            ReadFully(stream, bytes, path, "voxel data");
        }
        if (header.IsBigEndian != !BitConverter.IsLittleEndian) SwapInPlace(result.AsSpan());
        return result;
    }

    private static void SwapInPlace<T>(Span<T> values) where T : unmanaged
    {
        // Byte order is about element width only: swap floats as same-width integers.
        int size = System.Runtime.CompilerServices.Unsafe.SizeOf<T>();
        if (size == 2) { var s = MemoryMarshal.Cast<T, short>(values); BinaryPrimitives.ReverseEndianness(s, s); }
        else if (size == 4) { var s = MemoryMarshal.Cast<T, int>(values); BinaryPrimitives.ReverseEndianness(s, s); }
        else if (size == 8) { var s = MemoryMarshal.Cast<T, long>(values); BinaryPrimitives.ReverseEndianness(s, s); }
    }

    private static void ReadFully(Stream stream, Span<byte> destination, string path, string what)
    {
        int got;
        try
        {
            got = stream.ReadAtLeast(destination, destination.Length, throwOnEndOfStream: false);
        }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException($"{path}: corrupt gzip data while reading the {what}: {e.Message}", e);
        }
        catch (IOException e)
        {
            throw new InvalidDataException($"{path}: cannot read the {what}: {e.Message}", e);
        }
        if (got < destination.Length)
            throw new InvalidDataException($"{path}: file is truncated: it ends inside the {what} ({destination.Length - got} bytes missing)");
    }

    private static void Skip(Stream stream, long count, string path)
    {
        if (count <= 0) return;
        if (stream is NonClosingStream { CanSeek: true })
        {
            stream.Seek(count, SeekOrigin.Current);
            return;
        }
        var buffer = new byte[(int)Math.Min(count, 1 << 16)];
        while (count > 0)
        {
            int n = (int)Math.Min(count, buffer.Length);
            ReadFully(stream, buffer.AsSpan(0, n), path, "header extensions before vox_offset");
            count -= n;
        }
    }

    // Both decompressors report a stream cut inside its last block or trailer as a normal end, so we check the trailer:
    // its ISIZE field (last 4 bytes of the file) must equal the decompressed length mod 2^32.
    private static readonly byte[] BgzfEofBlock =
        [0x1f, 0x8b, 0x08, 0x04, 0, 0, 0, 0, 0, 0xff, 0x06, 0, 0x42, 0x43, 0x02, 0, 0x1b, 0, 0x03, 0, 0, 0, 0, 0, 0, 0, 0, 0];

    private static void VerifyGzipComplete(Stream gzip, FileStream file, long consumed, string path)
    {
        var rest = new byte[1 << 16];
        long total = consumed;
        while (true)
        {
            int n;
            try { n = gzip.Read(rest); }
            catch (InvalidDataException e) { throw new InvalidDataException($"{path}: corrupt gzip data after the voxels: {e.Message}", e); }
            if (n == 0) break;
            total += n;
        }
        Span<byte> tail = stackalloc byte[BgzfEofBlock.Length];
        if (file.Length < 18) throw new InvalidDataException($"{path}: gzip stream is truncated ({file.Length} bytes)");
        int tailLength = (int)Math.Min(file.Length, tail.Length);
        file.Seek(-tailLength, SeekOrigin.End);
        file.ReadExactly(tail[..tailLength]);
        uint isize = BinaryPrimitives.ReadUInt32LittleEndian(tail[(tailLength - 4)..tailLength]);
        if (isize == (uint)total) return;
        // Block-gzipped files (bgzip) are several members ending in an empty EOF block; its presence proves the end.
        if (tailLength == BgzfEofBlock.Length && tail.SequenceEqual(BgzfEofBlock)) return;
        throw new InvalidDataException(
            $"{path}: gzip stream is truncated or corrupt: the trailer's size field says {isize} bytes, {total} were decompressed");
    }

    /// <summary>Lets a FileStream be used in a <c>using</c> next to GZipStream without closing the file twice.</summary>
    private sealed class NonClosingStream(Stream inner) : Stream
    {
        public override bool CanRead => true;
        public override bool CanSeek => inner.CanSeek;
        public override bool CanWrite => false;
        public override long Length => inner.Length;
        public override long Position { get => inner.Position; set => inner.Position = value; }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count) => inner.Read(buffer, offset, count);
        public override int Read(Span<byte> buffer) => inner.Read(buffer);
        public override long Seek(long offset, SeekOrigin origin) => inner.Seek(offset, origin);
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}

/// <summary>scl_slope / scl_inter applied to a stored voxel array (see <see cref="NiftiReader"/> for the rules).</summary>
internal static class VoxelScaling
{
    private const int ChunkLength = 1 << 20;

    /// <summary>Float32 when every value of the stored type is exact in float32, else float64.</summary>
    public static VoxelType OutputTypeFor(VoxelType stored) => stored switch
    {
        VoxelType.UInt8 or VoxelType.Int8 or VoxelType.Int16 or VoxelType.UInt16 or VoxelType.Float32 => VoxelType.Float32,
        _ => VoxelType.Float64,
    };

    // Dispatch on the stored type, not the array: the runtime lets sbyte[] pass as byte[] (ushort[] as short[], ...).
    public static Array Apply(Array raw, VoxelType stored, VoxelType output, double slope, double inter) => stored switch
    {
        VoxelType.UInt8 => Scale((byte[])raw, output, slope, inter),
        VoxelType.Int8 => Scale((sbyte[])raw, output, slope, inter),
        VoxelType.Int16 => Scale((short[])raw, output, slope, inter),
        VoxelType.UInt16 => Scale((ushort[])raw, output, slope, inter),
        VoxelType.Int32 => Scale((int[])raw, output, slope, inter),
        VoxelType.UInt32 => Scale((uint[])raw, output, slope, inter),
        VoxelType.Int64 => Scale((long[])raw, output, slope, inter),
        VoxelType.Float32 => Scale((float[])raw, output, slope, inter),
        VoxelType.Float64 => Scale((double[])raw, output, slope, inter),
        _ => throw new InvalidOperationException($"unexpected voxel type {stored}"),
    };

    private static Array Scale<T>(T[] source, VoxelType output, double slope, double inter) where T : unmanaged, INumberBase<T>
    {
        int chunks = (source.Length + ChunkLength - 1) / ChunkLength;
        if (output == VoxelType.Float32)
        {
            var result = GC.AllocateUninitializedArray<float>(source.Length);
            Parallel.For(0, chunks, chunk =>
            {
                int start = chunk * ChunkLength, length = Math.Min(ChunkLength, source.Length - start);
                var src = source.AsSpan(start, length);
                var dst = result.AsSpan(start, length);
                for (int i = 0; i < src.Length; i++) dst[i] = (float)(double.CreateTruncating(src[i]) * slope + inter);
            });
            return result;
        }
        else
        {
            // float64 sources are scaled in place: the raw values are not needed afterwards.
            var result = source as double[] ?? GC.AllocateUninitializedArray<double>(source.Length);
            Parallel.For(0, chunks, chunk =>
            {
                int start = chunk * ChunkLength, length = Math.Min(ChunkLength, source.Length - start);
                var src = source.AsSpan(start, length);
                var dst = result.AsSpan(start, length);
                for (int i = 0; i < src.Length; i++) dst[i] = double.CreateTruncating(src[i]) * slope + inter;
            });
            return result;
        }
    }
}
