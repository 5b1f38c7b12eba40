using System.Text.Json;
using System.Text.RegularExpressions;

namespace NnUnet.Cluster.Tests.Faults;

/// <summary>
/// One broken worker of two (issue 12), with real `nnunet coordinator` / `nnunet worker` processes: the broken one runs
/// as another Unix user, so it cannot write the shared results folder (a node with a read-only or stale mount). Before,
/// it grabbed every job and burned all their attempts in milliseconds (0/11 completed). Now it is quarantined, the jobs
/// keep their attempts, the sweep waits for a worker saying so, the operator's release (`nnunet sweep-control`) puts it
/// on probation, and the healthy worker completes the sweep, every fold trained once; `nnunet sweep-status` and the
/// final grid show the broken worker quarantined with its last failure.
/// </summary>
[Collection(ProcessTests.Collection)]
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class BrokenWorkerTests
{
    private static readonly string[] Folds = ["2d/fold_0", "2d/fold_1", "2d/fold_2", "2d/fold_3"];

    private static JsonElement Worker(JsonElement view, Func<JsonElement, bool> which) =>
        view.GetProperty("workers").EnumerateArray().Single(which);

    private static JsonElement Job(JsonElement view, string jobId) =>
        view.GetProperty("jobs").EnumerateArray().Single(j => j.GetProperty("job_id").GetString() == jobId);

    private static string Events(JsonElement view) =>
        string.Join("\n", view.GetProperty("recent_events").EnumerateArray().Select(e => e.GetProperty("text").GetString()));

    [Fact]
    public async Task ABrokenWorker_IsQuarantined_TheSweepWaits_ThenCompletesOnTheHealthyWorker_NoAttemptBurned()
    {
        using var cluster = new ProcessCluster("""
            nnunet.cluster.liveness-interval = 1s
            nnunet.cluster.lease-check-interval = 500ms
            """);
        var coordinator = cluster.Coordinator("-c", "2d", "--folds", "0,1,2,3", "--epochs", "3");
        // the broken worker alone first, as in the issue: it gets every job there is
        var broken = cluster.WorkerAsOtherUser(100);
        await Eventually.Until(() => coordinator.Text.Contains("quarantined for 5 min after 3 failures in a row"), TimeSpan.FromSeconds(90),
            () => $"the broken worker was not quarantined:\n{coordinator.Text}\n--- broken worker:\n{broken.Text}");

        // sweep-status while it waits: the worker quarantined with its last failure, the sweep waiting, no attempt burned
        var status = cluster.StartApart("sweep-status", "--seed", cluster.Seed, "--json");
        Assert.True(status.Process.WaitForExit(TimeSpan.FromSeconds(60)), status.Err);
        status.Process.WaitForExit();
        Assert.True(status.Process.ExitCode == 0, status.Err);
        using (var waiting = JsonDocument.Parse(status.Out))
        {
            var view = waiting.RootElement;
            Assert.Equal("running", view.GetProperty("status").GetString());
            Assert.StartsWith("every worker (1) is quarantined: the sweep waits until", view.GetProperty("waiting").GetString());
            var w = Worker(view, w => w.GetProperty("registered").GetBoolean());
            Assert.True(w.GetProperty("quarantined").GetBoolean());
            Assert.Matches(@"^2d/fold_\d attempt 1: Access to the path '.*/results/.*' is denied\.$", w.GetProperty("last_failure").GetString());
            Assert.Equal(0, view.GetProperty("failed_jobs").GetInt32());
            Assert.All(Folds, f => Assert.Equal(0, Job(view, f).GetProperty("failures").GetInt32()));
            Assert.Equal(3, Folds.Count(f => Job(view, f).GetProperty("unconfirmed_failures").GetInt32() == 1));
            Assert.Contains("every worker is quarantined: the sweep waits until", Events(view));

            // the operator releases it (nnunet sweep-control): on probation, its next failure quarantines it for twice as long
            string brokenId = w.GetProperty("worker_id").GetString()!;
            var release = cluster.StartApart("sweep-control", "release", brokenId, "--seed", cluster.Seed);
            Assert.True(release.Process.WaitForExit(TimeSpan.FromSeconds(60)), release.Err);
            release.Process.WaitForExit();
            Assert.True(release.Process.ExitCode == 0, release.Out + release.Err);
            Assert.Contains($"worker {brokenId} released by operator; on probation: its next failure quarantines it for 10 min", release.Out);
            await Eventually.Until(() => coordinator.Text.Contains($"worker {brokenId} quarantined for 10 min after a failure after its release"),
                TimeSpan.FromSeconds(60), () => coordinator.Text);
        }

        var healthy = cluster.Worker(100);
        ProcessCluster.AssertExits(coordinator, 0, TimeSpan.FromSeconds(120), "coordinator");
        ProcessCluster.AssertExits(healthy, 0, TimeSpan.FromSeconds(30), "healthy worker");
        ProcessCluster.AssertExits(broken, 0, TimeSpan.FromSeconds(30), "broken worker");

        using var grid = ProcessCluster.FinalGrid(coordinator);
        var final = grid.RootElement;
        Assert.Equal("completed", final.GetProperty("status").GetString());
        foreach (var fold in Folds)
        {
            // each fold failed once on the broken worker (not counted) and completed on the healthy one, attempt 2
            var job = Job(final, fold);
            Assert.Equal((2, 0), (job.GetProperty("attempt").GetInt32(), job.GetProperty("failures").GetInt32()));
            Assert.Contains($"starting {fold} attempt 2", healthy.Text);
        }
        var quarantined = Worker(final, w => w.GetProperty("quarantined").GetBoolean());
        Assert.Matches(@"^2d/fold_\d attempt 1: Access to the path '.*' is denied\.$", quarantined.GetProperty("last_failure").GetString());
        Assert.StartsWith($"worker {quarantined.GetProperty("worker_id").GetString()} quarantined for 10 min", quarantined.GetProperty("quarantine_reason").GetString());
        var well = Worker(final, w => !w.GetProperty("quarantined").GetBoolean());
        Assert.Equal(JsonValueKind.Null, well.GetProperty("last_failure").ValueKind);
        Assert.Equal(0, Regex.Count(Events(final), "failed for good"));
        // on disk: the broken worker wrote nothing; every fold trained once, by the healthy worker
        cluster.AssertEachFoldTrainedOnce(Folds);
        Assert.All(Folds, f => Assert.DoesNotContain("attempt 1", cluster.ReadLog(f)));
    }
}
