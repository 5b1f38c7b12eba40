using System.Text.Json;
using System.Text.RegularExpressions;

namespace NnUnet.Cluster.Tests.Faults;

/// <summary>
/// Liveness and progress apart (issue 12), with real `nnunet coordinator` / `nnunet worker` processes: a validation
/// longer than the heartbeat lease is not taken for a hang (it reports its cases), and a true hang (alive, no
/// progress) is found after the stall timeout, cancelled, and the job completes on the other worker.
/// </summary>
[Collection(ProcessTests.Collection)]
public sealed class LivenessTests
{
    private static JsonElement Job(JsonDocument grid, string jobId) =>
        grid.RootElement.GetProperty("jobs").EnumerateArray().Single(j => j.GetProperty("job_id").GetString() == jobId);

    private static string Events(JsonDocument grid) =>
        string.Join("\n", grid.RootElement.GetProperty("recent_events").EnumerateArray().Select(e => e.GetProperty("text").GetString()));

    [Fact]
    public void LongValidation_UnderAShortLease_CompletesOnAttempt1()
    {
        using var cluster = new ProcessCluster("""
            nnunet.cluster.heartbeat-lease = 6s
            nnunet.cluster.liveness-interval = 1s
            nnunet.cluster.lease-check-interval = 500ms
            """);
        var coordinator = cluster.Coordinator("-c", "2d", "--folds", "0", "--epochs", "2");
        var worker = cluster.Worker(100, "--sim-stall", "validation:12000");

        ProcessCluster.AssertExits(coordinator, 0, TimeSpan.FromSeconds(120), "coordinator");
        ProcessCluster.AssertExits(worker, 0, TimeSpan.FromSeconds(20), "worker");
        using var grid = ProcessCluster.FinalGrid(coordinator);
        Assert.Equal("completed", grid.RootElement.GetProperty("status").GetString());
        var fold = Job(grid, "2d/fold_0");
        Assert.Equal((1, 0), (fold.GetProperty("attempt").GetInt32(), fold.GetProperty("requeues").GetInt32()));
        Assert.DoesNotContain("re-queued", Events(grid));
        // on disk: one attempt, which validated (12 s, twice the lease) and finished
        var log = cluster.ReadLog("2d/fold_0");
        Assert.Equal(1, Regex.Count(log, "attempt 1: validation"));
        Assert.DoesNotContain("attempt 2", log);
        cluster.AssertEachFoldTrainedOnce(["2d/fold_0"]);
        var validation = Regex.Match(log, @"(\S+) attempt 1: validation\n(?:.*\n)*?(\S+) attempt 1: training done");
        Assert.True(validation.Success, log);
        Assert.True((DateTime.Parse(validation.Groups[2].Value) - DateTime.Parse(validation.Groups[1].Value)).TotalSeconds >= 11, log);
    }

    [Fact]
    public async Task TrueHang_IsDetectedAfterTheStallTimeout_AndTheJobCompletesElsewhere()
    {
        using var cluster = new ProcessCluster("""
            nnunet.cluster.heartbeat-lease = 60s
            nnunet.cluster.liveness-interval = 1s
            nnunet.cluster.lease-check-interval = 500ms
            nnunet.cluster.stall-timeout = 12s
            """);
        var coordinator = cluster.Coordinator("-c", "2d", "--folds", "0,1", "--epochs", "2");
        // the hanging worker alone first, so that it gets a fold; its first attempts hang in validation, alive, without progress
        var hanging = cluster.Worker(100, "--sim-stall", "hang:120000");
        var job = await Eventually.Until(() => Regex.Match(hanging.Text, @"starting (\S+) attempt 1") is { Success: true } m ? m.Groups[1].Value : null,
            TimeSpan.FromSeconds(60), () => "the hanging worker never started a job:\n" + hanging.Text);
        await Eventually.Until(() => cluster.ReadLog(job).Contains("attempt 1: validation"), TimeSpan.FromSeconds(20),
            () => $"{job} never reached validation:\n{hanging.Text}");
        var hangStarted = DateTime.UtcNow;
        var healthy = cluster.Worker(100);

        ProcessCluster.AssertExits(coordinator, 0, TimeSpan.FromSeconds(120), "coordinator");
        var detectedAfter = DateTime.UtcNow - hangStarted;
        ProcessCluster.AssertExits(healthy, 0, TimeSpan.FromSeconds(20), "healthy worker");
        ProcessCluster.AssertExits(hanging, 0, TimeSpan.FromSeconds(20), "hanging worker");
        using var grid = ProcessCluster.FinalGrid(coordinator);
        Assert.Equal("completed", grid.RootElement.GetProperty("status").GetString());
        var hung = Job(grid, job);
        Assert.Equal((2, 1), (hung.GetProperty("attempt").GetInt32(), hung.GetProperty("requeues").GetInt32()));
        Assert.Matches(@"attempt 1 re-queued \(lost its worker\): hung: no progress in validating on \S+ for 1[2-9] s \(stall-timeout 12 s\); cancelled", Events(grid));
        Assert.Contains($"starting {job} attempt 2", healthy.Text);
        Assert.Contains($"cancelling {job} attempt 1", hanging.Text);
        Assert.True(detectedAfter.TotalSeconds >= 12, $"finished {detectedAfter.TotalSeconds:F0} s after the hang began");
        // on disk: attempt 1 never finished, attempt 2 (the healthy worker) did, from the checkpoint
        var log = cluster.ReadLog(job);
        Assert.Contains("attempt 2: continue from checkpoint at epoch 2", log);
        Assert.Equal(1, Regex.Count(log, "training done"));
        Assert.Contains("attempt 2: training done", log);
        cluster.AssertEachFoldTrainedOnce(["2d/fold_0", "2d/fold_1"]);
    }
}
