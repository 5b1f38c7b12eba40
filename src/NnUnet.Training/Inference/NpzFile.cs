using System.IO.Compression;
using NnUnet.Core.Preprocessing;

namespace NnUnet.Training.Inference;

/// <summary>
/// numpy's <c>.npz</c> (what <c>np.savez_compressed</c> writes and <c>np.load</c> reads): a zip archive with one
/// deflated <c>NAME.npy</c> per array. Written to a temporary file and renamed, so a reader never sees half a file.
/// </summary>
public static class NpzFile
{
    /// <summary>Writes one float32 array as <c>name.npy</c> inside the archive at <paramref name="path"/>.</summary>
    public static void Write(string path, string name, ReadOnlySpan<float> data, ReadOnlySpan<int> shape,
        CompressionLevel level = CompressionLevel.Fastest)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        string directory = Path.GetDirectoryName(Path.GetFullPath(path))!;
        Directory.CreateDirectory(directory);
        string temp = Path.Combine(directory, $".tmp-{Environment.ProcessId}-{Environment.CurrentManagedThreadId}-{Path.GetFileName(path)}");
        try
        {
            using (var file = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16))
            using (var zip = new ZipArchive(file, ZipArchiveMode.Create))
            {
                var entry = zip.CreateEntry(name + ".npy", level);
                using var stream = entry.Open();
                NpyFile.Write(stream, data, shape);
            }
            File.Move(temp, path, overwrite: true);
        }
        finally
        {
            if (File.Exists(temp)) File.Delete(temp);
        }
    }

    /// <summary>Reads the float32 array <c>name.npy</c> from an <c>.npz</c> archive.</summary>
    public static float[] ReadFloat32(string path, string name, out int[] shape)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path} does not exist", path);
        using var zip = ZipFile.OpenRead(path);
        var entry = zip.GetEntry(name + ".npy")
                    ?? throw new InvalidDataException($"{path}: no array '{name}' (holds: {string.Join(", ", zip.Entries.Select(e => e.FullName))})");
        // NpyFile reads from files; extract the entry to a temporary file next to the archive
        string temp = Path.Combine(Path.GetTempPath(), $"npz-{Environment.ProcessId}-{Guid.NewGuid():N}.npy");
        try
        {
            entry.ExtractToFile(temp);
            return NpyFile.Read<float>(temp, out shape);
        }
        catch (InvalidDataException ex)
        {
            throw new InvalidDataException($"{path}: array '{name}': {ex.Message}", ex);
        }
        finally
        {
            File.Delete(temp);
        }
    }
}
