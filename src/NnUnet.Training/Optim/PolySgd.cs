using TorchSharp.Modules;
using static TorchSharp.torch;
using NnUnet.Training.Torch;

namespace NnUnet.Training.Optim;

/// <summary>
/// SGD with momentum, Nesterov and weight decay with PyTorch's exact update rule (dampening 0), written here so that
/// its state (the momentum buffers) is ours to checkpoint and restore bit-exactly:
/// <c>g = grad + wd p; buf = g (first step) | momentum buf + g; p -= lr (g + momentum buf)</c>.
/// nnU-Net's defaults: lr 1e-2, momentum 0.99, nesterov, weight decay 3e-5.
/// </summary>
public sealed class NesterovSgd : IDisposable
{
    private readonly Parameter[] parameters;
    private readonly Tensor?[] momentumBuffers;

    public double LearningRate { get; set; }
    public double Momentum { get; }
    public double WeightDecay { get; }

    public NesterovSgd(IEnumerable<Parameter> parameters, double learningRate = 1e-2, double momentum = 0.99, double weightDecay = 3e-5)
    {
        this.parameters = parameters.ToArray();
        momentumBuffers = new Tensor?[this.parameters.Length];
        LearningRate = learningRate;
        Momentum = momentum;
        WeightDecay = weightDecay;
    }

    public IReadOnlyList<Parameter> Parameters => parameters;

    /// <summary>Momentum buffer per parameter (null before the parameter's first step).</summary>
    public IReadOnlyList<Tensor?> MomentumBuffers => momentumBuffers;

    public void ZeroGrad()
    {
        foreach (var p in parameters) p.grad = null;
    }

    public void Step()
    {
        using var noGrad = no_grad();
        using var weightDecay = TorchScalars.Of(WeightDecay);
        using var momentum = TorchScalars.Of(Momentum);
        using var step = TorchScalars.Of(-LearningRate);
        for (int i = 0; i < parameters.Length; i++)
        {
            var p = parameters[i];
            var grad = p.grad;
            if (grad is null) continue;
            using var decayed = WeightDecay != 0 ? grad.add(p, alpha: weightDecay) : grad.alias();
            var buffer = momentumBuffers[i];
            // buffers outlive the caller's dispose scope (a training step usually runs in one)
            if (buffer is null) momentumBuffers[i] = buffer = decayed.clone().DetachFromDisposeScope();
            else buffer.mul_(momentum).add_(decayed);
            using var update = decayed.add(buffer, alpha: momentum);
            p.add_(update, alpha: step);
        }
    }

    /// <summary>Replaces the momentum buffers (checkpoint restore); null entries mean "no step taken yet".</summary>
    public void LoadMomentumBuffers(IReadOnlyList<Tensor?> buffers)
    {
        if (buffers.Count != parameters.Length)
            throw new InvalidDataException($"optimizer state has {buffers.Count} momentum buffers, the network has {parameters.Length} parameters");
        using var noGrad = no_grad();
        using var weightDecay = TorchScalars.Of(WeightDecay);
        using var momentum = TorchScalars.Of(Momentum);
        using var step = TorchScalars.Of(-LearningRate);
        for (int i = 0; i < parameters.Length; i++)
        {
            momentumBuffers[i]?.Dispose();
            var source = buffers[i];
            if (source is null) { momentumBuffers[i] = null; continue; }
            if (!source.shape.SequenceEqual(parameters[i].shape))
                throw new InvalidDataException($"optimizer state: momentum buffer {i} has shape [{string.Join(",", source.shape)}], parameter has [{string.Join(",", parameters[i].shape)}]");
            momentumBuffers[i] = source.to(parameters[i].dtype, parameters[i].device).clone().DetachFromDisposeScope();
        }
    }

    public void Dispose()
    {
        foreach (var b in momentumBuffers) b?.Dispose();
    }
}

/// <summary>nnU-Net's PolyLRScheduler: <c>lr = initial (1 - epoch / maxEpochs)^0.9</c>, set at the start of each epoch.</summary>
public static class PolyLearningRate
{
    public static double At(double initial, int epoch, int maxEpochs, double exponent = 0.9) =>
        initial * Math.Pow(1.0 - (double)epoch / maxEpochs, exponent);
}
