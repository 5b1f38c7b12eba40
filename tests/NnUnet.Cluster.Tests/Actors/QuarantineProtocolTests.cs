using Akka.Actor;
using NnUnet.Cluster.Actors;
using NnUnet.Cluster.Messages;
using NnUnet.Cluster.Sweeps;

namespace NnUnet.Cluster.Tests.Actors;

/// <summary>
/// Quarantine through the coordinator, message by message (workers are TestProbes, the journal in memory): a worker
/// failing at once gets no job while one is ready, its job goes to the healthy worker with its attempts intact; the
/// operator's release and the end of the back-off give it work again; with every worker quarantined the sweep waits,
/// saying so, and fails no job. Sweep: 2d x folds 0,1,2 (3 epochs) then the selection.
/// </summary>
public sealed class QuarantineProtocolTests : CoordinatorProtocolTestKit
{
    private static readonly SweepDefinition Definition = LocalCluster.Definition(["2d"], [0, 1, 2], epochs: 3);

    private IActorRef StartCoordinator(FailureLimits? limits = null, string name = "coordinator") =>
        StartCoordinator(SettingsFor(Definition) with { Limits = limits }, name);

    [Fact]
    public void AWorkerFailingAtOnce_GetsNothing_ItsJobRunsOnTheHealthyOne_TheOperatorReleasesIt()
    {
        var coordinator = StartCoordinator();
        var broken = Register(coordinator, "broken");
        var healthy = Register(coordinator, "healthy");
        var lost = RequestJob(coordinator, broken);
        var other = RequestJob(coordinator, healthy);
        Fail(coordinator, broken, lost, "Access to the path '/nnunet-results/x' is denied.");
        // a fold is still ready, but the broken worker is quarantined: it gets nothing
        broken.Send(coordinator, new RequestJob("broken"));
        broken.ExpectNoMsg(Quiet);
        var view = Snapshot(coordinator);
        var b = view.Workers.Single(w => w.WorkerId == "broken");
        Assert.True(b.Quarantined);
        Assert.Equal($"{lost.JobId} attempt 1: Access to the path '/nnunet-results/x' is denied.", b.LastFailure);
        // the seconds since the start are 0 on a quiet machine, 1 on a loaded one
        Assert.Matches(@"^worker broken quarantined for 5 min after a failure \d+ s after the start of", b.QuarantineReason);
        Assert.Contains(view.RecentEvents, e => e.Kind == "quarantined" && e.Text == b.QuarantineReason);
        Assert.Equal(0, view.Jobs.Single(j => j.JobId == lost.JobId).Failures);
        Assert.Equal(1, view.Jobs.Single(j => j.JobId == lost.JobId).UnconfirmedFailures);
        Assert.Null(view.Waiting); // the healthy worker runs jobs

        // the healthy worker finishes its fold: the failed one comes next, attempt 2, continued from its checkpoint
        healthy.Send(coordinator, new JobFinishedReport("healthy", other.JobId, other.Attempt, "/s.json", new(), true));
        var retry = healthy.ExpectMsg<StartJob>().Spec;
        Assert.Equal((lost.JobId, 2, true), (retry.JobId, retry.Attempt, retry.ContinueFromCheckpoint));

        // released by the operator, the idle broken worker gets the fold that is left at once
        Assert.False(Control(coordinator, new SweepControl(SweepControlAction.ReleaseWorker, null, "healthy")).Ok);
        var released = Control(coordinator, new SweepControl(SweepControlAction.ReleaseWorker, null, "broken"));
        Assert.True(released.Ok, released.Message);
        Assert.Equal("worker broken released by operator; on probation: its next failure quarantines it for 10 min", released.Message);
        var third = broken.ExpectMsg<StartJob>().Spec;
        Assert.NotEqual(lost.JobId, third.JobId);
        Assert.False(Snapshot(coordinator).Workers.Single(w => w.WorkerId == "broken").Quarantined);
        // on probation: failing again quarantines it for twice as long
        Fail(coordinator, broken, third, "Access to the path '/nnunet-results/y' is denied.");
        AwaitAssert(() => Assert.StartsWith("worker broken quarantined for 10 min after a failure after its release",
            Snapshot(coordinator).Workers.Single(w => w.WorkerId == "broken").QuarantineReason));
    }

