namespace NnUnet.Training.Data;

/// <summary>
/// Small counter-seeded generator (SplitMix64) for patch sampling. Every batch gets its own instance derived from
/// (seed, stream, batch index), so batches do not depend on thread scheduling and resuming at batch k needs no saved
/// generator state beyond the counter.
/// </summary>
public struct DeterministicRandom
{
    private ulong state;

    public DeterministicRandom(ulong seed) => state = seed;

    /// <summary>Independent generator for one batch of one stream (train = 0, validation = 1, ...).</summary>
    public static DeterministicRandom ForBatch(long seed, int stream, long batchIndex) =>
        new(Mix((ulong)seed ^ Mix(((ulong)(uint)stream << 48) ^ (ulong)batchIndex + 0x632BE59BD9B4E019UL)));

    /// <summary>A 63-bit seed for a torch generator, derived the same way (distinct from the sampler's draws).</summary>
    public static long TorchSeed(long seed, int stream, long batchIndex) =>
        (long)(Mix(Mix((ulong)seed + 0x9E3779B97F4A7C15UL * (ulong)(stream + 17)) ^ (ulong)batchIndex) >> 1);

    public ulong NextUInt64()
    {
        state += 0x9E3779B97F4A7C15UL;
        return Mix(state);
    }

    /// <summary>Uniform integer in [minInclusive, maxExclusive).</summary>
    public int NextInt(int minInclusive, int maxExclusive)
    {
        if (maxExclusive <= minInclusive) throw new ArgumentOutOfRangeException(nameof(maxExclusive), $"empty range [{minInclusive}, {maxExclusive})");
        ulong range = (ulong)((long)maxExclusive - minInclusive);
        // multiply-shift: bias below 2^-32 for the ranges used here (< 2^31)
        return (int)((long)minInclusive + (long)(((NextUInt64() >> 32) * range) >> 32));
    }

    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));

    private static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
