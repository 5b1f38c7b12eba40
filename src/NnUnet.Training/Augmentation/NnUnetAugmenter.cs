using TorchSharp;
using static TorchSharp.torch;
using NnUnet.Training.Torch;

namespace NnUnet.Training.Augmentation;

/// <summary>
/// nnU-Net v2's training augmentation pipeline (<c>nnUNetTrainer.get_training_transforms</c> without the cascade and
/// deep-supervision steps), applied sample by sample on the device of the batch, in nnU-Net's order: spatial (rotation,
/// scaling, centre crop from the enlarged loaded patch to <see cref="AugmentationOptions.PatchSize"/>), Gaussian noise,
/// Gaussian blur, multiplicative brightness, contrast, low resolution, inverted gamma, gamma, mirroring; then channels
/// normalised with a mask are zeroed where seg &lt; 0 (nnU-Net's <c>MaskImageTransform</c>, only for
/// <c>use_mask_for_norm</c> channels) and seg -1 becomes 0.
/// <para>Input: data (b, c, *initial patch) float, seg (b, 1, *initial patch) float or long; output: (b, c, *patch) and
/// (b, 1, *patch), seg in the input's dtype. The same generator state gives the same output.</para>
/// <para>Cascade (<see cref="AugmentationOptions.Cascade"/> set): seg is (b, 2, ...) with the previous stage's prediction
/// in channel 1; it is transformed spatially with the reference, then becomes one-hot data channels appended after the
/// image channels (output c + number of foreground labels channels) and gets <see cref="CascadeAugmentation"/>.</para>
/// </summary>
public sealed class NnUnetAugmenter : IBatchAugmenter
{
    private readonly AugmentationOptions _options;

