using NnUnet.Cluster.Sweeps;

namespace NnUnet.Cluster.Tests;

/// <summary>The sweep's rules, without actors: grid, dependencies, order, attempts, idempotency, pause, recovery.</summary>
public class SweepStateTests
{
    private static readonly DateTime T0 = new(2026, 1, 1, 0, 0, 0, DateTimeKind.Utc);
    private static readonly string[] AllConfigs = ["3d_cascade_fullres", "2d", "3d_lowres", "3d_fullres"];

    private static SweepDefinition Def(string[]? configs = null, int[]? folds = null, int epochs = 10, bool predict = false, int maxAttempts = 3) =>
        SweepDefinition.Create("Dataset004_Hippocampus", "nnUNetPlans", "nnUNetTrainer", configs ?? AllConfigs, folds ?? [0, 1, 2, 3, 4], epochs, predict, maxAttempts);

    private static SweepState NewState(SweepDefinition? def = null)
    {
        var state = new SweepState();
        Do(state, new DefineSweep(def ?? Def(), T0));
        return state;
    }

    private static IReadOnlyList<ISweepEvent> Do(SweepState state, SweepCommand command)
    {
        var events = state.Decide(command);
        foreach (var e in events) state.Apply(e);
        return events;
    }

    private static JobAssigned? Assign(SweepState state, string worker, DateTime? at = null) =>
        Do(state, new AssignWork(worker, "node", at ?? T0)).OfType<JobAssigned>().SingleOrDefault();

    private static void Complete(SweepState state, JobAssigned a) =>
        Assert.Single(Do(state, new CompleteJob(a.JobId, a.Attempt, "summary.json", new() { ["dice"] = 0.8 }, null, T0)).OfType<JobCompleted>());

    [Fact]
    public void SweepId_IsDeterministic_AndIgnoresInputOrderAndMaxAttempts()
    {
        var a = Def(["2d", "3d_fullres"], [1, 0]);
        var b = Def(["3d_fullres", "2d", "2d"], [0, 1], maxAttempts: 5);
        Assert.Equal(a.SweepId, b.SweepId);
        Assert.Equal(["2d", "3d_fullres"], b.Configurations);
        Assert.Equal([0, 1], b.Folds);
        Assert.StartsWith("Dataset004_Hippocampus-", a.SweepId);
        Assert.NotEqual(a.SweepId, Def(["2d", "3d_fullres"], [0, 1], epochs: 11).SweepId);
        Assert.NotEqual(a.SweepId, Def(["2d"], [0, 1]).SweepId);
        Assert.NotEqual(a.SweepId, Def(["2d", "3d_fullres"], [0, 1], predict: true).SweepId);
    }

    [Fact]
    public void TrainingBudget_IsPartOfTheSweep_AndTravelsWithEveryJob()
    {
        var nnUnetBudget = Def(["2d"], [0]);
        var small = SweepDefinition.Create("Dataset004_Hippocampus", "nnUNetPlans", "nnUNetTrainer", ["2d"], [0], 10, itersPerEpoch: 20, valIters: 5);
        Assert.NotEqual(nnUnetBudget.SweepId, small.SweepId);
        // nnU-Net's budget adds nothing to the id: sweeps defined before the budget was recorded keep theirs
        Assert.Equal(nnUnetBudget.SweepId, (nnUnetBudget with { ItersPerEpoch = 0, ValIters = 0 }).SweepId);
        var state = NewState(small);
        var job = Assign(state, "w0")!;
        var spec = state.BuildSpec(job.JobId, "/results");
        Assert.Equal((20, 5), (spec.ItersPerEpoch, spec.ValIters));
        // a definition from a journal written before the budget was recorded (0): nnU-Net's budget
        var old = NewState(nnUnetBudget with { ItersPerEpoch = 0, ValIters = 0 });
        var oldSpec = old.BuildSpec(Assign(old, "w0")!.JobId, "/results");
        Assert.Equal((250, 50), (oldSpec.ItersPerEpoch, oldSpec.ValIters));
        Assert.Throws<ArgumentException>(() => SweepDefinition.Create("D", "P", "T", ["2d"], [0], 10, itersPerEpoch: 0));
    }

    [Fact]
    public void Create_RejectsBadInputWithAClearMessage()
    {
        Assert.Contains("needs 3d_lowres", Assert.Throws<ArgumentException>(() => Def(["3d_cascade_fullres"])).Message);
        Assert.Contains("epochs", Assert.Throws<ArgumentException>(() => Def(epochs: 0)).Message);
        Assert.Contains("fold", Assert.Throws<ArgumentException>(() => Def(folds: [-1])).Message);
        Assert.Contains("no configuration", Assert.Throws<ArgumentException>(() => Def([])).Message);
    }

