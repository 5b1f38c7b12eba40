using System.Text.Json;
using NnUnet.Cluster.Tests.Faults;

namespace NnUnet.Cluster.Tests;

/// <summary>
/// A real `nnunet sweep` process (simulated backend) resumed with another <c>--predict-shards</c>: the journal's test-set
/// split is kept, and the command says so on stderr in one line naming both counts. (The coordinator's side:
/// <c>SweepCoordinatorProtocolTests.AResumedSweep_KeepsTheTestSetShardsOfItsJournal_AndSaysSo_WhenTheRunAsksForOthers</c>.)
/// </summary>
[Collection(ProcessTests.Collection)]
public sealed class PredictShardsProcessTests : IDisposable
{
    private readonly ProcessCluster _cluster = new();

    public void Dispose() => _cluster.Dispose();

    private (JsonDocument Grid, string[] Warnings) Sweep(int shards)
    {
        string[] args = ["sweep", ProcessCluster.Dataset, "-c", "2d", "--folds", "0", "--epochs", "1", "--predict", "--predict-shards", shards.ToString(),
            "--workers", "1", "--simulate", "--sim-epoch-ms", "20", "--no-dashboard", "--config", _cluster.Hocon, "--json"];
        var run = _cluster.StartApart(args);
        Assert.True(run.Process.WaitForExit(TimeSpan.FromMinutes(2)), $"nnunet sweep did not exit:\n{run.Err}");
        run.Process.WaitForExit();
        Assert.True(run.Process.ExitCode == 0, $"nnunet sweep exited {run.Process.ExitCode}:\n{run.Err}");
        var warnings = run.Err.Split('\n').Where(l => l.StartsWith("warning: sweep ", StringComparison.Ordinal)).ToArray();
        return (JsonDocument.Parse(run.Out), warnings);
    }

    private static int ShardJobs(JsonDocument grid) =>
        grid.RootElement.GetProperty("jobs").EnumerateArray().Count(j => j.GetProperty("job_id").GetString()!.StartsWith("predict/shard_", StringComparison.Ordinal));

    [Fact]
    public void ResumedWithOtherShards_KeepsTheJournalsSplit_AndSaysSoOnStderr()
    {
        var (first, none) = Sweep(2);
        using (first)
        {
            Assert.Equal("completed", first.RootElement.GetProperty("status").GetString());
            Assert.Equal(2, ShardJobs(first));
        }
        Assert.Empty(none);

        var (resumed, warnings) = Sweep(3);
        using (resumed) Assert.Equal(2, ShardJobs(resumed));
        var line = Assert.Single(warnings);
        Assert.Contains(": predicts the test set with 2 shard job(s) as its journal recorded, not with the 3 this run asks for", line);
        Assert.Contains("for 3 shards start it as a new sweep with another --journal FILE", line);
    }
}
