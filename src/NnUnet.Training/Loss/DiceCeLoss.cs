using static TorchSharp.torch;
using NnUnet.Training.Torch;

namespace NnUnet.Training.Loss;

/// <summary>
/// nnU-Net v2's <c>MemoryEfficientSoftDiceLoss</c>: softmax over channels, background excluded, per class
/// <c>(2 I + s) / max(G + P + s, 1e-8)</c> with I, P, G summed over the spatial axes (and over the batch when
/// <see cref="BatchDice"/>), averaged over classes (and samples), negated.
/// </summary>
public sealed class SoftDiceLoss(bool batchDice, double smooth = 1e-5)
{
    public bool BatchDice { get; } = batchDice;
    public double Smooth { get; } = smooth;

    /// <param name="logits">(b, C, *spatial) raw network output.</param>
    /// <param name="target">(b, 1, *spatial) integer labels in [0, C).</param>
    public Tensor Compute(Tensor logits, Tensor target)
    {
        using var scope = NewDisposeScope();
        long[] axes = SpatialAxes(logits.dim());
        long classes = logits.shape[1];
        Tensor sumGt, oneHot;
        using (no_grad())
        {
            var index = target.to(ScalarType.Int64);
            oneHot = zeros_like(logits, dtype: ScalarType.Bool).scatter_(1, index, ones_like(index, dtype: ScalarType.Bool)).narrow(1, 1, classes - 1);
            sumGt = oneHot.sum(axes, type: logits.dtype);
        }
        var probabilities = nn.functional.softmax(logits, 1).narrow(1, 1, classes - 1);
        var intersect = (probabilities * oneHot).sum(axes);
        var sumPred = probabilities.sum(axes);
        if (BatchDice)
        {
            // dim spelled out: a literal 0 would bind to sum(ScalarType) (enum conversion) and sum everything as uint8
            intersect = intersect.sum(dim: 0L);
            sumPred = sumPred.sum(dim: 0L);
            sumGt = sumGt.sum(dim: 0L);
        }
        using var smooth = TorchScalars.Of(Smooth);
        using var floor = TorchScalars.Of(1e-8);
        var dice = intersect.mul(TorchScalars.Two).add_(smooth).div_(sumGt.add(sumPred).add_(smooth).clamp_min(floor));
        return (-dice.mean()).MoveToOuterDisposeScope();
    }

    internal static long[] SpatialAxes(long dims)
    {
        var axes = new long[dims - 2];
        for (int i = 0; i < axes.Length; i++) axes[i] = i + 2;
        return axes;
    }
}

/// <summary>
/// nnU-Net v2's <c>DC_and_CE_loss</c> with weights 1:1: cross-entropy (mean over voxels) + negated soft Dice.
/// Labels must be in [0, C): like nnU-Net, the data pipeline turns the "outside the non-zero mask" label -1 into 0
/// before the loss sees it (<see cref="Data.PatchSampler"/> does it), so no ignore index is needed here.
/// </summary>
public sealed class DiceCeLoss(bool batchDice, double weightCe = 1.0, double weightDice = 1.0, double smooth = 1e-5)
{
    private readonly SoftDiceLoss dice = new(batchDice, smooth);

    public double WeightCe { get; } = weightCe;
    public double WeightDice { get; } = weightDice;

    /// <param name="logits">(b, C, *spatial).</param>
    /// <param name="target">(b, 1, *spatial) integer labels in [0, C).</param>
    public Tensor Compute(Tensor logits, Tensor target)
    {
        using var scope = NewDisposeScope();
        var labels = target.select(1, 0).to(ScalarType.Int64);
        var ce = nn.functional.cross_entropy(logits, labels);
        var dc = dice.Compute(logits, target);
        using var weightCe = TorchScalars.Of(WeightCe);
        using var weightDice = TorchScalars.Of(WeightDice);
        return ce.mul(weightCe).add(dc, alpha: weightDice).MoveToOuterDisposeScope();
    }
}

/// <summary>
/// nnU-Net's <c>DeepSupervisionWrapper</c>: weights 1/2^i over the outputs (highest resolution first), the lowest
/// resolution weighted 0, normalised to sum 1. Targets are the full-resolution labels downsampled (nearest-exact, as
/// batchgeneratorsv2's DownsampleSegForDSTransform) to each output's spatial shape.
/// </summary>
public sealed class DeepSupervisionLoss
{
    private readonly DiceCeLoss inner;

    public double[] Weights { get; }

    public DeepSupervisionLoss(DiceCeLoss inner, int outputs)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(outputs, 1);
        this.inner = inner;
        Weights = ComputeWeights(outputs);
    }

    /// <summary>1/2^i, last (lowest resolution) 0 when there is more than one output, normalised.</summary>
    public static double[] ComputeWeights(int outputs)
    {
        var w = new double[outputs];
        for (int i = 0; i < outputs; i++) w[i] = 1.0 / Math.Pow(2, i);
        if (outputs > 1) w[outputs - 1] = 0;
        double sum = 0;
        foreach (double v in w) sum += v;
        for (int i = 0; i < outputs; i++) w[i] /= sum;
        return w;
    }

    /// <param name="outputs">Logits per head, highest resolution first (as <see cref="Network.PlainConvUNet.ForwardWithDeepSupervision"/>).</param>
    /// <param name="target">(b, 1, *spatial) full-resolution integer labels.</param>
    public Tensor Compute(Tensor[] outputs, Tensor target)
    {
        if (outputs.Length != Weights.Length)
            throw new ArgumentException($"deep supervision loss built for {Weights.Length} outputs, got {outputs.Length}");
        using var scope = NewDisposeScope();
        Tensor? total = null;
        for (int i = 0; i < outputs.Length; i++)
        {
            if (Weights[i] == 0) continue;
            var head = DownsampleTarget(target, outputs[i].shape);
            using var weight = TorchScalars.Of(Weights[i]);
            var term = inner.Compute(outputs[i], head).mul(weight);
            total = total is null ? term : total.add(term);
        }
        return total!.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Nearest-exact resize of (b, 1, *spatial) labels to the spatial shape of <paramref name="outputShape"/>: source
    /// index <c>floor((i + 0.5) in / out)</c> per axis (PyTorch's 'nearest-exact'), done with index_select so integer
    /// labels never go through floats.
    /// </summary>
    public static Tensor DownsampleTarget(Tensor target, long[] outputShape)
    {
        var result = target.alias();
        for (int d = 2; d < outputShape.Length; d++)
        {
            long inSize = target.shape[d], outSize = outputShape[d];
            if (inSize == outSize) continue;
            double scale = (double)inSize / outSize;
            var indices = new long[outSize];
            for (long i = 0; i < outSize; i++) indices[i] = Math.Min(inSize - 1, (long)Math.Floor((i + 0.5) * scale));
            using var index = tensor(indices, device: target.device);
            var next = result.index_select(d, index);
            result.Dispose();
            result = next;
        }
        return result;
    }
}
