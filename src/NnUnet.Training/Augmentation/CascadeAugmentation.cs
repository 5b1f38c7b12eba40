using NnUnet.Core.Postprocessing;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;
using NnUnet.Training.Torch;

namespace NnUnet.Training.Augmentation;

/// <summary>
/// nnU-Net's augmentation of the cascade's extra input channels (the one-hot previous-stage prediction):
/// <c>MoveSegAsOneHotToDataTransform</c>, <c>ApplyRandomBinaryOperatorTransform</c> (dilation, erosion, opening or
/// closing with a ball) and <c>RemoveRandomConnectedComponentFromOneHotEncodingTransform</c>. Morphology runs as a
/// convolution on the tensors' device; connected components are labelled on the CPU with Core's
/// <see cref="ConnectedComponents"/> (full connectivity, as skimage's default).
/// </summary>
public static class CascadeAugmentation
{
    public enum BinaryOperator { Dilation, Erosion, Opening, Closing }

    /// <summary>
    /// One-hot channels of <paramref name="labelMap"/> ((1, *spatial) or (*spatial) of one sample) for each of
    /// <paramref name="foregroundLabels"/>, as <paramref name="dtype"/>: (labels, *spatial).
    /// </summary>
    public static Tensor OneHot(Tensor labelMap, IReadOnlyList<int> foregroundLabels, ScalarType dtype)
    {
        using var scope = torch.NewDisposeScope();
        var map = labelMap.dim() > 0 && labelMap.shape[0] == 1 ? labelMap.squeeze(0) : labelMap;
        var channels = new Tensor[foregroundLabels.Count];
        for (int i = 0; i < channels.Length; i++)
        {
            using var label = TorchScalars.Of(foregroundLabels[i]);
            channels[i] = map.eq(label).to(dtype);
        }
        return torch.stack(channels).MoveToOuterDisposeScope();
    }

