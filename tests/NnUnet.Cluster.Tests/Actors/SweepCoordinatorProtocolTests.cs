using Akka.Actor;
using NnUnet.Cluster.Actors;
using NnUnet.Cluster.Messages;
using NnUnet.Cluster.Sweeps;

namespace NnUnet.Cluster.Tests.Actors;

/// <summary>
/// The coordinator's side of the protocol, message by message: workers are TestProbes, storage is a
/// <see cref="FakeResultStore"/>, the journal is in memory. Sweep: 2d x folds 0,1 (3 epochs) then the selection, which
/// waits for both folds. Timers that the rules do not need are an hour long, so nothing happens unless a message
/// makes it happen; the lease test alone uses a short lease. The multi-process tests (Faults/, MultiProcessTests)
/// check the same rules across real sockets and processes.
/// </summary>
public sealed class SweepCoordinatorProtocolTests : CoordinatorProtocolTestKit
{
    private static readonly SweepDefinition Definition = LocalCluster.Definition(["2d"], [0, 1], epochs: 3);

    private CoordinatorSettings Settings(TimeSpan? lease = null, TimeSpan adoptionGrace = default) =>
        SettingsFor(Definition) with
        {
            HeartbeatLease = lease ?? TimeSpan.FromHours(1),
            LeaseCheckInterval = lease is null ? TimeSpan.FromHours(1) : TimeSpan.FromMilliseconds(100),
            AdoptionGrace = adoptionGrace,
        };

    private IActorRef StartCoordinator() => StartCoordinator(Settings());

    [Fact]
    public void Registration_IsAnswered_AJobRequestBeforeRegistering_GetsNothing()
    {
        var coordinator = StartCoordinator();
        var stranger = CreateTestProbe("stranger");
        stranger.Send(coordinator, new RequestJob("stranger"));
        stranger.ExpectNoMsg(Quiet);

        var worker = CreateTestProbe("w1");
        worker.Send(coordinator, new RegisterWorker("w1", "node-w1", "cpu", null, 0));
        worker.ExpectMsg(new WorkerRegistered("w1", Definition.SweepId));
        var workers = Snapshot(coordinator).Workers;
        Assert.Equal("w1", Assert.Single(workers).WorkerId);
        Assert.Null(workers[0].JobId);
        Assert.Equal("cpu", workers[0].Device);
        worker.ExpectNoMsg(Quiet); // registering asks for nothing: the worker's RequestJob does
    }

    [Fact]
    public void AnIdleWorker_GetsAReadyFold_ItsEpochsAreRecorded_AStaleAttemptsAreNot()
    {
        var coordinator = StartCoordinator();
        var worker = Register(coordinator, "w1");
        var spec = RequestJob(coordinator, worker);

        Assert.Equal(JobKind.Train, spec.Kind);
        Assert.StartsWith("2d/fold_", spec.JobId);
        Assert.Equal((1, false, 3, ResultsRoot, Definition.SweepId), (spec.Attempt, spec.ContinueFromCheckpoint, spec.Epochs, spec.ResultsRoot, spec.SweepId));
        var running = Job(coordinator, spec.JobId);
        Assert.Equal((JobDisplayStatus.Running, "w1", 1), (running.Status, running.WorkerId, running.Attempt));
        Assert.Equal(spec.JobId, Snapshot(coordinator).Workers.Single().JobId);

        worker.Send(coordinator, Epoch(worker, spec, 1));
        worker.Send(coordinator, Epoch(worker, spec, 2));
        worker.Send(coordinator, Epoch(worker, spec, 3, attempt: 7)); // not the current attempt: ignored
        var progressed = Job(coordinator, spec.JobId);
        Assert.Equal(2, progressed.Epoch);
        Assert.Equal(0.7, progressed.LastPseudoDice);
        Assert.Equal(0.65, progressed.BestEmaPseudoDice);
        worker.ExpectNoMsg(Quiet); // progress is not answered
    }

