using NnUnet.Training.Inference;
using static TorchSharp.torch;

namespace NnUnet.Training.Tests.Inference;

public class SlidingWindowPredictorTests
{
    private static nn.Module<Tensor, Tensor> Conv(int dims, int inChannels, int classes, int kernel, long seed)
    {
        manual_seed(seed);
        return dims == 3
            ? nn.Conv3d(inChannels, classes, kernel, padding: kernel / 2)
            : nn.Conv2d(inChannels, classes, kernel, padding: kernel / 2);
    }

    /// <summary>Deep-supervision style module: returns the full-resolution output and a downsampled one.</summary>
    private sealed class DeepSupervised : nn.Module<Tensor, Tensor[]>
    {
        private readonly nn.Module<Tensor, Tensor> _conv;
        public DeepSupervised(nn.Module<Tensor, Tensor> conv) : base("deep") { _conv = conv; RegisterComponents(); }
        public override Tensor[] forward(Tensor x)
        {
            var full = _conv.forward(x);
            return [full, nn.functional.avg_pool3d(full, [2, 2, 2])];
        }
    }

    [Theory]
    [InlineData(110, 64, new[] { 0, 23, 46 })]
    [InlineData(64, 64, new[] { 0 })]
    [InlineData(65, 64, new[] { 0, 1 })]
    [InlineData(100, 32, new[] { 0, 14, 27, 41, 54, 68 })]
    public void StepsFollowTheFormula(int image, int patch, int[] expected)
    {
        // n = ceil((S - P) / (P/2)) + 1, positions round(i (S - P) / (n - 1))
        Assert.Equal(expected, SlidingWindowPredictor.ComputeSteps(image, patch));
        int n = (int)Math.Ceiling((image - patch) / (patch * 0.5)) + 1;
        Assert.Equal(n, expected.Length);
    }

    [Fact]
    public void GaussianMapIsSymmetricNormalisedAndMatchesScipy()
    {
        using var scope = NewDisposeScope();
        var map = SlidingWindowPredictor.GaussianImportanceMap([6, 9, 16]);
        Assert.Equal(10f, map.max().item<float>(), 5);
        Assert.Equal(10f, map[3, 4, 8].item<float>(), 5);
        // values from scipy.ndimage.gaussian_filter of the impulse (nnU-Net's compute_gaussian), float64 there
        Assert.Equal(265.70280040284905, map.to(ScalarType.Float64).sum().item<double>(), 3);
        Assert.Equal(0.007960866914957303, map[1, 2, 4].item<float>(), 6);
        Assert.True(map.min().item<float>() > 0, "no zero weights");
        // symmetric about the centre voxel (odd axis 9 is mirror-symmetric as a whole)
        Assert.True(map[.., 0..9, ..].allclose(map[.., 0..9, ..].flip(1), rtol: 1e-6, atol: 0));
        Assert.True(map[1..6, .., 1..16].allclose(map[1..6, .., 1..16].flip(0, 2), rtol: 1e-6, atol: 0));
        var flat = SlidingWindowPredictor.GaussianImportanceMap([40, 40]);
        Assert.Equal(1570.5862221853113, flat.to(ScalarType.Float64).sum().item<double>(), 2);
        Assert.True(flat[1.., 1..].allclose(flat[1.., 1..].t(), rtol: 1e-6, atol: 0));
    }

    [Fact]
    public void VolumeSmallerThanThePatchEqualsOneForwardPassOfThePaddedInput()
    {
        using var scope = NewDisposeScope();
        var net = Conv(3, 2, 3, 3, 1);
        manual_seed(2);
        var image = randn(new long[] { 2, 5, 6, 7 });
        var predictor = new SlidingWindowPredictor(net, [8, 8, 8], 3, [], CPU);
        var logits = predictor.PredictLogits(image);
        Assert.Equal(new long[] { 3, 5, 6, 7 }, logits.shape);
        // pad like nnU-Net (floor half before), one forward pass, crop back
        var padded = nn.functional.pad(image, [0, 1, 1, 1, 1, 2]).unsqueeze(0);
        Tensor expected;
        using (no_grad()) expected = net.forward(padded)[0, .., 1..6, 1..7, 0..7];
        Assert.True(logits.allclose(expected, rtol: 1e-5, atol: 1e-5));
    }

    [Fact]
    public void TilesOfAPointwiseNetworkReassembleTheWholeImage()
    {
        using var scope = NewDisposeScope();
        var net = Conv(3, 1, 2, 1, 3);
        manual_seed(4);
        var image = randn(new long[] { 1, 13, 11, 18 });
        var logits = new SlidingWindowPredictor(net, [6, 8, 8], 2, [], CPU).PredictLogits(image);
        Tensor expected;
        using (no_grad()) expected = net.forward(image.unsqueeze(0))[0];
        Assert.True(logits.allclose(expected, rtol: 1e-5, atol: 1e-5));
    }

