using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Threading.Channels;
using NnUnet.Cluster.Messages;
using NnUnet.Cluster.Sweeps;
using NnUnet.Core.Results;

namespace NnUnet.Dashboard;

/// <summary>
/// One finished epoch (1-based) of a job, for the curves. Live points derive <paramref name="LearningRate"/> (see
/// <see cref="DashboardState.PolyLearningRate"/>); points read from the fold's <c>progress.json</c> carry the rate the
/// trainer used, attempt 0 and no time.
/// </summary>
public sealed record EpochPoint(int Attempt, int Epoch, int TotalEpochs, double TrainLoss, double ValidationLoss, double PseudoDice,
    double EmaPseudoDice, double LearningRate, double EpochSeconds, DateTime? At);

/// <summary>
/// What the dashboard learns from the stream of changes, beyond the coordinator's snapshot: per-job epoch history
/// (kept here in memory, since the coordinator keeps only the latest epoch), counters for <c>/metrics</c>, and the
/// fan-out to the Server-Sent-Events clients: every change, and once the sweep is over its final state
/// (<see cref="AnnounceEnd"/>). Live history starts when the dashboard starts; epochs before that come from the fold's
/// progress.json (<see cref="WithStoredCurves"/>).
/// </summary>
public sealed class DashboardState
{
    /// <summary>nnU-Net's default trainer: initial LR 1e-2, poly schedule with exponent 0.9, stepped once per epoch.</summary>
    public const double InitialLearningRate = 1e-2;
    public const int MaxEpochsKept = 5000;
    /// <summary>Upper bounds (seconds) of the epoch-duration histogram.</summary>
    public static readonly double[] EpochSecondsBuckets = [0.1, 0.5, 1, 5, 15, 30, 60, 120, 300, 600];

    private readonly Lock _gate = new();
    private readonly Dictionary<string, List<EpochPoint>> _history = new(StringComparer.Ordinal);
    // each client's queue holds whole SSE frames, serialised once for all clients
    private readonly List<Channel<string>> _clients = [];
    private string? _endFrame;
    private bool _ended;
    private readonly long[] _bucketCounts = new long[EpochSecondsBuckets.Length];
    private long _epochCount, _assignments, _failures, _requeues, _quarantines;
    private double _epochSecondsSum;

    /// <summary>LR nnU-Net's PolyLRScheduler sets for the 1-based <paramref name="epoch"/>: lr0 * (1 - (epoch-1)/total)^0.9.</summary>
    public static double PolyLearningRate(int epoch, int totalEpochs) =>
        InitialLearningRate * Math.Pow(1.0 - (double)Math.Max(0, epoch - 1) / Math.Max(1, totalEpochs), 0.9);

    /// <summary>True when a sweep with this status has nothing left to run (until an operator retries a job).</summary>
    public static bool IsOver(SweepStatus status) => status is SweepStatus.Completed or SweepStatus.FinishedWithFailures;

    /// <summary>Records the change and sends it to every client. True when this change ends the sweep (the one before did not).</summary>
    public bool Apply(SweepChanged change)
    {
        List<Channel<string>> clients;
        bool ends;
        string frame = $"event: change\ndata: {JsonSerializer.Serialize(change, DashboardServer.Json)}\n\n";
        lock (_gate)
        {
            ends = IsOver(change.Status) && !_ended;
            _ended = IsOver(change.Status);
            // a retry after the end makes the sweep run again: the old final state no longer holds
            if (!_ended) _endFrame = null;
            switch (change.Event.Kind)
            {
                case "assigned": _assignments++; break;
                case "failed": _failures++; break;
                case "requeued": _requeues++; break;
                case "quarantined": _quarantines++; break;
            }
            if (change.Progress is { Metrics: var m } p)
            {
                if (!_history.TryGetValue(p.JobId, out var list)) _history[p.JobId] = list = [];
                // a re-run from a checkpoint repeats epochs: the newer attempt's value replaces the older one
                int at = list.FindIndex(x => x.Epoch >= m.Epoch);
                if (at >= 0) list.RemoveRange(at, list.Count - at);
                if (list.Count < MaxEpochsKept)
                    list.Add(new EpochPoint(p.Attempt, m.Epoch, m.TotalEpochs, m.TrainLoss, m.ValidationLoss, m.PseudoDice, m.EmaPseudoDice,
                        PolyLearningRate(m.Epoch, m.TotalEpochs), m.EpochSeconds, p.At));
                _epochCount++;
                _epochSecondsSum += m.EpochSeconds;
                for (int i = 0; i < EpochSecondsBuckets.Length; i++)
                    if (m.EpochSeconds <= EpochSecondsBuckets[i]) _bucketCounts[i]++;
            }
            clients = [.. _clients];
        }
        foreach (var c in clients) c.Writer.TryWrite(frame);
        return ends;
    }

