using System.Runtime.Serialization;
using System.Text.Json;
using System.Text.Json.Serialization;
using Akka.Actor;
using Akka.Configuration;
using NnUnet.Cluster.Hosting;
using NnUnet.Cluster.Messages;
using NnUnet.Cluster.Serialization;
using NnUnet.Cluster.Sweeps;

namespace NnUnet.Cluster.Tests;

/// <summary>MessagePack round trip of every message, event and snapshot type, through the serializer Akka picks from the HOCON binding.</summary>
public sealed class SerializerTests : IDisposable
{
    private static readonly DateTime At = new(2026, 3, 4, 5, 6, 7, DateTimeKind.Utc);
    private readonly ActorSystem _system = ActorSystem.Create("serializer-test",
        ClusterConfig.Build(new NodeOptions(NodeKind.Client)).WithFallback(ConfigurationFactory.ParseString("akka.actor.provider = local")));

    public void Dispose() => _system.Terminate().Wait(TimeSpan.FromSeconds(10));

    private static readonly SweepDefinition Definition = SweepDefinition.Create("Dataset004_Hippocampus", "nnUNetPlans", "nnUNetTrainer",
        ["2d", "3d_lowres", "3d_cascade_fullres"], [0, 1], 7, true, 4);

    private static readonly JobSpec Spec = new("sweep-1", "3d_lowres/fold_1", 3, JobKind.Train, "Dataset004_Hippocampus", "nnUNetPlans",
        "nnUNetTrainer", "3d_lowres", 1, 7, true, "/data/results", ["2d", "3d_lowres"], [0, 1], ItersPerEpoch: 20, ValIters: 5);

    private static readonly JobRecord Record = new("3d_lowres/fold_1", JobKind.Train, "3d_lowres", 1, ["a", "b"], JobStatus.Running, 3, 1,
        true, false, "w1", "akka.tcp://nnunet@h:1", "oom", 5, 7, 0.5, double.NaN, At, At, null, "/s.json", new() { ["dice"] = 0.75 });

    private static readonly JobView View = new("2d/fold_0", JobKind.Train, "2d", 0, JobDisplayStatus.Running, 2, 1, 3, 7, 0.4, 0.5, "w", "n",
        12.5, null, [], At, null, null, new() { ["x"] = 1 });

    private static readonly SweepEventView EventView = new(At, "assigned", "2d/fold_0", "text");

    private static readonly PredictionRequest Prediction = new("/data/in", "/data/out", null, "Dataset004_Hippocampus", "3d_fullres", false, [0, 1],
        "nnUNetTrainer", "nnUNetPlans", "checkpoint_final", true, false, "/pp.json", false, 3);

