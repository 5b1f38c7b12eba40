using NnUnet.Core.Imaging;
using NnUnet.Core.Preprocessing;
using NnUnet.Training.Data;
using static TorchSharp.torch;

namespace NnUnet.Training.Tests;

public class DataTests
{
    [Fact]
    public void InitialPatchSizeFollowsNnUnetsGetPatchSize()
    {
        // 3D isotropic, +-30 degrees: 64 (cos 30 + sin 30) / 0.85 = 102.86 -> 102 on every axis
        var iso = PatchGeometry.For([64, 64, 64]);
        Assert.Equal(new[] { 102, 102, 102 }, iso.InitialPatchSize);
        Assert.False(iso.DummyTwoD);
        // 3D anisotropic (64/8 > 3): dummy 2D, 180 degrees capped at 90 -> max axis / 0.85 = 75, axis 0 kept at 8
        var aniso = PatchGeometry.For([8, 64, 64]);
        Assert.True(aniso.DummyTwoD);
        Assert.Equal(new[] { 8, 75, 75 }, aniso.InitialPatchSize);
        // 2D, ratio 1.4 <= 1.5: 180 degrees (capped 90): both axes max(40, 56) / 0.85 = 65
        var flat = PatchGeometry.For([40, 56]);
        Assert.Equal(new[] { 65, 65 }, flat.InitialPatchSize);
        Assert.Equal(Math.PI, flat.RotationRadians, 12);
        // 2D, ratio 2 > 1.5: +-15 degrees: axis 0 = |32 cos15 + 64 sin15| = 47.47, axis 1 = |-32 sin15 + 64 cos15| = 53.54
        var wide = PatchGeometry.For([32, 64]);
        Assert.Equal(new[] { (int)(Math.Max(32, 32 * Math.Cos(Math.PI / 12) + 64 * Math.Sin(Math.PI / 12)) / 0.85), (int)(64 / 0.85) }, wide.InitialPatchSize);
    }

    [Fact]
    public void ForegroundForcedExactlyForTheLastThirdOfTheBatch()
    {
        var cases = SyntheticData.Make(3, [6, 40, 40], seed: 1, ellipsoidsPerCase: 1);
        var sampler = new PatchSampler(new InMemoryCaseSource(cases), [4, 8, 8], [4, 8, 8], batchSize: 3);
        Assert.False(sampler.ForcesForeground(0));
        Assert.False(sampler.ForcesForeground(1)); // round(3 * 0.67) = 2
        Assert.True(sampler.ForcesForeground(2));
        Assert.Equal(8, Enumerable.Range(0, 12).Count(j => !new PatchSampler(new InMemoryCaseSource(cases), [4, 8, 8], [4, 8, 8], 12).ForcesForeground(j)));

        long voxels = sampler.VoxelsPerPatch;
        var data = new float[3 * voxels];
        var seg = new short[3 * voxels];
        for (int batch = 0; batch < 40; batch++)
        {
            var rng = DeterministicRandom.ForBatch(9, 0, batch);
            sampler.SampleBatch(ref rng, data, seg);
            bool lastHasForeground = false;
            for (long i = 2 * voxels; i < 3 * voxels; i++) lastHasForeground |= seg[i] > 0;
            Assert.True(lastHasForeground, $"batch {batch}: forced-foreground sample has no foreground");
        }
    }

