using System.Text.Json.Nodes;

namespace NnUnet.Core.Tests.Splits;

/// <summary>Reference vectors made by numpy/sklearn (tests/fixtures/splits/make_split_vectors.py), found by walking up from the test binary.</summary>
internal static class SplitVectors
{
    private static readonly Lazy<JsonObject> Root = new(() =>
        (JsonObject)JsonNode.Parse(File.ReadAllText(FixturePath("splits", "split_vectors.json")))!);

    public static JsonArray Section(string name) => (JsonArray)Root.Value[name]!;

    public static string FixturePath(params string[] parts)
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            string candidate = Path.Combine([dir.FullName, "tests", "fixtures", .. parts]);
            if (File.Exists(candidate)) return candidate;
        }
        throw new FileNotFoundException($"fixture tests/fixtures/{string.Join('/', parts)} not found above {AppContext.BaseDirectory}");
    }

    public static long[] Longs(JsonNode? node)
    {
        var array = (JsonArray)node!;
        var result = new long[array.Count];
        for (int i = 0; i < result.Length; i++) result[i] = (long)array[i]!.AsValue().GetValue<decimal>();
        return result;
    }

    public static string[] Strings(JsonNode? node)
    {
        var array = (JsonArray)node!;
        var result = new string[array.Count];
        for (int i = 0; i < result.Length; i++) result[i] = (string)array[i]!;
        return result;
    }
}
