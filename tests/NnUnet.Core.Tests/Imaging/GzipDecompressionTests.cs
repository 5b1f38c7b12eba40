using System.IO.Compression;
using NnUnet.Core.Imaging;
using NnUnet.Core.Imaging.Nifti;

namespace NnUnet.Core.Tests.Imaging;

/// <summary>
/// The ISA-L inflate path against .NET's GZipStream on the same bytes: single and concatenated members, stored and
/// compressed blocks, reads of every size, corrupt and cut streams; and a .nii.gz read through both gives equal images.
/// </summary>
public sealed class GzipDecompressionTests
{
    [Fact]
    public void IsalIsAvailableOnThisMachine()
    {
        // scripts/setup.sh installs libisal2 on Debian; without it .nii.gz loading silently takes the 2x slower path
        Assert.True(GzipDecompression.IsalAvailable, "ISA-L is not used: " + GzipDecompression.Backend + " (run scripts/setup.sh)");
        Assert.Equal("isa-l", GzipDecompression.Backend);
    }

    private static byte[] Payload(int length, int seed)
    {
        var rng = new Random(seed);
        var bytes = new byte[length];
        // runs and noise, so that deflate emits both matches and literals
        for (int i = 0; i < length; i++) bytes[i] = (i / 1000 % 3 == 0) ? (byte)rng.Next(256) : (byte)(i / 97);
        return bytes;
    }

    private static byte[] Gzip(params (byte[] Data, CompressionLevel Level)[] members)
    {
        using var output = new MemoryStream();
        foreach (var (data, level) in members)
            using (var gzip = new GZipStream(output, level, leaveOpen: true)) gzip.Write(data);
        return output.ToArray();
    }

    private static byte[] ReadAll(byte[] compressed, bool isal, int chunk)
    {
        using var stream = GzipDecompression.Open(new MemoryStream(compressed), isal);
        using var result = new MemoryStream();
        var buffer = new byte[chunk];
        int n;
        while ((n = stream.Read(buffer, 0, buffer.Length)) > 0) result.Write(buffer, 0, n);
        return result.ToArray();
    }

    [Theory]
    [InlineData(1)]
    [InlineData(4093)]
    [InlineData(1 << 20)]
    [InlineData(3 << 20)]
    public void SameBytesAsGZipStream_ForConcatenatedMembersAndAnyReadSize(int chunk)
    {
        var a = Payload(1_500_000, 1);
        var b = Payload(70_000, 2);
        var c = Payload(2_000_000, 3);
        var compressed = Gzip((a, CompressionLevel.Optimal), (b, CompressionLevel.NoCompression), (c, CompressionLevel.Fastest));
        byte[] expected = [.. a, .. b, .. c];
        if (chunk == 1) compressed = Gzip((b, CompressionLevel.Optimal)); // byte-at-a-time over a small stream only
        if (chunk == 1) expected = b;

        var viaIsal = ReadAll(compressed, isal: true, chunk);
        var viaDotnet = ReadAll(compressed, isal: false, chunk);
        Assert.Equal(expected.Length, viaIsal.Length);
        Assert.True(expected.AsSpan().SequenceEqual(viaIsal));
        Assert.True(viaDotnet.AsSpan().SequenceEqual(viaIsal));
    }

    [Fact]
    public void CorruptCrcOrDeflateData_IsInvalidData()
    {
        var compressed = Gzip((Payload(300_000, 4), CompressionLevel.Optimal));
        var badCrc = (byte[])compressed.Clone();
        badCrc[^6] ^= 0x40;
        Assert.Throws<InvalidDataException>(() => ReadAll(badCrc, isal: true, 1 << 16));

        var badBlock = (byte[])compressed.Clone();
        for (int i = 40; i < 60; i++) badBlock[i] = 0xff; // inside the first block's Huffman tables / codes
        Assert.ThrowsAny<InvalidDataException>(() => ReadAll(badBlock, isal: true, 1 << 16));
    }

    [Fact]
    public void CutStream_EndsEarlyWithoutError_LikeGZipStream()
    {
        var data = Payload(500_000, 5);
        var compressed = Gzip((data, CompressionLevel.Optimal));
        var cut = compressed.AsSpan(0, compressed.Length / 2).ToArray();
        var viaIsal = ReadAll(cut, isal: true, 1 << 16);
        Assert.InRange(viaIsal.Length, 1, data.Length - 1);
        Assert.True(data.AsSpan(0, viaIsal.Length).SequenceEqual(viaIsal));
    }

    [Fact]
    public void NiftiGz_ReadsTheSameThroughEitherDecompressor()
    {
        var dir = Directory.CreateTempSubdirectory("nnunet-gzip-").FullName;
        try
        {
            var rng = new Random(6);
            var voxels = new short[40 * 64 * 48];
            for (int i = 0; i < voxels.Length; i++) voxels[i] = (short)(rng.Next(-1024, 1500) / (i % 5 + 1));
            var image = new MedicalImage(1, 40, 64, 48, VoxelType.Int16, voxels, ImageGeometry.Identity());
            var path = Path.Combine(dir, "ct.nii.gz");
            NiftiWriter.Write(path, image);
            var read = NiftiReader.Read(path); // the default decompressor: ISA-L on this machine (see the first test)
            Assert.Equal(voxels, (short[])read.Voxels);

            using var file = File.OpenRead(path);
            using var dotnet = GzipDecompression.Open(file, isal: false);
            var bytes = new byte[352 + voxels.Length * 2];
            dotnet.ReadExactly(bytes);
            Assert.True(System.Runtime.InteropServices.MemoryMarshal.AsBytes(voxels.AsSpan()).SequenceEqual(bytes.AsSpan(352)));
        }
        finally { Directory.Delete(dir, true); }
    }
}
