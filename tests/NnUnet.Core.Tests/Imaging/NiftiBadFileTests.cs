using System.Buffers.Binary;
using System.IO.Compression;
using NnUnet.Core.Imaging;
using NnUnet.Core.Imaging.Nifti;

namespace NnUnet.Core.Tests.Imaging;

/// <summary>Broken files raise InvalidDataException naming the file and the field; never a crash or garbage.</summary>
public sealed class NiftiBadFileTests : IDisposable
{
    private readonly TempFolder _temp = new();
    private static readonly byte[] Good = File.ReadAllBytes(Path.Combine(RepoPaths.NiftiFixtures, "dtype_int16.nii"));

    public void Dispose() => _temp.Dispose();

    private string Save(string name, byte[] bytes, bool gzip = false)
    {
        string path = _temp.File(name);
        if (gzip)
        {
            using var file = File.Create(path);
            using var zip = new GZipStream(file, CompressionLevel.Fastest);
            zip.Write(bytes);
        }
        else File.WriteAllBytes(path, bytes);
        return path;
    }

    private string Mutated(string name, Action<byte[]> change, bool gzip = false)
    {
        var bytes = (byte[])Good.Clone();
        change(bytes);
        return Save(name, bytes, gzip);
    }

    private static void AssertBad(string path, params string[] mentions)
    {
        // Both entry points must refuse a file whose header is bad.
        var e = Assert.Throws<InvalidDataException>(() => NiftiReader.Read(path));
        Assert.StartsWith(path, e.Message);
        foreach (var m in mentions) Assert.Contains(m, e.Message);
    }

