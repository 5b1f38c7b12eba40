using NnUnet.Training.Network;
using static TorchSharp.torch;

namespace NnUnet.Training.Interop;

/// <summary>
/// nnU-Net's <c>load_pretrained_weights</c>: copies every weight of a checkpoint (ours or nnU-Net's) into a freshly
/// built network except the segmentation heads (<c>seg_layers</c>: their class count may differ). Every other weight of
/// the network must be in the checkpoint with the same shape (another patch size is fine; other stages, features or
/// input channels are not), else nothing is copied and the error names the first mismatch.
/// </summary>
public static class PretrainedWeights
{
    /// <summary>Loads <paramref name="path"/> into <paramref name="network"/>; returns a line for the training log.</summary>
    public static string LoadInto(PlainConvUNet network, string path)
    {
        using var weights = TrainedWeights.Load(path);
        using var noGrad = no_grad();
        var targets = new List<(Tensor Target, Tensor Source)>();
        int skipped = 0;
        foreach (var (name, target) in network.state_dict())
        {
            if (name.StartsWith("seg_layers.", StringComparison.Ordinal)) { skipped++; continue; }
            if (!weights.State.TryGetValue(name, out var source))
                throw new InvalidDataException($"--pretrained-weights {path}: no weight for '{NnUnetStateDict.ToNnUnet(name)}' (the pretrained network has other stages or blocks than this configuration's)");
            if (!source.shape.SequenceEqual(target.shape))
                throw new InvalidDataException($"--pretrained-weights {path}: '{NnUnetStateDict.ToNnUnet(name)}' has shape [{string.Join(", ", source.shape)}], " +
                                               $"this configuration's network needs [{string.Join(", ", target.shape)}] (other features, kernel sizes or input channels)");
            targets.Add((target, source));
        }
        foreach (var (target, source) in targets) target.copy_(source);
        return $"pretrained weights from {path} (trainer {weights.TrainerName}{(weights.Configuration is null ? "" : ", " + weights.Configuration)}): {targets.Count} tensors loaded, {skipped} segmentation-head tensors kept at their initialisation";
    }
}
