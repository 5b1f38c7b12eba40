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
}
