using Akka.Actor;
using Akka.TestKit;
using Akka.TestKit.Xunit2;
using NnUnet.Cluster.Actors;
using NnUnet.Cluster.Backends;
using NnUnet.Cluster.Messages;
using NnUnet.Cluster.Sweeps;
using NnUnet.Core.IO;

namespace NnUnet.Cluster.Tests.Actors;

/// <summary>
/// The worker's side of the protocol, message by message: the coordinator's proxy and the coordinator are probes,
/// the training is a <see cref="ControlledBackend"/> the test drives (epochs, success, failure) and that sees the
/// cancellation token. Retry intervals are short (registration 300 ms, report resend 300 ms) so that the tests that
/// need a resend see it; the others answer before it.
/// </summary>
public sealed class SweepWorkerProtocolTests : TestKit
{
    private const string WorkerId = "node1:4053/cpu";
    private static readonly TimeSpan RetryInterval = TimeSpan.FromMilliseconds(300);
    private static readonly TimeSpan Quiet = TimeSpan.FromMilliseconds(900); // three resend intervals
    private readonly ControlledBackend _backend = new();
    private readonly TestProbe _proxy;
    private readonly TestProbe _coordinator;
    // the worker takes each attempt's fence file in the fold folder before the run starts: real, writable storage
    private readonly string _resultsRoot = Directory.CreateTempSubdirectory("nnunet-worker-").FullName;

    public SweepWorkerProtocolTests() : base(ActorTestConfig.Create(), "nnunet")
    {
        _proxy = CreateTestProbe("proxy");
        _coordinator = CreateTestProbe("coordinator");
    }

    private IActorRef StartWorker(TimeSpan? registerRetry = null) =>
        Sys.ActorOf(SweepWorker.Props(new WorkerSettings(WorkerId, "akka.tcp://nnunet@node1:4053", "cpu", _backend, _proxy.Ref,
            registerRetry ?? TimeSpan.FromHours(1), StopTimeout: TimeSpan.FromSeconds(5), ReportResendInterval: RetryInterval)), "worker");

    /// <summary>A started worker that registered with <see cref="_coordinator"/> and asked for its first job.</summary>
    private IActorRef RegisteredWorker()
    {
        var worker = StartWorker();
        _proxy.ExpectMsg<RegisterWorker>();
        _coordinator.Send(worker, new WorkerRegistered(WorkerId, "sweep-1"));
        _proxy.ExpectMsg(new RequestJob(WorkerId));
        return worker;
    }

    private JobSpec Spec(string jobId, int attempt = 1) =>
        new("sweep-1", jobId, attempt, JobKind.Train, "Dataset004_Hippocampus", "nnUNetPlans", "nnUNetTrainer", "2d",
            int.Parse(jobId[^1..]), 3, attempt > 1, _resultsRoot, [], []);

    private async Task<ControlledBackend.Run> Start(IActorRef worker, JobSpec spec)
    {
        _coordinator.Send(worker, new StartJob(spec));
        var run = await _backend.NextRun();
        Assert.Equal((spec.JobId, spec.Attempt), (run.Spec.JobId, run.Spec.Attempt));
        return run;
    }

    protected override void Dispose(bool disposing)
    {
        base.Dispose(disposing);
        try { Directory.Delete(_resultsRoot, true); } catch (IOException) { }
    }

    [Fact]
    public void ItRegisters_AgainUntilAnswered_ThenAsksForWork()
    {
        var worker = StartWorker(registerRetry: RetryInterval);
        var first = _proxy.ExpectMsg<RegisterWorker>();
        Assert.Equal((WorkerId, "cpu", null, 0), (first.WorkerId, first.Device, first.RunningJobId, first.RunningAttempt));
        _proxy.ExpectMsg<RegisterWorker>(); // no answer yet: sent again

        _coordinator.Send(worker, new WorkerRegistered(WorkerId, "sweep-1"));
        _proxy.ExpectMsg(new RequestJob(WorkerId));
        _proxy.ExpectNoMsg(Quiet); // registered: no more registrations
    }