    [Fact]
    public void EveryWorkerQuarantined_TheSweepWaitsSayingSo_NoJobFails_AfterTheBackoffTheWorkerGetsWorkUnasked()
    {
        var coordinator = StartCoordinator(new FailureLimits { QuarantineAfterFailures = 2, QuarantineBackoff = TimeSpan.FromSeconds(2) });
        var worker = Register(coordinator, "w1");
        var first = RequestJob(coordinator, worker);
        Fail(coordinator, worker, first, "CUDA error: no CUDA-capable device is detected");
        var second = RequestJob(coordinator, worker);
        Assert.NotEqual(first.JobId, second.JobId); // a retry does not go back to the worker it failed on while other work is ready
        Fail(coordinator, worker, second, "CUDA error: no CUDA-capable device is detected");
        worker.Send(coordinator, new RequestJob("w1"));
        worker.ExpectNoMsg(Quiet);

        var view = Snapshot(coordinator);
        Assert.Equal(SweepStatus.Running, view.Status);
        Assert.StartsWith("every worker (1) is quarantined: the sweep waits until", view.Waiting);
        Assert.Contains(view.RecentEvents, e => e.Kind == "quarantined" && e.Text.Contains("every worker is quarantined: the sweep waits until"));
        Assert.Equal(0, view.FailedJobs);
        Assert.All(view.Jobs, j => Assert.Equal(0, j.Failures));

        // the back-off (2 s) ends: the idle worker gets a job without asking again
        var afterBackoff = worker.ExpectMsg<StartJob>(TimeSpan.FromSeconds(10)).Spec;
        Assert.Equal(JobKind.Train, afterBackoff.Kind);
        view = Snapshot(coordinator);
        Assert.Null(view.Waiting);
        Assert.Contains(view.RecentEvents, e => e.Kind == "released" && e.Text == "worker w1 back from quarantine (2 s over); on probation: its next failure quarantines it for 4 s");
    }

    [Fact]
    public void AQuarantine_OutlivesACoordinatorRestart_AndItsBackoffStillEnds()
    {
        var limits = new FailureLimits { QuarantineBackoff = TimeSpan.FromSeconds(3) };
        var first = StartCoordinator(limits);
        var broken = Register(first, "broken");
        var healthy = Register(first, "healthy");
        var lost = RequestJob(first, broken);
        RequestJob(first, healthy);
        Fail(first, broken, lost, "Access to the path '/nnunet-results/x' is denied.");
        AwaitAssert(() => Assert.True(Snapshot(first).Workers.Single(w => w.WorkerId == "broken").Quarantined));

        Watch(first);
        first.Tell(SweepCoordinator.Stop.Instance);
        ExpectTerminated(first);
        var second = StartCoordinator(limits, "coordinator-2");
        // recovered from the journal: the re-registering worker is still quarantined and gets nothing, though jobs are ready
        Register(second, "broken", worker: broken);
        broken.Send(second, new RequestJob("broken"));
        broken.ExpectNoMsg(Quiet);
        var view = Snapshot(second).Workers.Single(w => w.WorkerId == "broken");
        Assert.True(view.Quarantined);
        Assert.Equal($"{lost.JobId} attempt 1: Access to the path '/nnunet-results/x' is denied.", view.LastFailure);
        // the recovered coordinator ends the back-off on time: the idle worker gets a job unasked
        broken.ExpectMsg<StartJob>(TimeSpan.FromSeconds(10));
        Assert.Contains(Snapshot(second).RecentEvents, e => e.Kind == "released" && e.Text.StartsWith("worker broken back from quarantine (3 s over)", StringComparison.Ordinal));
    }
}
