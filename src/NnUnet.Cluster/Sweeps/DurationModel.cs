namespace NnUnet.Cluster.Sweeps;

/// <summary>
/// How long things take, from the ledger: prior seconds per epoch until a configuration has reported epochs, then
/// what was measured (the ledger folds the reported epoch times); a job's remaining time, the critical path behind it
/// (<see cref="TailSeconds"/>) and the whole sweep's ETA. Reads only; the dispatch policy and the read model use it.
/// </summary>
public sealed class DurationModel(IReadOnlySweepLedger ledger)
{
    /// <summary>
    /// Prior seconds per epoch (relative sizes matter, not the absolute values) before anything was measured. nnU-Net
    /// plans every 3D configuration to the same VRAM budget and runs a fixed number of iterations per epoch, so their
    /// epochs take about as long; a 2d epoch takes 0.77-0.91 x a 3d_fullres one in nnU-Net's published epoch times
    /// (documentation/expected_epoch_times.md: three datasets on seven GPUs).
    /// </summary>
    public static double PriorEpochSeconds(string configuration) => configuration switch
    {
        "2d" => 144,
        "3d_fullres" => 180,
        SweepDefinition.Lowres => 180,
        SweepDefinition.Cascade => 180,
        _ => 120,
    };

    /// <summary>Prior seconds for the final stages, as a fraction of one training job.</summary>
    public const double SelectPriorFraction = 0.05, PredictPriorFraction = 0.1;

    /// <summary>
    /// Seconds per epoch of a configuration: measured when it has run; for the cascade, until then, 3d_fullres's
    /// measurement (same network and patch, plus the one-hot input channels); otherwise the prior scaled by what the
    /// measured ones showed.
    /// </summary>
    public double EstimatedEpochSeconds(string configuration)
    {
        if (ledger.TryGetMeasuredEpochSeconds(configuration, out var measured)) return measured;
        if (configuration == SweepDefinition.Cascade && ledger.TryGetMeasuredEpochSeconds("3d_fullres", out var fullres)) return fullres;
        double ratio = 0; int count = 0;
        foreach (var (config, seconds) in ledger.MeasuredEpochSeconds)
        {
            ratio += seconds / PriorEpochSeconds(config);
            count++;
        }
        return PriorEpochSeconds(configuration) * (count > 0 ? ratio / count : 1);
    }

    /// <summary>Seconds a job still needs: its epochs left for a training job, a fraction of a mean training job for the final stages.</summary>
    public double EstimatedRemainingSeconds(JobRecord job)
    {
        if (job.IsTerminal || ledger.Definition is not { } definition) return 0;
        switch (job.Kind)
        {
            case JobKind.Train:
                return EstimatedEpochSeconds(job.Configuration!) * Math.Max(0, job.TotalEpochs - job.Epoch);
            default:
                double mean = 0;
                foreach (var c in definition.Configurations) mean += EstimatedEpochSeconds(c) * definition.Epochs;
                mean /= definition.Configurations.Length;
                // a prediction split into shards: each shard a share of the whole, the merge only checks
                return mean * job.Kind switch
                {
                    JobKind.Select => SelectPriorFraction,
                    JobKind.PredictShard => PredictPriorFraction / Math.Max(1, ShardsOf(job, definition)),
                    _ => ShardsOf(job, definition) > 0 ? SelectPriorFraction : PredictPriorFraction,
                };
        }
    }

    private int ShardsOf(JobRecord job, SweepDefinition definition) =>
        job.Submission is { } id && ledger.Submissions.TryGetValue(id, out var request) ? request.Shards : definition.PredictShards;

    /// <summary>A job's whole length, as if it had not started (the jobs behind a running one have not).</summary>
    private double FullEstimate(JobRecord job) => job.Kind == JobKind.Train
        ? EstimatedEpochSeconds(job.Configuration!) * job.TotalEpochs
        : EstimatedRemainingSeconds(job);

    /// <summary>Estimated seconds from the end of a job to the end of the sweep along its longest chain of not yet finished dependents.</summary>
    public double TailSeconds(JobRecord job)
    {
        var dependents = ledger.DependentsOf(job.JobId);
        if (dependents.Count == 0) return 0;
        // all dependents of a job are alike (every cascade fold, or the selection), so the chain is short: walk it per group
        double tail = 0;
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var d in dependents)
        {
            var dep = ledger.Job(d);
            if (dep.IsTerminal || !seen.Add(SweepLedger.GroupOf(dep))) continue;
            tail = Math.Max(tail, FullEstimate(dep) + TailSeconds(dep));
        }
        return tail;
    }

    /// <summary>Rough time to the end of the sweep: the longer of the remaining critical path and remaining work spread over the workers.</summary>
    public double? EstimatedSweepSeconds(int workers)
    {
        if (ledger.Definition is null) return null;
        double work = 0, path = 0;
        var groupsSeen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var job in ledger.Jobs)
        {
            if (job.IsTerminal || ledger.IsBlocked(job)) continue;
            double own = EstimatedRemainingSeconds(job);
            work += own;
            if (groupsSeen.Add(SweepLedger.GroupOf(job) + "/" + job.Epoch)) path = Math.Max(path, own + TailSeconds(job));
        }
        return Math.Max(path, work / Math.Max(1, workers));
    }
}