    /// <summary>skimage's <c>ball</c> (3 dims) or <c>disk</c> (2 dims) of integer <paramref name="radius"/> as a float kernel.</summary>
    public static Tensor Ball(int radius, int dims, Device device)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(radius);
        int n = 2 * radius + 1;
        long count = dims == 3 ? (long)n * n * n : (long)n * n;
        var values = new float[count];
        int r2 = radius * radius, i = 0;
        for (int z = dims == 3 ? -radius : 0; z <= (dims == 3 ? radius : 0); z++)
        for (int y = -radius; y <= radius; y++)
        for (int x = -radius; x <= radius; x++)
            values[i++] = z * z + y * y + x * x <= r2 ? 1f : 0f;
        long[] shape = dims == 3 ? [n, n, n] : [n, n];
        return torch.tensor(values, shape, device: device);
    }

    /// <summary>Binary dilation of a bool mask (*spatial) by a ball; outside the volume counts as background.</summary>
    public static Tensor Dilate(Tensor mask, int radius)
    {
        using var scope = torch.NewDisposeScope();
        int dims = (int)mask.dim();
        var kernel = Ball(radius, dims, mask.device);
        var input = mask.to(ScalarType.Float32).unsqueeze(0).unsqueeze(0);
        var weight = kernel.unsqueeze(0).unsqueeze(0);
        var hit = dims == 3 ? F.conv3d(input, weight, padding: [radius, radius, radius]) : F.conv2d(input, weight, padding: [radius, radius]);
        // counts are integers; > 0.5 is robust to the float sums of a convolution
        return hit.squeeze(0).squeeze(0).gt(TorchScalars.Half).MoveToOuterDisposeScope();
    }

    /// <summary>Binary erosion: the complement of the dilated complement (outside the volume counts as foreground, as nnU-Net).</summary>
    public static Tensor Erode(Tensor mask, int radius)
    {
        using var complement = mask.logical_not();
        using var dilated = Dilate(complement, radius);
        return dilated.logical_not();
    }

    public static Tensor Apply(BinaryOperator op, Tensor mask, int radius)
    {
        switch (op)
        {
            case BinaryOperator.Dilation: return Dilate(mask, radius);
            case BinaryOperator.Erosion: return Erode(mask, radius);
            case BinaryOperator.Opening:
            {
                using var eroded = Erode(mask, radius);
                return Dilate(eroded, radius);
            }
            case BinaryOperator.Closing:
            {
                using var dilated = Dilate(mask, radius);
                return Erode(dilated, radius);
            }
            default: throw new ArgumentOutOfRangeException(nameof(op));
        }
    }

    /// <summary>
    /// Applies <paramref name="op"/> to channel <paramref name="channel"/> of one sample (c, *spatial); voxels it adds
    /// are cleared in the other one-hot <paramref name="oneHotChannels"/> so the encoding stays exclusive.
    /// </summary>
    public static void ApplyToChannel(Tensor sample, int channel, IReadOnlyList<int> oneHotChannels, BinaryOperator op, int radius)
    {
        using var scope = torch.NewDisposeScope();
        var target = sample[channel];
        var before = target.ne(TorchScalars.Zero);
        var after = Apply(op, before, radius);
        var added = after.logical_and(before.logical_not());
        foreach (int other in oneHotChannels)
            if (other != channel) sample[other].masked_fill_(added, TorchScalars.Zero);
        target.copy_(after.to(sample.dtype));
    }

    /// <summary>
    /// Clears one connected component of channel <paramref name="channel"/> of one sample (c, *spatial), picked by
    /// <paramref name="pick"/> (0 &lt;= pick &lt; 1) among the components smaller than
    /// <paramref name="maxFraction"/> of the channel's voxels. Returns false when there was none.
    /// </summary>
    public static bool RemoveComponent(Tensor sample, int channel, double pick, double maxFraction)
    {
        using var scope = torch.NewDisposeScope();
        var target = sample[channel];
        if (!target.ne(TorchScalars.Zero).any().item<bool>()) return false;
        long[] shape = target.dim() == 2 ? [1, target.shape[0], target.shape[1]] : target.shape;
        byte[] foreground;
        using (var cpu = target.ne(TorchScalars.Zero).to(ScalarType.Byte).cpu().contiguous()) foreground = cpu.data<byte>().ToArray();
        var labels = new int[foreground.Length];
        // full connectivity (26 in 3D, 8 in 2D), as skimage's label with its default connectivity
        int count = ConnectedComponents.Label(foreground, (int)shape[0], (int)shape[1], (int)shape[2], Connectivity.Full, labels);
        var sizes = ConnectedComponents.ComponentSizes(labels, count);
        double limit = target.numel() * maxFraction;
        var eligible = new List<int>();
        for (int l = 1; l <= count; l++)
            if (sizes[l] < limit) eligible.Add(l);
        if (eligible.Count == 0) return false;
        int chosen = eligible[Math.Min(eligible.Count - 1, (int)(pick * eligible.Count))];
        var mask = new bool[labels.Length];
        for (int i = 0; i < labels.Length; i++) mask[i] = labels[i] == chosen;
        var maskTensor = torch.tensor(mask, target.shape, device: target.device);
        target.masked_fill_(maskTensor, TorchScalars.Zero);
        return true;
    }

    /// <summary>
    /// The two random cascade transforms on one sample, channels <paramref name="oneHotChannels"/> being the one-hot
    /// previous-stage prediction: with <paramref name="options"/>' probabilities, a random operator with a random ball
    /// radius per label (labels in random order), then removal of a random small component per label.
    /// </summary>
    internal static void Augment(Tensor sample, IReadOnlyList<int> oneHotChannels, CascadeAugmentationOptions options, AugmentationRandom random)
    {
        if (random.Chance(options.PBinaryOperator))
        {
            foreach (int channel in Shuffled(oneHotChannels, random))
            {
                if (!random.Chance(options.PBinaryOperatorPerLabel)) continue;
                var op = (BinaryOperator)Math.Min(3, (int)(random.Next() * 4));
                int radius = options.StructureRadiusMin + Math.Min(options.StructureRadiusMax - options.StructureRadiusMin,
                    (int)(random.Next() * (options.StructureRadiusMax - options.StructureRadiusMin + 1)));
                ApplyToChannel(sample, channel, oneHotChannels, op, radius);
            }
        }
        if (random.Chance(options.PRemoveComponent))
        {
            foreach (int channel in Shuffled(oneHotChannels, random))
            {
                if (!random.Chance(options.PRemoveComponentPerLabel)) continue;
                RemoveComponent(sample, channel, random.Next(), options.MaxComponentFraction);
            }
        }
    }

    private static int[] Shuffled(IReadOnlyList<int> items, AugmentationRandom random)
    {
        var result = items.ToArray();
        for (int i = result.Length - 1; i > 0; i--)
        {
            int j = Math.Min(i, (int)(random.Next() * (i + 1)));
            (result[i], result[j]) = (result[j], result[i]);
        }
        return result;
    }
}

/// <summary>Probabilities of nnU-Net's cascade augmentations (defaults as <c>get_training_transforms(is_cascaded=True)</c>).</summary>
public sealed record CascadeAugmentationOptions
{
    /// <summary>Foreground labels of the previous stage's prediction, one one-hot data channel each (appended after the image channels).</summary>
    public required int[] ForegroundLabels { get; init; }
    public double PBinaryOperator { get; init; } = 0.4;
    /// <summary>nnU-Net v2 passes <c>p_per_label=1</c> to <c>ApplyRandomBinaryOperatorTransform</c>: every label, once the transform runs.</summary>
    public double PBinaryOperatorPerLabel { get; init; } = 1;
    /// <summary>Ball radius, drawn as an integer uniformly from [min, max] (nnU-Net draws a float in [1, 8) for skimage's ball).</summary>
    public int StructureRadiusMin { get; init; } = 1;
    public int StructureRadiusMax { get; init; } = 8;
    public double PRemoveComponent { get; init; } = 0.2;
    /// <summary>nnU-Net v2 passes <c>p_per_label=1</c> to <c>RemoveRandomConnectedComponentFromOneHotEncodingTransform</c>.</summary>
    public double PRemoveComponentPerLabel { get; init; } = 1;
    /// <summary>Only components covering less than this fraction of the patch are removed.</summary>
    public double MaxComponentFraction { get; init; } = 0.15;
}
