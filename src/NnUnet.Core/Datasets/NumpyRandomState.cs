namespace NnUnet.Core.Datasets;

/// <summary>
/// Exact port of numpy's legacy <c>np.random.RandomState(seed)</c> for the draws nnU-Net relies on: MT19937 seeded by
/// the classic <c>init_genrand(seed)</c>, 32-bit outputs, <c>random_sample</c> (53-bit doubles), <c>shuffle</c> and
/// <c>permutation</c> (Fisher-Yates from the last index down, bounds drawn by masked rejection sampling as numpy's
/// <c>random_interval</c>), <c>randint</c> and <c>choice</c> (legacy masked bounded integers). Same seed, same numbers as numpy
/// (checked against vectors numpy itself produced, tests/fixtures/splits/). Not thread-safe: one instance per thread.
/// </summary>
public sealed class NumpyRandomState
{
    private const int StateLength = 624;
    private const int Period = 397;
    private const uint MatrixA = 0x9908b0dfu;
    private const uint UpperMask = 0x80000000u;
    private const uint LowerMask = 0x7fffffffu;

    private readonly uint[] _state = new uint[StateLength];
    private int _position;

    /// <summary>Seeds like <c>RandomState(seed)</c> with an integer seed (0 .. 2^32-1).</summary>
    public NumpyRandomState(long seed)
    {
        if (seed < 0 || seed > uint.MaxValue) throw new ArgumentOutOfRangeException(nameof(seed), seed, "numpy seeds must be between 0 and 2**32 - 1");
        uint s = (uint)seed;
        for (int i = 0; i < StateLength; i++)
        {
            _state[i] = s;
            s = unchecked(1812433253u * (s ^ (s >> 30)) + (uint)i + 1u);
        }
        _position = StateLength;
    }

    /// <summary>Next raw 32-bit output (numpy <c>randint(0, 2**32, dtype=uint32)</c> / MT19937 genrand_int32).</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    public uint NextUInt32()
    {
        if ((uint)_position >= StateLength) Regenerate();
        uint y = System.Runtime.CompilerServices.Unsafe.Add(
            ref System.Runtime.InteropServices.MemoryMarshal.GetArrayDataReference(_state), _position++);
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c5680u;
        y ^= (y << 15) & 0xefc60000u;
        y ^= y >> 18;
        return y;
    }

    /// <summary>numpy <c>random_sample()</c>: a double in [0, 1) from two 32-bit outputs (27 + 26 bits).</summary>
    public double RandomSample()
    {
        uint a = NextUInt32() >> 5;
        uint b = NextUInt32() >> 6;
        return (a * 67108864.0 + b) / 9007199254740992.0;
    }

    /// <summary>numpy <c>random_interval(max)</c>: uniform integer in [0, max] by masked rejection sampling.</summary>
    public ulong RandomIntervalLegacy(ulong max)
    {
        if (max == 0) return 0;
        ulong mask = SmallestMaskCovering(max);
        ulong value;
        if (max <= uint.MaxValue)
        {
            do value = NextUInt32() & mask; while (value > max);
        }
        else
        {
            do value = NextUInt64() & mask; while (value > max);
        }
        return value;
    }

    /// <summary>numpy legacy <c>shuffle</c> of a 1-d array, in place.</summary>
    public void Shuffle<T>(Span<T> values)
    {
        for (int i = values.Length - 1; i >= 1; i--)
        {
            int j = (int)RandomIntervalLegacy((ulong)i);
            (values[i], values[j]) = (values[j], values[i]);
        }
    }

    /// <summary>numpy legacy <c>permutation(n)</c>: a shuffled <c>arange(n)</c>.</summary>
    public int[] Permutation(int n)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(n);
        var result = new int[n];
        for (int i = 0; i < n; i++) result[i] = i;
        Shuffle(result.AsSpan());
        return result;
    }

    /// <summary>numpy legacy <c>randint(low, high)</c> (int64): uniform in [low, high), masked rejection on the range.</summary>
    public long RandInt(long low, long high)
    {
        if (high <= low) throw new ArgumentOutOfRangeException(nameof(high), $"randint needs low < high, got [{low}, {high})");
        ulong range = (ulong)(high - 1 - low);
        return low + (long)BoundedMasked(range, SmallestMaskCovering(range));
    }

    /// <summary>numpy legacy <c>randint(low, high, size=n)</c> into <paramref name="destination"/>.</summary>
    public void RandInt(long low, long high, Span<long> destination)
    {
        if (high <= low) throw new ArgumentOutOfRangeException(nameof(high), $"randint needs low < high, got [{low}, {high})");
        ulong range = (ulong)(high - 1 - low);
        ulong mask = SmallestMaskCovering(range);
        for (int i = 0; i < destination.Length; i++) destination[i] = low + (long)BoundedMasked(range, mask);
    }

    /// <summary>
    /// numpy legacy <c>choice(populationSize, size=n, replace=True)</c>, i.e. <c>randint(0, populationSize, n)</c>:
    /// indices into the population, written to <paramref name="destination"/>.
    /// </summary>
    public void ChoiceWithReplacement(int populationSize, Span<int> destination)
    {
        if (populationSize <= 0) throw new ArgumentException("choice needs a non-empty population", nameof(populationSize));
        ulong range = (ulong)(populationSize - 1);
        ulong mask = SmallestMaskCovering(range);
        for (int i = 0; i < destination.Length; i++) destination[i] = (int)BoundedMasked(range, mask);
    }

    /// <summary>numpy legacy <c>choice(populationSize, size=n, replace=False)</c> = <c>permutation(populationSize)[:n]</c>.</summary>
    public int[] ChoiceWithoutReplacement(int populationSize, int count)
    {
        if (count < 0 || count > populationSize)
            throw new ArgumentException($"cannot take {count} samples without replacement from a population of {populationSize}");
        return Permutation(populationSize)[..count];
    }

    private ulong BoundedMasked(ulong range, ulong mask)
    {
        if (range == 0) return 0;
        ulong value;
        if (range <= uint.MaxValue)
        {
            // numpy's buffered_bounded_masked_uint32: one 32-bit draw per try.
            do value = NextUInt32() & mask; while (value > range);
        }
        else
        {
            do value = NextUInt64() & mask; while (value > range);
        }
        return value;
    }

    private ulong NextUInt64()
    {
        ulong high = NextUInt32();
        return (high << 32) | NextUInt32();
    }

    private static ulong SmallestMaskCovering(ulong max)
    {
        ulong mask = max;
        mask |= mask >> 1;
        mask |= mask >> 2;
        mask |= mask >> 4;
        mask |= mask >> 8;
        mask |= mask >> 16;
        mask |= mask >> 32;
        return mask;
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private void Regenerate()
    {
        var mt = _state;
        int k;
        uint y;
        for (k = 0; k < StateLength - Period; k++)
        {
            y = (mt[k] & UpperMask) | (mt[k + 1] & LowerMask);
            mt[k] = mt[k + Period] ^ (y >> 1) ^ ((y & 1u) != 0 ? MatrixA : 0u);
        }
        for (; k < StateLength - 1; k++)
        {
            y = (mt[k] & UpperMask) | (mt[k + 1] & LowerMask);
            mt[k] = mt[k + (Period - StateLength)] ^ (y >> 1) ^ ((y & 1u) != 0 ? MatrixA : 0u);
        }
        y = (mt[StateLength - 1] & UpperMask) | (mt[0] & LowerMask);
        mt[StateLength - 1] = mt[Period - 1] ^ (y >> 1) ^ ((y & 1u) != 0 ? MatrixA : 0u);
        _position = 0;
    }
}