    /// <summary>One sample per message type; the completeness test below fails when a new type has none.</summary>
    public static readonly object[] Samples =
    [
        Definition,
        Spec,
        Record,
        new ConfigurationTiming("2d", 12.5, 3),
        new SweepStateSnapshot(Definition, [Record], true, [new ConfigurationTiming("2d", 1, 1)]),
        new SweepStateSnapshot(Definition, [Record with { Kind = JobKind.PredictShard, Submission = Prediction.SubmissionId }], false, [], Submissions: [Prediction]),
        Spec with { Kind = JobKind.PredictShard, JobId = "predict/shard_1", Fold = 1, PredictShards = 3, Prediction = Prediction },
        Prediction,
        new PredictionSubmitted(Prediction, At),
        new SubmitPrediction(Prediction),
        new PredictionSubmissionResult(true, Prediction.SubmissionId, ["a/shard_0", "a/merge"], "submitted"),
        new SweepDefined(Definition, At),
        new JobAssigned("2d/fold_0", 2, "w", "n", true, At),
        new JobAdopted("2d/fold_0", 2, "w", "n", At),
        new JobProgressed("2d/fold_0", 2, new EpochMetrics(3, 7, 0.1, 0.2, 0.3, 0.4, 5.5), At),
        new JobCompleted("2d/fold_0", 2, "/s.json", new Dictionary<string, double> { ["foreground_mean_dice"] = 0.9 }, At),
        new JobFailed("2d/fold_0", 2, "CUDA out of memory", true, At),
        new JobFailed("2d/fold_0", 3, "w: denied", false, At, "w", "<worker>: denied", Unconfirmed: true),
        new JobFailed("2d/fold_0", 4, "v: denied", true, At, "v", "<worker>: denied", Confirms: 2),
        new JobFailureNote("w", "<worker>: denied", At),
        new WorkerRecord("w", 2, 1, true, At, At.AddMinutes(5), "worker w quarantined for 5 min after 3 failures in a row: denied", "2d/fold_0", "2d/fold_0 attempt 3: denied", At, At),
        new WorkerQuarantined("w", 2, At.AddMinutes(10), "worker w quarantined for 10 min", "2d/fold_0", true, At),
        new WorkerReleased("w", WorkerReleaseKind.Operator, "released by operator", At),
        new SweepStateSnapshot(Definition, [Record with { UnconfirmedFailures = [new JobFailureNote("w", "e", At)], LastFailedOn = "w" }], false, [],
            [new WorkerRecord("w", FailuresInARow: 1, LastFailure: "x")]),
        new JobRequeued("2d/fold_0", 2, "node left", true, At, At.AddSeconds(10)),
        new JobRequeued("2d/fold_0", 3, "no heartbeat", false, At, Counted: true),
        new JobAlive("2d/fold_0", 2, JobPhase.Validating, 812, 3, 40, At),
        new JobRetried("2d/fold_0", At),
        new JobResultsGone("2d/fold_0", "results gone from storage (fold_0/validation/summary.json does not exist)", At),
        new JobCancelled("2d/fold_0", "operator", At),
        new SweepPaused(At),
        new SweepResumed(At),
        View,
        View with { Requeues = 3, Phase = JobPhase.Validating, PhaseDone = 4, PhaseTotal = 40 },
        new WorkerView("w", "n", "cuda:0", "2d/fold_0", 2),
        new WorkerView("w", "n", "cuda:0", null, null, true, At.AddMinutes(5), "quarantined for 5 min", "2d/fold_0 attempt 1: denied", At, 0, 1, false),
        EventView,
        new SweepView("sweep-1", Definition, SweepStatus.Running, [View], [new WorkerView("w", "n", "cpu", null, null)], [EventView], 1, 0, 5, 99, At),
        new RegisterWorker("w", "n", "cuda:1", "2d/fold_0", 4),
        new WorkerRegistered("w", "sweep-1"),
        new WorkerRegistrationRefused("w", "held by a live worker of another node"),
        new RequestJob("w"),
        new WorkerAlive("w", "2d/fold_0", 2, JobPhase.Training, 1234, 17, 250),
        new WorkerAlive("w", null, 0, null, 0, 0, 0),
        new JobProgressReport("w", "2d/fold_0", 2, new EpochMetrics(3, 7, 0.1, 0.2, 0.3, 0.4, 5.5)),
        new JobFinishedReport("w", "2d/fold_0", 2, "/s.json", new Dictionary<string, double> { ["d"] = 1 }),
        new JobFinishedReport("w", "2d/fold_1", 1, "/s.json", new Dictionary<string, double>(), RequestsNextJob: true),
        new JobFailedReport("w", "2d/fold_0", 2, "boom"),
        new JobRejected("w", "2d/fold_0", 2, "busy"),
        new StartJob(Spec),
        new CancelJobRun("2d/fold_0", 2, "lease"),
        new JobFinishedAck("2d/fold_0", 2),
        GetSweepView.Instance,
        new SweepControl(SweepControlAction.RetryJob, "2d/fold_0"),
        new SweepControl(SweepControlAction.ReleaseWorker, null, "127.0.0.1:4055/cpu"),
        new SweepControlResult(false, "no such job"),
        new SweepChanged("sweep-1", EventView, View, SweepStatus.Paused),
        new SweepChanged("sweep-1", EventView, View, SweepStatus.Running,
            new JobProgressed("2d/fold_0", 1, new EpochMetrics(3, 10, 0.5, 0.6, 0.7, 0.65, 1.25), new DateTime(2026, 1, 2, 3, 4, 5, DateTimeKind.Utc))),
        new SweepFinished("sweep-1", SweepStatus.Completed, 21, 0),
    ];

