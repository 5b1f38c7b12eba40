using System.Text.Json;
using NnUnet.Cluster.Sweeps;

namespace NnUnet.Cluster.Tests;

/// <summary>
/// Bad workers are quarantined, attempts are not burned (issue 12 point 3), without actors: a failure counts against the
/// job only when it is the job's own (the same error on two workers), a worker failing repeatedly or at once is
/// quarantined with a doubling back-off, a retry goes to another worker, and a broken job still fails in bounded time.
/// </summary>
public class QuarantineRulesTests
{
    private static readonly DateTime T0 = new(2026, 1, 1, 0, 0, 0, DateTimeKind.Utc);

    private static SweepState NewState(int folds = 2, int maxAttempts = 3, FailureLimits? limits = null)
    {
        var state = new SweepState(limits);
        Do(state, new DefineSweep(SweepDefinition.Create("Dataset004_Hippocampus", "nnUNetPlans", "nnUNetTrainer",
            ["2d"], Enumerable.Range(0, folds).ToArray(), 10, maxAttempts: maxAttempts), T0));
        return state;
    }

    private static IReadOnlyList<ISweepEvent> Do(SweepState state, SweepCommand command)
    {
        var events = state.Decide(command);
        foreach (var e in events) state.Apply(e);
        return events;
    }

    private static JobAssigned? Assign(SweepState state, string worker, DateTime at, int otherIdle = 0) =>
        Do(state, new AssignWork(worker, "node", at, 0, otherIdle)).OfType<JobAssigned>().SingleOrDefault();

    private static IReadOnlyList<ISweepEvent> Fail(SweepState state, JobAssigned a, string error, DateTime at, int otherActive) =>
        Do(state, new FailJob(a.JobId, a.Attempt, $"{a.WorkerId}: {error}", at, otherActive));

    private static void Complete(SweepState state, JobAssigned a, DateTime at) =>
        Do(state, new CompleteJob(a.JobId, a.Attempt, "s", new() { ["d"] = 1 }, null, at));

    private static string Denied(string jobId) => $"Access to the path '/results/Dataset004_Hippocampus/nnUNetTrainer__nnUNetPlans__2d/{jobId.Split('/')[1]}' is denied.";

    [Fact]
    public void BrokenWorker_FailsAtOnce_IsQuarantined_TheJobKeepsItsAttempts_AndRunsOnTheHealthyWorker()
    {
        var state = NewState();
        var a = Assign(state, "broken", T0)!;
        var events = Fail(state, a, Denied(a.JobId), T0.AddMilliseconds(40), otherActive: 1);
        var failed = Assert.IsType<JobFailed>(events[0]);
        Assert.True(failed.Unconfirmed);
        Assert.False(failed.Final);
        var quarantined = Assert.IsType<WorkerQuarantined>(events[1]);
        Assert.Equal(("broken", 1, T0.AddMilliseconds(40).AddMinutes(5), false), (quarantined.WorkerId, quarantined.Level, quarantined.Until, quarantined.EveryWorker));
        Assert.Equal($"worker broken quarantined for 5 min after a failure 0 s after the start of {a.JobId} (fast-failure 30 s): {Denied(a.JobId)}", quarantined.Reason);
        Assert.Contains("not counted", SweepView.Describe(failed).Text);

        var job = state.Job(a.JobId);
        Assert.Equal((JobStatus.Pending, 0, 1), (job.Status, job.Failures, job.UnconfirmedFailures!.Length));
        // quarantined: it gets nothing, though a job is ready; the healthy worker gets the failed job (critical path first)
        Assert.Null(Assign(state, "broken", T0.AddSeconds(1)));
        var retry = Assign(state, "healthy", T0.AddSeconds(1))!;
        Assert.Equal((a.JobId, 2), (retry.JobId, retry.Attempt));
        Complete(state, retry, T0.AddSeconds(30));
        Assert.Equal((0, null), (state.Job(a.JobId).Failures, state.Job(a.JobId).UnconfirmedFailures));

        var view = SweepView.Build(state, [new WorkerView("broken", "n", "cpu", null, null), new WorkerView("healthy", "n", "cpu", null, null)], [], T0.AddSeconds(30));
        var broken = view.Workers.Single(w => w.WorkerId == "broken");
        Assert.True(broken.Quarantined);
        Assert.Equal(quarantined.Until, broken.QuarantinedUntil);
        Assert.Equal($"{a.JobId} attempt 1: {Denied(a.JobId)}", broken.LastFailure);
        Assert.False(view.Workers.Single(w => w.WorkerId == "healthy").Quarantined);
        Assert.Null(view.Waiting);
    }

