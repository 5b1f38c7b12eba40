using NnUnet.Training.Augmentation;
using static TorchSharp.torch;

namespace NnUnet.Training.Tests.Augmentation;

public class AugmentationTests
{
    private static AugmentationOptions Only(int[] patch, Func<AugmentationOptions, AugmentationOptions> enable) =>
        enable(AugmentationOptions.ForPatch(patch) with
        {
            PRotation = 0, PScaling = 0, PNoise = 0, PBlur = 0, PBrightness = 0, PContrast = 0, PLowResolution = 0,
            PInvertedGamma = 0, PGamma = 0, PMirrorPerAxis = 0,
        });

    private static float[] Values(Tensor t) => t.cpu().to(ScalarType.Float32).contiguous().data<float>().ToArray();

    [Theory]
    [InlineData(new[] { 128, 128, 128 }, new[] { 205, 205, 205 })]
    [InlineData(new[] { 64, 160, 112 }, new[] { 159, 228, 151 })]
    [InlineData(new[] { 16, 128, 96 }, new[] { 16, 150, 150 })]
    [InlineData(new[] { 512, 512 }, new[] { 602, 602 })]
    [InlineData(new[] { 256, 128 }, new[] { 329, 150 })]
    public void InitialPatchSizeMatchesNnUnetGetPatchSize(int[] patch, int[] expected)
    {
        // expected values computed with nnU-Net's get_patch_size (numpy) for the rotation nnU-Net configures
        var options = AugmentationOptions.ForPatch(patch);
        Assert.Equal(expected, options.InitialPatchSize);
    }

    [Fact]
    public void ForPatchChoosesNnUnetRotationDummy2DAndMirrorAxes()
    {
        var iso = AugmentationOptions.ForPatch([64, 64, 64]);
        Assert.False(iso.DummyTwoD);
        Assert.Equal(30 * Math.PI / 180, iso.Rotation.High, 12);
        Assert.Equal([0, 1, 2], iso.MirrorAxes);
        var aniso = AugmentationOptions.ForPatch([16, 128, 96]);
        Assert.True(aniso.DummyTwoD);
        Assert.Equal(Math.PI, aniso.Rotation.High, 12);
        Assert.Equal(15 * Math.PI / 180, AugmentationOptions.ForPatch([256, 128]).Rotation.High, 12);
        Assert.Equal(Math.PI, AugmentationOptions.ForPatch([128, 128]).Rotation.High, 12);
        Assert.Equal([0, 1], AugmentationOptions.ForPatch([128, 128]).MirrorAxes);
    }

    [Fact]
    public void RotationBy90DegreesMatchesRot90ForImageAndSegmentation()
    {
        using var scope = NewDisposeScope();
        var image = arange(7 * 7, ScalarType.Float32).reshape(1, 7, 7);
        var seg = (arange(7 * 7, ScalarType.Int64) % 3).reshape(1, 7, 7);
        var affine = SpatialAugmentation.AffineMatrix([0, Math.PI / 2], 1.0);
        var grid = SpatialAugmentation.Grid(affine, [7, 7], [7, 7], CPU);
        var rotated = SpatialAugmentation.SampleImage(image, grid);
        // output(o) = input(A o): with A the +90 deg rotation in (y, x) this is numpy's rot90 with k = -1
        var expected = image.rot90(-1, (1, 2));
        Assert.True(rotated.allclose(expected, rtol: 0, atol: 1e-3), "rotated image differs from rot90");
        var rotatedSeg = SpatialAugmentation.SampleSegmentation(seg, grid, -1);
        Assert.Equal(ScalarType.Int64, rotatedSeg.dtype);
        Assert.True(rotatedSeg.IsSame(seg.rot90(-1, (1, 2))), "rotated segmentation differs from rot90");
    }

    [Fact]
    public void Rotation3DAboutAxis0TurnsTheYxPlaneOnly()
    {
        using var scope = NewDisposeScope();
        var image = rand(new long[] { 1, 5, 5, 5 });
        var affine = SpatialAugmentation.AffineMatrix([Math.PI / 2, 0, 0], 1.0);
        var grid = SpatialAugmentation.Grid(affine, [5, 5, 5], [5, 5, 5], CPU);
        var rotated = SpatialAugmentation.SampleImage(image, grid);
        Assert.True(rotated.allclose(image.rot90(-1, (2, 3)), rtol: 0, atol: 1e-4));
    }