    public static IEnumerable<object[]> SampleData => Samples.Select(s => new[] { s });

    private static readonly JsonSerializerOptions Json = new() { NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals };

    [Theory]
    [MemberData(nameof(SampleData))]
    public void RoundTrip_KeepsEveryProperty(object message)
    {
        var serializer = _system.Serialization.FindSerializerFor(message);
        Assert.IsType<NnUnetMessageSerializer>(serializer);
        var manifest = Akka.Serialization.Serialization.ManifestFor(serializer, message);
        var bytes = serializer.ToBinary(message);
        var back = _system.Serialization.Deserialize(bytes, serializer.Identifier, manifest);
        Assert.IsType(message.GetType(), back);
        Assert.Equal(JsonSerializer.Serialize(message, message.GetType(), Json), JsonSerializer.Serialize(back, back.GetType(), Json));
    }

    [Fact]
    public void EveryMessageType_HasARoundTripSample()
    {
        var types = typeof(INnUnetMessage).Assembly.GetTypes()
            .Where(t => typeof(INnUnetMessage).IsAssignableFrom(t) && t is { IsInterface: false, IsAbstract: false })
            .Select(t => t.Name).ToHashSet();
        Assert.Equal(types.Order(), Samples.Select(s => s.GetType().Name).Distinct().Order());
        Assert.Equal(types.Count, NnUnetMessageSerializer.TypesByManifest.Count);
    }

    /// <summary>A sweep definition as journals before the training budget was recorded hold it (same member names).</summary>
    public sealed record SweepDefinitionBeforeTheBudget(string DatasetName, string PlansName, string TrainerName, string[] Configurations,
        int[] Folds, int Epochs, bool PredictTest, int MaxAttempts);

    [Fact]
    public void JournalFromBeforeTheTrainingBudget_ReadsAsNnUnetsBudget_WithTheSameSweepId()
    {
        var before = new SweepDefinitionBeforeTheBudget("Dataset004_Hippocampus", "nnUNetPlans", "nnUNetTrainer", ["2d"], [0, 1], 7, false, 3);
        var bytes = MessagePack.MessagePackSerializer.Serialize(before,
            MessagePack.MessagePackSerializerOptions.Standard.WithResolver(MessagePack.Resolvers.ContractlessStandardResolver.Instance));
        var serializer = _system.Serialization.FindSerializerForType(typeof(SweepDefinition));
        var read = (SweepDefinition)_system.Serialization.Deserialize(bytes, serializer.Identifier, nameof(SweepDefinition));
        var today = SweepDefinition.Create("Dataset004_Hippocampus", "nnUNetPlans", "nnUNetTrainer", ["2d"], [0, 1], 7);
        Assert.Equal(today.SweepId, read.SweepId);
        var state = new SweepState();
        state.Apply(new SweepDefined(read, At));
        Assert.Empty(state.Decide(new DefineSweep(today, At))); // the same sweep: resumed, not refused
        var spec = state.BuildSpec("2d/fold_0", "/r");
        Assert.Equal((250, 50), (spec.ItersPerEpoch, spec.ValIters));
    }

    /// <summary>A sweep definition as journals before test-set shards hold it (budget recorded, no PredictShards).</summary>
    public sealed record SweepDefinitionBeforeShards(string DatasetName, string PlansName, string TrainerName, string[] Configurations,
        int[] Folds, int Epochs, bool PredictTest, int MaxAttempts, int ItersPerEpoch, int ValIters);

