using NnUnet.Cluster.Sweeps;

namespace NnUnet.Cluster.Tests;

/// <summary>
/// The three parts of the sweep's rules, each alone: the ledger folds events (no decisions), the duration model reads
/// a ledger (no events), the dispatch policy picks from a ledger and a duration model (no events either).
/// </summary>
public class SweepPartsTests
{
    private static readonly DateTime T0 = new(2026, 1, 1, 0, 0, 0, DateTimeKind.Utc);

    private static SweepDefinition Def(string[] configs, int[] folds, int epochs = 10, bool predict = false) =>
        SweepDefinition.Create("Dataset004_Hippocampus", "nnUNetPlans", "nnUNetTrainer", configs, folds, epochs, predict);

    private static SweepLedger Ledger(SweepDefinition definition, params ISweepEvent[] events)
    {
        var ledger = new SweepLedger();
        ledger.Apply(new SweepDefined(definition, T0));
        foreach (var e in events) ledger.Apply(e);
        return ledger;
    }

    private static JobAssigned Assigned(string jobId, string worker, int attempt = 1) => new(jobId, attempt, worker, "n", false, T0);

    private static JobCompleted Completed(string jobId, int attempt = 1) => new(jobId, attempt, "s", [], T0);

    private static JobProgressed Epoch(string jobId, int epoch, double seconds, int total = 10) =>
        new(jobId, 1, new EpochMetrics(epoch, total, 0, 0, 0.5, 0.5, seconds), T0.AddSeconds(epoch * seconds));

    // ---------------------------------------------------------------- ledger

    [Fact]
    public void Ledger_FoldsEvents_IntoRecordsAndIndices()
    {
        var ledger = Ledger(Def(["3d_lowres", "3d_cascade_fullres"], [0, 1], predict: true),
            Assigned("3d_lowres/fold_0", "w0"), Assigned("3d_lowres/fold_1", "w1"), Epoch("3d_lowres/fold_0", 1, 4), Epoch("3d_lowres/fold_0", 2, 6));
        Assert.Equal(["3d_lowres/fold_0", "3d_lowres/fold_1", "3d_cascade_fullres/fold_0", "3d_cascade_fullres/fold_1", "select", "predict/shard_0", "predict"], ledger.JobOrder);
        Assert.Equal((2, 5), (ledger.Count(JobStatus.Running), ledger.Count(JobStatus.Pending)));
        Assert.Equal("3d_lowres/fold_1", ledger.JobOfWorker("w1")!.JobId);
        Assert.Equal(2, ledger.Job("3d_lowres/fold_0").Epoch);
        Assert.True(ledger.TryGetMeasuredEpochSeconds("3d_lowres", out var mean));
        Assert.Equal(5, mean);
        Assert.Equal(["3d_cascade_fullres/fold_0", "3d_cascade_fullres/fold_1", "select"], ledger.DependentsOf("3d_lowres/fold_1"));
        // the cascade waits for both low-res folds: nothing is ready
        Assert.Empty(ledger.ReadyByGroup);
        Assert.False(ledger.DependenciesCompleted(ledger.Job("3d_cascade_fullres/fold_0")));

        ledger.Apply(Completed("3d_lowres/fold_0"));
        Assert.Empty(ledger.ReadyByGroup);
        ledger.Apply(Completed("3d_lowres/fold_1"));
        var ready = Assert.Single(ledger.ReadyByGroup).Select(j => j.JobId);
        Assert.Equal(["3d_cascade_fullres/fold_0", "3d_cascade_fullres/fold_1"], ready);
        Assert.True(ledger.HasReady(SweepDefinition.Cascade));
        Assert.Null(ledger.JobOfWorker("w0"));
        Assert.Equal(SweepStatus.Running, ledger.Status);
    }

    [Fact]
    public void Ledger_ReadySet_HandsOutTheJobWithTheMostEpochsLeftFirst_ThenGridOrder()
    {
        var ledger = Ledger(Def(["2d"], [0, 1, 2]),
            Assigned("2d/fold_0", "w0"), Epoch("2d/fold_0", 3, 1), new JobRequeued("2d/fold_0", 1, "x", false, T0));
        Assert.Equal(["2d/fold_1", "2d/fold_2", "2d/fold_0"], Assert.Single(ledger.ReadyByGroup).Select(j => j.JobId));
    }