    [Fact]
    public async Task ItRunsAJob_ForwardsEachEpoch_ReportsTheEnd_AndSendsItAgainUntilAcknowledged()
    {
        var worker = RegisteredWorker();
        var run = await Start(worker, Spec("2d/fold_0"));
        Assert.Equal(_resultsRoot, run.Spec.ResultsRoot);

        run.Epoch(1, pseudoDice: 0.4);
        var progress = _proxy.ExpectMsg<JobProgressReport>();
        Assert.Equal((WorkerId, "2d/fold_0", 1, 1, 3, 0.4),
            (progress.WorkerId, progress.JobId, progress.Attempt, progress.Metrics.Epoch, progress.Metrics.TotalEpochs, progress.Metrics.PseudoDice));
        run.Epoch(2);
        Assert.Equal(2, _proxy.ExpectMsg<JobProgressReport>().Metrics.Epoch);

        run.Succeed(dice: 0.83);
        var report = _proxy.ExpectMsg<JobFinishedReport>();
        Assert.Equal(("2d/fold_0", 1, true, 0.83), (report.JobId, report.Attempt, report.RequestsNextJob, report.Metrics["foreground_mean_dice"]));
        // the answer was lost: the same report again, still asking for work (the worker is idle)
        var again = _proxy.ExpectMsg<JobFinishedReport>();
        Assert.Equal((report.JobId, report.Attempt, true), (again.JobId, again.Attempt, again.RequestsNextJob));

        _coordinator.Send(worker, new JobFinishedAck("2d/fold_1", 1)); // another job's ack does not count
        _proxy.ExpectMsg<JobFinishedReport>();
        _coordinator.Send(worker, new JobFinishedAck("2d/fold_0", 1));
        // a resend the worker sent before the ack reached it may still arrive (at most one, seen on a loaded machine);
        // after it, nothing for three resend intervals
        var inFlight = _proxy.ReceiveWhile(RetryInterval, m => m as JobFinishedReport, msgs: 2);
        Assert.True(inFlight.Count <= 1, $"{inFlight.Count} reports after the ack");
        _proxy.ExpectNoMsg(Quiet);
    }

    [Fact]
    public async Task TheNextStartJob_AnswersTheReport()
    {
        var worker = RegisteredWorker();
        var run = await Start(worker, Spec("2d/fold_0"));
        run.Succeed();
        _proxy.ExpectMsg<JobFinishedReport>();

        var next = await Start(worker, Spec("2d/fold_1"));
        _proxy.ExpectNoMsg(Quiet); // no resend of the first report
        next.Epoch(1);
        Assert.Equal("2d/fold_1", _proxy.ExpectMsg<JobProgressReport>().JobId);
    }

    [Fact]
    public async Task ABusyWorker_RejectsAnotherJob_AndIgnoresASecondCopyOfItsOwn()
    {
        var worker = RegisteredWorker();
        await Start(worker, Spec("2d/fold_0"));

        _coordinator.Send(worker, new StartJob(Spec("2d/fold_0")));
        _coordinator.ExpectNoMsg(TimeSpan.FromMilliseconds(300));
        _coordinator.Send(worker, new StartJob(Spec("2d/fold_1")));
        var rejected = _coordinator.ExpectMsg<JobRejected>(); // answered to the sender: the coordinator
        Assert.Equal((WorkerId, "2d/fold_1", 1), (rejected.WorkerId, rejected.JobId, rejected.Attempt));
        Assert.Contains("busy with 2d/fold_0 attempt 1", rejected.Reason);
        Assert.False(_backend.HasPendingRun); // nothing else started
    }

    [Fact]
    public async Task CancelJobRun_StopsTheRun_NoFailureIsReported_TheWorkerAsksForWork()
    {
        var worker = RegisteredWorker();
        var run = await Start(worker, Spec("2d/fold_0", attempt: 2));

        _coordinator.Send(worker, new CancelJobRun("2d/fold_0", 1, "an older attempt")); // not the attempt it runs
        _coordinator.Send(worker, new CancelJobRun("2d/fold_1", 2, "another job"));
        _proxy.ExpectNoMsg(TimeSpan.FromMilliseconds(300));
        Assert.False(run.Token.IsCancellationRequested);

        _coordinator.Send(worker, new CancelJobRun("2d/fold_0", 2, "cancelled by operator"));
        _proxy.ExpectMsg(new RequestJob(WorkerId)); // not a JobFailedReport: a cancelled attempt did not fail
        Assert.True(run.Token.IsCancellationRequested);
        _proxy.ExpectNoMsg(TimeSpan.FromMilliseconds(300));
    }

    [Fact]
    public async Task AFailedRun_IsReported_ThenTheWorkerAsksForWork()
    {
        var worker = RegisteredWorker();
        var run = await Start(worker, Spec("2d/fold_0"));
        run.Fail("CUDA out of memory");
        var failed = _proxy.ExpectMsg<JobFailedReport>();
        Assert.Equal((WorkerId, "2d/fold_0", 1, "CUDA out of memory"), (failed.WorkerId, failed.JobId, failed.Attempt, failed.Error));
        _proxy.ExpectMsg(new RequestJob(WorkerId));
    }