    [Fact]
    public void ACompletionReport_IsAnsweredByTheNextStartJob_OrByAnAck_AtTheEndBySweepFinished()
    {
        var coordinator = StartCoordinator();
        var worker = Register(coordinator, "w1");
        var first = RequestJob(coordinator, worker);

        worker.Send(coordinator, Finished(worker, first));
        var second = worker.ExpectMsg<StartJob>().Spec; // the answer: no separate ack
        Assert.NotEqual(first.JobId, second.JobId);
        Assert.Equal(JobKind.Train, second.Kind);
        worker.ExpectNoMsg(Quiet);
        Assert.Equal(JobDisplayStatus.Completed, Job(coordinator, first.JobId).Status);

        worker.Send(coordinator, Finished(worker, second));
        var select = worker.ExpectMsg<StartJob>().Spec; // both folds done: the selection is ready
        Assert.Equal((JobKind.Select, JobRecord.SelectJobId), (select.Kind, select.JobId));
        Assert.Equal(["2d"], select.Configurations);
        Assert.Equal([0, 1], select.Folds);

        worker.Send(coordinator, Finished(worker, select));
        // nothing left: the report is acknowledged, and the idle worker is told the sweep is over
        worker.ExpectMsgAllOf<object>(new JobFinishedAck(select.JobId, select.Attempt),
            new SweepFinished(Definition.SweepId, SweepStatus.Completed, 3, 0));
        var snapshot = Snapshot(coordinator);
        Assert.Equal((SweepStatus.Completed, 3, 3), (snapshot.Status, snapshot.CompletedJobs, snapshot.TotalJobs));
        Assert.Null(snapshot.Workers.Single().JobId);

        // a worker that asks for work afterwards is told too (it may have missed the topic)
        var late = Register(coordinator, "late");
        late.Send(coordinator, new RequestJob("late"));
        late.ExpectMsg<SweepFinished>(f => f.Status == SweepStatus.Completed);
    }

    [Fact]
    public void AReportSentAgain_WhenTheWorkerAlreadyHasItsNextJob_IsAcked_AndStartsNothing()
    {
        var coordinator = StartCoordinator();
        var worker = Register(coordinator, "w1");
        var first = RequestJob(coordinator, worker);
        worker.Send(coordinator, Finished(worker, first));
        var second = worker.ExpectMsg<StartJob>().Spec;

        // the worker did not see that StartJob in time and sends its report again (still asking for work)
        worker.Send(coordinator, Finished(worker, first));
        worker.ExpectMsg(new JobFinishedAck(first.JobId, first.Attempt));
        worker.ExpectNoMsg(Quiet);
        var next = Job(coordinator, second.JobId);
        Assert.Equal((JobDisplayStatus.Running, "w1", 1), (next.Status, next.WorkerId, next.Attempt)); // not re-queued, not re-sent
        Assert.Equal(1, Job(coordinator, first.JobId).Attempt);
    }

    [Fact]
    public void ACompletionWhoseOutputsAreNotOnStorage_IsAFailedAttempt_TheFoldRunsAgainFromItsCheckpoint()
    {
        var coordinator = StartCoordinator();
        var worker = Register(coordinator, "w1");
        var spec = RequestJob(coordinator, worker);
        Store.Missing(spec.JobId);

        worker.Send(coordinator, Finished(worker, spec));
        // the other fold is better now (the failed one would come back first otherwise): either way attempt numbers tell
        var next = worker.ExpectMsg<StartJob>().Spec;
        var failed = Job(coordinator, spec.JobId);
        Assert.Equal((0, 1), (failed.Failures, failed.UnconfirmedFailures)); // not counted until seen on another worker too
        Assert.Contains("output is missing on storage", failed.LastError);
        if (next.JobId == spec.JobId) Assert.Equal((2, true), (next.Attempt, next.ContinueFromCheckpoint));
        else Assert.Equal(JobDisplayStatus.Ready, failed.Status);
    }