    [Fact]
    public void Ledger_Status_IsDerivedFromTheFold()
    {
        var definition = Def(["2d"], [0]);
        Assert.Equal(SweepStatus.NotDefined, new SweepLedger().Status);
        var ledger = Ledger(definition, new SweepPaused(T0));
        Assert.Equal(SweepStatus.Paused, ledger.Status);
        ledger.Apply(new JobCancelled("2d/fold_0", "operator", T0));
        // the selection waits on a cancelled job: nothing can run any more
        Assert.True(ledger.IsBlocked(ledger.Job("select")));
        Assert.Equal(SweepStatus.FinishedWithFailures, ledger.Status);
        ledger.Apply(new JobRetried("2d/fold_0", T0));
        ledger.Apply(new SweepResumed(T0));
        Assert.Equal(SweepStatus.Running, ledger.Status);
        ledger.Apply(Assigned("2d/fold_0", "w"));
        ledger.Apply(Completed("2d/fold_0"));
        ledger.Apply(Assigned("select", "w"));
        ledger.Apply(Completed("select"));
        Assert.Equal(SweepStatus.Completed, ledger.Status);
    }

    [Fact]
    public void Ledger_Snapshot_RebuildsRecordsIndicesAndTimings()
    {
        var ledger = Ledger(Def(["3d_lowres", "3d_cascade_fullres"], [0]),
            Assigned("3d_lowres/fold_0", "w0"), Epoch("3d_lowres/fold_0", 1, 7), Completed("3d_lowres/fold_0"), Assigned("3d_cascade_fullres/fold_0", "w1"));
        var copy = SweepLedger.FromSnapshot(ledger.ToSnapshot());
        Assert.Equal(ledger.Jobs, copy.Jobs);
        Assert.Equal("3d_cascade_fullres/fold_0", copy.JobOfWorker("w1")!.JobId);
        Assert.Equal(ledger.MeasuredEpochSeconds, copy.MeasuredEpochSeconds);
        Assert.True(copy.DependenciesCompleted(copy.Job("3d_cascade_fullres/fold_0")));
        Assert.Equal(ledger.Count(JobStatus.Completed), copy.Count(JobStatus.Completed));
    }

    [Fact]
    public void Ledger_RefusesEventsOfUnknownJobs()
    {
        var ledger = Ledger(Def(["2d"], [0]));
        var error = Assert.Throws<InvalidDataException>(() => ledger.Apply(Assigned("3d_fullres/fold_9", "w")));
        Assert.Contains("3d_fullres/fold_9", error.Message);
    }

    // ---------------------------------------------------------------- duration model

    [Fact]
    public void Durations_FromPriors_ThenFromMeasuredEpochs()
    {
        var ledger = Ledger(Def(["2d", "3d_fullres"], [0], epochs: 10));
        var durations = new DurationModel(ledger);
        Assert.Equal(144 * 10, durations.EstimatedRemainingSeconds(ledger.Job("2d/fold_0")));
        // selection: 5 % of a mean training job
        Assert.Equal(0.05 * (144 + 180) * 10 / 2, durations.EstimatedRemainingSeconds(ledger.Job("select")), 9);
        ledger.Apply(Assigned("2d/fold_0", "w"));
        ledger.Apply(Epoch("2d/fold_0", 4, 72));
        Assert.Equal(72, durations.EstimatedEpochSeconds("2d"));
        Assert.Equal(72 * 6, durations.EstimatedRemainingSeconds(ledger.Job("2d/fold_0")));
        // 2d ran at half its prior: an unmeasured configuration is scaled alike
        Assert.Equal(90, durations.EstimatedEpochSeconds("3d_fullres"), 9);
        Assert.Equal(0, durations.EstimatedRemainingSeconds(ledger.Job("2d/fold_0") with { Status = JobStatus.Completed }));
    }

