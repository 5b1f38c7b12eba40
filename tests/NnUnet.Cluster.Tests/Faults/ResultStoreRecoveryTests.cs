using NnUnet.Cluster.Backends;
using NnUnet.Cluster.Sweeps;
using NnUnet.Core.IO;
using NnUnet.Core.Results;

namespace NnUnet.Cluster.Tests.Faults;

/// <summary>
/// The storage check a recovered coordinator uses to accept an attempt that finished during its outage: all outputs
/// there and written after the attempt started; outputs of an earlier run in the same folder do not count.
/// </summary>
public sealed class ResultStoreRecoveryTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("nnunet-store-").FullName;
    public void Dispose() => Directory.Delete(_root, true);

    private JobSpec BuildSpec(SweepDefinition definition)
    {
        var state = new SweepState();
        foreach (var e in state.Decide(new DefineSweep(definition, DateTime.UtcNow))) state.Apply(e);
        return state.BuildSpec("2d/fold_0", _root);
    }

    [Fact]
    public void OutputsWrittenSince_RequiresEveryOutput_WrittenAfterTheAttemptStarted()
    {
        var store = new FileResultStore();
        var spec = BuildSpec(LocalCluster.Definition(["2d"], [0], 2));
        var fold = JobOutputs.FoldFolder(spec);
        var attemptStart = DateTime.UtcNow;
        Assert.False(store.OutputsWrittenSince(spec, attemptStart.AddHours(-1))); // nothing there

        AtomicFile.WriteAllText(ResultLayout.ValidationSummary(fold), "{}");
        Assert.False(store.OutputsWrittenSince(spec, attemptStart.AddHours(-1))); // checkpoint_final missing
        AtomicFile.WriteAllText(ResultLayout.Checkpoint(fold, ResultLayout.CheckpointFinal), "{}");
        Assert.True(store.OutputsWrittenSince(spec, attemptStart));

        // the same files from a run an hour before this attempt: not this attempt's result
        File.SetLastWriteTimeUtc(ResultLayout.ValidationSummary(fold), attemptStart.AddHours(-1));
        Assert.False(store.OutputsWrittenSince(spec, attemptStart));
        Assert.True(store.OutputsWrittenSince(spec, attemptStart.AddHours(-2)));
    }
}
