using System.Text.Json;
using System.Text.RegularExpressions;

namespace NnUnet.Cluster.Tests.Faults;

/// <summary>
/// Storage error with the real trainer: one case's preprocessed 3d_fullres data is gone after the split was fixed
/// (every case is in fold 0's training or validation set). The 3d_fullres fold fails
/// with a reason naming the file (after its attempts), the 2d fold of the same sweep still trains and completes, the
/// selection that needs both is blocked rather than run on half the grid, and the coordinator's dashboard shows the error.
/// </summary>
[Collection(ProcessTests.Collection)]
public sealed class MissingPreprocessedFileTests : IDisposable
{
    private readonly ProcessCluster _cluster = new();

    public void Dispose() => _cluster.Dispose();

    [Fact]
    public async Task MissingPreprocessedCase_FailsItsJobWithTheFile_SweepGoesOn_DashboardShowsTheError()
    {
        string dataset = _cluster.PrepareSyntheticDataset(993, "Missing", cases: 6);
        _cluster.Run("splits", "993"); // the split is fixed (splits_final.json), then storage loses a file
        string missing = Path.Combine(_cluster.Root, "preprocessed", dataset, "nnUNetPlans_3d_fullres", "missing_002.npy");
        Assert.True(File.Exists(missing), missing);
        File.Delete(missing);

        int dashboardPort = ProcessCluster.FreePort();
        var coordinator = _cluster.Start("coordinator", "993", "-c", "2d,3d_fullres", "--folds", "0", "--epochs", "1", "--max-attempts", "2",
            "--iters-per-epoch", "2", "--val-iters", "1",
            "--host", "127.0.0.1", "--port", _cluster.Port.ToString(), "--config", _cluster.Hocon, "--linger", "10", "--json",
            "--dashboard", $"127.0.0.1:{dashboardPort}", "--dashboard-token", "t");
        _cluster.Start("worker", "--seed", _cluster.Seed, "--cpu", "1", "--config", _cluster.Hocon);

        // while the coordinator lingers after the sweep, its dashboard reports the failed job and why
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{dashboardPort}/"), Timeout = TimeSpan.FromSeconds(5) };
        var failed = await Eventually.Until(async () =>
        {
            using var doc = JsonDocument.Parse(await http.GetStringAsync("api/jobs/3d_fullres/fold_0"));
            var job = doc.RootElement.GetProperty("job");
            return job.GetProperty("status").GetString() == "Failed" ? job.GetProperty("lastError").GetString() : null;
        }, TimeSpan.FromMinutes(4), () => "the dashboard never showed 3d_fullres/fold_0 as failed:\n" + coordinator.Text,
            transient: e => e is HttpRequestException or TaskCanceledException);
        Assert.Contains("missing_002", failed);

        ProcessCluster.AssertExits(coordinator, 1 /* problems */, TimeSpan.FromMinutes(2), "coordinator");
        using var grid = ProcessCluster.FinalGrid(coordinator);
        var jobs = grid.RootElement.GetProperty("jobs").EnumerateArray().ToDictionary(j => j.GetProperty("job_id").GetString()!);
        Assert.Equal("failed", jobs["3d_fullres/fold_0"].GetProperty("status").GetString());
        Assert.Equal(2, jobs["3d_fullres/fold_0"].GetProperty("attempt").GetInt32());
        Assert.Matches(new Regex("missing_002"), jobs["3d_fullres/fold_0"].GetProperty("last_error").GetString()!);
        Assert.Equal("completed", jobs["2d/fold_0"].GetProperty("status").GetString());
        Assert.True(File.Exists(Path.Combine(_cluster.FoldFolder("2d/fold_0", dataset), "checkpoint_final.ckpt")));
        var select = jobs.Values.Single(j => j.GetProperty("kind").GetString() == "select");
        Assert.Equal("blocked", select.GetProperty("status").GetString());
    }
}