    [Fact]
    public void ThreeFailuresInARow_AcrossJobs_Quarantine_BackoffDoubles_ReleaseIsProbation_ASuccessClearsIt()
    {
        var state = NewState(folds: 5, maxAttempts: 3);
        var at = T0;
        // slow failures (not within the fast-failure window), a different job and error each time
        for (int i = 1; i <= 3; i++, at = at.AddMinutes(10))
        {
            var a = Assign(state, "w", at)!;
            var events = Fail(state, a, $"segfault in job {i}", at.AddMinutes(5), otherActive: 1);
            Assert.Equal(i == 3 ? 2 : 1, events.Count);
            if (i < 3) Assert.Equal(i, state.Ledger.Worker("w")!.FailuresInARow);
        }
        var q1 = state.Ledger.Worker("w")!;
        Assert.Equal((true, 3), (q1.Quarantined, q1.FailuresInARow));
        Assert.Equal("worker w quarantined for 5 min after 3 failures in a row: segfault in job 3", q1.QuarantineReason);
        Assert.Equal(3, state.Jobs.Count(j => j.UnconfirmedFailures is { Length: 1 } && j.Failures == 0)); // no job lost an attempt

        // the back-off ends: released with an event, on probation; one more failure quarantines it for twice as long
        Assert.Empty(Do(state, new EndQuarantines(q1.QuarantinedUntil!.Value.AddSeconds(-1))));
        var back = Assert.IsType<WorkerReleased>(Assert.Single(Do(state, new EndQuarantines(q1.QuarantinedUntil!.Value))));
        Assert.Equal(WorkerReleaseKind.BackoffOver, back.Kind);
        Assert.Equal((0, true), (state.Ledger.Worker("w")!.FailuresInARow, state.Ledger.Worker("w")!.Probation));
        Assert.Equal("worker w back from quarantine (5 min over); on probation: its next failure quarantines it for 10 min", back.Reason);
        at = q1.QuarantinedUntil!.Value;
        var b = Assign(state, "w", at)!;
        var q2 = Assert.IsType<WorkerQuarantined>(Fail(state, b, "segfault again", at.AddMinutes(5), otherActive: 1)[1]);
        Assert.Equal((2, at.AddMinutes(15)), (q2.Level, q2.Until));
        Assert.Contains("after a failure after its release from quarantine", q2.Reason);

        // the operator releases it; it succeeds: its record is clear (the next quarantine would be the first again)
        Assert.Throws<InvalidOperationException>(() => state.Decide(new ReleaseWorker("other", at)));
        var released = Assert.IsType<WorkerReleased>(Assert.Single(Do(state, new ReleaseWorker("w", at.AddMinutes(6)))));
        Assert.Equal("worker w released by operator; on probation: its next failure quarantines it for 20 min", released.Reason);
        Assert.Equal("released", SweepView.Describe(released).Kind);
        Complete(state, Assign(state, "w", at.AddMinutes(6))!, at.AddMinutes(20));
        var healthy = state.Ledger.Worker("w")!;
        Assert.Equal((false, 0, 0, false), (healthy.Quarantined, healthy.FailuresInARow, healthy.Quarantines, healthy.Probation));
        Assert.Contains("segfault again", healthy.LastFailure); // the last failure stays visible
    }

    [Fact]
    public void BackoffDoublesUpToTheMaximum()
    {
        var limits = new FailureLimits { QuarantineBackoff = TimeSpan.FromMinutes(5), QuarantineMaxBackoff = TimeSpan.FromMinutes(30) };
        Assert.Equal([5, 10, 20, 30, 30], Enumerable.Range(1, 5).Select(level => limits.QuarantineFor(level).TotalMinutes));
        Assert.Equal("5 min", SweepState.Text(TimeSpan.FromMinutes(5)));
        Assert.Equal("1 h", SweepState.Text(TimeSpan.FromHours(1)));
    }