    [Fact]
    public void IdentityGridOnLargerInputEqualsCentreCrop()
    {
        using var scope = NewDisposeScope();
        var image = rand(new long[] { 2, 10, 12, 9 });
        var grid = SpatialAugmentation.Grid(SpatialAugmentation.AffineMatrix([0, 0, 0], 1.0), [10, 12, 9], [6, 8, 5], CPU);
        var sampled = SpatialAugmentation.SampleImage(image, grid);
        var cropped = SpatialAugmentation.CenterCrop(image, [6, 8, 5], 0);
        Assert.True(sampled.allclose(cropped, rtol: 0, atol: 1e-5));
        Assert.True(cropped.IsSame(image[.., 2..8, 2..10, 2..7]));
    }

    [Fact]
    public void SegmentationOutsideTheInputBecomesMinusOneAndScalingShrinksObjects()
    {
        using var scope = NewDisposeScope();
        var seg = zeros(new long[] { 1, 16, 16 }, ScalarType.Int64);
        seg[.., 4..12, 4..12] = tensor(2L);
        // scale 2: the output samples twice the input's extent, so the square covers a quarter of the voxels it had
        var grid = SpatialAugmentation.Grid(SpatialAugmentation.AffineMatrix([0, 0], 2.0), [16, 16], [16, 16], CPU);
        var sampled = SpatialAugmentation.SampleSegmentation(seg, grid, -1);
        long twos = sampled.eq(2).sum().item<long>();
        Assert.InRange(twos, 12, 20);
        Assert.True(sampled[0, 0, 0].item<long>() == -1, "corner sampled outside the input must be -1");
        Assert.True(sampled[0, 8, 8].item<long>() == 2);
    }

    [Fact]
    public void MirroringFlipsDataAndSegAlongTheDrawnAxes()
    {
        using var scope = NewDisposeScope();
        var options = Only([4, 5, 6], o => o with { PMirrorPerAxis = 1 });
        var data = rand(new long[] { 2, 1, 4, 5, 6 });
        var seg = randint(0, 3, new long[] { 2, 1, 4, 5, 6 }).to(ScalarType.Float32);
        using var rng = new Generator(3);
        var (outData, outSeg) = new NnUnetAugmenter(options).Apply(data, seg, rng);
        Assert.True(outData.IsSame(data.flip(2, 3, 4)));
        Assert.True(outSeg.IsSame(seg.flip(2, 3, 4)));
    }

    [Fact]
    public void TheCallersBatchIsNotModified()
    {
        using var scope = NewDisposeScope();
        var options = Only([6, 6], o => o with { PNoise = 1, PBrightness = 1, PGamma = 1 });
        var data = rand(new long[] { 2, 1, 6, 6 });
        var seg = full(new long[] { 2, 1, 6, 6 }, -1f);
        var (dataCopy, segCopy) = (data.clone(), seg.clone());
        using var rng = new Generator(5);
        var (outData, outSeg) = new NnUnetAugmenter(options).Apply(data, seg, rng);
        Assert.True(data.IsSame(dataCopy) && seg.IsSame(segCopy));
        Assert.False(outData.IsSame(data));
        Assert.True(outSeg.eq(0).all().item<bool>());
    }

    [Fact]
    public void ContrastPreservesTheRangeAndScalesDeviationsFromTheMean()
    {
        using var scope = NewDisposeScope();
        var sample = randn(new long[] { 1, 6, 6, 6 });
        float min = sample.min().item<float>(), max = sample.max().item<float>();
        var before = sample.clone();
        IntensityAugmentation.Contrast(sample, 0, 1.25);
        Assert.True(sample.min().item<float>() >= min - 1e-6f && sample.max().item<float>() <= max + 1e-6f);
        Assert.True(sample.std().item<float>() > before.std().item<float>(), "a factor > 1 must increase contrast");
        var lower = before.clone();
        IntensityAugmentation.Contrast(lower, 0, 0.75);
        float mean = before.mean().item<float>();
        var expected = before.sub(mean).mul(0.75).add(mean);
        Assert.True(lower.allclose(expected, rtol: 0, atol: 1e-5), "a factor < 1 never clips");
    }

    [Theory]
    [InlineData(0.7, false)]
    [InlineData(1.5, false)]
    [InlineData(1.3, true)]
    public void GammaRetainsMeanAndStandardDeviation(double gamma, bool invert)
    {
        using var scope = NewDisposeScope();
        var sample = rand(new long[] { 2, 8, 8 }).mul(3).add(1);
        var before = sample.clone();
        IntensityAugmentation.Gamma(sample, 1, gamma, invert);
        Assert.Equal(before[1].mean().item<float>(), sample[1].mean().item<float>(), 3);
        Assert.Equal(before[1].std().item<float>(), sample[1].std().item<float>(), 3);
        Assert.False(sample[1].allclose(before[1], rtol: 0, atol: 1e-3), "gamma != 1 must change the channel");
        Assert.True(sample[0].IsSame(before[0]), "other channels untouched");
    }