    [Fact]
    public void AWorkerThatTerminates_LosesItsFold_ToAnIdleWorker_WhichContinuesFromTheCheckpoint()
    {
        var coordinator = StartCoordinator();
        var w1 = Register(coordinator, "w1");
        var w2 = Register(coordinator, "w2");
        var lost = RequestJob(coordinator, w1);
        var other = RequestJob(coordinator, w2);
        Assert.NotEqual(lost.JobId, other.JobId);
        w2.Send(coordinator, Finished(w2, other));
        w2.ExpectMsg(new JobFinishedAck(other.JobId, other.Attempt)); // the selection waits for w1's fold: w2 idles

        Watch(w1.Ref);
        Sys.Stop(w1.Ref);
        ExpectTerminated(w1.Ref);
        var resumed = w2.ExpectMsg<StartJob>().Spec;
        Assert.Equal((lost.JobId, 2, true), (resumed.JobId, resumed.Attempt, resumed.ContinueFromCheckpoint));
        var job = Job(coordinator, lost.JobId);
        Assert.Equal((0, "w2"), (job.Failures, job.WorkerId)); // losing a worker is not the job's failure
        Assert.Equal("w2", Assert.Single(Snapshot(coordinator).Workers).WorkerId);
    }

    [Fact]
    public void ARejectedJob_GoesBackWithoutAFailure_ToTheNextWorkerThatAsks()
    {
        var coordinator = StartCoordinator();
        var w1 = Register(coordinator, "w1");
        var spec = RequestJob(coordinator, w1);
        w1.Send(coordinator, new JobRejected("w1", spec.JobId, spec.Attempt, "busy with something else"));
        // the re-queue tells the holder to stop that attempt (a worker that never started it ignores that); no new job
        var cancel = w1.ExpectMsg<CancelJobRun>();
        Assert.Equal((spec.JobId, spec.Attempt), (cancel.JobId, cancel.Attempt));
        w1.ExpectNoMsg(Quiet);

        var w2 = Register(coordinator, "w2");
        var again = RequestJob(coordinator, w2);
        Assert.Equal(spec.JobId, again.JobId);
        Assert.Equal(2, again.Attempt);
        Assert.Equal(0, Job(coordinator, spec.JobId).Failures);
    }

    [Fact]
    public void AFailureReport_CountsAnAttempt_AndTheJobComesBackUntilItsAttemptsAreUsedUp()
    {
        var coordinator = StartCoordinator(Settings() with { Definition = LocalCluster.Definition(["2d"], [0], epochs: 3, maxAttempts: 2) });
        var worker = Register(coordinator, "w1");
        var spec = RequestJob(coordinator, worker);
        Fail(coordinator, worker, spec, "CUDA out of memory");
        var retry = RequestJob(coordinator, worker);
        Assert.Equal((spec.JobId, 2, true), (retry.JobId, retry.Attempt, retry.ContinueFromCheckpoint));

        Fail(coordinator, worker, retry, "CUDA out of memory");
        worker.Send(coordinator, new RequestJob("w1"));
        // failed for good, and the selection that needs it is blocked: the sweep is over, with failures
        worker.ExpectMsg<SweepFinished>(f => f.Status == SweepStatus.FinishedWithFailures && f.FailedJobs == 1);
        var job = Job(coordinator, spec.JobId);
        Assert.Equal((JobDisplayStatus.Failed, 2), (job.Status, job.Failures));
        Assert.Contains("w1: CUDA out of memory", job.LastError);
        Assert.Equal(JobDisplayStatus.Blocked, Job(coordinator, JobRecord.SelectJobId).Status);
    }

