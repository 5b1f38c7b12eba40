using NnUnet.Cluster.Hosting;

namespace NnUnet.Cluster.Tests.Faults;

/// <summary>
/// Coordinator high availability: two `nnunet coordinator` processes sharing a PostgreSQL journal
/// (cluster-config/postgres-ha.hocon against a throwaway server); the active one is SIGKILLed mid-sweep.
/// </summary>
[Collection(ProcessTests.Collection)]
public sealed class CoordinatorFailoverTests : IDisposable
{
    private readonly PostgresServer _postgres = new();
    private readonly ProcessCluster _cluster;

    public CoordinatorFailoverTests()
    {
        // the shipped HA file, pointed at the test server
        var ha = ClusterConfig.BuiltInFile("postgres-ha.hocon")
            .Replace("Host=db.cluster.local;Port=5432;Database=nnunet;Username=nnunet;Password=change-me", _postgres.ConnectionString, StringComparison.Ordinal);
        Assert.Contains(_postgres.ConnectionString, ha);
        _cluster = new ProcessCluster(ha);
    }

    public void Dispose()
    {
        _cluster.Dispose();
        _postgres.Dispose();
    }

    [Fact]
    public async Task SigkilledActiveCoordinator_StandbyTakesOverFromPostgres_SweepFinishes_NothingRedone()
    {
        string[] sweep = ["-c", "2d", "--folds", "0,1,2,3", "--epochs", "20"];
        string[] trainJobs = ["2d/fold_0", "2d/fold_1", "2d/fold_2", "2d/fold_3"];
        var active = _cluster.Coordinator(sweep);
        await Eventually.Until(() => active.Text.Contains("coordinator of sweep"), TimeSpan.FromSeconds(60),
            () => "the first coordinator did not start:\n" + active.Text);
        int standbyPort = ProcessCluster.FreePort();
        var standby = _cluster.StandbyCoordinator(standbyPort, sweep);
        await Eventually.Until(() => standby.Text.Contains("coordinator of sweep"), TimeSpan.FromSeconds(60),
            () => "the stand-by coordinator did not start:\n" + standby.Text);
        var standbySeed = $"akka.tcp://nnunet@127.0.0.1:{standbyPort}";
        var workers = new[] { _cluster.Worker(200, "--seed", standbySeed), _cluster.Worker(200, "--seed", standbySeed) };

        // kill the active coordinator once a fold is done and a fold of the second round has checkpointed epoch 2
        await Eventually.Until(() =>
        {
            var logs = trainJobs.Select(j => _cluster.ReadLog(j)).ToArray();
            return logs.Any(l => l.Contains("training done")) && logs.Any(l => l.Contains("epoch 2:") && !l.Contains("epoch 4:"));
        }, TimeSpan.FromSeconds(45), () => "no fold completed:\n" + active.Text + standby.Text + string.Join("\n", workers.Select(w => w.Text)));
        long eventsBeforeKill = _postgres.Scalar<long>("SELECT count(*) FROM journal");
        active.Sigkill();
        Assert.True(active.Process.WaitForExit(TimeSpan.FromSeconds(5)));
        var doneBeforeKill = trainJobs.Where(j => _cluster.ReadLog(j).Contains("training done")).ToArray();

        // nobody restarts anything: the stand-by hosts the singleton now, recovers from PostgreSQL and finishes
        ProcessCluster.AssertExits(standby, 0, TimeSpan.FromSeconds(45), "stand-by coordinator");
        foreach (var w in workers) ProcessCluster.AssertExits(w, 0, TimeSpan.FromSeconds(20), "worker");
        using var grid = ProcessCluster.FinalGrid(standby);
        Assert.Equal("completed", grid.RootElement.GetProperty("status").GetString());
        _cluster.AssertEachFoldTrainedOnce(trainJobs);
        foreach (var job in doneBeforeKill) Assert.DoesNotMatch("continue from checkpoint", _cluster.ReadLog(job));

        // the journal is PostgreSQL's (no SQLite file), and the stand-by appended to what the first coordinator wrote
        Assert.True(eventsBeforeKill > 0, "the first coordinator wrote nothing to PostgreSQL");
        Assert.True(_postgres.Scalar<long>("SELECT count(*) FROM journal") > eventsBeforeKill);
        Assert.False(File.Exists(Path.Combine(_cluster.Results, ProcessCluster.Dataset, "sweeps.db")), "a SQLite journal was written");
    }
}