    [Fact]
    public void SameErrorOnTwoWorkers_IsTheJobsOwn_BothCount_TheWorkerQuarantinedForIt_IsReleased_TheJobFailsAfterMaxAttempts()
    {
        var state = NewState(folds: 1, maxAttempts: 3);
        const string missing = "FileNotFoundException: preprocessed case missing_002.npy does not exist";
        var a = Assign(state, "a", T0)!;
        Assert.IsType<WorkerQuarantined>(Fail(state, a, missing, T0.AddSeconds(2), otherActive: 1)[1]); // fast: the worker is suspected first
        // the retry goes to the other worker and fails the same way: the job's own failure; both count, the suspect is cleared
        var b = Assign(state, "b", T0.AddSeconds(3))!;
        var events = Fail(state, b, missing, T0.AddSeconds(5), otherActive: 0);
        var failed = Assert.IsType<JobFailed>(events[0]);
        Assert.Equal((false, 1, false), (failed.Unconfirmed, failed.Confirms, failed.Final));
        var cleared = Assert.IsType<WorkerReleased>(events[1]);
        Assert.Equal((WorkerReleaseKind.FailureWasTheJobs, "a"), (cleared.Kind, cleared.WorkerId));
        Assert.Equal(2, events.Count); // b is not blamed for the job's failure
        Assert.Contains("the job's own", SweepView.Describe(failed).Text);
        Assert.Equal((2, null), (state.Job(a.JobId).Failures, state.Job(a.JobId).UnconfirmedFailures));
        Assert.False(state.IsQuarantined("a"));
        Assert.Equal((0, 0, false), (state.Ledger.Worker("a")!.Quarantines, state.Ledger.Worker("a")!.FailuresInARow, state.Ledger.Worker("a")!.Probation));
        Assert.Equal(0, state.Ledger.Worker("b")!.FailuresInARow);
        // third attempt: on a (b failed it last and a is idle), the same error: failed for good after 3 attempts
        Assert.Null(Assign(state, "b", T0.AddSeconds(6), otherIdle: 1));
        var c = Assign(state, "a", T0.AddSeconds(6))!;
        Assert.Equal(3, c.Attempt);
        var last = Assert.IsType<JobFailed>(Assert.Single(Fail(state, c, missing, T0.AddSeconds(8), otherActive: 1)));
        Assert.True(last.Final);
        Assert.Equal((JobStatus.Failed, 3), (state.Job(a.JobId).Status, state.Job(a.JobId).Failures));
        Assert.Equal($"a: {missing}", state.Job(a.JobId).LastError);
    }

    [Fact]
    public void TheOnlyWorker_SameErrorTwice_IsTheJobsOwn_AndAFastFailureAloneDoesNotQuarantineIt()
    {
        // one worker, max-attempts 2, a broken fold and a healthy one (as MissingPreprocessedFileTests with the real trainer)
        var state = NewState(folds: 2, maxAttempts: 2);
        var a = Assign(state, "w", T0)!;
        Assert.Single(Fail(state, a, "missing_002.npy does not exist", T0.AddSeconds(1), otherActive: 0)); // no quarantine: nobody else could take it
        // it gets the other fold first (the failed one waits for another worker or until nothing else is ready)
        var other = Assign(state, "w", T0.AddSeconds(2))!;
        Assert.NotEqual(a.JobId, other.JobId);
        Complete(state, other, T0.AddSeconds(20));
        var again = Assign(state, "w", T0.AddSeconds(21))!;
        Assert.Equal((a.JobId, 2), (again.JobId, again.Attempt));
        var failed = Assert.IsType<JobFailed>(Assert.Single(Fail(state, again, "missing_002.npy does not exist", T0.AddSeconds(22), otherActive: 0)));
        Assert.Equal((false, 1, true), (failed.Unconfirmed, failed.Confirms, failed.Final));
        Assert.Equal((JobStatus.Failed, 2), (state.Job(a.JobId).Status, state.Job(a.JobId).Failures));
        Assert.False(state.IsQuarantined("w"));
    }