    [Fact]
    public void JournalFromBeforeShards_ReadsAsOnePredictJob_WithTheSameSweepId()
    {
        var before = new SweepDefinitionBeforeShards("Dataset004_Hippocampus", "nnUNetPlans", "nnUNetTrainer", ["2d"], [0], 7, true, 3, 250, 50);
        var bytes = MessagePack.MessagePackSerializer.Serialize(before,
            MessagePack.MessagePackSerializerOptions.Standard.WithResolver(MessagePack.Resolvers.ContractlessStandardResolver.Instance));
        var serializer = _system.Serialization.FindSerializerForType(typeof(SweepDefinition));
        var read = (SweepDefinition)_system.Serialization.Deserialize(bytes, serializer.Identifier, nameof(SweepDefinition));
        Assert.Equal(0, read.PredictShards);
        var today = SweepDefinition.Create("Dataset004_Hippocampus", "nnUNetPlans", "nnUNetTrainer", ["2d"], [0], 7, predictTest: true, predictShards: 4);
        Assert.Equal(today.SweepId, read.SweepId);
        var state = new SweepState();
        state.Apply(new SweepDefined(read, At));
        Assert.Empty(state.Decide(new DefineSweep(today, At)));
        Assert.Equal(["2d/fold_0", "select", "predict"], state.JobOrder);
    }

    /// <summary>The progress event as journals hold it: the seven epoch values inline (before <see cref="EpochMetrics"/>).</summary>
    public sealed record JobProgressedJournalShape(string JobId, int Attempt, int Epoch, int TotalEpochs, double TrainLoss, double ValidationLoss,
        double PseudoDice, double EmaPseudoDice, double EpochSeconds, DateTime At);

    /// <summary>The progress report as nodes of the previous build send it.</summary>
    public sealed record JobProgressReportWireShape(string WorkerId, string JobId, int Attempt, int Epoch, int TotalEpochs, double TrainLoss,
        double ValidationLoss, double PseudoDice, double EmaPseudoDice, double EpochSeconds);

    private static readonly MessagePack.MessagePackSerializerOptions PlainContractless =
        MessagePack.MessagePackSerializerOptions.Standard.WithResolver(MessagePack.Resolvers.ContractlessStandardResolver.Instance);

    private byte[] ToBinary(object message) => _system.Serialization.FindSerializerFor(message).ToBinary(message);

    private T FromBinary<T>(byte[] bytes) =>
        (T)_system.Serialization.Deserialize(bytes, NnUnetMessageSerializer.SerializerId, typeof(T).Name);

    [Fact]
    public void EpochMetrics_AreWrittenInline_ByteForByteAsBeforeTheRecord()
    {
        var metrics = new EpochMetrics(3, 7, 0.1, 0.2, 0.3, 0.4, 5.5);
        var journalShape = new JobProgressedJournalShape("2d/fold_0", 2, 3, 7, 0.1, 0.2, 0.3, 0.4, 5.5, At);
        Assert.Equal(MessagePack.MessagePackSerializer.Serialize(journalShape, PlainContractless), ToBinary(new JobProgressed("2d/fold_0", 2, metrics, At)));
        var wireShape = new JobProgressReportWireShape("w", "2d/fold_0", 2, 3, 7, 0.1, 0.2, 0.3, 0.4, 5.5);
        Assert.Equal(MessagePack.MessagePackSerializer.Serialize(wireShape, PlainContractless), ToBinary(new JobProgressReport("w", "2d/fold_0", 2, metrics)));
        // nested in the live feed too
        var changed = new SweepChanged("s", EventView, View, SweepStatus.Running, new JobProgressed("2d/fold_0", 2, metrics, At));
        Assert.Equal(metrics, ((SweepChanged)FromBinaryOf(changed)).Progress!.Metrics);
    }

    private object FromBinaryOf(object message) =>
        _system.Serialization.Deserialize(ToBinary(message), NnUnetMessageSerializer.SerializerId, message.GetType().Name);

