using NnUnet.Core.Imaging;
using NnUnet.Training.Inference;
using static TorchSharp.torch;

namespace NnUnet.Training.Tests.Inference;

public class PredictionExporterTests
{
    private static readonly int[] Transpose = [0, 2, 1];

    [Fact]
    public void ArgmaxIsPastedIntoTheBoundingBoxAndTransposedBack()
    {
        using var scope = NewDisposeScope();
        var plans = InferenceTestData.Plans(Transpose, new() { ["3d_fullres"] = ([2, 1, 1], [4, 4, 4], null, null) });
        var configuration = plans.GetConfiguration("3d_fullres");
        var properties = InferenceTestData.Properties([6, 10, 12], [[1, 5], [2, 9], [3, 11]], [2, 1, 1], Transpose);
        int[] pre = properties.ShapeAfterCroppingAndBeforeResampling; // (4, 8, 7): same spacing, no resampling
        Assert.Equal([4, 8, 7], pre);
        manual_seed(1);
        var logits = randn(new long[] { 3, pre[0], pre[1], pre[2] });
        var exporter = new PredictionExporter(plans, configuration, InferenceTestData.Labels(3));
        var result = exporter.Convert(logits, properties, withProbabilities: true);

        var seg = (byte[])result.Segmentation.Voxels;
        Assert.Equal(VoxelType.UInt8, result.Segmentation.Type);
        Assert.Equal([6, 10, 12], result.Segmentation.SpatialShape);
        Assert.Equal(properties.Geometry, result.Segmentation.Geometry);
        var argmax = logits.argmax(0).data<long>().ToArray();
        for (int z = 0; z < 6; z++)
        for (int y = 0; y < 10; y++)
        for (int x = 0; x < 12; x++)
        {
            bool inside = z is >= 1 and < 5 && y is >= 2 and < 9 && x is >= 3 and < 11;
            // transposed array axes (z, x, y): index of raw (z, y, x) inside the crop
            int expected = inside ? (int)argmax[((z - 1) * 8 + (x - 3)) * 7 + (y - 2)] : 0;
            Assert.Equal(expected, seg[(z * 10 + y) * 12 + x]);
        }

        var probabilities = result.Probabilities!;
        int n = 6 * 10 * 12;
        Assert.Equal(3 * n, probabilities.Length);
        for (int v = 0; v < n; v++)
            Assert.Equal(1f, probabilities[v] + probabilities[n + v] + probabilities[2 * n + v], 4);
        Assert.Equal(1f, probabilities[0]); // outside the crop: background
        Assert.Equal(0f, probabilities[n]);
    }

    [Fact]
    public void LogitsAreResampledToTheCroppedShapeBeforeArgmax()
    {
        using var scope = NewDisposeScope();
        var plans = InferenceTestData.Plans([0, 1, 2], new() { ["3d_fullres"] = ([2, 2, 2], [4, 4, 4], null, null) });
        var properties = InferenceTestData.Properties([5, 9, 9], [[0, 5], [1, 9], [0, 7]], [2, 1, 1], [0, 1, 2]);
        var logits = zeros(new long[] { 3, 5, 4, 4 });
        logits[2] = ones(new long[] { 5, 4, 4 }); // class 2 everywhere
        logits[1, .., 0..2, ..] = full(new long[] { 5, 2, 4 }, 2f); // class 1 in the first half along y
        var exporter = new PredictionExporter(plans, plans.GetConfiguration("3d_fullres"), InferenceTestData.Labels(3));
        var seg = (byte[])exporter.Convert(logits, properties, withProbabilities: false).Segmentation.Voxels;
        Assert.Equal(5 * 9 * 9, seg.Length);
        Assert.Equal(0, seg[0]);              // y = 0 lies outside the bbox
        Assert.Equal(1, seg[(2 * 9 + 1) * 9 + 3]); // first rows of the crop: class 1
        Assert.Equal(2, seg[(2 * 9 + 8) * 9 + 3]); // last row: class 2
        Assert.Equal(0, seg[(2 * 9 + 8) * 9 + 8]); // x = 8 outside the bbox
    }

    [Fact]
    public void RegionsArePaintedInRegionsClassOrder()
    {
        using var scope = NewDisposeScope();
        var plans = InferenceTestData.Plans([0, 1, 2], new() { ["3d_fullres"] = ([1, 1, 1], [4, 4, 4], null, null) });
        var properties = InferenceTestData.Properties([2, 2, 2], [[0, 2], [0, 2], [0, 2]], [1, 1, 1], [0, 1, 2]);
        var logits = full(new long[] { 2, 2, 2, 2 }, -3f);
        logits[0, 0] = tensor(3f);              // whole region in slice 0
        logits[1, 0, 0] = tensor(3f);           // core region in row 0 of slice 0
        logits[1, 1] = tensor(3f);              // core without whole: still painted (later in the order)
        var exporter = new PredictionExporter(plans, plans.GetConfiguration("3d_fullres"), InferenceTestData.Regions());
        Assert.Equal(2, exporter.NumOutputChannels);
        var result = exporter.Convert(logits, properties, withProbabilities: true);
        Assert.Equal(new byte[] { 2, 2, 1, 1, 2, 2, 2, 2 }, (byte[])result.Segmentation.Voxels);
        Assert.True(result.Probabilities!.All(p => p is > 0 and < 1), "sigmoid probabilities");
    }

    [Fact]
    public void NextStageSegmentationIsResampledToTheTargetShape()
    {
        using var scope = NewDisposeScope();
        var plans = InferenceTestData.Plans([0, 1, 2], new() { ["3d_lowres"] = ([2, 2, 2], [4, 4, 4], "3d_cascade_fullres", null) });
        var properties = InferenceTestData.Properties([8, 8, 8], [[0, 8], [0, 8], [0, 8]], [1, 1, 1], [0, 1, 2]);
        var logits = zeros(new long[] { 2, 4, 4, 4 });
        logits[1, .., .., 2..] = tensor(5f); // class 1 in the upper half along x
        var exporter = new PredictionExporter(plans, plans.GetConfiguration("3d_lowres"), InferenceTestData.Labels(2));
        var labels = exporter.ResampleSegmentationToShape(logits, [8, 8, 8], properties);
        Assert.Equal(512, labels.Length);
        // linear upsampling 4 -> 8 (pixel centres): x = 3 samples 0.75 * 0 + 0.25 * 5 > 0, so class 1 from x = 3 on
        for (int x = 0; x < 8; x++) Assert.Equal(x >= 3 ? 1 : 0, labels[(5 * 8 + 2) * 8 + x]);
        Assert.Equal(5 * 64, labels.Count(l => l == 1));
    }

    [Fact]
    public void RejectsLogitsWithTheWrongNumberOfChannels()
    {
        var plans = InferenceTestData.Plans([0, 1, 2], new() { ["3d_fullres"] = ([1, 1, 1], [4, 4, 4], null, null) });
        var properties = InferenceTestData.Properties([2, 2, 2], [[0, 2], [0, 2], [0, 2]], [1, 1, 1], [0, 1, 2]);
        var exporter = new PredictionExporter(plans, plans.GetConfiguration("3d_fullres"), InferenceTestData.Labels(3));
        var ex = Assert.Throws<ArgumentException>(() => exporter.Convert(zeros(new long[] { 2, 2, 2, 2 }), properties, false, "case_007"));
        Assert.Contains("case_007", ex.Message);
    }
}
