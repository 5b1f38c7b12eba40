using System.Buffers.Binary;
using System.Diagnostics;
using System.IO.Compression;
using NnUnet.Core.Imaging;
using NnUnet.Core.Imaging.Nifti;
using Xunit.Abstractions;

namespace NnUnet.Core.Tests.Reliability;

/// <summary>
/// Mutates valid NIfTI-1 files (header bytes, targeted fields, truncation, gzip corruption) with a fixed seed and reads
/// each one: the result must be a consistent image or an InvalidDataException that starts with the file's path; never
/// another exception, never a read longer than <see cref="PerReadTimeout"/>, never an allocation far beyond the file.
/// </summary>
public sealed class NiftiFuzzTests(ITestOutputHelper output) : IDisposable
{
    public const int Cases = 4000;
    public const int Seed = 20261128;
    private static readonly TimeSpan PerReadTimeout = TimeSpan.FromSeconds(10);
    // a 4-byte file may claim 2 GB: anything above this per read means the reader trusted the header
    private const long MaxAllocatedBytes = 32L << 20;

    private readonly string _dir = Directory.CreateTempSubdirectory("nnunet-fuzz-").FullName;

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    private enum Mutation { HeaderBytes, Dims, DataType, VoxOffset, PixDim, XForm, Scaling, Truncate, GzipBytes, GzipTruncate }

    [Fact]
    public void Mutated_files_give_an_image_or_a_clear_error()
    {
        var bases = new[] { BaseFile(VoxelType.Int16, channels: 1), BaseFile(VoxelType.Float32, channels: 2), BaseFile(VoxelType.UInt8, channels: 1) };
        var random = new Random(Seed);
        var outcomes = new Dictionary<string, int>(StringComparer.Ordinal);
        var clock = Stopwatch.StartNew();
        for (int i = 0; i < Cases; i++)
        {
            var mutation = (Mutation)(i % 10);
            byte[] raw = (byte[])bases[random.Next(bases.Length)].Clone();
            byte[] content = Mutate(raw, mutation, random, out bool gzipped);
            string path = Path.Combine(_dir, $"case{i % 8}" + (gzipped ? ".nii.gz" : ".nii"));
            File.WriteAllBytes(path, content);
            string outcome = ReadGuarded(path, $"case {i} ({mutation})");
            outcomes[outcome] = outcomes.GetValueOrDefault(outcome) + 1;
        }
        output.WriteLine($"{Cases} cases in {clock.Elapsed.TotalSeconds:F1} s (seed {Seed})");
        foreach (var (outcome, count) in outcomes.OrderByDescending(p => p.Value)) output.WriteLine($"{count,6}  {outcome}");
        // the mutations must reach both outcomes, or the test is not testing the reader
        Assert.True(outcomes.GetValueOrDefault("image") > Cases / 20, "too few mutated files were still readable");
        Assert.True(outcomes.Count > 10, "too few distinct errors: the mutations do not reach the validation");
    }