    [Fact]
    public void EpochMetrics_ReadWithUnknownKeysSkipped_AndMissingOnesZero()
    {
        // a later build may add a member; an earlier one may lack one: both read, as the contractless resolver reads
        var bytes = MessagePack.MessagePackSerializer.Serialize(new Dictionary<string, object>
        {
            ["JobId"] = "2d/fold_1", ["Attempt"] = 4, ["Epoch"] = 9, ["GradientNorm"] = new[] { 1.5, 2.5 }, ["EmaPseudoDice"] = 0.75,
        }, PlainContractless);
        var read = FromBinary<JobProgressed>(bytes);
        Assert.Equal(("2d/fold_1", 4), (read.JobId, read.Attempt));
        Assert.Equal(new EpochMetrics(9, 0, 0, 0, 0, 0.75, 0), read.Metrics);
    }

    [Fact]
    public void JournalWrittenBeforeEpochMetrics_ReplaysToTheSameState()
    {
        var definition = SweepDefinition.Create("Dataset004_Hippocampus", "nnUNetPlans", "nnUNetTrainer", ["2d"], [0, 1], 4);
        // the journal as the previous build wrote it: every event through the serializer, progress in its flat shape
        var t = At;
        var journal = new List<(byte[] Bytes, string Manifest)>
        {
            (ToBinary(new SweepDefined(definition, t)), nameof(SweepDefined)),
            (ToBinary(new JobAssigned("2d/fold_0", 1, "w", "n", false, t)), nameof(JobAssigned)),
            (MessagePack.MessagePackSerializer.Serialize(new JobProgressedJournalShape("2d/fold_0", 1, 1, 4, 0.9, 0.8, 0.4, 0.4, 12, t.AddSeconds(12)), PlainContractless), nameof(JobProgressed)),
            (MessagePack.MessagePackSerializer.Serialize(new JobProgressedJournalShape("2d/fold_0", 1, 2, 4, 0.7, 0.6, 0.6, 0.42, 10, t.AddSeconds(22)), PlainContractless), nameof(JobProgressed)),
            (ToBinary(new JobAssigned("2d/fold_1", 1, "v", "n", false, t)), nameof(JobAssigned)),
            (ToBinary(new JobRequeued("2d/fold_1", 1, "node left", false, t.AddSeconds(30))), nameof(JobRequeued)),
        };
        var replayed = new SweepState();
        foreach (var (bytes, manifest) in journal)
            replayed.Apply((ISweepEvent)_system.Serialization.Deserialize(bytes, NnUnetMessageSerializer.SerializerId, manifest));

        var today = new SweepState();
        foreach (var e in new ISweepEvent[]
                 {
                     new SweepDefined(definition, t), new JobAssigned("2d/fold_0", 1, "w", "n", false, t),
                     new JobProgressed("2d/fold_0", 1, new EpochMetrics(1, 4, 0.9, 0.8, 0.4, 0.4, 12), t.AddSeconds(12)),
                     new JobProgressed("2d/fold_0", 1, new EpochMetrics(2, 4, 0.7, 0.6, 0.6, 0.42, 10), t.AddSeconds(22)),
                     new JobAssigned("2d/fold_1", 1, "v", "n", false, t), new JobRequeued("2d/fold_1", 1, "node left", false, t.AddSeconds(30)),
                 })
            today.Apply(e);

        Assert.Equal(JsonSerializer.Serialize(today.ToSnapshot(), Json), JsonSerializer.Serialize(replayed.ToSnapshot(), Json));
        var fold0 = replayed.Job("2d/fold_0");
        Assert.Equal((2, (double?)0.6, (double?)0.42), (fold0.Epoch, fold0.LastPseudoDice, fold0.BestEmaPseudoDice));
        Assert.Equal(11, replayed.EstimatedEpochSeconds("2d"), 9); // the measured epochs (12 s, 10 s) drive the estimates
    }

