using System.Runtime.CompilerServices;
using System.Text.Json;
using System.Text.Json.Nodes;
using NnUnet.Core.Fingerprinting;
using NnUnet.Core.Planning;

namespace NnUnet.Core.Tests.Planning;

/// <summary>
/// Our planner against nnU-Net's own: Reference/reference_plans.json holds synthetic fingerprints (isotropic, anisotropic,
/// 10th-percentile rule, x-coarsest transpose, 2D, lowres kept and dropped, tiny and huge datasets, 4-40 GB) and the plans
/// that nnU-Net v2's ExperimentPlanner.plan_experiment wrote for them (with torch and dynamic_network_architectures; see
/// Reference/make_reference_plans.py). Every configuration must match key for key, numbers exactly.
/// </summary>
public sealed class ReferencePlannerTests
{
    private static readonly Lazy<JsonArray> Reference = new(() =>
        JsonNode.Parse(File.ReadAllText(Path.Combine(ReferenceFolder(), "reference_plans.json")))!.AsArray());

    private static string ReferenceFolder([CallerFilePath] string thisFile = "") => Path.Combine(Path.GetDirectoryName(thisFile)!, "Reference");

    public static TheoryData<string> CaseNames()
    {
        var names = new TheoryData<string>();
        foreach (var entry in Reference.Value) names.Add(entry!["input"]!["name"]!.GetValue<string>());
        return names;
    }

    internal static (DatasetFingerprint Fingerprint, PlannerDatasetInfo Info, PlannerOptions Options, JsonObject Expected) Load(string name)
    {
        foreach (var entry in Reference.Value)
        {
            var input = entry!["input"]!.AsObject();
            if (input["name"]!.GetValue<string>() != name) continue;
            var fingerprint = input["fingerprint"].Deserialize<DatasetFingerprint>()!;
            var channels = input["channels"].Deserialize<string[]>()!;
            var info = new PlannerDatasetInfo(name, channels, input["num_labels"]!.GetValue<int>(), input["num_training"]!.GetValue<int>());
            var options = new PlannerOptions(GpuMemoryGb: input["gpu_memory_gb"]!.GetValue<double>());
            return (fingerprint, info, options, entry["plans"]!.AsObject());
        }
        throw new KeyNotFoundException(name);
    }

    [Theory]
    [MemberData(nameof(CaseNames))]
    public void Plans_match_nnUNet_reference_planner(string name)
    {
        var (fingerprint, info, options, expected) = Load(name);

        var plans = ExperimentPlanner.Plan(fingerprint, info, options);
        var actual = JsonNode.Parse(plans.ToJson())!.AsObject();

        // The reader/writer names differ on purpose (our NIfTI I/O vs SimpleITKIO); everything else must be identical.
        expected = (JsonObject)expected.DeepClone();
        expected.Remove("image_reader_writer");
        actual.Remove("image_reader_writer");
        AssertJsonEqual(expected, actual, name);
        Assert.Equal(KeyOrder(expected["configurations"]!.AsObject()), KeyOrder(actual["configurations"]!.AsObject()));
    }

    [Fact]
    public void Reference_covers_the_planner_branches()
    {
        // Guards the fixture itself: if it were regenerated without these cases, the theory above would prove less.
        int withLowres = 0, lowresDropped = 0, only2d = 0, transposed = 0;
        foreach (var entry in Reference.Value)
        {
            var plans = entry!["plans"]!.AsObject();
            var configurations = plans["configurations"]!.AsObject();
            if (configurations.ContainsKey("3d_lowres")) withLowres++;
            if (!configurations.ContainsKey("3d_fullres")) only2d++;
            if (plans["transpose_forward"]![0]!.GetValue<int>() != 0) transposed++;
            if (configurations["3d_fullres"] is JsonObject fullres && !configurations.ContainsKey("3d_lowres"))
            {
                double patch = 1, median = 1;
                foreach (var v in fullres["patch_size"]!.AsArray()) patch *= v!.GetValue<double>();
                foreach (var v in fullres["median_image_size_in_voxels"]!.AsArray()) median *= v!.GetValue<double>();
                if (patch / median < ExperimentPlanner.LowresCreationThreshold) lowresDropped++;
            }
        }
        Assert.True(withLowres >= 2, $"{withLowres} cases with 3d_lowres");
        Assert.True(lowresDropped >= 1, $"{lowresDropped} cases where 3d_lowres was tried and dropped");
        Assert.True(only2d >= 1, $"{only2d} 2D-only cases");
        Assert.True(transposed >= 2, $"{transposed} transposed cases");
    }

    private static List<string> KeyOrder(JsonObject obj)
    {
        var keys = new List<string>();
        foreach (var (key, _) in obj) keys.Add(key);
        return keys;
    }

    /// <summary>Deep equality where numbers compare by value (nnU-Net writes 252.0 where we write 252).</summary>
    internal static void AssertJsonEqual(JsonNode? expected, JsonNode? actual, string path)
    {
        switch (expected)
        {
            case null:
                Assert.True(actual is null, $"{path}: expected null, got {actual?.ToJsonString()}");
                return;
            case JsonObject expectedObject:
                var actualObject = Assert.IsType<JsonObject>(actual);
                var expectedKeys = new SortedSet<string>(KeyOrder(expectedObject), StringComparer.Ordinal);
                var actualKeys = new SortedSet<string>(KeyOrder(actualObject), StringComparer.Ordinal);
                Assert.True(expectedKeys.SetEquals(actualKeys),
                    $"{path}: keys differ; expected [{string.Join(", ", expectedKeys)}], got [{string.Join(", ", actualKeys)}]");
                foreach (var (key, value) in expectedObject) AssertJsonEqual(value, actualObject[key], $"{path}.{key}");
                return;
            case JsonArray expectedArray:
                var actualArray = Assert.IsType<JsonArray>(actual);
                Assert.True(expectedArray.Count == actualArray.Count, $"{path}: expected {expectedArray.ToJsonString()}, got {actualArray.ToJsonString()}");
                for (int i = 0; i < expectedArray.Count; i++) AssertJsonEqual(expectedArray[i], actualArray[i], $"{path}[{i}]");
                return;
            case JsonValue expectedValue when expectedValue.GetValueKind() == JsonValueKind.Number:
                Assert.True(actual is JsonValue v && v.GetValueKind() == JsonValueKind.Number && v.GetValue<double>() == expectedValue.GetValue<double>(),
                    $"{path}: expected {expectedValue.ToJsonString()}, got {actual?.ToJsonString()}");
                return;
            default:
                Assert.True(JsonNode.DeepEquals(expected, actual), $"{path}: expected {expected.ToJsonString()}, got {actual?.ToJsonString()}");
                return;
        }
    }
}
