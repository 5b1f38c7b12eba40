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

    /// <summary>One sample per message type; the completeness test below fails when a new type has none.</summary>
    public static readonly object[] Samples =
    [
        Definition,
        Spec,
        Record,
        new ConfigurationTiming("2d", 12.5, 3),
        new SweepStateSnapshot(Definition, [Record], true, [new ConfigurationTiming("2d", 1, 1)]),
        new SweepDefined(Definition, At),
        new JobAssigned("2d/fold_0", 2, "w", "n", true, At),
        new JobAdopted("2d/fold_0", 2, "w", "n", At),
        new JobProgressed("2d/fold_0", 2, 3, 7, 0.1, 0.2, 0.3, 0.4, 5.5, At),
        new JobCompleted("2d/fold_0", 2, "/s.json", new Dictionary<string, double> { ["foreground_mean_dice"] = 0.9 }, At),
        new JobFailed("2d/fold_0", 2, "CUDA out of memory", true, At),
        new JobRequeued("2d/fold_0", 2, "node left", true, At, At.AddSeconds(10)),
        new JobRetried("2d/fold_0", At),
        new JobResultsGone("2d/fold_0", "results gone from storage (fold_0/validation/summary.json does not exist)", At),
        new JobCancelled("2d/fold_0", "operator", At),
        new SweepPaused(At),
        new SweepResumed(At),
        View,
        new WorkerView("w", "n", "cuda:0", "2d/fold_0", 2),
        EventView,
        new SweepSnapshot("sweep-1", Definition, SweepStatus.Running, [View], [new WorkerView("w", "n", "cpu", null, null)], [EventView], 1, 0, 5, 99, At),
        new RegisterWorker("w", "n", "cuda:1", "2d/fold_0", 4),
        new WorkerRegistered("w", "sweep-1"),
        new RequestJob("w"),
        new JobProgressReport("w", "2d/fold_0", 2, 3, 7, 0.1, 0.2, 0.3, 0.4, 5.5),
        new JobFinishedReport("w", "2d/fold_0", 2, "/s.json", new Dictionary<string, double> { ["d"] = 1 }),
        new JobFinishedReport("w", "2d/fold_1", 1, "/s.json", new Dictionary<string, double>(), RequestsNextJob: true),
        new JobFailedReport("w", "2d/fold_0", 2, "boom"),
        new JobRejected("w", "2d/fold_0", 2, "busy"),
        new StartJob(Spec),
        new CancelJobRun("2d/fold_0", 2, "lease"),
        new JobFinishedAck("2d/fold_0", 2),
        GetSweepSnapshot.Instance,
        new SweepControl(SweepControlAction.RetryJob, "2d/fold_0"),
        new SweepControlResult(false, "no such job"),
        new SweepChanged("sweep-1", EventView, View, SweepStatus.Paused),
        new SweepChanged("sweep-1", EventView, View, SweepStatus.Running,
            new JobProgressed("2d/fold_0", 1, 3, 10, 0.5, 0.6, 0.7, 0.65, 1.25, new DateTime(2026, 1, 2, 3, 4, 5, DateTimeKind.Utc))),
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
