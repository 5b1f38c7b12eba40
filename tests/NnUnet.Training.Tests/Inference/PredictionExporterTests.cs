using NnUnet.Core.Imaging;
using NnUnet.Core.Preprocessing;
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

    [Fact]
    public void ClassChannelsExportedInChunksGiveTheSameSegmentationAndProbabilitiesBitForBit()
    {
        using var scope = NewDisposeScope();
        // resampling on every axis (preprocessed (5, 6, 7) -> cropped (9, 11, 8)), a transpose and a crop inside the raw shape
        var plans = InferenceTestData.Plans(Transpose, new() { ["3d_fullres"] = ([2, 1.5, 1.5], [4, 4, 4], null, null) });
        var properties = InferenceTestData.Properties([12, 10, 13], [[1, 10], [1, 9], [2, 13]], [1, 1, 1], Transpose);
        Assert.Equal([9, 11, 8], properties.ShapeAfterCroppingAndBeforeResampling);
        manual_seed(31);
        var logits = randn(new long[] { 7, 5, 6, 7 });
        logits[5] = logits[3].clone(); // ties: the first maximum must win, as torch's argmax
        var configuration = plans.GetConfiguration("3d_fullres");
        var dataset = InferenceTestData.Labels(7);
        var whole = new PredictionExporter(plans, configuration, dataset);
        var oneByOne = new PredictionExporter(plans, configuration, dataset, new InferenceMemoryOptions { ExportChunkBytes = 1 });
        var inThrees = new PredictionExporter(plans, configuration, dataset, new InferenceMemoryOptions { ExportChunkBytes = 3 * (5 * 6 * 7 + 9 * 11 * 8) * 4 });
        Assert.Equal(7, whole.ChannelsPerChunk(5 * 6 * 7, 9 * 11 * 8));
        Assert.Equal(1, oneByOne.ChannelsPerChunk(5 * 6 * 7, 9 * 11 * 8));
        Assert.Equal(3, inThrees.ChannelsPerChunk(5 * 6 * 7, 9 * 11 * 8));

        foreach (bool withProbabilities in new[] { false, true })
        {
            var expected = whole.Convert(logits, properties, withProbabilities);
            foreach (var exporter in new[] { oneByOne, inThrees })
            {
                var chunked = exporter.Convert(logits, properties, withProbabilities);
                Assert.Equal((byte[])expected.Segmentation.Voxels, (byte[])chunked.Segmentation.Voxels);
                if (withProbabilities) Assert.Equal(expected.Probabilities, chunked.Probabilities);
            }
            // float16 logits (the sliding window's default) export as their float32 values
            var half = logits.to(ScalarType.Float16);
            Assert.Equal((byte[])whole.Convert(half.to(ScalarType.Float32), properties, withProbabilities).Segmentation.Voxels,
                (byte[])oneByOne.Convert(half, properties, withProbabilities).Segmentation.Voxels);
        }

        // the running argmax equals torch's argmax of all channels resampled at once (first maximum on ties)
        float[] all = PreprocessingInverse.ResampleToCroppedShape(logits.contiguous().data<float>().ToArray(), 7, [5, 6, 7], properties, plans, configuration);
        var reference = tensor(all, new long[] { 7, 9, 11, 8 }).argmax(0).to(ScalarType.Byte).contiguous().data<byte>().ToArray();
        var pasted = PreprocessingInverse.RevertCropping(reference, 1, properties, Transpose, [(byte)0]);
        Assert.Equal(pasted, (byte[])oneByOne.Convert(logits, properties, withProbabilities: false).Segmentation.Voxels);
        Assert.Contains((byte)3, pasted);
        Assert.DoesNotContain((byte)5, pasted); // 5 ties with 3 everywhere and comes later
    }

    [Fact]
    public void RegionsExportedInChunksArePaintedInTheSameOrder()
    {
        using var scope = NewDisposeScope();
        var plans = InferenceTestData.Plans([0, 1, 2], new() { ["3d_fullres"] = ([1, 1, 1], [4, 4, 4], null, null) });
        var properties = InferenceTestData.Properties([4, 5, 6], [[0, 4], [0, 5], [0, 6]], [1, 1, 1], [0, 1, 2]);
        manual_seed(32);
        var logits = randn(new long[] { 2, 4, 5, 6 });
        var configuration = plans.GetConfiguration("3d_fullres");
        var whole = new PredictionExporter(plans, configuration, InferenceTestData.Regions());
        var oneByOne = new PredictionExporter(plans, configuration, InferenceTestData.Regions(), new InferenceMemoryOptions { ExportChunkBytes = 1 });
        var expected = (byte[])whole.Convert(logits, properties, withProbabilities: true).Segmentation.Voxels;
        Assert.Equal(expected, (byte[])oneByOne.Convert(logits, properties, withProbabilities: false).Segmentation.Voxels);
        Assert.Equal(expected, (byte[])whole.Convert(logits, properties, withProbabilities: false).Segmentation.Voxels);
        // core (label 2) wherever its logit is positive, else whole (1) where that one is
        var l = logits.data<float>().ToArray();
        for (int v = 0; v < 120; v++) Assert.Equal(l[120 + v] > 0 ? 2 : l[v] > 0 ? 1 : 0, expected[v]);
    }

    [Fact]
    public void ProbabilitiesThatDoNotFitTheHostAreAOneLineErrorNamingTheCase()
    {
        using var scope = NewDisposeScope();
        var plans = InferenceTestData.Plans([0, 1, 2], new() { ["3d_fullres"] = ([1, 1, 1], [4, 4, 4], null, null) });
        var properties = InferenceTestData.Properties([8, 8, 8], [[0, 8], [0, 8], [0, 8]], [1, 1, 1], [0, 1, 2]);
        var exporter = new PredictionExporter(plans, plans.GetConfiguration("3d_fullres"), InferenceTestData.Labels(4),
            new InferenceMemoryOptions { HostMemoryBudgetBytes = 10_000 });
        var logits = zeros(new long[] { 4, 8, 8, 8 });
        var ex = Assert.Throws<InferenceMemoryException>(() => exporter.Convert(logits, properties, withProbabilities: true, "case_042"));
        Assert.DoesNotContain('\n', ex.Message);
        Assert.Contains("case case_042", ex.Message);
        Assert.Contains("4 classes x 512 voxels needs 24.6 kB", ex.Message); // 4 x (2 x 512 + 512) x 4 bytes
        Assert.Contains("only 10.0 kB", ex.Message);
        // the segmentation alone needs no such array
        Assert.Equal(512, ((byte[])exporter.Convert(logits, properties, withProbabilities: false, "case_042").Segmentation.Voxels).Length);
    }
}
