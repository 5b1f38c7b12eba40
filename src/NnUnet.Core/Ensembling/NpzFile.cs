using System.IO.Compression;
using System.Runtime.InteropServices;
using NnUnet.Core.Preprocessing;
using NnUnet.Core.IO;

namespace NnUnet.Core.Ensembling;

/// <summary>
/// numpy's .npz: a zip of .npy entries named <c>KEY.npy</c> (<c>np.savez_compressed</c> deflates them). Entry headers
/// are parsed by <see cref="NpyFile"/>; this type only handles the zip around them. nnU-Net stores softmax
/// probabilities as <c>CASE.npz</c> with key <c>probabilities</c>, float32 (classes, z, y, x).
/// </summary>
public static class NpzFile
{
    /// <summary>Reads entry <paramref name="key"/> as float32 (float64 entries are converted).</summary>
    public static float[] ReadFloat32(string path, string key, out int[] shape)
    {
        using var zip = OpenZip(path);
        var entry = zip.GetEntry(key + ".npy") ?? throw new InvalidDataException($"{path}: no array '{key}' (entries: {string.Join(", ", zip.Entries.Select(e => e.FullName))})");
        using var stream = entry.Open();
        string name = $"{path}:{key}";
        var header = NpyFile.ReadHeader(stream, name);
        shape = header.Shape;
        long count = header.Count;
        if (count > Array.MaxLength) throw new InvalidDataException($"{name}: {count} elements are too many for one array");
        switch (header.DType)
        {
            case NpyDType.Float32:
            {
                var data = GC.AllocateUninitializedArray<float>((int)count);
                ReadExactly(stream, MemoryMarshal.AsBytes(data.AsSpan()), name);
                return data;
            }
            case NpyDType.Float64:
            {
                var wide = GC.AllocateUninitializedArray<double>((int)count);
                ReadExactly(stream, MemoryMarshal.AsBytes(wide.AsSpan()), name);
                var data = new float[count];
                for (int i = 0; i < wide.Length; i++) data[i] = (float)wide[i];
                return data;
            }
            default:
                throw new InvalidDataException($"{name}: holds {header.DType}, expected float32 probabilities");
        }
    }

    /// <summary>Writes one array as <c>np.savez_compressed(path, key=array)</c> does (atomically: temp file + rename).</summary>
    public static void Write<T>(string path, string key, ReadOnlySpan<T> data, ReadOnlySpan<int> shape, bool compressed = true) where T : unmanaged
    {
        using var output = AtomicFile.Create(path);
        using (var zip = new ZipArchive(output.Stream, ZipArchiveMode.Create, leaveOpen: true))
        {
            var entry = zip.CreateEntry(key + ".npy", compressed ? CompressionLevel.Fastest : CompressionLevel.NoCompression);
            using var stream = entry.Open();
            NpyFile.Write(stream, data, shape);
        }
        output.Commit();
    }

    private static ZipArchive OpenZip(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path} does not exist", path);
        try
        {
            return ZipFile.OpenRead(path);
        }
        catch (InvalidDataException ex)
        {
            throw new InvalidDataException($"{path}: not an .npz (zip) file ({ex.Message})", ex);
        }
    }

    private static void ReadExactly(Stream stream, Span<byte> buffer, string name)
    {
        int total = 0;
        while (total < buffer.Length)
        {
            int read = stream.Read(buffer[total..]);
            if (read == 0) throw new InvalidDataException($"{name}: truncated data ({total} of {buffer.Length} bytes)");
            total += read;
        }
    }
}
