using NnUnet.Core.Resampling;
using static NnUnet.Core.Tests.Resampling.ResamplingFixtures;

namespace NnUnet.Core.Tests.Resampling;

/// <summary>
/// Compares against skimage / scipy / nnU-Net references. Tolerance for float data: 2e-6 relative to the largest
/// reference value (float32 output of a float64 reference: a few float32 ulps). Label maps must match exactly.
/// </summary>
public class ResamplerTests
{
    private const double RelativeTolerance = 2e-6;

    public static IEnumerable<object[]> ResizeCases => CaseNames("resize");
    public static IEnumerable<object[]> NnUnetCases => CaseNames("nnunet");

    [Theory]
    [MemberData(nameof(ResizeCases))]
    public void Resize_matches_skimage(string name)
    {
        var c = Case(name);
        var input = ReadFloat32(c.GetProperty("input").GetString()!);
        var expected = ReadFloat64(c.GetProperty("expected").GetString()!);
        var output = SplineResize.Resize(input, Ints(c.GetProperty("shape")), Ints(c.GetProperty("new_shape")), c.GetProperty("order").GetInt32());
        AssertClose(output, expected, name);
    }

    [Theory]
    [MemberData(nameof(NnUnetCases))]
    public void ResampleDataOrSegToShape_matches_nnunet(string name)
    {
        var c = Case(name);
        var input = ReadFloat32(c.GetProperty("input").GetString()!);
        var expected = ReadFloat64(c.GetProperty("expected").GetString()!);
        var force = c.GetProperty("force_separate_z");
        bool? forceSeparateZ = force.ValueKind == System.Text.Json.JsonValueKind.Null ? null : force.GetBoolean();
        bool isSeg = c.GetProperty("is_seg").GetBoolean();
        var output = Resampler.ResampleDataOrSegToShape(input, c.GetProperty("channels").GetInt32(), Ints(c.GetProperty("shape")),
            Ints(c.GetProperty("new_shape")), Doubles(c.GetProperty("current_spacing")), Doubles(c.GetProperty("new_spacing")),
            isSeg, c.GetProperty("order").GetInt32(), c.GetProperty("order_z").GetInt32(), forceSeparateZ);
        if (isSeg)
        {
            Assert.Equal(expected.Length, output.Length);
            int wrong = 0;
            for (int i = 0; i < output.Length; i++) if (output[i] != expected[i]) wrong++;
            Assert.True(wrong == 0, $"{name}: {wrong} of {output.Length} labels differ");
        }
        else AssertClose(output, expected, name);
    }

    [Fact]
    public void Separate_z_decision_follows_nnunet_rules()
    {
        foreach (var rule in Manifest.GetProperty("separate_z_rules").EnumerateArray())
        {
            var force = rule.GetProperty("force");
            bool? f = force.ValueKind == System.Text.Json.JsonValueKind.Null ? null : force.GetBoolean();
            var (doSeparateZ, axis) = Resampler.DetermineDoSeparateZAndAxis(f, Doubles(rule.GetProperty("current")), Doubles(rule.GetProperty("new")));
            Assert.Equal(rule.GetProperty("do_separate_z").GetBoolean(), doSeparateZ);
            var expectedAxis = rule.GetProperty("axis");
            Assert.Equal(expectedAxis.ValueKind == System.Text.Json.JsonValueKind.Null ? null : expectedAxis.GetInt32(), axis);
        }
    }

    [Fact]
    public void ComputeNewShape_rounds_like_python()
    {
        foreach (var s in Manifest.GetProperty("new_shapes").EnumerateArray())
            Assert.Equal(Ints(s.GetProperty("new_shape")),
                Resampler.ComputeNewShape(Ints(s.GetProperty("old_shape")), Doubles(s.GetProperty("old_spacing")), Doubles(s.GetProperty("new_spacing"))));
        // Python's round() goes half to even: 2.5 -> 2, 3.5 -> 4
        Assert.Equal([2, 4], Resampler.ComputeNewShape([5, 7], [1.0, 1.0], [2.0, 2.0]));
    }

    [Fact]
    public void Unchanged_shape_returns_the_input()
    {
        var data = new float[2 * 3 * 4 * 5];
        Assert.Same(data, Resampler.ResampleDataOrSegToShape(data, 2, [3, 4, 5], [3, 4, 5], [1, 1, 1], [1, 1, 1], false, 3, 0, null));
    }

    [Fact]
    public void Constant_volume_stays_constant_and_within_range()
    {
        var data = new float[4 * 6 * 5];
        Array.Fill(data, 7.25f);
        foreach (int order in new[] { 0, 1, 3 })
        {
            var output = SplineResize.Resize(data, [4, 6, 5], [9, 3, 11], order);
            Assert.All(output, v => Assert.Equal(7.25f, v, 5));
        }
    }

    [Fact]
    public void Bad_arguments_are_rejected_with_a_message()
    {
        var ex = Assert.Throws<ArgumentException>(() => Resampler.ResampleDataOrSeg(new float[10], 1, [2, 2, 2], [3, 3, 3], false, null, 3, false, 0));
        Assert.Contains("holds 10 values", ex.Message);
        Assert.Throws<ArgumentException>(() => SplineResize.Resize(new float[8], [2, 2, 2], [3, 3, 3], 2));
    }

    private static void AssertClose(float[] output, double[] expected, string name)
    {
        double scale = 1;
        foreach (double e in expected) scale = Math.Max(scale, Math.Abs(e));
        double diff = MaxAbsDiff(output, expected);
        Assert.True(diff <= RelativeTolerance * scale, $"{name}: max abs difference {diff:E3} > {RelativeTolerance * scale:E3}");
    }
}
