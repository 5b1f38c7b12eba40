using System.Security.Cryptography;

namespace NnUnet.Core.Reproducibility;

/// <summary>One input file as a manifest records it.</summary>
/// <param name="Path">Relative to the nnU-Net root it lives under, prefixed by that root's name:
/// <c>nnUNet_raw/Dataset990_Demo/imagesTr/demo_000_0000.nii.gz</c>, so manifests compare across machines that mount the
/// roots elsewhere.</param>
/// <param name="Bytes">File size.</param>
/// <param name="ModifiedUtc">Last write time; with <paramref name="Bytes"/> it lets a later hashing pass reuse the digest
/// of a file nobody rewrote (see <see cref="FileDigest.HashAll"/>).</param>
/// <param name="Sha256">Lower-case hex SHA-256 of the content.</param>
public sealed record HashedFile(string Path, long Bytes, DateTime ModifiedUtc, string Sha256);

/// <summary>A file to hash: where it is on this machine and the name it gets in a manifest.</summary>
public readonly record struct ManifestInput(string FullPath, string RecordedPath);

/// <summary>Streaming SHA-256 of files: constant memory whatever the size, several files in parallel.</summary>
public static class FileDigest
{
    private const int BufferSize = 1 << 20;

    /// <summary>SHA-256 of the file's content, read in 1 MiB blocks.</summary>
    public static string Sha256(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, BufferSize, FileOptions.SequentialScan);
        return Convert.ToHexStringLower(SHA256.HashData(stream));
    }

    /// <summary>
    /// Hashes every input (in the given order in the result). A file whose size and last write time equal those of its
    /// entry in <paramref name="known"/> keeps that entry's digest without being read: the same rule as make and rsync,
    /// so that 20 folds do not read a dataset 20 times. Pass no <paramref name="known"/> to read everything.
    /// </summary>
    /// <exception cref="FileNotFoundException">An input does not exist (named).</exception>
    public static List<HashedFile> HashAll(IReadOnlyList<ManifestInput> inputs, IReadOnlyDictionary<string, HashedFile>? known = null,
        int maxDegreeOfParallelism = 2, CancellationToken cancellationToken = default)
    {
        var results = new HashedFile[inputs.Count];
        var options = new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, maxDegreeOfParallelism), CancellationToken = cancellationToken };
        try
        {
            Parallel.For(0, inputs.Count, options, i => results[i] = HashOne(inputs[i], known));
        }
        catch (AggregateException e) when (e.InnerExceptions.Count > 0)
        {
            // the caller's one-line error names the first file that failed, not "one or more errors occurred"
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(e.InnerExceptions[0]).Throw();
        }
        return [.. results];
    }

    private static HashedFile HashOne(ManifestInput input, IReadOnlyDictionary<string, HashedFile>? known)
    {
        var info = new FileInfo(input.FullPath);
        if (!info.Exists) throw new FileNotFoundException($"{input.FullPath}: input file does not exist", input.FullPath);
        long bytes = info.Length;
        DateTime modified = info.LastWriteTimeUtc;
        if (known is not null && known.TryGetValue(input.RecordedPath, out var previous) && previous.Bytes == bytes && previous.ModifiedUtc == modified)
            return previous;
        return new HashedFile(input.RecordedPath, bytes, modified, Sha256(input.FullPath));
    }

    /// <summary>Index of a manifest's files by recorded path (for <see cref="HashAll"/>'s reuse and for comparisons).</summary>
    public static Dictionary<string, HashedFile> ByPath(IEnumerable<HashedFile>? files)
    {
        var index = new Dictionary<string, HashedFile>(StringComparer.Ordinal);
        if (files is not null)
            foreach (var file in files) index[file.Path] = file;
        return index;
    }
}
