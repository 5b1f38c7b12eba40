using System.Text.Json;
using NnUnet.Core.Fingerprinting;
using NnUnet.Core.Imaging;
using NnUnet.Core.Preprocessing;
using NnUnet.Core.Tests.Resampling;

namespace NnUnet.Core.Tests.Preprocessing;

public class DefaultPreprocessorTests
{
    private static readonly JsonElement Reference =
        JsonDocument.Parse(File.ReadAllText(Path.Combine(ResamplingFixtures.Folder, "preprocess_case.json"))).RootElement;

    private static DefaultPreprocessor FixturePreprocessor()
    {
        var ct = Reference.GetProperty("ct");
        var intensities = new Dictionary<string, IntensityProperties>
        {
            ["0"] = new(ct.GetProperty("mean").GetDouble(), 90, ct.GetProperty("std").GetDouble(), -100, 500,
                ct.GetProperty("percentile_99_5").GetDouble(), ct.GetProperty("percentile_00_5").GetDouble()),
            ["1"] = new(10, 10, 3, 5, 15, 14.9, 5.1),
        };
        var config = TestPlans.Configuration("nnUNetPlans_3d_fullres", ResamplingFixtures.Doubles(Reference.GetProperty("target_spacing")),
            ["CTNormalization", "ZScoreNormalization"], [false, true]);
        var plans = TestPlans.Plans([0, 1, 2], intensities, ("3d_fullres", config));
        return new DefaultPreprocessor(plans, "3d_fullres", TestPlans.Dataset(2, 1, 2));
    }

    [Fact]
    public void Case_matches_nnunet_run_case_npy()
    {
        var image = NpyFile.Read<float>(Path.Combine(ResamplingFixtures.Folder, "preprocess_case.image.npy"), out var imageShape);
        var label = NpyFile.Read<float>(Path.Combine(ResamplingFixtures.Folder, "preprocess_case.label.npy"), out _);
        var expectedData = NpyFile.Read<float>(Path.Combine(ResamplingFixtures.Folder, "preprocess_case.data.npy"), out var dataShape);
        var expectedSeg = NpyFile.Read<sbyte>(Path.Combine(ResamplingFixtures.Folder, "preprocess_case.seg.npy"), out _);
        var spacing = ResamplingFixtures.Doubles(Reference.GetProperty("spacing_zyx"));
        var geometry = new ImageGeometry([spacing[2], spacing[1], spacing[0]], [10, 20, 30], [1, 0, 0, 0, 1, 0, 0, 0, 1]);

        var result = FixturePreprocessor().Run("case_7", image, 2, [imageShape[1], imageShape[2], imageShape[3]], label, geometry);

        Assert.Equal(ResamplingFixtures.Ints(Reference.GetProperty("new_shape")), result.Shape);
        Assert.Equal(dataShape.AsSpan(1).ToArray(), result.Shape);
        Assert.Equal(2, result.Channels);
        double maxDiff = 0, scale = 1;
        for (int i = 0; i < expectedData.Length; i++)
        {
            maxDiff = Math.Max(maxDiff, Math.Abs(result.Data[i] - expectedData[i]));
            scale = Math.Max(scale, Math.Abs(expectedData[i]));
        }
        Assert.True(maxDiff <= 2e-6 * scale, $"data differs from nnU-Net by {maxDiff:E2}");
        Assert.Equal(expectedSeg, result.Seg);

        var p = result.Properties;
        Assert.Equal(geometry, p.Geometry);
        Assert.Equal(spacing, p.Spacing);
        Assert.Equal([imageShape[1], imageShape[2], imageShape[3]], p.ShapeBeforeCropping);
        int[][] bbox = [.. Reference.GetProperty("bbox").EnumerateArray().Select(ResamplingFixtures.Ints)];
        Assert.Equal(bbox, p.BboxUsedForCropping);
        Assert.Equal(ResamplingFixtures.Ints(Reference.GetProperty("shape_after_crop")), p.ShapeAfterCroppingAndBeforeResampling);
        foreach (var entry in Reference.GetProperty("class_locations").EnumerateObject())
        {
            int[][] expected = [.. entry.Value.EnumerateArray().Select(ResamplingFixtures.Ints)];
            Assert.Equal(expected, p.ClassLocations[int.Parse(entry.Name)]);
        }
    }

