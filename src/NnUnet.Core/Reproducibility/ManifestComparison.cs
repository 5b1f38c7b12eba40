namespace NnUnet.Core.Reproducibility;

public enum InputChangeKind { Changed, Added, Removed }

/// <summary>One input that differs from a manifest: its recorded path and both digests (null where it did not exist).</summary>
public sealed record InputChange(string Path, InputChangeKind Kind, string? RecordedSha256, string? CurrentSha256)
{
    public override string ToString() => Kind switch
    {
        InputChangeKind.Changed => $"{Path} changed (sha256 {Short(RecordedSha256)} -> {Short(CurrentSha256)})",
        InputChangeKind.Added => $"{Path} is new",
        _ => $"{Path} was removed",
    };

    private static string Short(string? sha) => sha is null ? "-" : sha[..Math.Min(12, sha.Length)];
}

/// <summary>Compares the inputs a manifest recorded with the inputs as they are now.</summary>
public static class ManifestComparison
{
    /// <summary>Every changed, added and removed file, sorted by path; empty when the inputs are identical.</summary>
    public static List<InputChange> Compare(IReadOnlyList<HashedFile> recorded, IReadOnlyList<HashedFile> current)
    {
        var before = FileDigest.ByPath(recorded);
        var now = FileDigest.ByPath(current);
        var changes = new List<InputChange>();
        foreach (var (path, file) in now)
        {
            if (!before.TryGetValue(path, out var old)) changes.Add(new InputChange(path, InputChangeKind.Added, null, file.Sha256));
            else if (!string.Equals(old.Sha256, file.Sha256, StringComparison.Ordinal))
                changes.Add(new InputChange(path, InputChangeKind.Changed, old.Sha256, file.Sha256));
        }
        foreach (var (path, file) in before)
            if (!now.ContainsKey(path)) changes.Add(new InputChange(path, InputChangeKind.Removed, file.Sha256, null));
        changes.Sort((a, b) => string.CompareOrdinal(a.Path, b.Path));
        return changes;
    }
}