    [Fact]
    public void CancellingARunningJob_TellsItsWorker_ALateReportOfItIsIgnored_ARetryRunsItAgain()
    {
        var coordinator = StartCoordinator();
        var worker = Register(coordinator, "w1");
        var spec = RequestJob(coordinator, worker);
        var operatorProbe = CreateTestProbe("operator");

        operatorProbe.Send(coordinator, new SweepControl(SweepControlAction.CancelJob, spec.JobId));
        Assert.True(operatorProbe.ExpectMsg<SweepControlResult>().Ok);
        var cancel = worker.ExpectMsg<CancelJobRun>();
        Assert.Equal((spec.JobId, spec.Attempt), (cancel.JobId, cancel.Attempt));
        Assert.Equal(JobDisplayStatus.Cancelled, Job(coordinator, spec.JobId).Status);
        Assert.Equal(JobDisplayStatus.Blocked, Job(coordinator, JobRecord.SelectJobId).Status);

        // the run finished before the cancellation reached it: acknowledged, not accepted
        worker.Send(coordinator, Finished(worker, spec, requestsNextJob: false));
        worker.ExpectMsg(new JobFinishedAck(spec.JobId, spec.Attempt));
        Assert.Equal(JobDisplayStatus.Cancelled, Job(coordinator, spec.JobId).Status);

        operatorProbe.Send(coordinator, new SweepControl(SweepControlAction.CancelJob, spec.JobId));
        Assert.False(operatorProbe.ExpectMsg<SweepControlResult>().Ok); // already cancelled
        operatorProbe.Send(coordinator, new SweepControl(SweepControlAction.RetryJob, spec.JobId));
        Assert.True(operatorProbe.ExpectMsg<SweepControlResult>().Ok);
        var fresh = RequestJob(coordinator, worker);
        Assert.Equal((spec.JobId, 2), (fresh.JobId, fresh.Attempt));
    }

    [Fact]
    public void WhilePaused_NoJobIsAssigned_ResumingAssignsToTheWaitingWorker()
    {
        var coordinator = StartCoordinator();
        var operatorProbe = CreateTestProbe("operator");
        operatorProbe.Send(coordinator, new SweepControl(SweepControlAction.Pause, null));
        Assert.True(operatorProbe.ExpectMsg<SweepControlResult>().Ok);
        var worker = Register(coordinator, "w1");
        worker.Send(coordinator, new RequestJob("w1"));
        worker.ExpectNoMsg(Quiet);
        Assert.Equal(SweepStatus.Paused, Snapshot(coordinator).Status);

        operatorProbe.Send(coordinator, new SweepControl(SweepControlAction.Resume, null));
        Assert.True(operatorProbe.ExpectMsg<SweepControlResult>().Ok);
        Assert.Equal(1, worker.ExpectMsg<StartJob>().Spec.Attempt);
    }

    [Fact]
    public void AJobWithoutHeartbeatForTheLease_IsTakenBack_ItsWorkerIsToldToStop()
    {
        var coordinator = StartCoordinator(Settings(lease: TimeSpan.FromMilliseconds(500)));
        var worker = Register(coordinator, "w1");
        var spec = RequestJob(coordinator, worker);
        // no progress report: after the lease the attempt is cancelled on the worker and the job is pending again
        var cancel = worker.ExpectMsg<CancelJobRun>(TimeSpan.FromSeconds(10));
        Assert.Equal((spec.JobId, spec.Attempt), (cancel.JobId, cancel.Attempt));
        Assert.Contains("no heartbeat from w1", cancel.Reason);
        Assert.Equal(0, Job(coordinator, spec.JobId).Failures);
    }

