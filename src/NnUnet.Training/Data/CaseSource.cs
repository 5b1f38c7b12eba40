using System.Collections.Concurrent;
using NnUnet.Core.Preprocessing;

namespace NnUnet.Training.Data;

/// <summary>Where the sampler gets whole preprocessed cases from.</summary>
public interface ICaseSource
{
    IReadOnlyList<string> CaseIds { get; }
    PreprocessedCase Get(string caseId);
}

/// <summary>Cases already in memory (tests, small datasets).</summary>
public sealed class InMemoryCaseSource : ICaseSource
{
    private readonly Dictionary<string, PreprocessedCase> cases = new(StringComparer.Ordinal);

    public InMemoryCaseSource(IEnumerable<PreprocessedCase> cases)
    {
        var ids = new List<string>();
        foreach (var c in cases) { CaseChecks.Validate(c, "in-memory case"); this.cases.Add(c.CaseId, c); ids.Add(c.CaseId); }
        CaseIds = ids;
    }

    public IReadOnlyList<string> CaseIds { get; }

    public PreprocessedCase Get(string caseId) =>
        cases.TryGetValue(caseId, out var c) ? c : throw new KeyNotFoundException($"case '{caseId}' is not in this case source");
}

/// <summary>
/// Reads cases from a preprocessed folder (<see cref="PreprocessedStore"/>) on first use and keeps them while the
/// total stays under <paramref name="cacheBytes"/>; beyond that, cases are re-read on every use (nnU-Net memory-maps instead).
/// </summary>
public sealed class FolderCaseSource(string folder, IReadOnlyList<string> caseIds, long cacheBytes = 8L << 30) : ICaseSource
{
    private readonly ConcurrentDictionary<string, Lazy<PreprocessedCase>> cache = new(StringComparer.Ordinal);
    private long cachedBytes;

    public IReadOnlyList<string> CaseIds { get; } = caseIds;

    public PreprocessedCase Get(string caseId)
    {
        if (cache.TryGetValue(caseId, out var hit)) return hit.Value;
        var loaded = PreprocessedStore.Load(folder, caseId);
        CaseChecks.Validate(loaded, PreprocessedStore.DataPath(folder, caseId));
        long bytes = loaded.Data.LongLength * 4 + (loaded.Seg?.LongLength ?? 0);
        if (Interlocked.Add(ref cachedBytes, bytes) <= cacheBytes)
            cache.TryAdd(caseId, new Lazy<PreprocessedCase>(loaded));
        else Interlocked.Add(ref cachedBytes, -bytes);
        return loaded;
    }
}

internal static class CaseChecks
{
    public static void Validate(PreprocessedCase c, string where)
    {
        if (c.Shape.Length != 3) throw new InvalidDataException($"{where}: case '{c.CaseId}' shape must be (z, y, x), got {c.Shape.Length} axes");
        if (c.Seg is null) throw new InvalidDataException($"{where}: case '{c.CaseId}' has no segmentation; training needs one");
        if (c.Data.LongLength != c.Channels * c.VoxelsPerChannel)
            throw new InvalidDataException($"{where}: case '{c.CaseId}' data has {c.Data.LongLength} values, expected {c.Channels} x {c.VoxelsPerChannel}");
        if (c.Seg.LongLength != c.VoxelsPerChannel)
            throw new InvalidDataException($"{where}: case '{c.CaseId}' segmentation has {c.Seg.LongLength} voxels, expected {c.VoxelsPerChannel}");
    }
}
