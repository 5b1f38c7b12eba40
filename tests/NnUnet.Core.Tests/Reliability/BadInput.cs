using NnUnet.Core.Tests.Imaging;

namespace NnUnet.Core.Tests.Reliability;

/// <summary>The bad-input corpus (tests/fixtures/bad, written by make_bad_fixtures.py) and checks shared by its tests.</summary>
internal static class BadInput
{
    public static string Root => Path.Combine(RepoPaths.RepoRoot, "tests", "fixtures", "bad");
    public static string Nifti(string name) => Path.Combine(Root, "nifti", name);
    public static string Dataset(string name) => Path.Combine(Root, "datasets", name);

    /// <summary>Exception types that mean "a crash" rather than "a clear error": never acceptable for bad input.</summary>
    public static void AssertNotACrash(Exception ex)
    {
        Assert.False(ex is NullReferenceException or IndexOutOfRangeException or ArgumentOutOfRangeException or InvalidCastException
                         or OverflowException or OutOfMemoryException or DivideByZeroException or KeyNotFoundException
                         or NotSupportedException or InvalidOperationException,
            $"crash-type exception {ex.GetType().Name}: {ex}");
    }

    /// <summary>Copies a fixture folder to a fresh temp folder (tests must be free to add files next to it).</summary>
    public static string CopyToTemp(string folder, string tempRoot)
    {
        string target = Path.Combine(tempRoot, Path.GetFileName(folder));
        foreach (string dir in Directory.EnumerateDirectories(folder, "*", SearchOption.AllDirectories))
            Directory.CreateDirectory(Path.Combine(target, Path.GetRelativePath(folder, dir)));
        Directory.CreateDirectory(target);
        foreach (string file in Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories))
            File.Copy(file, Path.Combine(target, Path.GetRelativePath(folder, file)));
        return target;
    }

    /// <summary>Every file under <paramref name="root"/> with its bytes and last-write time, to prove a failure wrote nothing.</summary>
    public static Dictionary<string, (byte[] Bytes, DateTime WriteTime)> Snapshot(string root)
    {
        var result = new Dictionary<string, (byte[], DateTime)>(StringComparer.Ordinal);
        foreach (string file in Directory.EnumerateFiles(root, "*", SearchOption.AllDirectories))
            result[Path.GetRelativePath(root, file)] = (File.ReadAllBytes(file), File.GetLastWriteTimeUtc(file));
        return result;
    }

    public static void AssertUnchanged(Dictionary<string, (byte[] Bytes, DateTime WriteTime)> before, string root)
    {
        var after = Snapshot(root);
        Assert.Equal(before.Keys.Order(StringComparer.Ordinal), after.Keys.Order(StringComparer.Ordinal));
        foreach (var (file, (bytes, time)) in before)
        {
            Assert.True(bytes.AsSpan().SequenceEqual(after[file].Bytes), $"{file} was modified");
            Assert.Equal(time, after[file].WriteTime);
        }
    }
}