    [Fact]
    public void AfterARestart_TheCoordinatorLetsTheWorkerThatStillRunsAnAttemptKeepIt()
    {
        var settings = Settings(adoptionGrace: TimeSpan.FromMinutes(10)); // nobody else may take it meanwhile
        var first = StartCoordinator(settings);
        var w1 = Register(first, "w1");
        var spec = RequestJob(first, w1);
        w1.Send(first, Epoch(w1, spec, 2));
        Assert.Equal(2, Job(first, spec.JobId).Epoch);

        Watch(first);
        first.Tell(SweepCoordinator.Stop.Instance); // as on hand-over: stops once the journal has every event
        ExpectTerminated(first);
        var second = StartCoordinator(settings, "coordinator-2");
        var held = Job(second, spec.JobId);
        Assert.Equal((JobDisplayStatus.Ready, 1), (held.Status, held.Attempt)); // recovered: pending, held for its worker

        var w2 = Register(second, "w2");
        var other = RequestJob(second, w2);
        Assert.NotEqual(spec.JobId, other.JobId); // the held attempt is not handed out

        // w1 re-registers (its coordinator terminated) and says what it still runs: it keeps it, nothing restarts
        var w1Again = Register(second, "w1", spec.JobId, spec.Attempt, worker: w1);
        w1Again.ExpectNoMsg(Quiet);
        var adopted = Job(second, spec.JobId);
        Assert.Equal((JobDisplayStatus.Running, "w1", 1), (adopted.Status, adopted.WorkerId, adopted.Attempt));
        Assert.Contains(Snapshot(second).RecentEvents, e => e.Kind == "adopted" && e.JobId == spec.JobId);

        w1Again.Send(second, Finished(w1Again, spec));
        w1Again.ExpectMsg<JobFinishedAck>(); // the selection waits for w2's fold
        Assert.Equal(JobDisplayStatus.Completed, Job(second, spec.JobId).Status);
    }

    [Fact]
    public void AfterARestart_AnAttemptThatWroteItsOutputsWhileNobodyListened_IsAccepted()
    {
        var first = StartCoordinator(Settings(adoptionGrace: TimeSpan.FromMinutes(10)));
        var w1 = Register(first, "w1");
        var spec = RequestJob(first, w1);
        Watch(first);
        first.Tell(SweepCoordinator.Stop.Instance);
        ExpectTerminated(first);

        Store.WrittenSinceStart(spec.JobId); // its worker finished and died with the old coordinator: no report comes
        var second = StartCoordinator(Settings(adoptionGrace: TimeSpan.FromMinutes(10)), "coordinator-2");
        // storage is asked off the coordinator's thread: accepted when the answer is in
        AwaitAssert(() =>
        {
            var job = Job(second, spec.JobId);
            Assert.Equal((JobDisplayStatus.Completed, 1), (job.Status, job.Attempt));
        }, TimeSpan.FromSeconds(5));
    }

    [Fact]
    public void ASlowStorageCheck_DoesNotStallTheCoordinator_DispatchGoesOn_TheCompletionIsAcceptedWhenItAnswers()
    {
        var coordinator = StartCoordinator();
        var w1 = Register(coordinator, "w1");
        var w2 = Register(coordinator, "w2");
        var first = RequestJob(coordinator, w1);
        using var storageAnswers = new ManualResetEventSlim();
        Store.HoldChecksOf(first.JobId, storageAnswers); // its outputs are on a mount that hangs

        w1.Send(coordinator, Finished(w1, first));
        AwaitCondition(() => Store.BlockedChecks == 1, TimeSpan.FromSeconds(5));
        // meanwhile the coordinator answers and dispatches: the other fold goes to w2 at once
        var second = RequestJob(coordinator, w2);
        Assert.NotEqual(first.JobId, second.JobId);
        Assert.Equal(JobDisplayStatus.Running, Job(coordinator, first.JobId).Status); // not accepted before storage says so
        w1.Send(coordinator, Finished(w1, first) with { RequestsNextJob = false }); // sent again: the pending check answers it
        w1.ExpectNoMsg(Quiet);

        storageAnswers.Set();
        w1.ExpectMsg<JobFinishedAck>(a => a.JobId == first.JobId); // the selection waits for w2's fold
        Assert.Equal(JobDisplayStatus.Completed, Job(coordinator, first.JobId).Status);
        w1.ExpectNoMsg(Quiet); // one answer for the two reports
    }