    [Fact]
    public void Grid_IsConfigurationsTimesFolds_PlusSelection_AndOptionalPrediction()
    {
        var state = NewState();
        Assert.Equal(21, state.JobOrder.Count);
        Assert.Equal(23, NewState(Def(predict: true)).JobOrder.Count); // + one test-set shard and the merge job
        var cascade = state.Job("3d_cascade_fullres/fold_2");
        Assert.Equal(Enumerable.Range(0, 5).Select(f => $"3d_lowres/fold_{f}"), cascade.DependsOn);
        Assert.Empty(state.Job("2d/fold_0").DependsOn);
        Assert.Equal(20, state.Job("select").DependsOn.Length);
        Assert.Equal(["select"], NewState(Def(predict: true)).Job("predict/shard_0").DependsOn);
        Assert.Equal(["predict/shard_0"], NewState(Def(predict: true)).Job("predict").DependsOn);
    }

    [Fact]
    public void DefiningAgain_WithSameInputsIsANoOp_WithOtherInputsIsRefused()
    {
        var state = NewState();
        Assert.Empty(state.Decide(new DefineSweep(Def(), T0)));
        Assert.Throws<InvalidOperationException>(() => state.Decide(new DefineSweep(Def(epochs: 3), T0)));
        Assert.Throws<InvalidOperationException>(() => new SweepState().Decide(new AssignWork("w", "n", T0)));
    }

    [Fact]
    public void CriticalPathFirst_LowresFoldsGoOut_BeforeAnythingElse_ThenLongestFirst()
    {
        var state = NewState();
        var first = Enumerable.Range(0, 5).Select(i => Assign(state, $"w{i}")!.JobId).ToList();
        Assert.Equal(Enumerable.Range(0, 5).Select(f => $"3d_lowres/fold_{f}"), first);
        // then 3d_fullres (longest ready), then 2d; the cascade is not ready yet
        var next = Enumerable.Range(5, 10).Select(i => Assign(state, $"w{i}")!.JobId).ToList();
        Assert.All(next.Take(5), id => Assert.StartsWith("3d_fullres/", id));
        Assert.All(next.Skip(5), id => Assert.StartsWith("2d/", id));
        Assert.Null(Assign(state, "w15"));
    }

    [Fact]
    public void Cascade_WaitsForEveryLowresFold()
    {
        var state = NewState(Def(["3d_lowres", "3d_cascade_fullres"], [0, 1, 2]));
        var lowres = Enumerable.Range(0, 3).Select(i => Assign(state, $"w{i}")!).ToList();
        Assert.Null(Assign(state, "w9"));
        Complete(state, lowres[0]);
        Complete(state, lowres[2]);
        Assert.Equal(JobDisplayStatus.Waiting, SweepView.View(state, state.Job("3d_cascade_fullres/fold_0")).Status);
        Assert.Null(Assign(state, "w9"));
        Complete(state, lowres[1]);
        Assert.StartsWith("3d_cascade_fullres/", Assign(state, "w9")!.JobId);
    }

    [Fact]
    public void Selection_WaitsForAllTraining_PredictionForSelection_ThenSweepCompletes()
    {
        var state = NewState(Def(["2d"], [0, 1], predict: true));
        var a = Assign(state, "w0")!;
        var b = Assign(state, "w1")!;
        Complete(state, a);
        Assert.Null(Assign(state, "w2"));
        Complete(state, b);
        var select = Assign(state, "w2")!;
        Assert.Equal("select", select.JobId);
        Assert.Null(Assign(state, "w3"));
        Complete(state, select);
        var shard = Assign(state, "w3")!;
        Assert.Equal("predict/shard_0", shard.JobId);
        Assert.Null(Assign(state, "w0"));                       // the merge waits for the shard
        Complete(state, shard);
        var predict = Assign(state, "w3")!;
        Assert.Equal("predict", predict.JobId);
        Assert.False(state.IsFinished);
        Complete(state, predict);
        Assert.True(state.IsFinished);
        Assert.True(state.AllCompleted);
        Assert.Equal(SweepStatus.Completed, SweepView.Build(state, [], [], T0).Status);
    }

