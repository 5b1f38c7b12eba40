using static TorchSharp.torch;

namespace NnUnet.Training.Tests;

internal static class TensorAssertions
{
    /// <summary>Same shape and exactly equal values.</summary>
    public static bool IsSame(this Tensor a, Tensor b) =>
        a.shape.AsSpan().SequenceEqual(b.shape) && a.eq(b).all().item<bool>();
}