    [Fact]
    public void AfterARestart_DispatchWaitsForTheStorageCheck_WhileTheCoordinatorAnswers()
    {
        var settings = Settings(adoptionGrace: TimeSpan.Zero);
        var first = StartCoordinator(settings);
        var w1 = Register(first, "w1");
        var spec = RequestJob(first, w1);
        Watch(first);
        first.Tell(SweepCoordinator.Stop.Instance);
        ExpectTerminated(first);

        using var storageAnswers = new ManualResetEventSlim();
        Store.HoldChecksOf(spec.JobId, storageAnswers);
        Store.WrittenSinceStart(spec.JobId); // it finished during the outage
        var second = StartCoordinator(settings, "coordinator-2");
        AwaitCondition(() => Store.BlockedChecks == 1, TimeSpan.FromSeconds(5));
        Assert.Equal(JobDisplayStatus.Ready, Job(second, spec.JobId).Status); // the coordinator answers queries meanwhile
        var w2 = Register(second, "w2");
        w2.Send(second, new RequestJob("w2"));
        w2.ExpectNoMsg(Quiet); // no dispatch before storage says which attempts finished: it would run this one again

        storageAnswers.Set();
        var next = w2.ExpectMsg<StartJob>().Spec;
        Assert.NotEqual(spec.JobId, next.JobId); // the finished attempt was accepted, not handed out again
        Assert.Equal(JobDisplayStatus.Completed, Job(second, spec.JobId).Status);
    }

    [Fact]
    public void AWorkerClaimingAJobThatRunsElsewhere_IsToldToCancelIt()
    {
        var coordinator = StartCoordinator();
        var w1 = Register(coordinator, "w1");
        var spec = RequestJob(coordinator, w1);

        var w2 = Register(coordinator, "w2", spec.JobId, spec.Attempt);
        var cancel = w2.ExpectMsg<CancelJobRun>();
        Assert.Equal((spec.JobId, spec.Attempt), (cancel.JobId, cancel.Attempt));
        Assert.Equal("w1", Job(coordinator, spec.JobId).WorkerId);
        w1.ExpectNoMsg(Quiet);
    }

    [Fact]
    public void AResumedSweep_KeepsTheTestSetShardsOfItsJournal_AndSaysSo_WhenTheRunAsksForOthers()
    {
        SweepDefinition Predicting(int shards) => SweepDefinition.Create("Dataset004_Hippocampus", "nnUNetPlans", "nnUNetTrainer", ["2d"], [0, 1], 3,
            predictTest: true, predictShards: shards);
        IActorRef Restart(IActorRef running, int shards, string name)
        {
            Watch(running);
            running.Tell(SweepCoordinator.Stop.Instance);
            ExpectTerminated(running);
            return StartCoordinator(SettingsFor(Predicting(shards)), name);
        }
        static int Shards(SweepView view) => view.Jobs.Count(j => j.Kind == JobKind.PredictShard);

        var first = StartCoordinator(SettingsFor(Predicting(2)));
        var defined = Snapshot(first);
        Assert.Equal(2, Shards(defined));
        Assert.DoesNotContain(defined.RecentEvents, e => e.Kind == "kept-shards"); // a new sweep: nothing was kept

        // resumed asking for 5: the journal's 2 shard jobs stay, and the run is told which count is used and how to get the other
        var second = Restart(first, 5, "coordinator-2");
        var resumed = Snapshot(second);
        Assert.Equal((2, 2), (resumed.Definition!.PredictShards, Shards(resumed)));
        var kept = Assert.Single(resumed.RecentEvents, e => e.Kind == "kept-shards");
        Assert.Equal($"sweep {Predicting(5).SweepId}: predicts the test set with 2 shard job(s) as its journal recorded, not with the 5 this run asks for " +
                     "(--predict-shards or its default), since shard jobs may have run already; for 5 shards start it as a new sweep with another " +
                     "--journal FILE (every job then runs again)", kept.Text);
        Assert.Equal(kept.Text, resumed.Definition.KeptShardsNotice(Predicting(5))); // the line the command prints on stderr

        // resumed asking for the journal's count: nothing to say
        var third = Restart(second, 2, "coordinator-3");
        Assert.DoesNotContain(Snapshot(third).RecentEvents, e => e.Kind == "kept-shards");
    }
}