    [Fact]
    public void OneJobPerWorker_AskingAgainWhileHoldingAJob_RequeuesItFirst()
    {
        var state = NewState(Def(["2d"], [0, 1]));
        var a = Assign(state, "w0")!;
        var events = Do(state, new AssignWork("w0", "node", T0));
        var requeued = Assert.IsType<JobRequeued>(events[0]);
        Assert.Equal(a.JobId, requeued.JobId);
        var again = Assert.IsType<JobAssigned>(events[1]);
        Assert.Equal(a.JobId, again.JobId); // the same job: most epochs left is fold 0 again (grid order on tie)
        Assert.Equal(a.Attempt + 1, again.Attempt);
        Assert.True(again.ResumeFromCheckpoint);
        Assert.Single(state.RunningJobs);
    }

    [Fact]
    public void Failure_RetriesFromCheckpoint_UntilMaxAttempts_ThenFailsForGood_AndTheRestGoesOn()
    {
        var state = NewState(Def(["2d"], [0, 1], maxAttempts: 3));
        var other = Assign(state, "w1")!; // fold 0
        for (int attempt = 1; attempt <= 3; attempt++)
        {
            var a = Assign(state, "w0")!;
            Assert.Equal("2d/fold_1", a.JobId);
            Assert.Equal(attempt, a.Attempt);
            Assert.Equal(attempt > 1, a.ResumeFromCheckpoint);
            var failed = Assert.IsType<JobFailed>(Assert.Single(Do(state, new FailJob(a.JobId, a.Attempt, $"CUDA OOM #{attempt}", T0))));
            Assert.Equal(attempt == 3, failed.Final);
        }
        var job = state.Job("2d/fold_1");
        Assert.Equal(JobStatus.Failed, job.Status);
        Assert.Equal("CUDA OOM #3", job.LastError);
        Assert.Null(Assign(state, "w0"));
        Assert.False(state.IsFinished);
        Complete(state, other);
        Assert.Equal(JobDisplayStatus.Blocked, SweepView.View(state, state.Job("select")).Status);
        Assert.True(state.IsFinished);
        var snapshot = SweepView.Build(state, [], [], T0);
        Assert.Equal(SweepStatus.FinishedWithFailures, snapshot.Status);
        Assert.Equal(1, snapshot.FailedJobs);
        Assert.Equal(1, snapshot.CompletedJobs);
    }

    [Fact]
    public void RetryByOperator_ResetsTheBudget_CancelStopsAJob()
    {
        var state = NewState(Def(["2d"], [0], maxAttempts: 1));
        var a = Assign(state, "w0")!;
        Do(state, new FailJob(a.JobId, a.Attempt, "boom", T0));
        // not counted until it is the job's own: the same error again (on the only worker there is)
        Assert.Equal((JobStatus.Pending, 0), (state.Job(a.JobId).Status, state.Job(a.JobId).Failures));
        var again = Assign(state, "w0")!;
        Do(state, new FailJob(again.JobId, again.Attempt, "boom", T0));
        Assert.Equal(JobStatus.Failed, state.Job(a.JobId).Status);
        Do(state, new RetryJob(a.JobId, T0));
        Assert.Equal(JobStatus.Pending, state.Job(a.JobId).Status);
        var b = Assign(state, "w0")!;
        Assert.Equal(3, b.Attempt);
        Assert.IsType<JobCancelled>(Assert.Single(Do(state, new CancelJob(a.JobId, "operator", T0))));
        Assert.Equal(JobStatus.Cancelled, state.Job(a.JobId).Status);
        Assert.Null(state.JobOfWorker("w0"));
        // late completion of the cancelled attempt is ignored; cancelling again or retrying a pending job is refused
        Assert.Empty(state.Decide(new CompleteJob(b.JobId, b.Attempt, "s", new(), null, T0)));
        Assert.Throws<InvalidOperationException>(() => state.Decide(new CancelJob(a.JobId, "again", T0)));
        Assert.Throws<InvalidOperationException>(() => state.Decide(new RetryJob("select", T0)));
        Assert.Throws<ArgumentException>(() => state.Decide(new RetryJob("nope", T0)));
    }