    /// <summary>
    /// The sweep is over: its final snapshot and selection (the body of <c>/api/sweep</c>) go to every client as
    /// <c>event: finished</c>, and to every client that connects later, right after its hello. The page then shows
    /// the true end even when the process stops right after, before it could read the snapshot itself.
    /// </summary>
    public void AnnounceEnd(object sweepBody)
    {
        string frame = $"event: finished\ndata: {JsonSerializer.Serialize(sweepBody, DashboardServer.Json)}\n\n";
        List<Channel<string>> clients;
        lock (_gate)
        {
            if (!_ended) return; // a job was retried meanwhile
            _endFrame = frame;
            clients = [.. _clients];
        }
        foreach (var c in clients) c.Writer.TryWrite(frame);
    }

    public EpochPoint[] History(string jobId)
    {
        lock (_gate) return _history.TryGetValue(jobId, out var list) ? [.. list] : [];
    }

    /// <summary>
    /// The live points completed with the fold's stored curves: epochs this dashboard did not see (it started later, or
    /// the coordinator restarted) come from <paramref name="stored"/>; where both have an epoch the live point wins but
    /// takes the stored learning rate, the one the trainer really used.
    /// </summary>
    public static EpochPoint[] WithStoredCurves(EpochPoint[] live, TrainingCurves? stored, int totalEpochs)
    {
        if (stored is null || stored.Count == 0) return live;
        var byEpoch = new SortedDictionary<int, EpochPoint>();
        for (int i = 0; i < stored.Count; i++)
            byEpoch[i + 1] = new EpochPoint(0, i + 1, totalEpochs, stored.TrainLosses[i], stored.ValLosses[i], stored.MeanForegroundDice[i],
                stored.EmaForegroundDice[i], stored.LearningRates[i], stored.EpochSeconds[i], null);
        foreach (var point in live)
            byEpoch[point.Epoch] = byEpoch.TryGetValue(point.Epoch, out var fromDisk) ? point with { LearningRate = fromDisk.LearningRate } : point;
        return [.. byEpoch.Values];
    }

    /// <summary>
    /// A bounded queue of SSE frames for one client (the end of the sweep first, when it is over); a slow client loses
    /// the oldest, then re-reads the snapshot.
    /// </summary>
    public Channel<string> Connect()
    {
        var channel = Channel.CreateBounded<string>(new BoundedChannelOptions(1000) { FullMode = BoundedChannelFullMode.DropOldest });
        lock (_gate)
        {
            if (_endFrame is not null) channel.Writer.TryWrite(_endFrame);
            _clients.Add(channel);
        }
        return channel;
    }

    public void Disconnect(Channel<string> channel)
    {
        lock (_gate) _clients.Remove(channel);
        channel.Writer.TryComplete();
    }

    public int ConnectedClients { get { lock (_gate) return _clients.Count; } }

