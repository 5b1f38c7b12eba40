using System.Text.Json;
using NnUnet.Core.Preprocessing;

namespace NnUnet.Core.Tests.Resampling;

/// <summary>Reads tests/fixtures/resampling (written by make_resampling_fixtures.py with skimage/scipy).</summary>
internal static class ResamplingFixtures
{
    public static string Folder { get; } = FindFolder();

    private static string FindFolder()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            string candidate = Path.Combine(dir.FullName, "tests", "fixtures", "resampling");
            if (File.Exists(Path.Combine(candidate, "cases.json"))) return candidate;
        }
        throw new DirectoryNotFoundException("tests/fixtures/resampling not found above " + AppContext.BaseDirectory);
    }

    public static JsonElement Manifest { get; } = JsonDocument.Parse(File.ReadAllText(Path.Combine(Folder, "cases.json"))).RootElement;

    public static IEnumerable<object[]> CaseNames(string kind)
    {
        foreach (var c in Manifest.GetProperty("cases").EnumerateArray())
            if (c.GetProperty("kind").GetString() == kind) yield return [c.GetProperty("name").GetString()!];
    }

    public static JsonElement Case(string name)
    {
        foreach (var c in Manifest.GetProperty("cases").EnumerateArray())
            if (c.GetProperty("name").GetString() == name) return c;
        throw new KeyNotFoundException(name);
    }

    public static float[] ReadFloat32(string file) => NpyFile.Read<float>(Path.Combine(Folder, file), out _);
    public static double[] ReadFloat64(string file) => NpyFile.Read<double>(Path.Combine(Folder, file), out _);

    public static int[] Ints(JsonElement e)
    {
        var r = new int[e.GetArrayLength()];
        int i = 0;
        foreach (var v in e.EnumerateArray()) r[i++] = v.GetInt32();
        return r;
    }

    public static double[] Doubles(JsonElement e)
    {
        var r = new double[e.GetArrayLength()];
        int i = 0;
        foreach (var v in e.EnumerateArray()) r[i++] = v.GetDouble();
        return r;
    }

    /// <summary>Largest |actual - expected|, failing on length mismatch.</summary>
    public static double MaxAbsDiff(ReadOnlySpan<float> actual, ReadOnlySpan<double> expected)
    {
        Assert.Equal(expected.Length, actual.Length);
        double max = 0;
        for (int i = 0; i < actual.Length; i++) max = Math.Max(max, Math.Abs(actual[i] - expected[i]));
        return max;
    }
}