    [Fact]
    public void CompletedJobWhoseResultsAreGone_RunsAgain_WithItsDependents_WhichWaitForItAgain()
    {
        var state = NewState(Def(["2d"], [0, 1], predict: true));
        while (Assign(state, "w0") is { } a) Do(state, new CompleteJob(a.JobId, a.Attempt, "s", new(), null, T0));
        Assert.True(state.AllCompleted);

        var events = Do(state, new RedoJobsWithoutResults(new Dictionary<string, string> { ["2d/fold_0"] = "summary.json does not exist" }, T0));

        Assert.Equal(["2d/fold_0", "select", "predict/shard_0", "predict"], events.Cast<JobResultsGone>().Select(e => e.JobId));
        Assert.Contains("summary.json does not exist", state.Job("2d/fold_0").LastError);
        Assert.Equal(JobStatus.Completed, state.Job("2d/fold_1").Status);
        Assert.False(state.IsFinished);
        var redo = Assign(state, "w0")!;
        Assert.Equal("2d/fold_0", redo.JobId);
        Assert.Null(Assign(state, "w1"));                       // select waits for the fold again
        Do(state, new CompleteJob(redo.JobId, redo.Attempt, "s", new(), null, T0));
        Assert.Equal("select", Assign(state, "w0")!.JobId);
        // a job that is not completed (or unknown) is left alone
        Assert.Empty(state.Decide(new RedoJobsWithoutResults(new Dictionary<string, string> { ["select"] = "x", ["nope"] = "y" }, T0)));
    }

    [Fact]
    public void Completion_IsIdempotent_AndLateMessagesOfOldAttemptsAreIgnored()
    {
        var state = NewState(Def(["2d"], [0]));
        var first = Assign(state, "w0")!;
        Do(state, new WorkerLost("w0", "node removed", T0));
        var second = Assign(state, "w1")!;
        Assert.Equal(first.JobId, second.JobId);
        // the first attempt still talks: progress, failure, completion, requeue are all ignored
        Assert.Empty(state.Decide(new RecordProgress(first.JobId, first.Attempt, new EpochMetrics(3, 10, 0, 0, 0.5, 0.5, 1), T0)));
        Assert.Empty(state.Decide(new FailJob(first.JobId, first.Attempt, "late", T0)));
        Assert.Empty(state.Decide(new CompleteJob(first.JobId, first.Attempt, "s", new(), null, T0)));
        Assert.Empty(state.Decide(new RequeueJob(first.JobId, first.Attempt, "late", T0)));
        Complete(state, second);
        Assert.Empty(state.Decide(new CompleteJob(second.JobId, second.Attempt, "s", new(), null, T0)));
        Assert.Empty(state.Decide(new FailJob(second.JobId, second.Attempt, "after completion", T0)));
        Assert.Equal(JobStatus.Completed, state.Job(second.JobId).Status);
    }

    [Fact]
    public void Completion_WithoutOutputsOnStorage_IsAFailedAttempt_CountedWhenTheSameHappensOnAnotherWorker()
    {
        var state = NewState(Def(["2d"], [0]));
        var a = Assign(state, "w0")!;
        var e = Assert.IsType<JobFailed>(Assert.Single(Do(state, new CompleteJob(a.JobId, a.Attempt, "s", new(), "/r/fold_0/checkpoint_final.ckpt does not exist", T0.AddHours(1), 1))));
        Assert.Contains("checkpoint_final.ckpt", e.Reason);
        Assert.Equal((false, true, "w0"), (e.Final, e.Unconfirmed, e.WorkerId)); // maybe w0's writes never reach the storage
        Assert.Equal((JobStatus.Pending, 0), (state.Job(a.JobId).Status, state.Job(a.JobId).Failures));
        var b = Assign(state, "w1")!;
        Do(state, new CompleteJob(b.JobId, b.Attempt, "s", new(), "/r/fold_0/checkpoint_final.ckpt does not exist", T0.AddHours(2), 1));
        Assert.Equal((JobStatus.Pending, 2), (state.Job(a.JobId).Status, state.Job(a.JobId).Failures)); // the job's own: both count
    }

    [Fact]
    public void WorkerLost_RequeuesOnlyItsJob_ToContinueFromCheckpoint()
    {
        var state = NewState(Def(["2d"], [0, 1]));
        var a = Assign(state, "w0")!;
        var b = Assign(state, "w1")!;
        var e = Assert.IsType<JobRequeued>(Assert.Single(Do(state, new WorkerLost("w1", "node left", T0))));
        Assert.Equal(b.JobId, e.JobId);
        Assert.Equal(JobStatus.Running, state.Job(a.JobId).Status);
        Assert.True(state.Job(b.JobId).ResumeFromCheckpoint);
        Assert.Equal(0, state.Job(b.JobId).Failures);
        Assert.Empty(state.Decide(new WorkerLost("w1", "again", T0)));
    }

