using System.Text.Json;
using System.Text.Json.Serialization;
using NnUnet.Core.IO;

namespace NnUnet.Core.Results;

/// <summary>
/// The content of a results lock file: who writes into a results folder (a sweep's coordinator holds one per
/// <c>TRAINER__PLANS__CONFIG</c> folder, <c>nnunet train</c> one per fold folder) and until when. The holder renews
/// <see cref="RenewedAtUtc"/>; a holder that stopped renewing for longer than <see cref="LeaseSeconds"/> is gone
/// (crashed), and its lock may be taken over.
/// </summary>
public sealed record LockHolder
{
    /// <summary>The sweep id; null for <c>nnunet train</c>.</summary>
    [JsonPropertyName("sweep_id")] public string? SweepId { get; init; }
    [JsonPropertyName("host")] public required string Host { get; init; }
    [JsonPropertyName("pid")] public int Pid { get; init; }
    /// <summary>Distinguishes two holders in one process (tests) and a restarted process that got the same pid.</summary>
    [JsonPropertyName("token")] public required string Token { get; init; }
    [JsonPropertyName("acquired_at")] public DateTime AcquiredAtUtc { get; init; }
    [JsonPropertyName("renewed_at")] public DateTime RenewedAtUtc { get; init; }
    [JsonPropertyName("lease_seconds")] public double LeaseSeconds { get; init; }

    public bool ExpiredAt(DateTime nowUtc) => nowUtc - RenewedAtUtc > TimeSpan.FromSeconds(LeaseSeconds);

    public string Describe(DateTime nowUtc) =>
        $"{(SweepId is { } id ? $"sweep {id}" : "nnunet train")} (host {Host}, pid {Pid}, " +
        $"renewed {Math.Max(0, (nowUtc - RenewedAtUtc).TotalSeconds):F0} s ago, lease {LeaseSeconds:F0} s)";
}

/// <summary>What trying to take a lock gave.</summary>
public enum LockDecision
{
    /// <summary>Nobody held it: take it.</summary>
    Take,
    /// <summary>We hold it already: renew it.</summary>
    Renew,
    /// <summary>Its holder stopped renewing longer than its lease ago: take it over.</summary>
    TakeOver,
    /// <summary>A live holder of the same sweep (a stand-by coordinator, or the crashed one's lease still runs): wait.</summary>
    WaitForSameSweep,
    /// <summary>A live holder of another sweep or a hand-run training: refuse.</summary>
    Refuse,
}

/// <summary>The lock file of one results folder (<see cref="FileName"/> inside it), and the pure rule of who may take it.</summary>
public sealed class ResultsLock(string folder)
{
    public const string FileName = "nnunet.lock";
    public static readonly TimeSpan DefaultLease = TimeSpan.FromSeconds(60);


    public string Folder { get; } = folder;
    public string FilePath => Path.Combine(Folder, FileName);

    /// <summary>
    /// The rule: a free or expired lock may be taken by anyone; a live lock of the same holder is renewed; a live lock
    /// of the same sweep held by another process is waited for (the journal already keeps one sweep's writers apart);
    /// anything else is refused.
    /// </summary>
    public static LockDecision Decide(LockHolder? current, LockHolder me, DateTime nowUtc)
    {
        if (current is null) return LockDecision.Take;
        if (current.Token == me.Token) return LockDecision.Renew;
        if (current.ExpiredAt(nowUtc)) return LockDecision.TakeOver;
        return current.SweepId is not null && current.SweepId == me.SweepId ? LockDecision.WaitForSameSweep : LockDecision.Refuse;
    }

    /// <summary>The current holder, or null when the folder is not locked. An unreadable file counts as held (fail safe).</summary>
    public LockHolder? Read()
    {
        if (!File.Exists(FilePath)) return null;
        try
        {
            return JsonSerializer.Deserialize<LockHolder>(File.ReadAllText(FilePath), IndentedJson.Options);
        }
        catch (Exception ex) when (ex is JsonException or IOException)
        {
            // half-written by a crashed writer is impossible (atomic rename); treat anything unreadable as a live stranger
            return new LockHolder { Host = "?", Token = "unreadable", Pid = 0, RenewedAtUtc = DateTime.UtcNow, LeaseSeconds = DefaultLease.TotalSeconds, SweepId = $"unreadable lock file {FilePath}" };
        }
    }

    /// <summary>A live holder other than the one with <paramref name="myToken"/> (null: free, expired, or ours).</summary>
    public LockHolder? LiveHolderOtherThan(string? myToken, DateTime nowUtc) =>
        Read() is { } h && h.Token != myToken && !h.ExpiredAt(nowUtc) ? h : null;

