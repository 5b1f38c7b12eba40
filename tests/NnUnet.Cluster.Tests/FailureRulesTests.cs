using NnUnet.Cluster.Sweeps;

namespace NnUnet.Cluster.Tests;

/// <summary>The failure rules of issue 12, without actors: bounded re-queues (and, as they come, liveness, stalls, quarantine).</summary>
public class FailureRulesTests
{
    private static readonly DateTime T0 = new(2026, 1, 1, 0, 0, 0, DateTimeKind.Utc);

    private static SweepState NewState(FailureLimits? limits = null, string[]? configs = null, int[]? folds = null)
    {
        var state = new SweepState(limits);
        Do(state, new DefineSweep(SweepDefinition.Create("Dataset004_Hippocampus", "nnUNetPlans", "nnUNetTrainer",
            configs ?? ["2d"], folds ?? [0], 10), T0));
        return state;
    }

    private static IReadOnlyList<ISweepEvent> Do(SweepState state, SweepCommand command)
    {
        var events = state.Decide(command);
        foreach (var e in events) state.Apply(e);
        return events;
    }

    private static JobAssigned Assign(SweepState state, string worker, DateTime at) =>
        Do(state, new AssignWork(worker, "node", at)).OfType<JobAssigned>().Single();

    /// <summary>Loses the current attempt of the one training job in one of the three ways that count, in turn.</summary>
    private static IReadOnlyList<ISweepEvent> Lose(SweepState state, int i, DateTime at)
    {
        var worker = $"w{i}";
        Assign(state, worker, at);
        return (i % 3) switch
        {
            0 => Do(state, new WorkerLost(worker, $"{worker}: node left the cluster", at.AddSeconds(1))),
            1 => Do(state, new ExpireLeases(TimeSpan.FromMinutes(30), at.AddMinutes(31))),
            _ => RestartedWorkerAsksAgain(state, worker, at.AddSeconds(1)),
        };
    }

    /// <summary>A restarted worker asks for work while the coordinator thinks it holds the job (paused, so that it does not get the job back at once).</summary>
    private static IReadOnlyList<ISweepEvent> RestartedWorkerAsksAgain(SweepState state, string worker, DateTime at)
    {
        Do(state, new PauseSweep(at));
        var events = Do(state, new AssignWork(worker, "node", at));
        Do(state, new ResumeSweep(at));
        return events;
    }

    [Fact]
    public void AJobLost11Times_FailsWithItsReason()
    {
        var state = NewState();
        var at = T0;
        for (int i = 0; i < FailureLimits.DefaultMaxRequeues; i++, at = at.AddHours(1))
        {
            var requeued = Assert.IsType<JobRequeued>(Assert.Single(Lose(state, i, at)));
            Assert.True(requeued.Counted);
            Assert.Equal((JobStatus.Pending, i + 1), (state.Job("2d/fold_0").Status, state.Job("2d/fold_0").Requeues));
        }
        var failed = Assert.IsType<JobFailed>(Assert.Single(Lose(state, 10, at)));
        Assert.True(failed.Final);
        Assert.StartsWith("lost its worker 11 times (max-requeues 10): no heartbeat from w10 for 1860 s", failed.Reason);
        var job = state.Job("2d/fold_0");
        Assert.Equal(JobStatus.Failed, job.Status);
        Assert.Equal(failed.Reason, job.LastError);
        Assert.Equal(0, job.Failures - 1); // the job never failed on its own; only the loss limit ended it
        Assert.Equal(SweepStatus.FinishedWithFailures, state.Status);
        Assert.Contains("lost its worker 11 times", SweepView.Describe(failed).Text);
    }