    [Fact]
    public void AJobFailingDifferentlyEverywhere_FailsAfterTwiceMaxAttempts()
    {
        var state = NewState(folds: 1, maxAttempts: 2);
        var at = T0;
        // "NaN loss" on w1 and w3 is the job's own: both count, max-attempts 2 is reached at the third attempt
        for (int i = 1; i <= 3; i++, at = at.AddHours(1))
        {
            var a = Assign(state, $"w{i}", at)!;
            var failed = Assert.IsType<JobFailed>(Fail(state, a, i % 2 == 0 ? "CUDA error: an illegal memory access" : "NaN loss", at.AddMinutes(10), otherActive: 3)[0]);
            Assert.Equal((i == 3, i != 3), (failed.Final, failed.Unconfirmed));
        }
        var job = state.Job("2d/fold_0");
        Assert.Equal(JobStatus.Failed, job.Status);

        var differently = NewState(folds: 1, maxAttempts: 2);
        for (int i = 1; i <= 4; i++)
        {
            var a = Assign(differently, $"w{i}", T0.AddHours(i))!;
            var failed = Assert.IsType<JobFailed>(Fail(differently, a, $"error kind {(char)('a' + i)}", T0.AddHours(i).AddMinutes(10), otherActive: 3)[0]);
            Assert.Equal((i == 4, true), (failed.Final, failed.Unconfirmed));
            if (i == 4) Assert.Contains("failed 4 times, never with the same error on two workers: given up after 2 x max-attempts", failed.Reason);
        }
        Assert.Equal(JobStatus.Failed, differently.Job("2d/fold_0").Status);
    }

    [Fact]
    public void ARetry_GoesToAnotherIdleWorker_TheWorkerThatFailedItGetsAnotherJob_OrNothing_OrItWhenNobodyElseIsIdle()
    {
        var state = NewState(folds: 2);
        var a = Assign(state, "w0", T0)!;
        Fail(state, a, "boom", T0.AddMinutes(5), otherActive: 1);
        // another job is ready: w0 gets that one, not the one that failed on it
        var other = Assign(state, "w0", T0.AddMinutes(5))!;
        Assert.NotEqual(a.JobId, other.JobId);
        Assert.True(state.Ledger.HasPendingJobFailedOn("w0"));
        // the same again with nothing else ready: while another worker is idle w0 gets nothing, else the failed job
        var solo = NewState(folds: 1);
        var s = Assign(solo, "w0", T0)!;
        Fail(solo, s, "boom", T0.AddMinutes(5), otherActive: 1);
        Assert.Null(Assign(solo, "w0", T0.AddMinutes(5), otherIdle: 1));
        var again = Assign(solo, "w0", T0.AddMinutes(5), otherIdle: 0)!;
        Assert.Equal((s.JobId, 2), (again.JobId, again.Attempt));
        Assert.False(solo.Ledger.HasPendingJobFailedOn("w0"));
    }

    [Fact]
    public void EveryWorkerQuarantined_TheSweepWaitsWithAClearMessage_NoJobFails()
    {
        var state = NewState(folds: 4);
        var a = Assign(state, "w0", T0)!;
        Assert.False(Assert.IsType<WorkerQuarantined>(Fail(state, a, Denied(a.JobId), T0.AddSeconds(1), otherActive: 1)[1]).EveryWorker);
        // the last worker (its GPU is gone): a fast failure alone does not quarantine it (nobody else could take the job), three in a row do
        WorkerQuarantined? last = null;
        for (int i = 0; i < 3; i++)
        {
            var b = Assign(state, "w1", T0.AddSeconds(1))!;
            var events = Fail(state, b, "CUDA error: no CUDA-capable device is detected", T0.AddSeconds(2), otherActive: 0);
            Assert.Equal(i == 2 ? 2 : 1, events.Count);
            last = events.OfType<WorkerQuarantined>().SingleOrDefault();
        }
        Assert.True(last!.EveryWorker);
        Assert.StartsWith("worker w1 quarantined for 5 min after 3 failures in a row: CUDA error", last.Reason);
        Assert.EndsWith("; every worker is quarantined: the sweep waits until 00:05:02 UTC or an operator's release (nnunet sweep-control release w1)", last.Reason);
        Assert.Null(Assign(state, "w0", T0.AddMinutes(1)));
        Assert.Null(Assign(state, "w1", T0.AddMinutes(1)));

        var view = SweepView.Build(state, [new WorkerView("w0", "n", "cpu", null, null), new WorkerView("w1", "n", "cpu", null, null)], [], T0.AddMinutes(1));
        Assert.Equal(SweepStatus.Running, view.Status);
        Assert.Equal(0, view.FailedJobs);
        Assert.Equal("every worker (2) is quarantined: the sweep waits until 00:05:01 UTC (w0 back) or an operator's release " +
                     "(nnunet sweep-control release WORKER); no job fails for it", view.Waiting);
        Assert.All(state.Jobs, j => Assert.Equal(JobStatus.Pending, j.Status));
        Assert.False(state.IsFinished);
        // a quarantined worker that is not registered now is still listed (its quarantine holds when it comes back)
        var oneRegistered = SweepView.Build(state, [new WorkerView("w1", "n", "cpu", null, null)], [], T0.AddMinutes(1));
        Assert.False(oneRegistered.Workers.Single(w => w.WorkerId == "w0").Registered);
        // the back-off ends: work goes on
        Do(state, new EndQuarantines(T0.AddMinutes(6)));
        Assert.NotNull(Assign(state, "w0", T0.AddMinutes(6)));
        Assert.Null(SweepView.Build(state, [new WorkerView("w0", "n", "cpu", null, null), new WorkerView("w1", "n", "cpu", null, null)], [], T0.AddMinutes(6)).Waiting);
    }

