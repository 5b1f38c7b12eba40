using NnUnet.Training.Inference;
using static TorchSharp.torch;

namespace NnUnet.Training.Tests.Inference;

public class SlidingWindowPredictorTests
{
    /// <summary>float32 accumulation: these tests compare with by-hand float32 results at 1e-5.</summary>
    private static readonly InferenceMemoryOptions Exact = new() { Precision = LogitsPrecision.Float32 };

    /// <summary>Same shape, dtype and every value bit for bit.</summary>
    internal static bool Identical(Tensor a, Tensor b) =>
        a.dtype == b.dtype && a.shape.SequenceEqual(b.shape) && a.eq(b).all().item<bool>();

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
        var predictor = new SlidingWindowPredictor(net, [8, 8, 8], 3, [], CPU, memory: Exact);
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
        var logits = new SlidingWindowPredictor(net, [6, 8, 8], 2, [], CPU, memory: Exact).PredictLogits(image);
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
        var plain = new SlidingWindowPredictor(net, [8, 8, 8], 2, [], CPU, memory: Exact).PredictLogits(image);
        var mirrored = new SlidingWindowPredictor(net, [8, 8, 8], 2, [0, 1, 2], CPU, memory: Exact);
        Assert.Equal(8, mirrored.PassesPerTile);
        Assert.True(mirrored.PredictLogits(image).allclose(plain, rtol: 1e-4, atol: 1e-5));

        // a non-symmetric kernel makes the mirror passes differ: TTA must change the result
        var asymmetric = Conv(3, 1, 2, 3, 7);
        var a = new SlidingWindowPredictor(asymmetric, [8, 8, 8], 2, [], CPU, memory: Exact).PredictLogits(image);
        var b = new SlidingWindowPredictor(asymmetric, [8, 8, 8], 2, [2], CPU, memory: Exact).PredictLogits(image);
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
        var oneByOne = new SlidingWindowPredictor([net], [8, 8, 8], 2, [0, 1, 2], CPU, mirrorBatchVoxels: 1, memory: Exact).PredictLogits(image);
        var allAtOnce = new SlidingWindowPredictor(net, [8, 8, 8], 2, [0, 1, 2], CPU, memory: Exact).PredictLogits(image);
        var inThrees = new SlidingWindowPredictor([net], [8, 8, 8], 2, [0, 1, 2], CPU, mirrorBatchVoxels: 3 * 512, memory: Exact).PredictLogits(image);
        Assert.True(allAtOnce.allclose(oneByOne, rtol: 1e-5, atol: 1e-5));
        Assert.True(inThrees.allclose(oneByOne, rtol: 1e-5, atol: 1e-5));
        // and TTA did something: without mirrors the result differs
        var plain = new SlidingWindowPredictor(net, [8, 8, 8], 2, [], CPU, memory: Exact).PredictLogits(image);
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
        var ensemble = new SlidingWindowPredictor([new DeepSupervised(a), b], [8, 8, 8], 2, [], CPU, memory: Exact).PredictLogits(image);
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
        var logits = new SlidingWindowPredictor(net, [8, 8], 3, [0, 1], CPU, memory: Exact).PredictLogits(image);
        Assert.Equal(new long[] { 3, 3, 6, 7 }, logits.shape);
        var oneSlice = new SlidingWindowPredictor(net, [8, 8], 3, [0, 1], CPU, memory: Exact).PredictLogits(image[.., 1]);
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

    [Fact]
    public void HalfPrecisionAccumulatesInFloat16AsNnUnetWithinItsResolution()
    {
        using var scope = NewDisposeScope();
        var net = nn.Sequential(nn.Conv3d(1, 4, 3, padding: 1), nn.InstanceNorm3d(4, affine: true), nn.LeakyReLU(0.01), nn.Conv3d(4, 3, 3, padding: 1));
        manual_seed(21);
        var image = randn(new long[] { 1, 13, 11, 18 });
        var half = new SlidingWindowPredictor(net, [6, 8, 8], 3, [0, 1, 2], CPU);
        var logitsHalf = half.PredictLogits(image);
        var logitsFloat = new SlidingWindowPredictor(net, [6, 8, 8], 3, [0, 1, 2], CPU, memory: Exact).PredictLogits(image);
        Assert.Equal(ScalarType.Float16, logitsHalf.dtype);
        Assert.Equal(ScalarType.Float32, logitsFloat.dtype);
        Assert.Equal(LogitsPrecision.Half, half.LastAccumulation!.Precision);
        Assert.Equal((3 * 2 + 4) * 13 * 11 * 18, half.LastAccumulation.AccumulatorBytes); // float16 logits, float32 weights
        Assert.False(half.LastAccumulation.FellBackToHost);
        // float16 keeps 11 significant bits: relative error up to ~1e-3 per rounding
        var difference = logitsHalf.to(ScalarType.Float32).sub(logitsFloat).abs();
        var scale = logitsFloat.abs().max().item<float>();
        Assert.True(logitsHalf.to(ScalarType.Float32).allclose(logitsFloat, rtol: 4e-3, atol: 4e-3), $"max difference {difference.max().item<float>()}, largest logit {scale}");
        Assert.False(Identical(logitsHalf.to(ScalarType.Float32), logitsFloat), "float16 accumulation must round");
    }

