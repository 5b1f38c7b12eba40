using NnUnet.Training.Loss;
using NnUnet.Training.Optim;
using static TorchSharp.torch;

namespace NnUnet.Training.Tests;

public class LossAndOptimTests
{
    private const double Smooth = 1e-5;

    // Two samples, 2 classes, 1x2 images. Sample 0: voxel logits [0, ln3] (p1 = 3/4) and [0, 0] (p1 = 1/2), labels [1, 0].
    // Sample 1: both voxels [ln3, 0] (p1 = 1/4), labels [0, 0].
    private static (Tensor logits, Tensor target) Example()
    {
        float ln3 = MathF.Log(3f);
        var logits = tensor(new float[] { 0, 0, ln3, 0, /* sample 1 */ ln3, ln3, 0, 0 }, new long[] { 2, 2, 1, 2 });
        var target = tensor(new long[] { 1, 0, 0, 0 }, new long[] { 2, 1, 1, 2 });
        return (logits, target);
    }

    [Fact]
    public void SoftDiceMatchesHandComputedValuesPerSampleAndBatch()
    {
        var (logits, target) = Example();
        double dice0 = (2 * 0.75 + Smooth) / (1 + 1.25 + Smooth);
        double dice1 = Smooth / (0 + 0.5 + Smooth);
        double perSample = -(dice0 + dice1) / 2;
        double batch = -(2 * 0.75 + Smooth) / (1 + 1.75 + Smooth);
        Assert.Equal(perSample, new SoftDiceLoss(batchDice: false).Compute(logits, target).item<float>(), 5);
        Assert.Equal(batch, new SoftDiceLoss(batchDice: true).Compute(logits, target).item<float>(), 5);
    }

    [Fact]
    public void DiceCeIsCrossEntropyPlusNegatedDice()
    {
        var (logits, target) = Example();
        // CE per voxel: -ln p(label). Sample 0: -ln 3/4, -ln 1/2; sample 1: p0 = 3/4 twice.
        double ce = (Math.Log(4.0 / 3) + Math.Log(2) + 2 * Math.Log(4.0 / 3)) / 4;
        double batchDice = (2 * 0.75 + Smooth) / (1 + 1.75 + Smooth);
        Assert.Equal(ce - batchDice, new DiceCeLoss(batchDice: true).Compute(logits, target).item<float>(), 5);
    }

    [Fact]
    public void DeepSupervisionWeightsAreHalvingWithLowestZeroNormalised()
    {
        Assert.Equal(new[] { 2.0 / 3, 1.0 / 3, 0 }, DeepSupervisionLoss.ComputeWeights(3));
        var w4 = DeepSupervisionLoss.ComputeWeights(4);
        Assert.Equal(1 / 1.75, w4[0], 12);
        Assert.Equal(0.25 / 1.75, w4[2], 12);
        Assert.Equal(0, w4[3]);
        Assert.Equal(new[] { 1.0 }, DeepSupervisionLoss.ComputeWeights(1));
    }

    [Fact]
    public void TargetDownsamplingIsNearestExact()
    {
        // 4x4 -> 2x2 nearest-exact picks source indices 1 and 3 on each axis (floor((i + 0.5) * 2)).
        var target = arange(16, dtype: ScalarType.Int64).reshape(1, 1, 4, 4);
        var small = DeepSupervisionLoss.DownsampleTarget(target, new long[] { 1, 3, 2, 2 });
        Assert.Equal(new long[] { 5, 7, 13, 15 }, small.data<long>().ToArray());
        Assert.Equal(ScalarType.Int64, small.dtype);
    }

    [Fact]
    public void DeepSupervisionLossIsWeightedSumOfHeads()
    {
        manual_seed(5);
        var target = randint(0, 3, new long[] { 2, 1, 8, 8 });
        var full = randn(new long[] { 2, 3, 8, 8 });
        var half = randn(new long[] { 2, 3, 4, 4 });
        var quarter = randn(new long[] { 2, 3, 2, 2 });
        var inner = new DiceCeLoss(batchDice: false);
        var ds = new DeepSupervisionLoss(inner, 3);
        double expected = 2.0 / 3 * inner.Compute(full, target).item<float>()
                          + 1.0 / 3 * inner.Compute(half, DeepSupervisionLoss.DownsampleTarget(target, half.shape)).item<float>();
        Assert.Equal(expected, ds.Compute([full, half, quarter], target).item<float>(), 5);
    }

    [Fact]
    public void NesterovSgdMatchesTorchSgdExactly()
    {
        manual_seed(11);
        var init = randn(new long[] { 5, 3 });
        var a = nn.Parameter(init.clone());
        var b = nn.Parameter(init.clone());
        var ours = new NesterovSgd([a], learningRate: 0.05, momentum: 0.99, weightDecay: 3e-5);
        var reference = optim.SGD([b], 0.05, momentum: 0.99, nesterov: true, weight_decay: 3e-5);
        for (int step = 0; step < 4; step++)
        {
            var x = randn(new long[] { 3, 4 });
            ours.ZeroGrad(); reference.zero_grad();
            a.matmul(x).square().sum().backward();
            b.matmul(x).square().sum().backward();
            ours.Step(); reference.step();
            Assert.Equal(b.data<float>().ToArray(), a.data<float>().ToArray());
        }
    }

    [Fact]
    public void PolyLearningRateFollowsNnUnet()
    {
        Assert.Equal(1e-2, PolyLearningRate.At(1e-2, 0, 1000));
        Assert.Equal(1e-2 * Math.Pow(0.5, 0.9), PolyLearningRate.At(1e-2, 500, 1000), 15);
        Assert.Equal(1e-2 * Math.Pow(1.0 / 1000, 0.9), PolyLearningRate.At(1e-2, 999, 1000), 15);
    }
}