    [Fact]
    public void Inverse_restores_the_raw_geometry_and_values_with_a_transpose()
    {
        // smooth two-channel volume, zero border to crop, transposed plans, 2x finer target spacing in-plane
        int[] shape = [6, 14, 12];
        int n = 6 * 14 * 12;
        var data = new float[2 * n];
        for (int z = 1; z < 5; z++)
        for (int y = 2; y < 13; y++)
        for (int x = 1; x < 10; x++)
        {
            int i = (z * 14 + y) * 12 + x;
            data[i] = 50 + z * 3 + y * 2 + x;
            data[n + i] = 1 + 0.1f * x;
        }
        var config = TestPlans.Configuration("id", [1.0, 0.5, 0.5], ["NoNormalization", "NoNormalization"], [false, false]);
        var plans = TestPlans.Plans([2, 0, 1], new(), ("3d_fullres", config));
        var preprocessor = new DefaultPreprocessor(plans, "3d_fullres", TestPlans.Dataset(2, 1));
        var geometry = ImageGeometry.Identity(1.0, 1.0, 1.0);
        var result = preprocessor.Run("c", data, 2, shape, null, geometry);

        // transposed (x, z, y) crop of (9, 4, 11) at spacing (1, 1, 1) -> (0.5 in z/y of plans order) target (1, .5, .5)
        Assert.Equal([9, 4, 11], result.Properties.ShapeAfterCroppingAndBeforeResampling);
        Assert.Equal([9, 8, 22], result.Shape);
        Assert.Equal([[1, 5], [2, 13], [1, 10]], result.Properties.BboxUsedForCropping);
        Assert.All(result.Seg!, s => Assert.Equal(0, s)); // no labels: 0 inside the mask

        var cropped = PreprocessingInverse.ResampleToCroppedShape(result.Data, 2, result.Shape, result.Properties, plans, preprocessor.Configuration);
        Assert.Equal(2 * 9 * 4 * 11, cropped.Length);
        var restored = PreprocessingInverse.RevertCropping(cropped, 2, result.Properties, plans.TransposeForward, [0f, -1f]);
        Assert.Equal(data.Length, restored.Length);
        for (int z = 0; z < 6; z++)
        for (int y = 0; y < 14; y++)
        for (int x = 0; x < 12; x++)
        {
            int i = (z * 14 + y) * 12 + x;
            bool inside = z is >= 1 and < 5 && y is >= 2 and < 13 && x is >= 1 and < 10;
            if (!inside) { Assert.Equal(0f, restored[i]); Assert.Equal(-1f, restored[n + i]); continue; }
            // linear data: order-3 up then order-1 back is exact up to the edge clamping of the linear resize
            Assert.Equal(data[i], restored[i], 0.6f);
            Assert.Equal(data[n + i], restored[n + i], 0.06f);
        }
    }

    [Fact]
    public void Two_d_configuration_keeps_the_first_axis_spacing()
    {
        var config = TestPlans.Configuration("id2d", [0.5, 0.5], ["ZScoreNormalization"], [false]);
        var plans = TestPlans.Plans([0, 1, 2], new(), ("2d", config));
        var preprocessor = new DefaultPreprocessor(plans, "2d", TestPlans.Dataset(1, 1));
        var data = new float[5 * 8 * 8];
        for (int i = 0; i < data.Length; i++) data[i] = 1 + i % 7;
        var seg = new float[data.Length];
        seg[3 * 64 + 4 * 8 + 4] = 1;
        var result = preprocessor.Run("c", data, 1, [5, 8, 8], seg, ImageGeometry.Identity(1, 1, 4));
        Assert.Equal([5, 16, 16], result.Shape);
        Assert.NotEmpty(result.Properties.ClassLocations[1]);
    }

    [Fact]
    public void Bad_input_names_the_case()
    {
        var preprocessor = FixturePreprocessor();
        var ex = Assert.Throws<InvalidDataException>(() => preprocessor.Run("case_x", new float[4 * 4 * 4], 1, [4, 4, 4], null, ImageGeometry.Identity()));
        Assert.Contains("case_x", ex.Message);
        var label = new float[2 * 2 * 2];
        label[0] = 0.5f;
        var data = new float[2 * 8];
        Array.Fill(data, 1f);
        ex = Assert.Throws<InvalidDataException>(() => preprocessor.Run("case_y", data, 2, [2, 2, 2], label, ImageGeometry.Identity()));
        Assert.Contains("case_y", ex.Message);
    }
}