    private static void I16(byte[] b, int at, short v) => BinaryPrimitives.WriteInt16LittleEndian(b.AsSpan(at), v);
    private static void I32(byte[] b, int at, int v) => BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(at), v);
    private static void F32(byte[] b, int at, float v) => BinaryPrimitives.WriteSingleLittleEndian(b.AsSpan(at), v);

    [Fact]
    public void TheUnchangedCopyReads() => Assert.Equal(210, NiftiReader.Read(Mutated("good.nii", _ => { })).Voxels.Length);

    [Fact]
    public void EmptyFile() => AssertBad(Save("empty.nii", []), "empty");

    [Fact]
    public void TruncatedHeader() => AssertBad(Save("short.nii", Good[..200]), "truncated", "header");

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void TruncatedVoxels(bool gzip) => AssertBad(Save($"cut{gzip}.nii" + (gzip ? ".gz" : ""), Good[..(Good.Length - 10)], gzip), "truncated", "voxel");

    [Theory]
    [InlineData(1)]
    [InlineData(4)]
    [InlineData(8)]
    [InlineData(12)]
    [InlineData(100)]
    public void TruncatedGzipStream(int cut)
    {
        // .NET's GZipStream does not notice a stream cut in its trailer or last block; the reader must.
        var gz = File.ReadAllBytes(Save("whole.nii.gz", Good, gzip: true));
        string path = Save($"gzcut{cut}.nii.gz", gz[..(gz.Length - cut)]);
        var e = Assert.Throws<InvalidDataException>(() => NiftiReader.Read(path));
        Assert.StartsWith(path, e.Message);
        Assert.Contains("truncated", e.Message);
    }

    [Fact]
    public void CorruptGzipStream()
    {
        var gz = File.ReadAllBytes(Save("whole.nii.gz", Good, gzip: true));
        for (int i = gz.Length / 2; i < gz.Length / 2 + 16; i++) gz[i] ^= 0x5a;
        string path = Save("corrupt.nii.gz", gz);
        var e = Assert.Throws<InvalidDataException>(() => NiftiReader.Read(path));
        Assert.StartsWith(path, e.Message);
    }

    private static byte[] GzipMember(ReadOnlySpan<byte> bytes)
    {
        var ms = new MemoryStream();
        using (var zip = new GZipStream(ms, CompressionLevel.Fastest, leaveOpen: true)) zip.Write(bytes);
        return ms.ToArray();
    }

    private static readonly byte[] BgzfEof =
        [0x1f, 0x8b, 0x08, 0x04, 0, 0, 0, 0, 0, 0xff, 0x06, 0, 0x42, 0x43, 0x02, 0, 0x1b, 0, 0x03, 0, 0, 0, 0, 0, 0, 0, 0, 0];

    [Fact]
    public void BlockGzippedFileReads()
    {
        // bgzip: several members, the last one the empty EOF block (its size field 0 does not match the total).
        byte[] file = [.. GzipMember(Good.AsSpan(0, 500)), .. GzipMember(Good.AsSpan(500)), .. BgzfEof];
        var image = NiftiReader.Read(Save("bgzip.nii.gz", file));
        Assert.Equal((short[])NiftiReader.Read(Path.Combine(RepoPaths.NiftiFixtures, "dtype_int16.nii")).Voxels, (short[])image.Voxels);
        // Cut the EOF block off: now the file is truncated and must be refused.
        string cut = Save("bgzipcut.nii.gz", file[..(file.Length - BgzfEof.Length - 3)]);
        Assert.Contains("truncated", Assert.Throws<InvalidDataException>(() => NiftiReader.Read(cut)).Message);
    }

    [Fact]
    public void WrongSizeofHdr() => AssertBad(Mutated("sizeof.nii", b => I32(b, 0, 349)), "sizeof_hdr");

    [Fact]
    public void WrongMagic() => AssertBad(Mutated("magic.nii", b => b[345] = (byte)'x'), "magic");

    [Fact]
    public void HeaderImagePairIsRefusedClearly() => AssertBad(Mutated("pair.nii", b => b[345] = (byte)'i'), "magic", ".hdr/.img");

    [Theory]
    [InlineData(128, "RGB24")]
    [InlineData(32, "complex64")]
    [InlineData(0, "unknown")]
    [InlineData(3, "not a NIfTI datatype")]
    public void UnsupportedDatatype(short code, string name) =>
        AssertBad(Mutated($"dt{code}.nii", b => I16(b, 70, code)), $"datatype={code}", name);

    [Fact]
    public void BitpixContradictingDatatype() => AssertBad(Mutated("bitpix.nii", b => I16(b, 72, 32)), "bitpix=32");

    [Theory]
    [InlineData(0, 0, "dim[0]=0")]
    [InlineData(0, 8, "dim[0]=8")]
    [InlineData(0, -1, "dim[0]=-1")]
    [InlineData(3, 0, "dim[3]=0")]
    [InlineData(2, -5, "dim[2]=-5")]
    public void NonsenseDims(int index, short value, string mention) =>
        AssertBad(Mutated($"dim{index}_{value}.nii", b => I16(b, 40 + 2 * index, value)), mention);

    [Fact]
    public void FifthDimensionIsRefused() =>
        AssertBad(Mutated("5d.nii", b => { I16(b, 40, 5); I16(b, 48, 1); I16(b, 50, 2); }), "dim[5]=2", "more than 4 dimensions");

    [Fact]
    public void TrailingUnitDimensionsAreFine()
    {
        var image = NiftiReader.Read(Mutated("5d1.nii", b => { I16(b, 40, 5); I16(b, 48, 1); I16(b, 50, 1); }));
        Assert.Equal((1, 7, 6, 5), (image.Channels, image.SizeZ, image.SizeY, image.SizeX));
    }

    [Fact]
    public void VoxelCountOverflow() =>
        AssertBad(Mutated("huge.nii", b => { I16(b, 40, 4); for (int i = 1; i <= 4; i++) I16(b, 40 + 2 * i, short.MaxValue); }), "dim=", "more voxels");

    [Theory]
    [InlineData(float.NaN)]
    [InlineData(float.PositiveInfinity)]
    public void NonFinitePixdim(float value) => AssertBad(Mutated($"pixdim{value}.nii", b => F32(b, 76 + 8, value)), "pixdim[2]");

    [Fact]
    public void ZeroSpacingFromQform() =>
        AssertBad(Mutated("zero.nii", b => { I16(b, 254, 0); F32(b, 76 + 12, 0); }), "pixdim[3]=0", "zero voxel size");

    [Fact]
    public void ZeroSpacingFromSform() =>
        AssertBad(Mutated("zerosform.nii", b => { F32(b, 280, 0); F32(b, 296, 0); F32(b, 312, 0); }), "sform", "zero length");

    [Fact]
    public void NonFiniteSform() => AssertBad(Mutated("srow.nii", b => F32(b, 296 + 4, float.NaN)), "srow_y[1]");

    [Fact]
    public void BrokenQuaternion() =>
        AssertBad(Mutated("quat.nii", b => { I16(b, 254, 0); F32(b, 256, 0.9f); F32(b, 260, 0.9f); }), "quatern_b/c/d");

    [Fact]
    public void NegativePixdimIsReadAsItsMagnitude()
    {
        // Documented choice (as ITK): the sign of pixdim carries no orientation; qfac and the quaternion do.
        var header = NiftiReader.ReadHeader(Mutated("negative.nii", b => { I16(b, 254, 0); F32(b, 76 + 4, -0.75f); }));
        Assert.Equal("qform", header.GeometrySource);
        Assert.Equal(0.75, header.Geometry.Spacing[0]);
        Assert.Equal(-1, header.Geometry.Direction[0]);
    }

    [Theory]
    [InlineData(float.NaN, "vox_offset=NaN")]
    [InlineData(100f, "inside the 348-byte header")]
    [InlineData(352.5f, "vox_offset=352.5")]
    [InlineData(-16f, "vox_offset=-16")]
    public void BadVoxOffset(float value, string mention) => AssertBad(Mutated($"off{value}.nii", b => F32(b, 108, value)), mention);

    [Fact]
    public void VoxOffsetPastTheDataIsATruncation() => AssertBad(Mutated("far.nii", b => F32(b, 108, 4096)), "truncated");

    [Fact]
    public void ZeroVoxOffsetMeansRightAfterTheHeader()
    {
        var expected = NiftiReader.Read(Path.Combine(RepoPaths.NiftiFixtures, "dtype_int16.nii"));
        var image = NiftiReader.Read(Mutated("off0.nii", b => F32(b, 108, 0)));
        Assert.Equal((short[])expected.Voxels, (short[])image.Voxels);
    }

    [Fact]
    public void InfiniteInterceptWithValidSlope() =>
        AssertBad(Mutated("inter.nii", b => { F32(b, 112, 2); F32(b, 116, float.PositiveInfinity); }), "scl_inter");

    [Fact]
    public void InfiniteSlopeMeansNoScaling()
    {
        // As nibabel: a non-finite slope is "no scaling", the stored type is kept.
        var image = NiftiReader.Read(Mutated("slopeinf.nii", b => F32(b, 112, float.PositiveInfinity)));
        Assert.Equal(VoxelType.Int16, image.Type);
    }

    [Fact]
    public void ScaledInt8UsesSignedValues()
    {
        var raw = NiftiReader.Read(Path.Combine(RepoPaths.NiftiFixtures, "dtype_int8.nii"));
        string path = Save("int8scaled.nii", Rescaled(File.ReadAllBytes(Path.Combine(RepoPaths.NiftiFixtures, "dtype_int8.nii")), 2, 1));
        var scaled = NiftiReader.Read(path);
        Assert.Equal(VoxelType.Float32, scaled.Type);
        var a = (sbyte[])raw.Voxels;
        var f = (float[])scaled.Voxels;
        for (int i = 0; i < a.Length; i++) Assert.Equal(a[i] * 2f + 1f, f[i]);
    }

    [Fact]
    public void HeaderErrorsAlsoComeFromReadHeader()
    {
        string path = Mutated("dt.nii.gz", b => I16(b, 70, 128), gzip: true);
        var e = Assert.Throws<InvalidDataException>(() => NiftiReader.ReadHeader(path));
        Assert.StartsWith(path, e.Message);
        Assert.Contains("datatype=128", e.Message);
    }

    [Fact]
    public void MissingFileIsFileNotFound() =>
        Assert.Throws<FileNotFoundException>(() => NiftiReader.Read(_temp.File("nope.nii.gz")));

    private static byte[] Rescaled(byte[] bytes, float slope, float inter)
    {
        F32(bytes, 112, slope);
        F32(bytes, 116, inter);
        return bytes;
    }
}