    [Fact]
    public void LeaseExpiry_RequeuesOnlyJobsWithoutRecentHeartbeat()
    {
        var state = NewState(Def(["2d"], [0, 1]));
        var a = Assign(state, "w0", T0)!;
        var b = Assign(state, "w1", T0)!;
        Do(state, new RecordProgress(b.JobId, b.Attempt, new EpochMetrics(1, 10, 0, 0, 0.1, 0.1, 50), T0.AddSeconds(50)));
        var lease = TimeSpan.FromSeconds(60);
        Assert.Empty(state.Decide(new ExpireLeases(lease, T0.AddSeconds(59))));
        var e = Assert.IsType<JobRequeued>(Assert.Single(Do(state, new ExpireLeases(lease, T0.AddSeconds(61)))));
        Assert.Equal(a.JobId, e.JobId);
        Assert.Contains("no heartbeat", e.Reason);
        Assert.Equal(JobStatus.Running, state.Job(b.JobId).Status);
    }

    [Fact]
    public void PauseStopsAssignments_ResumeRestartsThem()
    {
        var state = NewState(Def(["2d"], [0]));
        Assert.IsType<SweepPaused>(Assert.Single(Do(state, new PauseSweep(T0))));
        Assert.Empty(state.Decide(new PauseSweep(T0)));
        Assert.Null(Assign(state, "w0"));
        Assert.Equal(SweepStatus.Paused, SweepView.Build(state, [], [], T0).Status);
        Assert.IsType<SweepResumed>(Assert.Single(Do(state, new ResumeSweep(T0))));
        Assert.NotNull(Assign(state, "w0"));
    }

    [Fact]
    public void Recovery_RequeuesRunningJobs_ARegisteringWorkerMayAdoptOrComplete()
    {
        var state = NewState(Def(["2d"], [0, 1, 2]));
        var a = Assign(state, "w0")!;
        var b = Assign(state, "w1")!;
        var c = Assign(state, "w2")!;
        var events = Do(state, new RequeueAfterRecovery(T0));
        Assert.Equal(3, events.Count);
        Assert.All(events, e => Assert.True(((JobRequeued)e).Adoptable));
        // w0 still runs its attempt: it takes it back without a restart of the work
        Assert.IsType<JobAdopted>(Assert.Single(Do(state, new AdoptRunningJob("w0", "n", a.JobId, a.Attempt, T0))));
        Assert.Equal(JobStatus.Running, state.Job(a.JobId).Status);
        Assert.Equal(a.Attempt, state.Job(a.JobId).Attempt);
        // w1 finished while the coordinator was away: accepted (outputs exist)
        Assert.IsType<JobCompleted>(Assert.Single(Do(state, new CompleteJob(b.JobId, b.Attempt, "s", new(), null, T0))));
        // c went to another worker: w2's claim is stale now
        var c2 = Assign(state, "w3")!;
        Assert.Equal(c.JobId, c2.JobId);
        Assert.Empty(state.Decide(new AdoptRunningJob("w2", "n", c.JobId, c.Attempt, T0)));
        Assert.Empty(state.Decide(new CompleteJob(c.JobId, c.Attempt, "s", new(), null, T0)));
    }

    [Fact]
    public void Recovery_HoldsRequeuedJobsForTheAdoptionGrace_ThenHandsThemOut()
    {
        var state = NewState(Def(["2d"], [0, 1]));
        var a = Assign(state, "w0", T0)!;
        var events = Do(state, new RequeueAfterRecovery(T0.AddSeconds(5), TimeSpan.FromSeconds(10)));
        Assert.Equal(T0.AddSeconds(15), Assert.IsType<JobRequeued>(Assert.Single(events)).HeldUntil);
        Assert.Equal(T0.AddSeconds(15), state.EarliestHoldEnd());
        // during the grace another worker gets the other fold, not the held one
        Assert.Equal("2d/fold_1", Assign(state, "w1", T0.AddSeconds(6))!.JobId);
        Assert.Null(Assign(state, "w2", T0.AddSeconds(14)));
        // the old worker's completion arrives in time: accepted
        Complete(state, a);
        Assert.Null(state.EarliestHoldEnd());
        // a held job nobody claims goes out after the grace
        var state2 = NewState(Def(["2d"], [0]));
        Assign(state2, "w0", T0);
        Do(state2, new RequeueAfterRecovery(T0, TimeSpan.FromSeconds(10)));
        Assert.Null(Assign(state2, "w1", T0.AddSeconds(9)));
        var later = Assign(state2, "w1", T0.AddSeconds(10))!;
        Assert.Equal(2, later.Attempt);
        Assert.Empty(state2.Decide(new AdoptRunningJob("w0", "n", later.JobId, 1, T0.AddSeconds(11))));
    }