    [Fact]
    public void GaussianKernelMatchesBatchgeneratorsSizesAndSumsToOne()
    {
        Assert.Equal(3, IntensityAugmentation.GaussianKernel(0.5).Length); // 3.5 rounds (to even) to 4, below 3.5 -> 3
        Assert.Equal(7, IntensityAugmentation.GaussianKernel(1.0).Length); // 6.5 -> 6 -> 7
        var k = IntensityAugmentation.GaussianKernel(0.8);
        Assert.Equal(1.0, k.Sum(), 5);
        for (int i = 0; i < k.Length / 2; i++) Assert.Equal(k[i], k[^(i + 1)], 6);
    }

    [Fact]
    public void BlurKeepsConstantsAndSmoothsNoise()
    {
        using var scope = NewDisposeScope();
        var sample = full(new long[] { 2, 8, 8, 8 }, 3.0f);
        sample[1] = randn(8, 8, 8);
        var noiseBefore = sample[1].std().item<float>();
        IntensityAugmentation.GaussianBlur(sample, 0, [1.0, 1.0, 1.0]);
        IntensityAugmentation.GaussianBlur(sample, 1, [1.0, 0.5, 1.0]);
        Assert.True(sample[0].allclose(full(new long[] { 8, 8, 8 }, 3.0f), rtol: 0, atol: 1e-5));
        Assert.True(sample[1].std().item<float>() < 0.6 * noiseBefore);
    }

    [Fact]
    public void LowResolutionSimulationLosesDetailButKeepsAxesListedAsKept()
    {
        using var scope = NewDisposeScope();
        var sample = randn(new long[] { 1, 8, 8, 8 });
        var unchanged = sample.clone();
        IntensityAugmentation.SimulateLowResolution(unchanged, 0, 1.0, []);
        Assert.True(unchanged.allclose(sample, rtol: 0, atol: 1e-6), "zoom 1 is the identity");
        var lowRes = sample.clone();
        IntensityAugmentation.SimulateLowResolution(lowRes, 0, 0.5, []);
        Assert.True(lowRes.std().item<float>() < sample.std().item<float>());
        // axis 0 kept: a volume constant in-plane and varying along z is unchanged
        var zOnly = arange(8, ScalarType.Float32).reshape(1, 8, 1, 1).expand(1, 8, 8, 8).contiguous();
        var zKept = zOnly.clone();
        IntensityAugmentation.SimulateLowResolution(zKept, 0, 0.5, [0]);
        Assert.True(zKept.allclose(zOnly, rtol: 0, atol: 1e-5));
    }

    [Fact]
    public void TransformProbabilitiesMatchOverManyDraws()
    {
        using var scope = NewDisposeScope();
        const int n = 1500;
        var options = Only([4, 4], o => o with { PNoise = 0.1, PBrightness = 0.15 });
        var data = ones(new long[] { n, 1, 4, 4 });
        var seg = zeros(new long[] { n, 1, 4, 4 });
        using var rng = new Generator(11);
        var (outData, _) = new NnUnetAugmenter(options).Apply(data, seg, rng);
        var changed = outData.sub(1).abs().amax([1, 2, 3]).gt(1e-6).sum().item<long>();
        // P(noise or brightness) = 1 - 0.9 * 0.85 = 0.235; sd of the fraction ~ 0.011
        Assert.InRange(changed / (double)n, 0.235 - 0.04, 0.235 + 0.04);

        var mirror = Only([4, 4], o => o with { PMirrorPerAxis = 0.5 });
        var ramp = arange(16, ScalarType.Float32).reshape(1, 1, 4, 4).expand(n, 1, 4, 4).contiguous();
        var (mirrored, _) = new NnUnetAugmenter(mirror).Apply(ramp, zeros(new long[] { n, 1, 4, 4 }), rng);
        var firstVoxel = mirrored[.., 0, 0, 0];
        double flippedY = firstVoxel.ge(8).sum().item<long>() / (double)n; // value >= 8 <=> row flipped
        Assert.InRange(flippedY, 0.45, 0.55);
    }

