using System.Text.Json;

namespace NnUnet.Core.IO;

/// <summary>
/// Who owns a results folder now: the <paramref name="Run"/> (a sweep id) and its <paramref name="Attempt"/> number
/// (the fencing token: a re-queued job's next attempt has a higher one), the <paramref name="Holder"/> (worker id) and
/// when it took the folder.
/// </summary>
public sealed record FenceToken(string Run, int Attempt, string Holder, DateTime TakenAtUtc)
{
    /// <summary>True when this token, found in the fence file, takes the folder away from <paramref name="own"/>.</summary>
    public bool Supersedes(FenceToken own) => Run != own.Run || Attempt > own.Attempt;

    public override string ToString() => $"attempt {Attempt} ({Holder})";
}

/// <summary>
/// A job attempt stopped itself because a newer attempt (or another run) owns its folder now; not a failure of the job.
/// An <see cref="OperationCanceledException"/>: the attempt ends as a cancelled one would, without writing anything more.
/// </summary>
public sealed class AttemptSupersededException(string fencePath, FenceToken own, FenceToken newer)
    : OperationCanceledException($"{own.Run} attempt {own.Attempt} on {own.Holder} was superseded by " +
                                 (newer.Run == own.Run ? $"attempt {newer.Attempt} on {newer.Holder}" : $"run {newer.Run} attempt {newer.Attempt} on {newer.Holder}") +
                                 $" ({fencePath}); it stopped without writing")
{
    public string FencePath { get; } = fencePath;
    public FenceToken Own { get; } = own;
    public FenceToken Newer { get; } = newer;
}

/// <summary>
/// Fencing of a job attempt's writes. An attempt takes its folder's fence file (<see cref="Take"/>: written before the
/// attempt writes anything, refused when a newer attempt holds it), then runs inside <see cref="Enter"/>: every
/// <see cref="AtomicFile"/> write of its flow (the job's task, its awaits and the tasks it starts) checks the fence
/// just before its rename, and the appending logs check it before each line (<see cref="CheckCurrent"/>). A stale
/// attempt (a worker given up for lost, a StartJob delivered late, a node removed whose training task still runs) thus
/// stops itself at its next write with <see cref="AttemptSupersededException"/> and never replaces the newer
/// attempt's files. The check is a read of a small file; what it cannot close is the moment between a check and its
/// rename (and, on NFS, the client's attribute cache: see docs/reliability.md).
/// </summary>
public sealed class WriteFence
{
    /// <summary>The fence file of a training fold (in <c>fold_F/</c>) and of a prediction folder.</summary>
    public const string FileName = "attempt.fence";

    private static readonly AsyncLocal<WriteFence?> Ambient = new();

    private WriteFence(string path, FenceToken token)
    {
        FilePath = Path.GetFullPath(path);
        Token = token;
    }

    public string FilePath { get; }
    public FenceToken Token { get; }

    /// <summary>The fence of the attempt whose flow this code runs in; null outside a fenced job.</summary>
    public static WriteFence? Current => Ambient.Value;

    /// <summary>
    /// Takes the fence file at <paramref name="path"/> for <paramref name="token"/>: refused (<see cref="AttemptSupersededException"/>)
    /// when it holds a higher attempt of the same run, so a lower attempt never takes it back; another run's fence is
    /// taken over (which run may use a folder is the results lock's decision, see <c>ResultsLock</c>).
    /// </summary>
    public static WriteFence Take(string path, FenceToken token)
    {
        var fence = new WriteFence(path, token);
        if (Read(fence.FilePath) is { } found && found.Run == token.Run && found.Attempt > token.Attempt)
            throw new AttemptSupersededException(fence.FilePath, token, found);
        fence.WriteOwn();
        return fence;
    }

    /// <summary>The fence file's token, null when there is none (or it cannot be read).</summary>
    public static FenceToken? Read(string path)
    {
        try { return JsonSerializer.Deserialize<FenceToken>(File.ReadAllText(path), IndentedJson.Options); }
        catch (FileNotFoundException) { return null; }
        catch (DirectoryNotFoundException) { return null; }
        catch (JsonException) { return null; }
    }

    /// <summary>
    /// Throws <see cref="AttemptSupersededException"/> when a newer attempt (or another run) holds the fence. A fence
    /// that went missing, or that a lower attempt wrote over ours (both read it before either wrote), is written again,
    /// so the lower one stops at its own next check.
    /// </summary>
    public void Check()
    {
        var found = Read(FilePath);
        if (found is not null && found.Supersedes(Token)) throw new AttemptSupersededException(FilePath, Token, found);
        if (found is null || found.Attempt != Token.Attempt) WriteOwn();
    }

    /// <summary><see cref="Check"/> of the current flow's fence, if any (the writers call it before each rename or appended line).</summary>
    public static void CheckCurrent() => Ambient.Value?.Check();

    /// <summary>Makes this fence the current flow's until the scope is disposed (async code: until the calling method returns).</summary>
    public Scope Enter()
    {
        var previous = Ambient.Value;
        Ambient.Value = this;
        return new Scope(previous);
    }

    public readonly struct Scope(WriteFence? previous) : IDisposable
    {
        public void Dispose() => Ambient.Value = previous;
    }

    // the fence's own file is not fenced (it is what the check reads)
    private void WriteOwn() => AtomicFile.WriteUnfenced(FilePath, JsonSerializer.Serialize(Token, IndentedJson.Options));
}
