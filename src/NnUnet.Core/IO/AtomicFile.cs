using System.Text;

namespace NnUnet.Core.IO;

/// <summary>
/// The one way this project writes a file that others read (plans, splits, preprocessed cases, checkpoints,
/// predictions, journals' neighbours): under a temporary name in the same folder, then renamed over the target, so
/// that a reader, or a writer killed half-way, sees the old or the complete new content and never a torn file. The
/// temporary name is hidden, unique per writer (process and a GUID, so parallel writers never share it) and ends with
/// neither the target's extension nor anything a folder listing looks for (<c>*.json</c>, <c>*.nii.gz</c>), so a
/// leftover of a killed writer is never taken for a result; it is deleted when the write fails. Inside a fenced job
/// attempt (<see cref="WriteFence.Enter"/>) every rename first checks that the attempt still owns its folder, so a
/// superseded attempt never replaces a newer attempt's file.
/// </summary>
public static class AtomicFile
{
    private static readonly UTF8Encoding Utf8 = new(encoderShouldEmitUTF8Identifier: false);

    /// <summary>
    /// Calls <paramref name="writeTemporary"/> with the temporary path, then <paramref name="beforeRename"/> (a caller
    /// keeps the previous version there; fault-injection tests stall there), then renames over <paramref name="path"/>.
    /// </summary>
    public static void Write(string path, Action<string> writeTemporary, Action? beforeRename = null) =>
        Write(path, writeTemporary, beforeRename, fenced: true);

    private static void Write(string path, Action<string> writeTemporary, Action? beforeRename, bool fenced)
    {
        string temporary = TemporaryPath(path);
        try
        {
            writeTemporary(temporary);
            if (fenced) CheckFenceAround(beforeRename);
            else beforeRename?.Invoke();
            File.Move(temporary, path, overwrite: true);
        }
        finally
        {
            if (File.Exists(temporary)) TryDelete(temporary);
        }
    }

    /// <summary>
    /// For writers that stream: write to <see cref="AtomicFileStream.Stream"/>, then <see cref="AtomicFileStream.Commit"/>;
    /// disposing without a commit leaves the target untouched.
    /// </summary>
    public static AtomicFileStream Create(string path) => new(path, TemporaryPath(path));

    /// <summary>UTF-8 text without a byte-order mark.</summary>
    public static void WriteAllText(string path, string content, Action? beforeRename = null) =>
        Write(path, temporary => File.WriteAllText(temporary, content, Utf8), beforeRename);

    /// <summary>The fence file's own write (see <see cref="WriteFence"/>).</summary>
    internal static void WriteUnfenced(string path, string content) =>
        Write(path, temporary => File.WriteAllText(temporary, content, Utf8), null, fenced: false);

    /// <summary>
    /// The fence check right before a rename: before <paramref name="beforeRename"/> (which may move the previous
    /// version aside, the newer attempt's file) and, when there is one (it may stall), again after it.
    /// </summary>
    internal static void CheckFenceAround(Action? beforeRename)
    {
        WriteFence.CheckCurrent();
        if (beforeRename is null) return;
        beforeRename();
        WriteFence.CheckCurrent();
    }

    public static void Copy(string source, string destination) =>
        Write(destination, temporary => File.Copy(source, temporary, overwrite: true));

    /// <summary>
    /// Creates <paramref name="path"/> only if nobody has: false (and the other writer's content kept) when it exists
    /// already or another writer created it first.
    /// </summary>
    public static bool TryCreate(string path, Action<string> writeTemporary)
    {
        if (File.Exists(path)) return false;
        string temporary = TemporaryPath(path);
        try
        {
            writeTemporary(temporary);
            WriteFence.CheckCurrent();
            File.Move(temporary, path, overwrite: false);
            return true;
        }
        catch (IOException) when (File.Exists(path))
        {
            return false;
        }
        finally
        {
            if (File.Exists(temporary)) TryDelete(temporary);
        }
    }

    internal static string TemporaryPath(string path)
    {
        string full = Path.GetFullPath(path);
        string folder = Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(folder);
        return Path.Combine(folder, $".{Path.GetFileName(full)}.tmp-{Environment.ProcessId}-{Guid.NewGuid():N}");
    }

    // best effort: the write's own error, if any, matters more
    internal static void TryDelete(string path)
    {
        try { File.Delete(path); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }
}

/// <summary>A file being written under its temporary name; see <see cref="AtomicFile.Create"/>.</summary>
public sealed class AtomicFileStream : IDisposable
{
    private readonly string _path;
    private readonly string _temporary;
    private bool _committed;

    internal AtomicFileStream(string path, string temporary)
    {
        _path = path;
        _temporary = temporary;
        Stream = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None, bufferSize: 1 << 16);
    }

    public FileStream Stream { get; }

    /// <summary>
    /// Flushes (to the disk itself with <paramref name="flushToDisk"/>, for files a crash must not lose) and closes the
    /// stream, runs <paramref name="beforeRename"/>, renames over the target.
    /// </summary>
    public void Commit(bool flushToDisk = false, Action? beforeRename = null)
    {
        Stream.Flush(flushToDisk);
        Stream.Dispose();
        AtomicFile.CheckFenceAround(beforeRename);
        File.Move(_temporary, _path, overwrite: true);
        _committed = true;
    }

    public void Dispose()
    {
        Stream.Dispose();
        if (!_committed && File.Exists(_temporary)) AtomicFile.TryDelete(_temporary);
    }
}