    [Fact]
    public void ConfiguredLimit_Applies_OperatorRetryResetsTheCount_AndReplayAndSnapshotKeepIt()
    {
        var limits = new FailureLimits(MaxRequeues: 2);
        var state = NewState(limits);
        var at = T0;
        for (int i = 0; i < 2; i++, at = at.AddHours(1)) Lose(state, i, at);
        Assert.Equal(2, state.Job("2d/fold_0").Requeues);
        Assert.IsType<JobFailed>(Lose(state, 2, at).Single());
        Assert.Single(Do(state, new RetryJob("2d/fold_0", at)));
        Assert.Equal((JobStatus.Pending, 0), (state.Job("2d/fold_0").Status, state.Job("2d/fold_0").Requeues));
        Assert.IsType<JobRequeued>(Lose(state, 3, at.AddHours(1)).Single());
        Assert.Equal(1, state.Job("2d/fold_0").Requeues);

        // the count is part of the ledger: a snapshot keeps it, and the limit applies after it
        var restored = SweepState.FromSnapshot(state.ToSnapshot(), limits);
        Assert.Equal(1, restored.Job("2d/fold_0").Requeues);
        Assert.IsType<JobRequeued>(Lose(restored, 4, at.AddHours(2)).Single());
        Assert.IsType<JobFailed>(Lose(restored, 5, at.AddHours(3)).Single());
    }

    [Fact]
    public void RejectionsAndCoordinatorRestarts_AreNotCounted()
    {
        var state = NewState(new FailureLimits(MaxRequeues: 1));
        for (int i = 0; i < 5; i++)
        {
            var a = Assign(state, "busy", T0.AddMinutes(i));
            Assert.False(Assert.IsType<JobRequeued>(Do(state, new RequeueJob(a.JobId, a.Attempt, "busy", T0.AddMinutes(i))).Single()).Counted);
            Assign(state, "w", T0.AddMinutes(i));
            Assert.False(Assert.IsType<JobRequeued>(Do(state, new RequeueAfterRecovery(T0.AddMinutes(i))).Single()).Counted);
        }
        Assert.Equal((JobStatus.Pending, 0), (state.Job("2d/fold_0").Status, state.Job("2d/fold_0").Requeues));
    }

    private static readonly TimeSpan Lease = TimeSpan.FromSeconds(6), Stall = TimeSpan.FromMinutes(30), Transit = TimeSpan.FromSeconds(2);

    private static IReadOnlyList<ISweepEvent> Alive(SweepState state, string worker, JobAssigned? a, long progress, DateTime at, JobPhase phase = JobPhase.Validating) =>
        Do(state, new RecordLiveness(worker, a?.JobId, a?.Attempt ?? 0, phase, progress, (int)progress, 100, Transit, at));

    [Fact]
    public void LongValidation_UnderAShortLease_StaysOnItsAttempt_WhileLivenessAndProgressCome()
    {
        var state = NewState();
        var a = Assign(state, "w0", T0);
        // 12 s of validation under a 6 s lease: a liveness report every 2 s, a case about every second
        for (int s = 2; s <= 12; s += 2)
        {
            var alive = Assert.IsType<JobAlive>(Assert.Single(Alive(state, "w0", a, s, T0.AddSeconds(s))));
            Assert.Equal((JobPhase?)JobPhase.Validating, alive.Phase);
            Assert.Empty(Do(state, new ExpireLeases(Lease, T0.AddSeconds(s + 1), Stall)));
        }
        var job = state.Job(a.JobId);
        Assert.Equal((JobStatus.Running, 1, JobPhase.Validating, 12), (job.Status, job.Attempt, job.Phase!.Value, job.PhaseDone));
        // the operator view shows the phase and the progress within it
        var view = SweepView.View(state, job);
        Assert.Equal(((JobPhase?)JobPhase.Validating, 12, 100), (view.Phase, view.PhaseDone, view.PhaseTotal));
        Assert.Equal(T0.AddSeconds(12), job.LastProgressAt);
        // liveness stops: the lease expires 6 s after the last report
        Assert.Empty(Do(state, new ExpireLeases(Lease, T0.AddSeconds(18), Stall)));
        var lost = Assert.IsType<JobRequeued>(Assert.Single(Do(state, new ExpireLeases(Lease, T0.AddSeconds(19), Stall))));
        Assert.Contains("no heartbeat from w0 for 7 s (lease 6 s)", lost.Reason);
    }