    [Fact]
    public void SameGeneratorSeedGivesTheSameBatchAndAnotherSeedDoesNot()
    {
        using var scope = NewDisposeScope();
        var options = AugmentationOptions.ForPatch([8, 12, 12]) with
        {
            PRotation = 0.5, PScaling = 0.5, PNoise = 0.5, PBlur = 0.5, PBrightness = 0.5, PContrast = 0.5,
            PLowResolution = 0.5, PInvertedGamma = 0.3, PGamma = 0.5,
        };
        var initial = options.InitialPatchSize;
        var shape = new long[] { 4, 2, initial[0], initial[1], initial[2] };
        manual_seed(5);
        var data = randn(shape);
        // the trainer's contract: seg int16 with -1 outside the mask
        var seg = randint(-1, 3, new long[] { 4, 1, initial[0], initial[1], initial[2] }).to(ScalarType.Int16);
        var augmenter = new NnUnetAugmenter(options);
        using var a = new Generator(42);
        using var b = new Generator(42);
        using var c = new Generator(43);
        var (d1, s1) = augmenter.Apply(data, seg, a);
        var (d2, s2) = augmenter.Apply(data, seg, b);
        var (d3, _) = augmenter.Apply(data, seg, c);
        Assert.Equal(new long[] { 4, 2, 8, 12, 12 }, d1.shape);
        Assert.Equal(new long[] { 4, 1, 8, 12, 12 }, s1.shape);
        Assert.True(d1.IsSame(d2) && s1.IsSame(s2), "same seed must give the same batch");
        Assert.False(d1.IsSame(d3), "another seed must give another batch");
        Assert.Equal(ScalarType.Int16, s1.dtype);
        Assert.Equal(d1.device.type, data.device.type);
        // labels stay labels; -1 is gone
        Assert.True(s1.ge(0).all().item<bool>() && s1.le(2).all().item<bool>());
    }

    [Fact]
    public void DefaultPipelineKeepsLabelsAndMasksChannelsNormalisedWithAMask()
    {
        using var scope = NewDisposeScope();
        var options = AugmentationOptions.ForPatch([6, 6], useMaskForNorm: [true, false]) with { PMirrorPerAxis = 0 };
        var initial = options.InitialPatchSize;
        var seg = zeros(new long[] { 1, 1, initial[0], initial[1] });
        seg[.., .., 0..(initial[0] / 2), ..] = tensor(-1f);
        seg[.., .., ^2.., ^2..] = tensor(1f);
        var data = ones(new long[] { 1, 2, initial[0], initial[1] });
        var noRandomness = options with
        {
            PRotation = 0, PScaling = 0, PNoise = 0, PBlur = 0, PBrightness = 0, PContrast = 0, PLowResolution = 0,
            PInvertedGamma = 0, PGamma = 0,
        };
        using var rng = new Generator(1);
        var (outData, outSeg) = new NnUnetAugmenter(noRandomness).Apply(data, seg, rng);
        var expectedSeg = SpatialAugmentation.CenterCrop(seg[0], [6, 6], -1);
        var outside = expectedSeg[0].lt(0);
        Assert.True(outside.any().item<bool>());
        Assert.True(outData[0, 0].masked_select(outside).eq(0).all().item<bool>(), "masked channel zeroed outside the mask");
        Assert.True(outData[0, 1].eq(1).all().item<bool>(), "unmasked channel untouched");
        Assert.True(outSeg[0].IsSame(expectedSeg.clamp(min: 0)), "seg -1 -> 0, labels kept");
    }

    [Fact]
    public void DummyTwoDKeepsAxis0AndRotatesInPlane()
    {
        using var scope = NewDisposeScope();
        var options = Only([4, 16, 16], o => o with { PRotation = 1 });
        Assert.True(options.DummyTwoD);
        var initial = options.InitialPatchSize;
        Assert.Equal(4, initial[0]);
        // each z-slice is a constant value: an in-plane transform keeps it within the slice (away from borders)
        var data = arange(4, ScalarType.Float32).reshape(1, 1, 4, 1, 1).expand(1, 1, 4, initial[1], initial[2]).contiguous();
        var seg = zeros(new long[] { 1, 1, 4, initial[1], initial[2] });
        using var rng = new Generator(7);
        var (outData, _) = new NnUnetAugmenter(options).Apply(data, seg, rng);
        Assert.Equal(new long[] { 1, 1, 4, 16, 16 }, outData.shape);
        for (int z = 0; z < 4; z++)
            // centre only: like nnU-Net, the enlarged patch does not cover the corners of a 45 deg rotation
            Assert.True(outData[0, 0, z, 5..11, 5..11].allclose(full(new long[] { 6, 6 }, (float)z), rtol: 0, atol: 1e-5), $"slice {z} mixed with another slice");
    }

    [Fact]
    public void RejectsMismatchedShapesWithAClearMessage()
    {
        var augmenter = new NnUnetAugmenter(AugmentationOptions.ForPatch([8, 8]));
        using var rng = new Generator(1);
        var ex = Assert.Throws<ArgumentException>(() => augmenter.Apply(zeros(new long[] { 1, 1, 8, 8, 8 }), zeros(new long[] { 1, 1, 8, 8, 8 }), rng));
        Assert.Contains("2D patch", ex.Message);
        Assert.Throws<ArgumentException>(() => augmenter.Apply(zeros(new long[] { 1, 1, 8, 8 }), zeros(new long[] { 1, 1, 8, 9 }), rng));
    }
}
