using System.Collections.Concurrent;
using NnUnet.Training.Inference;

namespace NnUnet.Training.Data;

/// <summary>
/// The cascade's previous-stage label maps (<see cref="NextStagePredictions"/>, one per case, in the shape of the
/// case's preprocessed data), nnU-Net's <c>seg_prev</c> of <c>nnUNetDataset.load_case</c>. Read on first use and kept
/// while the total stays under <paramref name="cacheBytes"/> (one byte per voxel: a quarter of one float image
/// channel); beyond that, re-read on every use, like <see cref="FolderCaseSource"/>.
/// </summary>
public sealed class PreviousStageSource(string folder, long cacheBytes = 2L << 30)
{
    private readonly ConcurrentDictionary<string, byte[]> cache = new(StringComparer.Ordinal);
    private long cachedBytes;

    public string Folder { get; } = folder;

    /// <summary>The label map of <paramref name="caseId"/>, which must have <paramref name="expectedShape"/> (z, y, x).</summary>
    public byte[] Get(string caseId, int[] expectedShape)
    {
        if (cache.TryGetValue(caseId, out var hit)) return hit;
        var map = NextStagePredictions.Load(Folder, caseId, out var shape);
        if (!shape.AsSpan().SequenceEqual(expectedShape))
            throw new InvalidDataException($"case {caseId}: the previous stage's prediction {NextStagePredictions.PathFor(Folder, caseId)} is ({string.Join(", ", shape)}), " +
                $"the preprocessed case is ({string.Join(", ", expectedShape)})");
        if (Interlocked.Add(ref cachedBytes, map.LongLength) <= cacheBytes)
        {
            if (!cache.TryAdd(caseId, map)) Interlocked.Add(ref cachedBytes, -map.LongLength); // another thread was first
        }
        else Interlocked.Add(ref cachedBytes, -map.LongLength);
        return map;
    }
}