    /// <summary>Applies <see cref="Decide"/>; returns the decision and the holder that was there.</summary>
    public (LockDecision Decision, LockHolder? Holder) TryAcquire(LockHolder me, DateTime nowUtc)
    {
        var current = Read();
        var decision = Decide(current, me, nowUtc);
        switch (decision)
        {
            case LockDecision.Take:
                Directory.CreateDirectory(Folder);
                // CreateNew: of two processes that both found no lock, exactly one creates it
                if (!AtomicFile.TryCreate(FilePath, tmp => File.WriteAllText(tmp, Serialize(me with { AcquiredAtUtc = nowUtc, RenewedAtUtc = nowUtc }))))
                    return (LockDecision.Refuse, Read());
                return (decision, current);
            case LockDecision.Renew:
            case LockDecision.TakeOver:
                AtomicFile.WriteAllText(FilePath, Serialize(me with { AcquiredAtUtc = decision == LockDecision.Renew ? current!.AcquiredAtUtc : nowUtc, RenewedAtUtc = nowUtc }));
                // two successors may take over at once: the last rename wins, the other sees it here
                return Read()?.Token == me.Token ? (decision, current) : (LockDecision.Refuse, Read());
            default:
                return (decision, current);
        }
    }

    /// <summary>Removes the lock if it is still ours.</summary>
    public void Release(string token)
    {
        if (Read()?.Token == token) File.Delete(FilePath);
    }

    private static string Serialize(LockHolder holder) => JsonSerializer.Serialize(holder, IndentedJson.Options);
}

/// <summary>
/// Holds a set of results locks for one process and renews them on a timer (every third of the lease). Locks it could
/// not take yet (a crashed holder of the same sweep whose lease still runs) are retried at every renewal and taken
/// over once their lease has run out. Disposing releases the locks it holds.
/// </summary>
public sealed class ResultsLockKeeper : IDisposable
{
    private readonly ResultsLock[] _locks;
    private readonly LockHolder _me;
    private readonly Timer _timer;
    private readonly Action<string> _log;
    private readonly object _gate = new();
    private readonly HashSet<string> _held = [];
    private bool _disposed;

    /// <summary>Takes what it can now; throws <see cref="ResultsLockedException"/> when a live holder of another run has one.</summary>
    public ResultsLockKeeper(IEnumerable<string> folders, string? sweepId, TimeSpan lease, Action<string> log)
    {
        _locks = folders.Distinct().Select(f => new ResultsLock(f)).ToArray();
        _me = new LockHolder
        {
            SweepId = sweepId, Host = Environment.MachineName, Pid = Environment.ProcessId, Token = Guid.NewGuid().ToString("N"),
            LeaseSeconds = lease.TotalSeconds,
        };
        _log = log;
        try { Renew(initial: true); }
        catch { ReleaseHeld(); throw; }
        var period = TimeSpan.FromTicks(Math.Max(TimeSpan.FromMilliseconds(100).Ticks, lease.Ticks / 3));
        _timer = new Timer(_ => { try { Renew(initial: false); } catch (Exception ex) { _log($"results lock: {ex.Message}"); } }, null, period, period);
    }

    public string Token => _me.Token;

    /// <summary>Folders whose lock this keeper holds now.</summary>
    public IReadOnlyCollection<string> HeldFolders { get { lock (_gate) return _held.ToArray(); } }

    private void Renew(bool initial)
    {
        lock (_gate)
        {
            if (_disposed) return;
            var now = DateTime.UtcNow;
            foreach (var l in _locks)
            {
                var (decision, holder) = l.TryAcquire(_me, now);
                switch (decision)
                {
                    case LockDecision.Take or LockDecision.Renew:
                        _held.Add(l.Folder);
                        break;
                    case LockDecision.TakeOver:
                        _held.Add(l.Folder);
                        _log($"results lock of {l.Folder} taken over from {holder!.Describe(now)}: its lease ran out");
                        break;
                    case LockDecision.WaitForSameSweep:
                        if (initial) _log($"results lock of {l.Folder} is held by {holder!.Describe(now)}; taking it over once its lease runs out");
                        _held.Remove(l.Folder);
                        break;
                    default:
                        _held.Remove(l.Folder);
                        if (initial) throw new ResultsLockedException(l.Folder, holder!, now);
                        _log($"error: results lock of {l.Folder} is now held by {holder?.Describe(now) ?? "another process"}: another run writes into this folder");
                        break;
                }
            }
        }
    }

    private void ReleaseHeld()
    {
        foreach (var l in _locks)
            if (_held.Contains(l.Folder))
                try { l.Release(_me.Token); } catch (IOException) { }
        _held.Clear();
    }

    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed) return;
            _disposed = true;
            _timer.Dispose();
            ReleaseHeld();
        }
    }
}

/// <summary>A results folder is locked by a live run of something else.</summary>
public sealed class ResultsLockedException(string folder, LockHolder holder, DateTime nowUtc) : InvalidOperationException(
    $"{folder} is being written by {holder.Describe(nowUtc)}: one writer per results folder. Wait for it to finish, stop it, " +
    $"or train beside it with --results-suffix NAME; a crashed holder's lock ({ResultsLock.FileName}) expires {holder.LeaseSeconds:F0} s after its last renewal")
{
    public LockHolder Holder { get; } = holder;
}
