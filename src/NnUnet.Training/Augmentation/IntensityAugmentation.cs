using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;
using NnUnet.Training.Torch;

namespace NnUnet.Training.Augmentation;

/// <summary>
/// batchgeneratorsv2's intensity transforms on one sample (c, *spatial), in place where possible, on the sample's
/// device. Parameters are passed in (drawn by <see cref="NnUnetAugmenter"/>) so each transform is testable on its own.
/// </summary>
public static class IntensityAugmentation
{
    private const double Epsilon = 1e-7;

    /// <summary>Adds N(0, sigma²) noise to every channel (<c>GaussianNoiseTransform</c>, channels synchronised).</summary>
    public static void AddGaussianNoise(Tensor sample, double sigma, torch.Generator generator)
    {
        using var noise = torch.randn(sample.shape, sample.dtype, sample.device, generator: generator);
        using var alpha = TorchScalars.Of(sigma);
        sample.add_(noise, alpha: alpha);
    }

    /// <summary>
    /// Separable Gaussian blur of one channel with a sigma per axis (<c>GaussianBlurTransform</c>): kernel
    /// exp(-x²/2σ²) normalised, size the odd number nearest to 6σ + 0.5, reflect padding. An axis too short to reflect
    /// the kernel's half width is padded by replication instead (not needed at nnU-Net's patch sizes).
    /// </summary>
    public static void GaussianBlur(Tensor sample, int channel, ReadOnlySpan<double> sigmas)
    {
        using var scope = torch.NewDisposeScope();
        int d = (int)sample.dim() - 1;
        var x = sample[channel].unsqueeze(0).unsqueeze(0);
        for (int axis = 0; axis < d; axis++)
        {
            float[] kernel = GaussianKernel(sigmas[axis]);
            int half = kernel.Length / 2;
            var pad = new long[2 * d];
            pad[2 * (d - 1 - axis)] = half;
            pad[2 * (d - 1 - axis) + 1] = half;
            long length = x.shape[2 + axis];
            var mode = length > half ? PaddingModes.Reflect : PaddingModes.Replicate;
            var padded = F.pad(x, pad, mode);
            // the 1D convolution as a sum of shifted copies: a few fused multiply-adds, much faster than conv3d with
            // a (k, 1, 1) kernel on the CPU and just as cheap on a GPU
            Tensor blurred;
            using (var weight = TorchScalars.Of(kernel[0])) blurred = padded.narrow(2 + axis, 0, length).mul(weight);
            for (int k = 1; k < kernel.Length; k++)
            {
                using var weight = TorchScalars.Of(kernel[k]);
                blurred.add_(padded.narrow(2 + axis, k, length), alpha: weight);
            }
            x = blurred;
        }
        sample[channel].copy_(x.squeeze(0).squeeze(0));
    }

    /// <summary>The normalised 1D kernel of batchgeneratorsv2's <c>_build_kernel(sigma, truncate=6)</c>.</summary>
    public static float[] GaussianKernel(double sigma)
    {
        int size = RoundToNearestOdd(sigma * 6 + 0.5);
        double half = (size - 1) * 0.5;
        var values = new double[size];
        double sum = 0;
        for (int i = 0; i < size; i++)
        {
            double x = -half + i;
            values[i] = Math.Exp(-0.5 * (x / sigma) * (x / sigma));
            sum += values[i];
        }
        var kernel = new float[size];
        for (int i = 0; i < size; i++) kernel[i] = (float)(values[i] / sum);
        return kernel;
    }

    private static int RoundToNearestOdd(double n)
    {
        int rounded = (int)Math.Round(n, MidpointRounding.ToEven);
        if (rounded % 2 == 1) return rounded;
        return n - rounded >= 0 ? rounded + 1 : rounded - 1;
    }