    /// <summary>A Prometheus label value: backslash, double quote and newline escaped.</summary>
    private static string Label(string value) => value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal);

    /// <summary>Prometheus text exposition (version 0.0.4) of the snapshot plus the counters seen since start-up.</summary>
    public string Metrics(SweepView snapshot)
    {
        var sb = new StringBuilder();
        var inv = CultureInfo.InvariantCulture;
        var byState = new Dictionary<JobDisplayStatus, int>();
        foreach (var s in Enum.GetValues<JobDisplayStatus>()) byState[s] = 0;
        foreach (var j in snapshot.Jobs) byState[j.Status]++;
        sb.Append("# HELP nnunet_jobs Jobs of the sweep by state.\n# TYPE nnunet_jobs gauge\n");
        foreach (var (state, n) in byState) sb.Append(inv, $"nnunet_jobs{{state=\"{state.ToString().ToLowerInvariant()}\"}} {n}\n");
        int busy = 0, registered = 0, quarantined = 0;
        foreach (var w in snapshot.Workers)
        {
            if (!w.Registered) continue;
            registered++;
            if (w.JobId is not null) busy++;
            else if (w.Quarantined) quarantined++;
        }
        sb.Append("# HELP nnunet_workers Registered workers (one per GPU or CPU device) by state.\n# TYPE nnunet_workers gauge\n");
        sb.Append(inv, $"nnunet_workers{{state=\"busy\"}} {busy}\nnnunet_workers{{state=\"idle\"}} {registered - busy - quarantined}\n");
        sb.Append(inv, $"nnunet_workers{{state=\"quarantined\"}} {quarantined}\n");
        sb.Append("# HELP nnunet_workers_quarantined Workers quarantined now (registered or not).\n# TYPE nnunet_workers_quarantined gauge\n");
        int quarantinedAll = 0;
        foreach (var w in snapshot.Workers) if (w.Quarantined) quarantinedAll++;
        sb.Append(inv, $"nnunet_workers_quarantined {quarantinedAll}\n");
        sb.Append("# HELP nnunet_worker_quarantined 1 while the worker is quarantined.\n# TYPE nnunet_worker_quarantined gauge\n");
        foreach (var w in snapshot.Workers) sb.Append(inv, $"nnunet_worker_quarantined{{worker=\"{Label(w.WorkerId)}\"}} {(w.Quarantined ? 1 : 0)}\n");
        sb.Append("# HELP nnunet_worker_failures_in_a_row Failures of the worker since its last success that were not the job's own.\n# TYPE nnunet_worker_failures_in_a_row gauge\n");
        foreach (var w in snapshot.Workers) sb.Append(inv, $"nnunet_worker_failures_in_a_row{{worker=\"{Label(w.WorkerId)}\"}} {w.FailuresInARow}\n");
        sb.Append("# HELP nnunet_worker_last_failure_timestamp_seconds Unix time of the worker's last failed attempt.\n# TYPE nnunet_worker_last_failure_timestamp_seconds gauge\n");
        foreach (var w in snapshot.Workers)
            if (w.LastFailureAt is { } failedAt)
                sb.Append(inv, $"nnunet_worker_last_failure_timestamp_seconds{{worker=\"{Label(w.WorkerId)}\"}} {new DateTimeOffset(DateTime.SpecifyKind(failedAt, DateTimeKind.Utc)).ToUnixTimeSeconds()}\n");
        sb.Append("# HELP nnunet_sweep_paused 1 while the sweep is paused.\n# TYPE nnunet_sweep_paused gauge\n");
        sb.Append(inv, $"nnunet_sweep_paused {(snapshot.Status == SweepStatus.Paused ? 1 : 0)}\n");
        sb.Append("# HELP nnunet_sweep_eta_seconds Estimated seconds until the sweep is done.\n# TYPE nnunet_sweep_eta_seconds gauge\n");
        sb.Append(inv, $"nnunet_sweep_eta_seconds {snapshot.EtaSeconds ?? 0:R}\n");
        lock (_gate)
        {
            sb.Append("# HELP nnunet_job_assignments_total Job assignments seen by this dashboard.\n# TYPE nnunet_job_assignments_total counter\n");
            sb.Append(inv, $"nnunet_job_assignments_total {_assignments}\n");
            sb.Append("# HELP nnunet_job_failures_total Failed job attempts seen by this dashboard.\n# TYPE nnunet_job_failures_total counter\n");
            sb.Append(inv, $"nnunet_job_failures_total {_failures}\n");
            sb.Append("# HELP nnunet_job_requeues_total Attempts re-queued (worker lost, lease expired) seen by this dashboard.\n# TYPE nnunet_job_requeues_total counter\n");
            sb.Append(inv, $"nnunet_job_requeues_total {_requeues}\n");
            sb.Append("# HELP nnunet_worker_quarantines_total Workers quarantined, seen by this dashboard.\n# TYPE nnunet_worker_quarantines_total counter\n");
            sb.Append(inv, $"nnunet_worker_quarantines_total {_quarantines}\n");
            sb.Append("# HELP nnunet_epoch_duration_seconds Duration of finished training epochs.\n# TYPE nnunet_epoch_duration_seconds histogram\n");
            for (int i = 0; i < EpochSecondsBuckets.Length; i++)
                sb.Append(inv, $"nnunet_epoch_duration_seconds_bucket{{le=\"{EpochSecondsBuckets[i]:R}\"}} {_bucketCounts[i]}\n");
            sb.Append(inv, $"nnunet_epoch_duration_seconds_bucket{{le=\"+Inf\"}} {_epochCount}\n");
            sb.Append(inv, $"nnunet_epoch_duration_seconds_sum {_epochSecondsSum:R}\nnnunet_epoch_duration_seconds_count {_epochCount}\n");
        }
        return sb.ToString();
    }
}