    [Fact]
    public void Estimates_ImproveFromMeasuredEpochTimes_AndChangeTheOrder()
    {
        var state = NewState(Def(["2d", "3d_fullres"], [0, 1]));
        Assert.Equal(144, state.EstimatedEpochSeconds("2d")); // 0.8 x 3d_fullres, as nnU-Net's expected epoch times
        var full0 = Assign(state, "w0")!;
        var full1 = Assign(state, "w1")!;
        var twoD0 = Assign(state, "w2")!;
        Assert.Equal(["3d_fullres/fold_0", "3d_fullres/fold_1", "2d/fold_0"], new[] { full0.JobId, full1.JobId, twoD0.JobId });
        // measured: 3d_fullres is fast (10 s/epoch), 2d very slow (1000 s/epoch)
        Do(state, new RecordProgress(full0.JobId, full0.Attempt, new EpochMetrics(1, 10, 0, 0, 0.1, 0.1, 10), T0));
        Do(state, new RecordProgress(twoD0.JobId, twoD0.Attempt, new EpochMetrics(1, 10, 0, 0, 0.1, 0.1, 1000), T0));
        Assert.Equal(10, state.EstimatedEpochSeconds("3d_fullres"));
        Assert.Equal(1000, state.EstimatedEpochSeconds("2d"));
        // an unmeasured configuration is scaled by the mean ratio measured/prior of the measured ones
        Assert.Equal(120 * (10.0 / 180 + 1000.0 / 144) / 2, state.EstimatedEpochSeconds("custom"), 6);
        // the cascade has 3d_fullres's network and patch: its epochs are estimated as 3d_fullres's until it runs
        Assert.Equal(10, state.EstimatedEpochSeconds("3d_cascade_fullres"));
        Do(state, new WorkerLost("w1", "x", T0)); // 3d_fullres/fold_1 back: 10 x 10 s
        Do(state, new WorkerLost("w2", "x", T0)); // 2d/fold_0 back: 9 x 1000 s
        var order = Enumerable.Range(3, 3).Select(i => Assign(state, $"w{i}")!.JobId).ToArray();
        Assert.Equal(["2d/fold_1", "2d/fold_0", "3d_fullres/fold_1"], order);
    }

    [Fact]
    public void Replay_AndSnapshot_RebuildTheSameState()
    {
        var state = NewState(Def(["2d", "3d_lowres", "3d_cascade_fullres"], [0, 1]));
        var log = new List<ISweepEvent>();
        log.AddRange(state.Decide(new DefineSweep(state.Definition!, T0)));
        var replayed = new SweepState();
        replayed.Apply(new SweepDefined(state.Definition!, T0));
        void Step(SweepCommand c)
        {
            foreach (var e in Do(state, c)) { log.Add(e); replayed.Apply(e); }
        }
        Step(new AssignWork("w0", "n", T0));
        Step(new AssignWork("w1", "n", T0));
        var running = state.RunningJobs.ToList();
        Step(new RecordProgress(running[0].JobId, running[0].Attempt, new EpochMetrics(2, 10, 0.1, 0.2, 0.5, 0.4, 3), T0));
        Step(new CompleteJob(running[0].JobId, running[0].Attempt, "s", new() { ["d"] = 1 }, null, T0));
        Step(new FailJob(running[1].JobId, running[1].Attempt, "x", T0));
        Step(new AssignWork("w0", "n", T0));
        Step(new PauseSweep(T0));
        var fromSnapshot = SweepState.FromSnapshot(state.ToSnapshot());
        foreach (var s in new[] { replayed, fromSnapshot })
        {
            Assert.Equal(Describe(state), Describe(s));
            Assert.Equal(state.Paused, s.Paused);
            Assert.Equal(state.EstimatedEpochSeconds("2d"), s.EstimatedEpochSeconds("2d"));
            Do(s, new ResumeSweep(T0));
            Assert.Single(state.Decide(new ResumeSweep(T0)));
        }
        Do(state, new ResumeSweep(T0));
        Assert.Equal(state.NextJob()?.JobId, fromSnapshot.NextJob()?.JobId);
        Assert.Equal(state.NextJob()?.JobId, replayed.NextJob()?.JobId);
    }

