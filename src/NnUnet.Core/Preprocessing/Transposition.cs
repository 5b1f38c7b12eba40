namespace NnUnet.Core.Preprocessing;

/// <summary>numpy-style axis permutation of (c, z, y, x) volumes: output axis i is input axis <c>axes[i]</c>.</summary>
public static class Transposition
{
    public static bool IsIdentity(ReadOnlySpan<int> axes) => axes.Length == 3 && axes[0] == 0 && axes[1] == 1 && axes[2] == 2;

    /// <summary>Shape after permuting <paramref name="shape"/> by <paramref name="axes"/>.</summary>
    public static int[] Permute(ReadOnlySpan<int> shape, ReadOnlySpan<int> axes) => [shape[axes[0]], shape[axes[1]], shape[axes[2]]];

    public static double[] Permute(ReadOnlySpan<double> values, ReadOnlySpan<int> axes) => [values[axes[0]], values[axes[1]], values[axes[2]]];

    /// <summary>Validates a permutation of (0, 1, 2).</summary>
    public static void Validate(ReadOnlySpan<int> axes, string what)
    {
        if (axes.Length != 3) throw new InvalidDataException($"{what} must list 3 axes, has {axes.Length}");
        Span<bool> seen = stackalloc bool[3];
        foreach (int a in axes)
        {
            if (a is < 0 or > 2 || seen[a]) throw new InvalidDataException($"{what} ({string.Join(", ", axes.ToArray())}) is not a permutation of 0, 1, 2");
            seen[a] = true;
        }
    }

    /// <summary>Transposes every channel of (channels, shape) <paramref name="source"/>; returns the input when the
    /// permutation is the identity.</summary>
    public static T[] Transpose<T>(T[] source, int channels, int[] shape, ReadOnlySpan<int> axes)
    {
        Validate(axes, "transpose");
        if (IsIdentity(axes)) return source;
        int n = shape[0] * shape[1] * shape[2];
        var outShape = Permute(shape, axes);
        // stride in the source of a step along each output axis
        Span<int> strides = [shape[1] * shape[2], shape[2], 1];
        int s0 = strides[axes[0]], s1 = strides[axes[1]], s2 = strides[axes[2]];
        var result = new T[source.Length];
        for (int c = 0; c < channels; c++)
        {
            var src = source.AsSpan(c * n, n);
            var dst = result.AsSpan(c * n, n);
            int o = 0;
            for (int i = 0; i < outShape[0]; i++)
            for (int j = 0; j < outShape[1]; j++)
            {
                int b = i * s0 + j * s1;
                for (int k = 0; k < outShape[2]; k++) dst[o++] = src[b + k * s2];
            }
        }
        return result;
    }
}