    /// <summary>The re-queue event as journals before bounded re-queues hold it (no Counted).</summary>
    public sealed record JobRequeuedBeforeTheCount(string JobId, int Attempt, string Reason, bool Adoptable, DateTime At, DateTime? HeldUntil);

    [Fact]
    public void JournalFromBeforeBoundedRequeues_ReadsAsUncountedRequeues()
    {
        var old = FromBinary<JobRequeued>(MessagePack.MessagePackSerializer.Serialize(
            new JobRequeuedBeforeTheCount("2d/fold_0", 2, "node left", false, At, null), PlainContractless));
        Assert.Equal(new JobRequeued("2d/fold_0", 2, "node left", false, At), old);
        var state = new SweepState();
        state.Apply(new SweepDefined(Definition, At));
        state.Apply(new JobAssigned("2d/fold_0", 2, "w", "n", false, At));
        state.Apply(old);
        Assert.Equal((JobStatus.Pending, 0), (state.Job("2d/fold_0").Status, state.Job("2d/fold_0").Requeues));
        // a snapshot of before the count (its records lack Requeues) reads as none
        var oldRecord = MessagePack.MessagePackSerializer.Serialize(new Dictionary<string, object?> { ["JobId"] = "x", ["Kind"] = 0, ["DependsOn"] = Array.Empty<string>(), ["Attempt"] = 1 }, PlainContractless);
        Assert.Equal(0, FromBinary<JobRecord>(oldRecord).Requeues);
    }

    /// <summary>The failure event and the snapshot as journals before quarantine hold them (no worker, no error signature; no workers).</summary>
    public sealed record JobFailedBeforeQuarantine(string JobId, int Attempt, string Reason, bool Final, DateTime At);

    public sealed record SnapshotBeforeQuarantine(SweepDefinition? Definition, JobRecord[] Jobs, bool Paused, ConfigurationTiming[] Timings);

    [Fact]
    public void JournalFromBeforeQuarantine_ReadsAsCountedFailuresOfNoWorker()
    {
        var old = FromBinary<JobFailed>(MessagePack.MessagePackSerializer.Serialize(
            new JobFailedBeforeQuarantine("2d/fold_0", 1, "w: boom", false, At), PlainContractless));
        Assert.Equal(new JobFailed("2d/fold_0", 1, "w: boom", false, At), old);
        var state = new SweepState();
        state.Apply(new SweepDefined(Definition, At));
        state.Apply(new JobAssigned("2d/fold_0", 1, "w", "n", false, At));
        state.Apply(old);
        var job = state.Job("2d/fold_0");
        Assert.Equal((JobStatus.Pending, 1, null), (job.Status, job.Failures, job.UnconfirmedFailures));
        Assert.Empty(state.Ledger.Workers); // nothing said which worker failed: no worker is blamed
        var snapshot = FromBinary<SweepStateSnapshot>(MessagePack.MessagePackSerializer.Serialize(
            new SnapshotBeforeQuarantine(Definition, state.ToSnapshot().Jobs, false, []), PlainContractless));
        Assert.Null(snapshot.Workers);
        var restored = SweepState.FromSnapshot(snapshot);
        Assert.Equal(1, restored.Job("2d/fold_0").Failures);
        Assert.False(restored.IsQuarantined("w"));
    }

    [Fact]
    public void UnknownManifest_RaisesSerializationException()
    {
        var serializer = _system.Serialization.FindSerializerForType(typeof(RequestJob));
        var ex = Assert.Throws<SerializationException>(() => _system.Serialization.Deserialize([0x90], serializer.Identifier, "NoSuchMessage"));
        Assert.Contains("NoSuchMessage", ex.Message);
    }

    [Fact]
    public void GarbageBytes_RaiseSerializationException()
    {
        var serializer = (NnUnetMessageSerializer)_system.Serialization.FindSerializerForType(typeof(RequestJob));
        Assert.Throws<SerializationException>(() => serializer.FromBinary([0xc1, 0xff, 0x00], nameof(JobSpec)));
    }
}