    [Fact]
    public void AStartJobOlderThanTheFoldsFence_IsNotRun_ItIsRejectedAsSuperseded_NotFailed()
    {
        var worker = RegisteredWorker();
        var spec = Spec("2d/fold_0", attempt: 1);
        // attempt 2 owns the fold (attempt 1's StartJob came late, after its replacement started)
        WriteFence.Take(JobOutputs.FencePath(spec), new FenceToken("sweep-1", 2, "node2:4053/cpu", DateTime.UtcNow));

        _coordinator.Send(worker, new StartJob(spec));
        var rejected = _proxy.ExpectMsg<JobRejected>();
        Assert.Equal(("2d/fold_0", 1), (rejected.JobId, rejected.Attempt));
        Assert.Contains("superseded by attempt 2 on node2:4053/cpu", rejected.Reason);
        _proxy.ExpectMsg(new RequestJob(WorkerId)); // no JobFailedReport: the attempt did not fail
        Assert.False(_backend.HasPendingRun); // the backend never ran
        Assert.Equal(2, WriteFence.Read(JobOutputs.FencePath(spec))!.Attempt); // the lower attempt did not take the fence back
        Assert.Equal([WriteFence.FileName], Directory.GetFiles(JobOutputs.FoldFolder(spec)).Select(Path.GetFileName));
    }

    [Fact]
    public async Task ARunSupersededAtAWrite_IsReportedAsSuperseded_NotAsAFailure()
    {
        var worker = RegisteredWorker();
        var spec = Spec("2d/fold_0", attempt: 1);
        var run = await Start(worker, spec);
        Assert.Equal((1, WorkerId), (WriteFence.Read(JobOutputs.FencePath(spec))!.Attempt, WriteFence.Read(JobOutputs.FencePath(spec))!.Holder));

        run.End(new AttemptSupersededException(JobOutputs.FencePath(spec), new FenceToken("sweep-1", 1, WorkerId, DateTime.UtcNow),
            new FenceToken("sweep-1", 3, "node2:4053/cpu", DateTime.UtcNow)));
        var rejected = _proxy.ExpectMsg<JobRejected>();
        Assert.Contains("superseded by attempt 3", rejected.Reason);
        _proxy.ExpectMsg(new RequestJob(WorkerId));
        _proxy.ExpectNoMsg(TimeSpan.FromMilliseconds(300));
    }

    [Fact]
    public async Task WhenItsCoordinatorTerminates_TheWorkerRegistersAgain_SayingWhatItStillRuns()
    {
        var worker = RegisteredWorker();
        var run = await Start(worker, Spec("2d/fold_0", attempt: 3));

        Sys.Stop(_coordinator.Ref); // hand-over or restart of the singleton
        var again = _proxy.ExpectMsg<RegisterWorker>();
        Assert.Equal((WorkerId, "2d/fold_0", 3), (again.WorkerId, again.RunningJobId, again.RunningAttempt));
        Assert.False(run.Token.IsCancellationRequested); // the work goes on meanwhile

        var successor = CreateTestProbe("coordinator-2");
        successor.Send(worker, new WorkerRegistered(WorkerId, "sweep-1"));
        _proxy.ExpectNoMsg(TimeSpan.FromMilliseconds(300)); // busy: it asks for nothing
        run.Epoch(1);
        Assert.Equal(3, _proxy.ExpectMsg<JobProgressReport>().Attempt);
    }

    [Fact]
    public async Task AReportWithoutAnswer_IsSentAgainAfterRegisteringWithANewCoordinator()
    {
        var worker = RegisteredWorker();
        var run = await Start(worker, Spec("2d/fold_0"));
        run.Succeed();
        Assert.True(_proxy.ExpectMsg<JobFinishedReport>().RequestsNextJob);

        Sys.Stop(_coordinator.Ref); // the report may have gone to a coordinator that was stopping
        _proxy.FishForMessage(m => m is RegisterWorker { RunningJobId: null });
        var successor = CreateTestProbe("coordinator-2");
        successor.Send(worker, new WorkerRegistered(WorkerId, "sweep-1"));
        _proxy.FishForMessage(m => m is JobFinishedReport { JobId: "2d/fold_0", RequestsNextJob: false });
        _proxy.FishForMessage(m => m is RequestJob);
    }

    [Fact]
    public void SweepFinished_FromTheCoordinator_GoesToThisNodesEventStream()
    {
        var worker = RegisteredWorker();
        var listener = CreateTestProbe();
        Sys.EventStream.Subscribe(listener.Ref, typeof(SweepFinished));
        var finished = new SweepFinished("sweep-1", SweepStatus.Completed, 3, 0);
        _coordinator.Send(worker, finished);
        listener.ExpectMsg(finished);
    }
}