    [Fact]
    public void Float16KeepsItsDigitsAtTheVolumesCornersWhereOneTileEdgeAloneReaches()
    {
        using var scope = NewDisposeScope();
        // a 32^3 patch weighs its corners 10 e^-24 = 4e-10 (below float16's smallest value): a float16 sum of
        // logit x weight would lose them; the running mean keeps float16's relative resolution there too
        var net = Conv(3, 1, 2, 3, 22);
        manual_seed(23);
        var image = randn(new long[] { 1, 32, 40, 32 }).mul(4);
        var half = new SlidingWindowPredictor(net, [32, 32, 32], 2, [], CPU).PredictLogits(image).to(ScalarType.Float32);
        var exact = new SlidingWindowPredictor(net, [32, 32, 32], 2, [], CPU, memory: Exact).PredictLogits(image);
        var error = half.sub(exact).abs().sub(exact.abs().mul(2e-3)).max().item<float>();
        Assert.True(error <= 1e-4, $"float16 error beyond 2e-3 relative: {error}");
        Assert.Equal(exact[.., 0, 0, 0].to(ScalarType.Float16).to(ScalarType.Float32).data<float>().ToArray(), half[.., 0, 0, 0].data<float>().ToArray());
    }

    [Fact]
    public void AVolumeAboveTheDeviceBudgetCompletesThroughTheHostFallbackWithTheSameResult()
    {
        using var scope = NewDisposeScope();
        var net = nn.Sequential(nn.Conv3d(2, 4, 3, padding: 1), nn.LeakyReLU(0.01), nn.Conv3d(4, 3, 3, padding: 1));
        manual_seed(24);
        var image = randn(new long[] { 2, 12, 10, 17 });
        foreach (var precision in new[] { LogitsPrecision.Half, LogitsPrecision.Float32 })
        {
            var fits = new SlidingWindowPredictor(net, [8, 8, 8], 3, [0, 1], CPU, memory: new InferenceMemoryOptions { Precision = precision });
            var expected = fits.PredictLogits(image);
            Assert.False(fits.LastAccumulation!.FellBackToHost);

            // logits + weights of 12x10x17 voxels: (3 x 2 (or 4) + 4) x 2040 bytes plus 2 input channels; a 10 kB budget is too small
            var budget = new InferenceMemoryOptions { Precision = precision, DeviceMemoryBudgetBytes = 10_000 };
            var tooSmall = new SlidingWindowPredictor(net, [8, 8, 8], 3, [0, 1], CPU, memory: budget);
            var result = tooSmall.PredictLogits(image);
            var placement = tooSmall.LastAccumulation!;
            Assert.True(placement.FellBackToHost);
            Assert.Contains("device budget of 10.0 kB", placement.Reason);
            Assert.Equal(CPU.type, result.device.type);
            Assert.True(Identical(result, expected), $"{precision}: the host fallback changed the logits");

            // a budget that holds them keeps them on the device
            var enough = new SlidingWindowPredictor(net, [8, 8, 8], 3, [0, 1], CPU, memory: budget with { DeviceMemoryBudgetBytes = 1_000_000 });
            Assert.True(Identical(enough.PredictLogits(image), expected));
            Assert.False(enough.LastAccumulation!.FellBackToHost);
        }
    }

    [Fact]
    public void WhenNotEvenTheHostHoldsTheLogitsTheErrorIsOneLineWithTheNumbers()
    {
        using var scope = NewDisposeScope();
        var net = Conv(3, 1, 50, 1, 25);
        var image = zeros(new long[] { 1, 16, 32, 32 });
        var memory = new InferenceMemoryOptions { DeviceMemoryBudgetBytes = 1_000, HostMemoryBudgetBytes = 1_500_000 };
        var ex = Assert.Throws<InferenceMemoryException>(() => new SlidingWindowPredictor(net, [8, 8, 8], 50, [], CPU, memory: memory).PredictLogits(image));
        Assert.DoesNotContain('\n', ex.Message);
        // (50 x 2 + 4) bytes x 16384 voxels = 1.7 MB accumulators + 65.5 kB input > 1.5 MB
        Assert.Contains("needs 1.7 MB for the logits and weights", ex.Message);
        Assert.Contains("plus 65.5 kB for the input", ex.Message);
        Assert.Contains("50 classes x (16x32x32) voxels in float16", ex.Message);
        Assert.Contains("only 1.5 MB of host memory", ex.Message);
        Assert.Contains("device budget of 1.0 kB", ex.Message);

        // with the device being the host and no budget, the same check runs before allocating
        var hostOnly = new InferenceMemoryOptions { HostMemoryBudgetBytes = 1_500_000 };
        Assert.Throws<InferenceMemoryException>(() => new SlidingWindowPredictor(net, [8, 8, 8], 50, [], CPU, memory: hostOnly).PredictLogits(image));
    }
}