    [Fact]
    public void PatchesBeyondTheImageArePaddedWithZeroAndMinusOne()
    {
        // a 2x3x4 case, patch 4x5x6 centred: every axis needs padding
        var shape = new[] { 2, 3, 4 };
        var values = new float[24];
        var labels = new sbyte[24];
        for (int i = 0; i < 24; i++) { values[i] = i + 1; labels[i] = 1; }
        var props = new CaseProperties
        {
            Geometry = new ImageGeometry([1, 1, 1], [0, 0, 0], [1, 0, 0, 0, 1, 0, 0, 0, 1]), Spacing = [1, 1, 1],
            ShapeBeforeCropping = shape, BboxUsedForCropping = [[0, 2], [0, 3], [0, 4]], ShapeAfterCroppingAndBeforeResampling = shape,
        };
        var c = new PreprocessedCase("tiny", values, 1, shape, labels, props);
        var sampler = new PatchSampler(new InMemoryCaseSource([c]), [4, 5, 6], [4, 5, 6], batchSize: 1);
        var data = new float[sampler.VoxelsPerPatch];
        var seg = new short[sampler.VoxelsPerPatch];
        var rng = new DeterministicRandom(3);
        sampler.SampleBatch(ref rng, data, seg);
        // need_to_pad = patch - shape = (2, 2, 2): lbs = -1 per axis, ubs = shape + 1 - patch = -1: the corner is (-1, -1, -1)
        float sum = 0; int inside = 0, outside = 0;
        for (int i = 0; i < data.Length; i++)
        {
            if (seg[i] == 1) { inside++; sum += data[i]; }
            else { Assert.Equal(-1, seg[i]); Assert.Equal(0f, data[i]); outside++; }
        }
        Assert.Equal(24, inside);
        Assert.Equal(300f, sum); // 1 + 2 + ... + 24: the whole case landed in the patch
        Assert.Equal(1f, data[(1 * 5 + 1) * 6 + 1]); // voxel (0,0,0) of the case sits at patch (1,1,1)
    }

    [Fact]
    public void TwoDimensionalPatchesAreSlicesOfTheVolume()
    {
        var cases = SyntheticData.Make(2, [5, 32, 32], seed: 4);
        var sampler = new PatchSampler(new InMemoryCaseSource(cases), [16, 16], [24, 24], batchSize: 2);
        Assert.True(sampler.IsTwoD);
        Assert.Equal(24 * 24, sampler.VoxelsPerPatch);
        var loader = new BatchLoader(sampler, new CenterCropAugmenter([16, 16]), 1, 0, 0, 0, 1, CPU, CancellationToken.None);
        using var batch = loader.Make(0);
        Assert.Equal(new long[] { 2, 1, 16, 16 }, batch.Data.shape);
        Assert.Equal(new long[] { 2, 1, 16, 16 }, batch.Target.shape);
        Assert.True(batch.Target.max().item<long>() > 0, "the forced-foreground sample shows no foreground");
        Assert.Equal(0L, batch.Target.min().item<long>()); // -1 mapped to 0
    }

    [Fact]
    public async Task BatchLoaderIsDeterministicAndOrderedAcrossThreads()
    {
        var cases = SyntheticData.Make(4, [6, 32, 32], seed: 2);
        var sampler = new PatchSampler(new InMemoryCaseSource(cases), [4, 16, 16], [4, 20, 20], batchSize: 2);
        var crop = new CenterCropAugmenter([4, 16, 16]);
        var first = new List<float[]>();
        await using (var loader = new BatchLoader(sampler, crop, seed: 5, stream: 0, first: 0, count: 6, queueCapacity: 3, CPU, CancellationToken.None))
            for (int i = 0; i < 6; i++) { using var b = await loader.NextAsync(CancellationToken.None); first.Add(b.Data.data<float>().ToArray()); }
        // a second loader started at batch 3 (a resume) sees exactly batches 3..5
        await using (var resumed = new BatchLoader(sampler, crop, seed: 5, stream: 0, first: 3, count: 3, queueCapacity: 1, CPU, CancellationToken.None))
            for (int i = 3; i < 6; i++) { using var b = await resumed.NextAsync(CancellationToken.None); Assert.Equal(first[i], b.Data.data<float>().ToArray()); }
        Assert.NotEqual(first[0], first[1]);
        // another seed gives other batches
        await using var other = new BatchLoader(sampler, crop, seed: 6, stream: 0, first: 0, count: 1, queueCapacity: 1, CPU, CancellationToken.None);
        using var o = await other.NextAsync(CancellationToken.None);
        Assert.NotEqual(first[0], o.Data.data<float>().ToArray());
    }

    [Fact]
    public void CaseWithoutSegmentationIsRejectedByName()
    {
        var c = SyntheticData.Make(1, [2, 8, 8], 1)[0] with { Seg = null };
        var ex = Assert.Throws<InvalidDataException>(() => new InMemoryCaseSource([c]));
        Assert.Contains("case_000", ex.Message);
    }
}