    [Fact]
    public void AliveButNoProgress_ForTheStallTimeout_IsAHungJob_RequeuedCountedAndSaidSo()
    {
        var state = NewState();
        var a = Assign(state, "w0", T0);
        Alive(state, "w0", a, 5, T0.AddMinutes(1));
        // alive every 10 s, the counter stands at 5: hung after 30 min without progress, not before
        for (var t = T0.AddMinutes(1); t <= T0.AddMinutes(31); t = t.AddSeconds(10))
        {
            Alive(state, "w0", a, 5, t);
            Assert.Empty(Do(state, new ExpireLeases(Lease, t, Stall)));
        }
        Alive(state, "w0", a, 5, T0.AddMinutes(31).AddSeconds(5));
        var hung = Assert.IsType<JobRequeued>(Assert.Single(Do(state, new ExpireLeases(Lease, T0.AddMinutes(31).AddSeconds(10), Stall))));
        Assert.True(hung.Counted);
        Assert.Equal("hung: no progress in validating on w0 for 1810 s (stall-timeout 1800 s); cancelled", hung.Reason);
        Assert.Contains("hung", SweepView.Describe(hung).Text);
        Assert.Equal((JobStatus.Pending, 1), (state.Job(a.JobId).Status, state.Job(a.JobId).Requeues));
        // another worker takes it; its counter starts from nothing, with its own stall clock
        var b = Assign(state, "w1", T0.AddMinutes(32));
        Assert.Equal(2, b.Attempt);
        Assert.Equal((0L, (JobPhase?)null), (state.Job(a.JobId).Progress, state.Job(a.JobId).Phase));
        Assert.Empty(Do(state, new ExpireLeases(Lease, T0.AddMinutes(32).AddSeconds(5), Stall)));
    }

    [Fact]
    public void EpochsCountAsLivenessAndProgress_ForWorkersThatSendNoLivenessReport()
    {
        var state = NewState();
        var a = Assign(state, "w0", T0);
        Do(state, new RecordProgress(a.JobId, a.Attempt, new EpochMetrics(1, 10, 0.5, 0.5, 0.5, 0.5, 100), T0.AddMinutes(29)));
        Assert.Empty(Do(state, new ExpireLeases(TimeSpan.FromMinutes(30), T0.AddMinutes(58), Stall)));
        Assert.Single(Do(state, new ExpireLeases(TimeSpan.FromMinutes(30), T0.AddMinutes(60), Stall)));
    }

    [Fact]
    public void LostStartJob_TheLivenessReportSaysNoJob_RequeuedAtOnce_ButNotWhileTheStartJobMayBeInTransit()
    {
        var state = NewState();
        var a = Assign(state, "w0", T0);
        // a report sent before the StartJob arrived may cross it: not a loss yet
        Assert.Empty(Alive(state, "w0", null, 0, T0.AddSeconds(1)));
        Assert.Equal(JobStatus.Running, state.Job(a.JobId).Status);
        var lost = Assert.IsType<JobRequeued>(Assert.Single(Alive(state, "w0", null, 0, T0.AddSeconds(10))));
        Assert.True(lost.Counted);
        Assert.Equal("w0 does not run attempt 1 (it reports no job): its StartJob was lost", lost.Reason);
        Assert.Equal(JobStatus.Pending, state.Job(a.JobId).Status);
        // the same worker (idle) or another gets it again at once
        Assert.Equal(2, Assign(state, "w0", T0.AddSeconds(10)).Attempt);
        // a report of a stale attempt is no sign of life of the current one
        Assert.Empty(Do(state, new ExpireLeases(Lease, T0.AddSeconds(12), Stall)));
        Assert.IsType<JobRequeued>(Assert.Single(Do(state, new RecordLiveness("w0", a.JobId, 1, JobPhase.Training, 9, 1, 1, Transit, T0.AddSeconds(20)))));
    }
}