    [Fact]
    public void PredictStage_IsSplitIntoShards_ThatRunSideBySide_ThenOneMergeJob()
    {
        var def = SweepDefinition.Create("Dataset004_Hippocampus", "nnUNetPlans", "nnUNetTrainer", ["2d"], [0], 10, predictTest: true, predictShards: 3);
        Assert.Equal(def.SweepId, Def(["2d"], [0], predict: true).SweepId); // the split is not part of the id
        var state = NewState(def);
        Assert.Equal(["2d/fold_0", "select", "predict/shard_0", "predict/shard_1", "predict/shard_2", "predict"], state.JobOrder);
        Complete(state, Assign(state, "w0")!);
        Complete(state, Assign(state, "w0")!);
        // three idle workers get the three shards at once; a fourth gets nothing (the merge waits for all of them)
        var shards = new[] { Assign(state, "w0")!, Assign(state, "w1")!, Assign(state, "w2")! };
        Assert.Equal(["predict/shard_0", "predict/shard_1", "predict/shard_2"], shards.Select(a => a.JobId).Order());
        Assert.Null(Assign(state, "w3"));
        var spec = state.BuildSpec("predict/shard_2", "/results");
        Assert.Equal((JobKind.PredictShard, 2, 3), (spec.Kind, spec.Fold, spec.PredictShards));
        Assert.Equal(Path.Combine("/results", "Dataset004_Hippocampus", "predictions_imagesTs", ".nnunet-prediction", "shard_2_of_3.json"),
            NnUnet.Cluster.Backends.JobOutputs.OutputPath(spec));
        foreach (var a in shards) Complete(state, a);
        var merge = Assign(state, "w3")!;
        Assert.Equal("predict", merge.JobId);
        Assert.EndsWith("prediction_manifest.json", NnUnet.Cluster.Backends.JobOutputs.CompletionMarker(state.BuildSpec("predict", "/results")));
        Complete(state, merge);
        Assert.True(state.AllCompleted);
    }

    [Fact]
    public void JournalOfBeforeShards_WithItsOnePredictJob_StillReplays_AndThatJobPredictsEverything()
    {
        // a definition as journals before shards hold it: PredictShards absent = 0
        var old = Def(["2d"], [0], predict: true) with { PredictShards = 0 };
        var state = new SweepState();
        state.Apply(new SweepDefined(old, T0));
        state.Apply(new JobAssigned("2d/fold_0", 1, "w0", "n", false, T0));
        state.Apply(new JobCompleted("2d/fold_0", 1, "s", new(), T0));
        state.Apply(new JobAssigned("select", 1, "w0", "n", false, T0));
        state.Apply(new JobCompleted("select", 1, "s", new(), T0));
        state.Apply(new JobAssigned("predict", 1, "w0", "n", false, T0));
        Assert.Equal(["2d/fold_0", "select", "predict"], state.JobOrder);
        Assert.Equal(["select"], state.Job("predict").DependsOn);
        var spec = state.BuildSpec("predict", "/results");
        Assert.Equal((JobKind.Predict, 0), (spec.Kind, spec.PredictShards));  // a merge job without shards: it predicts every case
        Assert.Equal(Path.Combine("/results", "Dataset004_Hippocampus", "predictions_imagesTs"), NnUnet.Cluster.Backends.JobOutputs.OutputPath(spec));
        // the same sweep started again by today's CLI (which would split into shards) keeps the journal's grid
        Assert.Empty(state.Decide(new DefineSweep(Def(["2d"], [0], predict: true), T0)));
        Complete(state, new JobAssigned("predict", 1, "w0", "n", false, T0));
        Assert.True(state.AllCompleted);
        // and a snapshot of it reads back the same
        var again = SweepState.FromSnapshot(state.ToSnapshot());
        Assert.Equal(state.JobOrder, again.JobOrder);
    }

    private static PredictionRequest Request(int shards = 2, string output = "/data/out") =>
        new("/data/in", output, "/models/m", null, null, false, [0], "nnUNetTrainer", "nnUNetPlans", "checkpoint_final", false, false, null, false, shards);

