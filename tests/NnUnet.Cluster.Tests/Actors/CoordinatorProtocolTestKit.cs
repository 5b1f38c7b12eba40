using Akka.Actor;
using Akka.TestKit;
using Akka.TestKit.Xunit2;
using NnUnet.Cluster.Actors;
using NnUnet.Cluster.Messages;
using NnUnet.Cluster.Sweeps;

namespace NnUnet.Cluster.Tests.Actors;

/// <summary>
/// What the coordinator's protocol tests share: the coordinator runs in the test's system (<see cref="ActorTestConfig"/>:
/// in-memory journal, kept by the system, so a second coordinator recovers what the first persisted), storage is a
/// <see cref="FakeResultStore"/>, workers and operators are TestProbes (a worker's probe is named by its worker id),
/// and each message a worker or operator sends comes with the answer it expects.
/// </summary>
public abstract class CoordinatorProtocolTestKit() : TestKit(ActorTestConfig.Create(), "nnunet")
{
    protected const string ResultsRoot = "/nnunet-results";

    /// <summary>How long a test waits to see that no message comes.</summary>
    protected static readonly TimeSpan Quiet = TimeSpan.FromMilliseconds(400);

    protected FakeResultStore Store { get; } = new();

    /// <summary>Timers the rules do not need are an hour long, so nothing happens unless a message makes it happen;
    /// progress is persisted at once; snapshots are rare.</summary>
    protected CoordinatorSettings SettingsFor(SweepDefinition definition) =>
        new(definition, ResultsRoot, Store, TimeSpan.FromHours(1), TimeSpan.FromHours(1), ProgressPersistInterval: TimeSpan.Zero, SnapshotEvery: 1000);

    protected IActorRef StartCoordinator(CoordinatorSettings settings, string name = "coordinator") =>
        Sys.ActorOf(SweepCoordinator.Props(settings), name);

    /// <summary>A worker (a probe named by its worker id) registers; <paramref name="worker"/>: the same worker registering again.</summary>
    protected TestProbe Register(IActorRef coordinator, string workerId, string? runningJob = null, int runningAttempt = 0, TestProbe? worker = null)
    {
        worker ??= CreateTestProbe(workerId);
        Assert.Equal(workerId, worker.Ref.Path.Name);
        worker.Send(coordinator, new RegisterWorker(workerId, "node-" + workerId, "cpu", runningJob, runningAttempt));
        worker.ExpectMsg<WorkerRegistered>(r => r.WorkerId == workerId);
        return worker;
    }

    protected static JobSpec RequestJob(IActorRef coordinator, TestProbe worker)
    {
        worker.Send(coordinator, new RequestJob(worker.Ref.Path.Name));
        return worker.ExpectMsg<StartJob>().Spec;
    }

    protected static JobFinishedReport Finished(TestProbe worker, JobSpec spec, bool requestsNextJob = true) =>
        new(worker.Ref.Path.Name, spec.JobId, spec.Attempt, $"{ResultsRoot}/{spec.JobId}/validation/summary.json",
            new Dictionary<string, double> { ["foreground_mean_dice"] = 0.8 }, requestsNextJob);

    protected static JobProgressReport Epoch(TestProbe worker, JobSpec spec, int epoch, int attempt = 0) =>
        new(worker.Ref.Path.Name, spec.JobId, attempt == 0 ? spec.Attempt : attempt, new EpochMetrics(epoch, spec.Epochs, 0.5, 0.6, 0.7, 0.65, 0.01));

    protected static void Fail(IActorRef coordinator, TestProbe worker, JobSpec spec, string error) =>
        worker.Send(coordinator, new JobFailedReport(worker.Ref.Path.Name, spec.JobId, spec.Attempt, error));

    protected SweepView Snapshot(IActorRef coordinator)
    {
        var asker = CreateTestProbe();
        asker.Send(coordinator, GetSweepView.Instance);
        return asker.ExpectMsg<SweepView>();
    }

    protected JobView Job(IActorRef coordinator, string jobId) => Snapshot(coordinator).Jobs.Single(j => j.JobId == jobId);

    protected SweepControlResult Control(IActorRef coordinator, SweepControl control)
    {
        var asker = CreateTestProbe();
        asker.Send(coordinator, control);
        return asker.ExpectMsg<SweepControlResult>();
    }
}