    private static string ReadGuarded(string path, string label)
    {
        long allocated = 0;
        var read = Task.Run(() =>
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            try { return NiftiReader.Read(path); }
            finally { allocated = GC.GetAllocatedBytesForCurrentThread() - before; }
        });
        bool finished;
        try { finished = read.Wait(PerReadTimeout); }
        catch (AggregateException) { finished = true; }
        Assert.True(finished, $"{label}: NiftiReader.Read did not finish within {PerReadTimeout.TotalSeconds} s");
        Assert.True(allocated < MaxAllocatedBytes, $"{label}: the read allocated {allocated} bytes for a {new FileInfo(path).Length}-byte file");
        if (read.IsFaulted)
        {
            var ex = read.Exception!.InnerException!;
            Assert.True(ex is InvalidDataException, $"{label}: {ex.GetType().Name} instead of InvalidDataException: {ex}");
            Assert.StartsWith(path + ": ", ex.Message);
            // group by the field named after the path, digits dropped, to summarise what the mutations reached
            string what = ex.Message[(path.Length + 2)..];
            int cut = what.IndexOfAny(['=', ':', '(']);
            return "error: " + (cut > 0 ? what[..cut] : what[..Math.Min(40, what.Length)]);
        }
        var image = read.Result;
        Assert.True(image.Channels >= 1 && image.SizeZ >= 1 && image.SizeY >= 1 && image.SizeX >= 1, $"{label}: empty shape");
        Assert.Equal((long)image.Channels * image.VoxelsPerChannel, image.Voxels.LongLength);
        Assert.Equal(MedicalImage.ElementType(image.Type), image.Voxels.GetType().GetElementType());
        return "image";
    }

    private byte[] BaseFile(VoxelType type, int channels)
    {
        const int z = 3, y = 4, x = 5;
        int n = channels * z * y * x;
        Array voxels = type switch
        {
            VoxelType.Int16 => Enumerable.Range(0, n).Select(v => (short)(v * 7 - 100)).ToArray(),
            VoxelType.Float32 => Enumerable.Range(0, n).Select(v => v * 0.5f).ToArray(),
            _ => Enumerable.Range(0, n).Select(v => (byte)v).ToArray(),
        };
        var geometry = new ImageGeometry([2.0, 0.8, 0.7], [10.0, -5.0, 3.0], [1, 0, 0, 0, 1, 0, 0, 0, 1]);
        var image = new MedicalImage(channels, z, y, x, type, voxels, geometry);
        string path = Path.Combine(_dir, $"base_{type}_{channels}.nii");
        NiftiWriter.Write(path, image);
        return File.ReadAllBytes(path);
    }

    private static byte[] Mutate(byte[] raw, Mutation mutation, Random random, out bool gzipped)
    {
        gzipped = random.Next(3) == 0;
        var header = raw.AsSpan(0, 348);
        switch (mutation)
        {
            case Mutation.HeaderBytes:
                for (int k = random.Next(1, 9); k > 0; k--) header[random.Next(348)] = (byte)random.Next(256);
                break;
            case Mutation.Dims:
                for (int k = random.Next(1, 4); k > 0; k--)
                    BinaryPrimitives.WriteInt16LittleEndian(header[(40 + 2 * random.Next(8))..], InterestingShort(random));
                break;
            case Mutation.DataType:
                BinaryPrimitives.WriteInt16LittleEndian(header[70..], random.Next(2) == 0 ? InterestingShort(random) : (short)(1 << random.Next(12)));
                if (random.Next(2) == 0) BinaryPrimitives.WriteInt16LittleEndian(header[72..], InterestingShort(random));
                break;
            case Mutation.VoxOffset:
                BinaryPrimitives.WriteSingleLittleEndian(header[108..], InterestingFloat(random));
                break;
            case Mutation.PixDim:
                for (int k = random.Next(1, 4); k > 0; k--) BinaryPrimitives.WriteSingleLittleEndian(header[(76 + 4 * random.Next(8))..], InterestingFloat(random));
                break;
            case Mutation.XForm:
                BinaryPrimitives.WriteInt16LittleEndian(header[(252 + 2 * random.Next(2))..], (short)random.Next(-2, 6));
                for (int k = random.Next(0, 4); k > 0; k--) BinaryPrimitives.WriteSingleLittleEndian(header[(256 + 4 * random.Next(18))..], InterestingFloat(random));
                break;
            case Mutation.Scaling:
                BinaryPrimitives.WriteSingleLittleEndian(header[112..], InterestingFloat(random));
                BinaryPrimitives.WriteSingleLittleEndian(header[116..], InterestingFloat(random));
                break;
            case Mutation.Truncate:
                raw = raw[..random.Next(raw.Length)];
                break;
        }
        if (mutation is Mutation.GzipBytes or Mutation.GzipTruncate) gzipped = true;
        if (!gzipped) return raw;
        var compressed = Gzip(raw);
        if (mutation == Mutation.GzipBytes)
            for (int k = random.Next(1, 6); k > 0; k--) compressed[random.Next(compressed.Length)] ^= (byte)random.Next(1, 256);
        else if (mutation == Mutation.GzipTruncate)
            compressed = compressed[..random.Next(compressed.Length)];
        return compressed;
    }

    private static byte[] Gzip(byte[] raw)
    {
        using var memory = new MemoryStream();
        using (var gz = new GZipStream(memory, CompressionLevel.Fastest)) gz.Write(raw);
        return memory.ToArray();
    }

    private static short InterestingShort(Random random) => random.Next(8) switch
    {
        0 => 0,
        1 => -1,
        2 => short.MaxValue,
        3 => short.MinValue,
        4 => 1,
        5 => 8,
        _ => (short)random.Next(short.MinValue, short.MaxValue + 1),
    };

    private static float InterestingFloat(Random random) => random.Next(10) switch
    {
        0 => float.NaN,
        1 => float.PositiveInfinity,
        2 => float.NegativeInfinity,
        3 => 0,
        4 => -1,
        5 => 1e30f,
        6 => 1e-30f,
        7 => float.MaxValue,
        8 => random.Next(0, 2000),
        _ => (float)(random.NextDouble() * 2e6 - 1e6),
    };
}