    /// <summary>Multiplies each channel by its factor (<c>MultiplicativeBrightnessTransform</c>).</summary>
    public static void MultiplyChannels(Tensor sample, ReadOnlySpan<double> factors)
    {
        for (int c = 0; c < factors.Length; c++)
        {
            if (factors[c] == 1) continue;
            using var channel = sample[c];
            using var factor = TorchScalars.Of(factors[c]);
            channel.mul_(factor);
        }
    }

    /// <summary>
    /// <c>ContrastTransform(preserve_range=True)</c>: per channel (x - mean) * factor + mean, clipped to the channel's
    /// former [min, max].
    /// </summary>
    public static void Contrast(Tensor sample, int channel, double factor)
    {
        using var scope = torch.NewDisposeScope();
        var x = sample[channel];
        var mean = x.mean();
        var min = x.min();
        var max = x.max();
        using var factorScalar = TorchScalars.Of(factor);
        x.sub_(mean).mul_(factorScalar).add_(mean);
        x.clamp_(min, max);
    }

    /// <summary>
    /// <c>SimulateLowResolutionTransform</c> on one channel: nearest-exact resize to round(size * zoom) per axis
    /// (axes listed in <paramref name="keepAxes"/> keep their size), then (bi/tri)linear back to the original size.
    /// </summary>
    public static void SimulateLowResolution(Tensor sample, int channel, double zoom, ReadOnlySpan<int> keepAxes)
    {
        using var scope = torch.NewDisposeScope();
        int d = (int)sample.dim() - 1;
        var original = sample.shape[1..];
        var reduced = new long[d];
        for (int a = 0; a < d; a++)
            reduced[a] = keepAxes.Contains(a) ? original[a] : Math.Max(1, (long)Math.Round(original[a] * zoom, MidpointRounding.ToEven));
        var x = sample[channel].unsqueeze(0).unsqueeze(0);
        var down = NearestExactResize(x, reduced);
        var up = F.interpolate(down, original, mode: d == 3 ? InterpolationMode.Trilinear : InterpolationMode.Bilinear, align_corners: false);
        sample[channel].copy_(up.squeeze(0).squeeze(0));
    }

    /// <summary>
    /// Nearest-exact resize of (1, 1, *spatial) by gathering source index floor((i + 0.5) * in / out) per axis: the same
    /// voxels as <c>interpolate(mode: NearestExact)</c>, without libtorch's align_corners warning on every call.
    /// </summary>
    private static Tensor NearestExactResize(Tensor x, long[] size)
    {
        var result = x;
        for (int a = 0; a < size.Length; a++)
        {
            long input = result.shape[2 + a], output = size[a];
            if (input == output) continue;
            using var stop = TorchScalars.Of(output);
            using var step = TorchScalars.Of((double)input / output);
            using var last = TorchScalars.Of(input - 1);
            var index = torch.arange(stop, dtype: ScalarType.Float64, device: x.device).add_(TorchScalars.Half).mul_(step)
                .floor_().clamp_(TorchScalars.Zero, last).to(ScalarType.Int64);
            result = result.index_select(2 + a, index);
        }
        return result;
    }

    /// <summary>
    /// <c>GammaTransform</c> with retained statistics on one channel: optionally negate, rescale to [0, 1], raise to
    /// <paramref name="gamma"/>, rescale back, restore the former mean and standard deviation, negate back.
    /// </summary>
    public static void Gamma(Tensor sample, int channel, double gamma, bool invert)
    {
        using var scope = torch.NewDisposeScope();
        var x = sample[channel];
        if (invert) x.neg_();
        var mean = x.mean();
        var std = x.std();
        var min = x.min();
        var range = x.max().sub_(min);
        using var epsilon = TorchScalars.Of(Epsilon);
        using var exponent = TorchScalars.Of(gamma);
        x.sub_(min).div_(range.clamp(min: epsilon)).pow_(exponent).mul_(range).add_(min);
        var meanHere = x.mean();
        var stdHere = x.std();
        x.sub_(meanHere).mul_(std.div(stdHere.clamp(min: epsilon))).add_(mean);
        if (invert) x.neg_();
    }
}