    [Fact]
    public void MirrorTtaOfAMirrorEquivariantNetworkEqualsNoTta()
    {
        using var scope = NewDisposeScope();
        var net = (TorchSharp.Modules.Conv3d)Conv(3, 1, 2, 3, 5);
        using (no_grad())
        {
            // symmetrise the kernel along every axis: the convolution then commutes with every flip
            var w = net.weight!;
            var symmetric = w.add(w.flip(2)).div(2);
            symmetric = symmetric.add(symmetric.flip(3)).div(2);
            symmetric = symmetric.add(symmetric.flip(4)).div(2);
            w.copy_(symmetric);
        }
        manual_seed(6);
        var image = randn(new long[] { 1, 10, 12, 9 });
        var plain = new SlidingWindowPredictor(net, [8, 8, 8], 2, [], CPU).PredictLogits(image);
        var mirrored = new SlidingWindowPredictor(net, [8, 8, 8], 2, [0, 1, 2], CPU);
        Assert.Equal(8, mirrored.PassesPerTile);
        Assert.True(mirrored.PredictLogits(image).allclose(plain, rtol: 1e-4, atol: 1e-5));

        // a non-symmetric kernel makes the mirror passes differ: TTA must change the result
        var asymmetric = Conv(3, 1, 2, 3, 7);
        var a = new SlidingWindowPredictor(asymmetric, [8, 8, 8], 2, [], CPU).PredictLogits(image);
        var b = new SlidingWindowPredictor(asymmetric, [8, 8, 8], 2, [2], CPU).PredictLogits(image);
        Assert.False(a.allclose(b, rtol: 1e-3, atol: 1e-3));
    }

    [Fact]
    public void MirrorsStackedInOneBatchEqualMirrorsOneByOne_WithInstanceNormAndInChunks()
    {
        using var scope = NewDisposeScope();
        manual_seed(13);
        // instance norm is per sample: stacking the mirrored tiles in a batch must not mix them
        var net = nn.Sequential(nn.Conv3d(1, 4, 3, padding: 1), nn.InstanceNorm3d(4, affine: true), nn.LeakyReLU(0.01), nn.Conv3d(4, 2, 3, padding: 1));
        var image = randn(new long[] { 1, 10, 12, 9 });
        var oneByOne = new SlidingWindowPredictor([net], [8, 8, 8], 2, [0, 1, 2], CPU, mirrorBatchVoxels: 1).PredictLogits(image);
        var allAtOnce = new SlidingWindowPredictor(net, [8, 8, 8], 2, [0, 1, 2], CPU).PredictLogits(image);
        var inThrees = new SlidingWindowPredictor([net], [8, 8, 8], 2, [0, 1, 2], CPU, mirrorBatchVoxels: 3 * 512).PredictLogits(image);
        Assert.True(allAtOnce.allclose(oneByOne, rtol: 1e-5, atol: 1e-5));
        Assert.True(inThrees.allclose(oneByOne, rtol: 1e-5, atol: 1e-5));
        // and TTA did something: without mirrors the result differs
        var plain = new SlidingWindowPredictor(net, [8, 8, 8], 2, [], CPU).PredictLogits(image);
        Assert.False(plain.allclose(oneByOne, rtol: 1e-3, atol: 1e-3));
    }

    [Fact]
    public void MirrorCombinationsAreAllNonEmptySubsets()
    {
        var combos = SlidingWindowPredictor.MirrorCombinations([0, 1, 2]);
        Assert.Equal(7, combos.Length);
        Assert.Equal([0], combos[0]);
        Assert.Equal([0, 1, 2], combos[^1]);
        Assert.Empty(SlidingWindowPredictor.MirrorCombinations([]));
    }

    [Fact]
    public void FoldsAreAveragedAndDeepSupervisionUsesTheFullResolutionOutput()
    {
        using var scope = NewDisposeScope();
        var a = Conv(3, 1, 2, 1, 8);
        var b = Conv(3, 1, 2, 1, 9);
        manual_seed(10);
        var image = randn(new long[] { 1, 8, 10, 12 });
        var ensemble = new SlidingWindowPredictor([new DeepSupervised(a), b], [8, 8, 8], 2, [], CPU).PredictLogits(image);
        Tensor expected;
        using (no_grad()) expected = a.forward(image.unsqueeze(0)).add(b.forward(image.unsqueeze(0))).div(2)[0];
        Assert.True(ensemble.allclose(expected, rtol: 1e-5, atol: 1e-5));
    }

    [Fact]
    public void TwoDimensionalPatchPredictsSliceBySlice()
    {
        using var scope = NewDisposeScope();
        var net = Conv(2, 1, 3, 3, 11);
        manual_seed(12);
        var image = randn(new long[] { 1, 3, 6, 7 });
        var logits = new SlidingWindowPredictor(net, [8, 8], 3, [0, 1], CPU).PredictLogits(image);
        Assert.Equal(new long[] { 3, 3, 6, 7 }, logits.shape);
        var oneSlice = new SlidingWindowPredictor(net, [8, 8], 3, [0, 1], CPU).PredictLogits(image[.., 1]);
        Assert.True(logits[.., 1].allclose(oneSlice, rtol: 1e-6, atol: 1e-6));
    }

    [Fact]
    public void RejectsImagesThatDoNotFitThePatchAndWrongClassCounts()
    {
        using var scope = NewDisposeScope();
        var net = Conv(3, 1, 2, 1, 1);
        Assert.Throws<ArgumentException>(() => new SlidingWindowPredictor(net, [8, 8, 8], 2, [], CPU).PredictLogits(zeros(new long[] { 1, 8, 8 })));
        var ex = Assert.Throws<InvalidDataException>(() => new SlidingWindowPredictor(net, [8, 8, 8], 3, [], CPU).PredictLogits(zeros(new long[] { 1, 8, 8, 8 })));
        Assert.Contains("3 expected", ex.Message);
        Assert.Throws<ArgumentException>(() => new SlidingWindowPredictor(net, [8, 8, 8], 2, [3], CPU));
    }
}