    public NnUnetAugmenter(AugmentationOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.SpatialDims is not (2 or 3))
            throw new ArgumentException($"patch size must have 2 or 3 axes, got {options.SpatialDims}", nameof(options));
        if (options.DummyTwoD && options.SpatialDims != 3)
            throw new ArgumentException("dummy 2D augmentation needs a 3D patch", nameof(options));
        foreach (int axis in options.MirrorAxes)
            if (axis < 0 || axis >= options.SpatialDims)
                throw new ArgumentException($"mirror axis {axis} does not exist in a {options.SpatialDims}D patch", nameof(options));
        _options = options;
    }

    public AugmentationOptions Options => _options;

    public (Tensor data, Tensor seg) Apply(Tensor data, Tensor seg, torch.Generator rng)
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(seg);
        ArgumentNullException.ThrowIfNull(rng);
        int d = _options.SpatialDims;
        if (data.dim() != d + 2)
            throw new ArgumentException($"data must be (b, c, {(d == 3 ? "z, " : "")}y, x) for a {d}D patch, got shape ({string.Join(", ", data.shape)})", nameof(data));
        long segChannels = _options.Cascade is null ? 1 : 2;
        if (seg.dim() != d + 2 || seg.shape[0] != data.shape[0] || seg.shape[1] != segChannels || !seg.shape.AsSpan(2).SequenceEqual(data.shape.AsSpan(2)))
            throw new ArgumentException($"seg shape ({string.Join(", ", seg.shape)}) must be (b, {segChannels}) + the spatial shape of data ({string.Join(", ", data.shape)})" +
                (segChannels == 2 ? " (cascade: channel 1 holds the previous stage's prediction)" : ""), nameof(seg));
        if (!data.is_floating_point()) throw new ArgumentException($"data must be floating point, got {data.dtype}", nameof(data));
        if (_options.MaskedChannels.Length > data.shape[1])
            throw new ArgumentException($"use_mask_for_norm lists {_options.MaskedChannels.Length} channels, data has {data.shape[1]}", nameof(data));

        using var random = new AugmentationRandom(rng);
        long batch = data.shape[0];
        var outData = new Tensor[batch];
        var outSeg = new Tensor[batch];
        try
        {
            for (long i = 0; i < batch; i++)
            {
                using var scope = torch.NewDisposeScope();
                var (x, s) = AugmentSample(data[i], seg[i], random);
                outData[i] = x.MoveToOuterDisposeScope();
                outSeg[i] = s.MoveToOuterDisposeScope();
            }
            return (torch.stack(outData), torch.stack(outSeg));
        }
        finally
        {
            foreach (var t in outData) t?.Dispose();
            foreach (var t in outSeg) t?.Dispose();
        }
    }

    private (Tensor data, Tensor seg) AugmentSample(Tensor x, Tensor s, AugmentationRandom random)
    {
        var o = _options;
        (x, s) = Spatial(x, s, random);
        int channels = (int)x.shape[0];
        int d = o.SpatialDims;

        if (random.Chance(o.PNoise))
        {
            double sigma = random.Uniform(o.NoiseSigma);
            IntensityAugmentation.AddGaussianNoise(x, sigma, random.For(x.device));
        }
        if (random.Chance(o.PBlur))
        {
            Span<double> sigmas = stackalloc double[d];
            for (int c = 0; c < channels; c++)
            {
                if (!random.Chance(o.PBlurPerChannel)) continue;
                for (int a = 0; a < d; a++) sigmas[a] = random.Uniform(o.BlurSigma);
                IntensityAugmentation.GaussianBlur(x, c, sigmas);
            }
        }
        if (random.Chance(o.PBrightness))
        {
            var factors = new double[channels];
            for (int c = 0; c < channels; c++) factors[c] = random.AroundOne(o.BrightnessMultiplier);
            IntensityAugmentation.MultiplyChannels(x, factors);
        }
        if (random.Chance(o.PContrast))
            for (int c = 0; c < channels; c++) IntensityAugmentation.Contrast(x, c, random.AroundOne(o.ContrastFactor));
        if (random.Chance(o.PLowResolution))
        {
            ReadOnlySpan<int> keep = o.DummyTwoD ? [0] : [];
            for (int c = 0; c < channels; c++)
            {
                if (!random.Chance(o.PLowResolutionPerChannel)) continue;
                IntensityAugmentation.SimulateLowResolution(x, c, random.Uniform(o.LowResolutionZoom), keep);
            }
        }
        if (random.Chance(o.PInvertedGamma))
            for (int c = 0; c < channels; c++) IntensityAugmentation.Gamma(x, c, random.AroundOne(o.Gamma), invert: true);
        if (random.Chance(o.PGamma))
            for (int c = 0; c < channels; c++) IntensityAugmentation.Gamma(x, c, random.AroundOne(o.Gamma), invert: false);

        var flipDims = new List<long>(3);
        foreach (int axis in o.MirrorAxes)
            if (random.Chance(o.PMirrorPerAxis)) flipDims.Add(axis + 1);
        if (flipDims.Count > 0)
        {
            x = x.flip(flipDims.ToArray());
            s = s.flip(flipDims.ToArray());
        }

        var outside = s[0].lt(TorchScalars.Zero);
        for (int c = 0; c < o.MaskedChannels.Length; c++)
            if (o.MaskedChannels[c]) x[c].masked_fill_(outside, TorchScalars.Zero);
        s = s.masked_fill(s.lt(TorchScalars.Zero), TorchScalars.Zero);

        if (o.Cascade is { } cascade)
        {
            // previous-stage prediction (seg channel 1) -> one-hot data channels, then their own augmentation
            // (1, *spatial): OneHot drops exactly that axis, also for a patch of depth 1
            var oneHot = CascadeAugmentation.OneHot(s.narrow(0, 1, 1), cascade.ForegroundLabels, x.dtype);
            x = torch.cat([x, oneHot], 0);
            s = s.narrow(0, 0, 1);
            var oneHotChannels = new int[cascade.ForegroundLabels.Length];
            for (int i = 0; i < oneHotChannels.Length; i++) oneHotChannels[i] = channels + i;
            CascadeAugmentation.Augment(x, oneHotChannels, cascade, random);
        }
        return (x, s);
    }

    /// <summary>Rotation/scaling about the centre, output at the final patch size; a fresh contiguous tensor.</summary>
    private (Tensor data, Tensor seg) Spatial(Tensor x, Tensor s, AugmentationRandom random)
    {
        var o = _options;
        long[] finalShape = o.PatchSize.Select(p => (long)p).ToArray();
        long channels = x.shape[0];
        if (o.DummyTwoD)
        {
            // in-plane only: slices along axis 0 become channels of a 2D transform (Convert3DTo2DTransform)
            long depth = finalShape[0];
            x = SpatialAugmentation.CenterCrop(x, [depth, x.shape[2], x.shape[3]], 0);
            s = SpatialAugmentation.CenterCrop(s, [depth, s.shape[2], s.shape[3]], -1);
            x = x.reshape(channels * depth, x.shape[2], x.shape[3]);
            s = s.reshape(s.shape[0] * depth, s.shape[2], s.shape[3]);
            finalShape = finalShape[1..];
        }
        int dims = finalShape.Length;
        bool rotate = random.Chance(o.PRotation);
        bool scale = random.Chance(o.PScaling);
        Tensor outX, outS;
        if (!rotate && !scale)
        {
            // a copy: the crop may be a view of the caller's batch, and the intensity transforms work in place
            outX = SpatialAugmentation.CenterCrop(x, finalShape, 0).clone().contiguous();
            outS = SpatialAugmentation.CenterCrop(s, finalShape, -1).clone().contiguous();
        }
        else
        {
            var angles = new double[dims];
            if (rotate)
                for (int a = 0; a < dims; a++) angles[a] = random.Uniform(o.Rotation);
            double factor = scale ? random.Uniform(o.Scaling) : 1.0;
            var affine = SpatialAugmentation.AffineMatrix(angles, factor);
            using var grid = SpatialAugmentation.Grid(affine, x.shape.AsSpan(1), finalShape, x.device);
            outX = SpatialAugmentation.SampleImage(x, grid);
            outS = SpatialAugmentation.SampleSegmentation(s, grid, -1);
        }
        if (o.DummyTwoD)
        {
            outX = outX.reshape(channels, o.PatchSize[0], finalShape[0], finalShape[1]);
            outS = outS.reshape(s.shape[0] / o.PatchSize[0], o.PatchSize[0], finalShape[0], finalShape[1]);
        }
        return (outX, outS);
    }
}
