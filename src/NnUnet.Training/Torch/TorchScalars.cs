using TorchSharp;

namespace NnUnet.Training.Torch;

/// <summary>
/// Scalar arguments of TorchSharp ops. A TorchSharp <see cref="Scalar"/> owns a native pointer that only its finalizer
/// releases (no SafeHandle), and an op passes on just that pointer: the temporary Scalar of an implicit conversion
/// (<c>t.mul(2.0)</c>, <c>seg.clamp_min(0)</c>) is garbage as soon as its pointer is read and can be finalized while the
/// native op still uses it. Under load, with the batch loader's threads allocating, that showed as rare training
/// failures ("Expected false to be true ... toShort": a freed scalar read as a value out of int16 range). So every
/// scalar argument in this project is either one of the constants below, alive for the whole process, or made with
/// <see cref="Of(double)"/> under a <c>using</c>, which keeps it alive until the op has returned.
/// </summary>
internal static class TorchScalars
{
    // integer-typed, so that integer tensors keep their type
    public static readonly Scalar Zero = 0.ToScalar();
    public static readonly Scalar One = 1.ToScalar();
    public static readonly Scalar Two = 2.ToScalar();
    public static readonly Scalar MinusOne = (-1).ToScalar();
    public static readonly Scalar Half = 0.5.ToScalar();

    /// <summary>A scalar the caller disposes (<c>using var s = TorchScalars.Of(x);</c>) after the op that reads it.</summary>
    public static Scalar Of(double value) => value.ToScalar();

    /// <inheritdoc cref="Of(double)"/>
    public static Scalar Of(long value) => value.ToScalar();
}
