using TorchSharp;
using static TorchSharp.torch;

namespace NnUnet.Training.Augmentation;

/// <summary>
/// The random draws of one augmentation call. Scalars (probabilities, angles, factors) come from blocks of uniforms
/// drawn from the caller's generator, so one native call serves many draws; random fields (noise) are drawn on the
/// data's device, from the caller's generator when it lives there, else from a generator seeded from it.
/// </summary>
internal sealed class AugmentationRandom : IDisposable
{
    private const int BlockSize = 256;
    private readonly torch.Generator _rng;
    private readonly double[] _block = new double[BlockSize];
    private int _next = BlockSize;
    private torch.Generator? _deviceGenerator;

    public AugmentationRandom(torch.Generator rng) => _rng = rng;

    /// <summary>U[0, 1).</summary>
    public double Next()
    {
        if (_next == BlockSize)
        {
            using var block = torch.rand(BlockSize, ScalarType.Float64, device: _rng.device, generator: _rng);
            using var onCpu = block.cpu();
            onCpu.data<double>().CopyTo(_block);
            _next = 0;
        }
        return _block[_next++];
    }

    public bool Chance(double p) => Next() < p;

    public double Uniform(double low, double high) => low == high ? low : low + (high - low) * Next();

    public double Uniform(Range1D range) => Uniform(range.Low, range.High);

    /// <summary>
    /// batchgeneratorsv2's <c>BGContrast</c>: half the time U(low, 1) (when low &lt; 1), otherwise U(max(low, 1), high),
    /// so shrinking and stretching factors are equally likely although the range is asymmetric around 1.
    /// </summary>
    public double AroundOne(Range1D range)
    {
        if (Next() < 0.5 && range.Low < 1) return Uniform(range.Low, 1);
        return Uniform(Math.Max(range.Low, 1), range.High);
    }

    /// <summary>A generator on <paramref name="device"/> for random fields.</summary>
    public torch.Generator For(Device device)
    {
        if (_rng.device.type == device.type && _rng.device.index == device.index) return _rng;
        if (_deviceGenerator is null)
        {
            ulong seed = (ulong)(Next() * (1L << 53));
            _deviceGenerator = new torch.Generator(seed, device);
        }
        return _deviceGenerator;
    }

    public void Dispose() => _deviceGenerator?.Dispose();
}

/// <summary>A closed interval [Low, High] of a random parameter.</summary>
public readonly record struct Range1D(double Low, double High)
{
    public static implicit operator Range1D((double Low, double High) t) => new(t.Low, t.High);
}