    [Fact]
    public void QuarantineAndFailureNotes_SurviveReplayAndSnapshot()
    {
        var state = NewState(folds: 2);
        var log = new List<ISweepEvent>(state.Decide(new DefineSweep(state.Definition!, T0)));
        var replayed = new SweepState();
        replayed.Apply(new SweepDefined(state.Definition!, T0));
        void Step(SweepCommand c)
        {
            foreach (var e in Do(state, c)) { log.Add(e); replayed.Apply(e); }
        }
        var a = state.Decide(new AssignWork("w0", "n", T0)).OfType<JobAssigned>().Single();
        Step(new AssignWork("w0", "n", T0));
        Step(new FailJob(a.JobId, a.Attempt, "w0: denied", T0.AddSeconds(1), 1));
        var b = state.Decide(new AssignWork("w1", "n", T0)).OfType<JobAssigned>().Single();
        Step(new AssignWork("w1", "n", T0));
        Step(new FailJob(b.JobId, b.Attempt, "w1: other", T0.AddMinutes(2), 1));
        Assert.True(state.IsQuarantined("w0"));
        var fromSnapshot = SweepState.FromSnapshot(state.ToSnapshot());
        var json = JsonSerializer.Serialize(state.ToSnapshot());
        Assert.Equal(json, JsonSerializer.Serialize(replayed.ToSnapshot()));
        Assert.Equal(json, JsonSerializer.Serialize(fromSnapshot.ToSnapshot()));
        foreach (var s in new[] { replayed, fromSnapshot })
        {
            Assert.True(s.IsQuarantined("w0"));
            Assert.True(s.Ledger.HasPendingJobFailedOn("w1"));
            Assert.Null(Assign(s, "w0", T0.AddMinutes(3)));
        }
    }

    [Fact]
    public void AWorkerWhoseOutputsNeverReachTheStorage_StaleMount_IsQuarantined_TheJobsKeepTheirAttempts()
    {
        var state = NewState(folds: 4);
        var at = T0;
        IReadOnlyList<ISweepEvent> events = [];
        for (int i = 0; i < 3; i++, at = at.AddMinutes(10))
        {
            var a = Assign(state, "stale", at)!;
            // it trained (minutes) and reports completion; the coordinator finds no summary on the shared storage
            events = Do(state, new CompleteJob(a.JobId, a.Attempt, "s", new(), $"/r/{a.JobId}/validation/summary.json does not exist", at.AddMinutes(5), 1));
        }
        var quarantined = Assert.IsType<WorkerQuarantined>(events[1]);
        Assert.StartsWith("worker stale quarantined for 5 min after 3 failures in a row: completion reported but an output is missing on storage", quarantined.Reason);
        Assert.All(state.Jobs, j => Assert.Equal(0, j.Failures));
        Assert.Equal(3, state.Jobs.Count(j => j.UnconfirmedFailures is { Length: 1 }));
    }
}