    [Fact]
    public void Durations_TailIsTheLongestChainOfDependentsLeft_AndTheEtaCoversItAndTheWork()
    {
        var ledger = Ledger(Def(["3d_fullres", "3d_lowres", "3d_cascade_fullres"], [0, 1], epochs: 10));
        var durations = new DurationModel(ledger);
        double select = durations.EstimatedRemainingSeconds(ledger.Job("select"));
        // a low-res fold: a whole cascade fold (3d_fullres's prior until measured), then the selection
        Assert.Equal(180 * 10 + select, durations.TailSeconds(ledger.Job("3d_lowres/fold_0")), 9);
        Assert.Equal(select, durations.TailSeconds(ledger.Job("3d_fullres/fold_0")), 9);
        Assert.Equal(0, durations.TailSeconds(ledger.Job("select")));
        // one worker: all the work in a row; many workers: the critical path (low-res, cascade, selection)
        double work = 6 * 1800 + select;
        Assert.Equal(work, durations.EstimatedSweepSeconds(1)!.Value, 6);
        Assert.Equal(2 * 1800 + select, durations.EstimatedSweepSeconds(100)!.Value, 6);
        Assert.Null(new DurationModel(new SweepLedger()).EstimatedSweepSeconds(4));
    }

    // ---------------------------------------------------------------- dispatch policy

    [Fact]
    public void Policy_CriticalPathFirst_ThenLongestJob_ThenGridOrder_AndNothingWhilePaused()
    {
        var ledger = Ledger(Def(["2d", "3d_fullres", "3d_lowres", "3d_cascade_fullres"], [0, 1]));
        var policy = new DispatchPolicy(ledger, new DurationModel(ledger));
        Assert.Equal("3d_lowres/fold_0", policy.NextJob()!.JobId);
        Assert.True(policy.Better(ledger.Job("3d_fullres/fold_0"), ledger.Job("2d/fold_0")));   // longer job
        Assert.True(policy.Better(ledger.Job("3d_fullres/fold_0"), ledger.Job("3d_fullres/fold_1"))); // grid order
        Assert.False(policy.Better(ledger.Job("3d_fullres/fold_1"), ledger.Job("3d_fullres/fold_0")));
        ledger.Apply(new SweepPaused(T0));
        Assert.Null(policy.NextJob());
    }

    [Fact]
    public void Policy_SkipsJobsHeldAfterARecovery_UntilTheHoldEnds()
    {
        var ledger = Ledger(Def(["2d"], [0]), Assigned("2d/fold_0", "w"),
            new JobRequeued("2d/fold_0", 1, "coordinator restarted", true, T0, T0.AddSeconds(30)));
        var policy = new DispatchPolicy(ledger, new DurationModel(ledger));
        Assert.Null(policy.NextJob(T0.AddSeconds(29)));
        Assert.Equal(T0.AddSeconds(30), ledger.EarliestHoldEnd());
        Assert.Equal("2d/fold_0", policy.NextJob(T0.AddSeconds(30))!.JobId);
    }

    [Fact]
    public void Policy_WhyIdle_NamesTheConfigurationsThatWait_AndTheJobsTheyWaitFor()
    {
        var ledger = Ledger(Def(["3d_lowres", "3d_cascade_fullres"], [0, 1, 2]),
            Assigned("3d_lowres/fold_0", "w0"), Assigned("3d_lowres/fold_1", "w1"), Assigned("3d_lowres/fold_2", "w2"), Completed("3d_lowres/fold_1"));
        var policy = new DispatchPolicy(ledger, new DurationModel(ledger));
        Assert.Null(policy.NextJob(T0));
        // 3 cascade folds and the selection wait; fold 1 completed, so it is not waited for
        Assert.Equal("3d_cascade_fullres, select wait for 3d_lowres/fold_0, 3d_lowres/fold_2", policy.WhyIdle(T0));

        ledger.Apply(new SweepPaused(T0));
        Assert.Equal("the sweep is paused", policy.WhyIdle(T0));
        ledger.Apply(new SweepResumed(T0));
        foreach (var job in new[] { "3d_lowres/fold_0", "3d_lowres/fold_2" }) ledger.Apply(Completed(job));
        foreach (var job in new[] { "3d_cascade_fullres/fold_0", "3d_cascade_fullres/fold_1", "3d_cascade_fullres/fold_2" })
        {
            ledger.Apply(Assigned(job, "w" + job[^1]));
            ledger.Apply(Completed(job));
        }
        ledger.Apply(Assigned("select", "w0"));
        ledger.Apply(Completed("select"));
        // nothing pending any more: nothing to explain
        Assert.Null(policy.WhyIdle(T0));
    }
}