    [Fact]
    public void PredictionSubmission_AddsItsShardsAndMerge_SentAgainRetriesWhatWasCancelled_AndSurvivesSnapshots()
    {
        var state = NewState(Def(["2d"], [0]));
        Complete(state, Assign(state, "w0")!);
        Complete(state, Assign(state, "w0")!);
        Assert.True(state.AllCompleted);
        var request = Request();
        Assert.Equal(request.SubmissionId, Request(shards: 5).SubmissionId);   // the split is not part of the id
        Assert.NotEqual(request.SubmissionId, Request(output: "/data/other").SubmissionId);

        var submitted = Assert.Single(Do(state, new SubmitPredictionJobs(request, T0)));
        Assert.IsType<PredictionSubmitted>(submitted);
        string id = request.SubmissionId;
        Assert.Equal([$"{id}/shard_0", $"{id}/shard_1", $"{id}/merge"], state.SubmissionJobIds(id));
        Assert.Equal(SweepStatus.Running, state.Status);
        var s0 = Assign(state, "w0")!;
        var s1 = Assign(state, "w1")!;
        Assert.Equal([$"{id}/shard_0", $"{id}/shard_1"], new[] { s0.JobId, s1.JobId }.Order());
        var spec = state.BuildSpec(s1.JobId, "/results");
        Assert.Equal(request, spec.Prediction);
        Assert.Equal(2, spec.PredictShards);
        Assert.Equal(Path.Combine("/data/out", ".nnunet-prediction", $"shard_{spec.Fold}_of_2.json"), NnUnet.Cluster.Backends.JobOutputs.OutputPath(spec));
        // the same submission again (a re-run of the command) while it runs: nothing new, even with another split
        Assert.Empty(Do(state, new SubmitPredictionJobs(Request(shards: 7), T0)));
        Complete(state, s0);
        // Ctrl-C of the client: its jobs are cancelled; the re-run retries exactly those
        Do(state, new CancelJob(s1.JobId, "cancelled by operator", T0));
        Do(state, new CancelJob($"{id}/merge", "cancelled by operator", T0));
        var retried = Do(state, new SubmitPredictionJobs(request, T0));
        Assert.Equal([s1.JobId, $"{id}/merge"], retried.Cast<JobRetried>().Select(r => r.JobId));
        var snapshot = SweepState.FromSnapshot(state.ToSnapshot());
        Assert.Equal(state.JobOrder, snapshot.JobOrder);
        Assert.Equal(request, snapshot.BuildSpec(s1.JobId, "/results").Prediction);
        var again = Assign(snapshot, "w0")!;
        Assert.Equal(s1.JobId, again.JobId);
        Complete(snapshot, again);
        Complete(snapshot, Assign(snapshot, "w0")!);
        Assert.True(snapshot.AllCompleted);
    }

    private static string Describe(SweepState s) =>
        string.Join("\n", s.Jobs.Select(j => $"{j.JobId} {j.Status} a{j.Attempt} f{j.Failures} e{j.Epoch} w{j.WorkerId} r{j.ResumeFromCheckpoint} {j.LastError}"));

    [Fact]
    public void RandomOperations_NeverBreakTheInvariants()
    {
        // property-style: random interleavings of every command keep: one running job per worker, completed jobs
        // never run again, dependencies completed before a job runs, attempts only grow
        var rng = new Random(42);
        for (int round = 0; round < 40; round++)
        {
            var state = NewState(Def(folds: [0, 1, 2], epochs: 5, predict: true, maxAttempts: 2));
            var lastAttempt = new Dictionary<string, int>();
            for (int step = 0; step < 300 && !state.IsFinished; step++)
            {
                var running = state.RunningJobs.ToList();
                var pick = running.Count > 0 ? running[rng.Next(running.Count)] : null;
                int attemptNoise = rng.Next(4) == 0 ? -1 : 0;
                SweepCommand c = rng.Next(9) switch
                {
                    0 or 1 or 2 => new AssignWork($"w{rng.Next(6)}", "n", T0.AddSeconds(step)),
                    3 or 4 when pick is not null => new CompleteJob(pick.JobId, pick.Attempt + attemptNoise, "s", new(), rng.Next(5) == 0 ? "missing" : null, T0),
                    5 when pick is not null => new FailJob(pick.JobId, pick.Attempt + attemptNoise, "x", T0),
                    6 => new WorkerLost($"w{rng.Next(6)}", "x", T0),
                    7 when pick is not null => new RecordProgress(pick.JobId, pick.Attempt, new EpochMetrics(1, 5, 0, 0, 0.1, 0.1, 1), T0.AddSeconds(step)),
                    8 => new RequeueAfterRecovery(T0),
                    _ => new ExpireLeases(TimeSpan.FromSeconds(30), T0.AddSeconds(step)),
                };
                var before = state.Jobs.ToDictionary(j => j.JobId);
                Do(state, c);
                var workers = state.RunningJobs.Select(j => j.WorkerId).ToList();
                Assert.Equal(workers.Count, workers.Distinct().Count());
                foreach (var j in state.Jobs)
                {
                    if (before[j.JobId].Status == JobStatus.Completed) Assert.Equal(JobStatus.Completed, j.Status);
                    if (j.Status == JobStatus.Running)
                        Assert.All(j.DependsOn, d => Assert.Equal(JobStatus.Completed, state.Job(d).Status));
                    Assert.True(j.Attempt >= lastAttempt.GetValueOrDefault(j.JobId));
                    lastAttempt[j.JobId] = j.Attempt;
                    Assert.True(j.Failures <= 2);
                }
            }
        }
    }
}
