using System.Text.Json;
using System.Text.RegularExpressions;

namespace NnUnet.Cluster.Tests.Faults;

/// <summary>
/// SIGKILL of a `nnunet worker` process at the worst moments of a fold: between the complete temp file of a
/// checkpoint and its rename, and in validation before summary.json. The simulated backend stalls there
/// (<c>--sim-stall</c>, first attempt only) so the kill lands exactly in that window.
/// </summary>
[Collection(ProcessTests.Collection)]
public sealed class WorkerCrashTests : IDisposable
{
    private readonly ProcessCluster _cluster = new();
    public void Dispose() => _cluster.Dispose();

    private static readonly string[] Sweep = ["-c", "2d", "--folds", "0,1,2,3", "--epochs", "6"];
    private static readonly string[] TrainJobs = ["2d/fold_0", "2d/fold_1", "2d/fold_2", "2d/fold_3"];

    /// <summary>Starts the sweep with a stalling victim and a normal survivor; returns the victim's job once it stalls.</summary>
    private async Task<(ProcessCluster.Running coordinator, ProcessCluster.Running survivor, string job)> KillVictimWhen(string stall, Func<string, bool> stalled)
    {
        var coordinator = _cluster.Coordinator(Sweep);
        // The victim alone, so that it gets a job however slowly the machine starts processes. It stalls (30 s) while the
        // survivor joins and takes a job of its own (it is then registered and serving; the end of the sweep reaches it
        // directly, see LateWorkerTests), then dies.
        var victim = _cluster.Worker(150, "--sim-stall", stall);
        var job = await Eventually.Until(() => Regex.Match(victim.Text, @"starting (\S+) attempt 1") is { Success: true } m ? m.Groups[1].Value : null,
            TimeSpan.FromSeconds(60), () => "the victim never started a job:\n" + victim.Text);
        await Eventually.Until(() => stalled(job), TimeSpan.FromSeconds(20), () => $"{job} never stalled:\n{victim.Text}");
        var survivor = _cluster.Worker(150);
        await Eventually.Until(() => survivor.Text.Contains(" registered with "), TimeSpan.FromSeconds(60),
            () => "the survivor never registered:\n" + survivor.Text);
        await Eventually.Until(() => Regex.IsMatch(survivor.Text, @"starting (?!" + Regex.Escape(job) + @" )\S+ attempt"), TimeSpan.FromSeconds(30),
            () => "the survivor never started a job:\n" + survivor.Text);
        victim.Sigkill();
        Assert.True(victim.Process.WaitForExit(TimeSpan.FromSeconds(5)));
        return (coordinator, survivor, job);
    }

    private void AssertSweepCompletedOnce(ProcessCluster.Running coordinator, ProcessCluster.Running survivor, string job)
    {
        ProcessCluster.AssertExits(coordinator, 0, TimeSpan.FromSeconds(45), "coordinator");
        ProcessCluster.AssertExits(survivor, 0, TimeSpan.FromSeconds(20), "survivor");
        using var grid = ProcessCluster.FinalGrid(coordinator);
        Assert.Equal("completed", grid.RootElement.GetProperty("status").GetString());
        var killed = grid.RootElement.GetProperty("jobs").EnumerateArray().Single(j => j.GetProperty("job_id").GetString() == job);
        Assert.True(killed.GetProperty("attempt").GetInt32() >= 2);
        _cluster.AssertEachFoldTrainedOnce(TrainJobs);
        // what the resumed attempt read is a whole checkpoint: the final one parses and says the last epoch
        using var latest = JsonDocument.Parse(File.ReadAllText(Path.Combine(_cluster.FoldFolder(job), "checkpoint_latest.ckpt")));
        Assert.Equal(6, latest.RootElement.GetProperty("epoch").GetInt32());
    }

    [Fact]
    public async Task SigkillDuringCheckpointWrite_TempFileIgnored_FoldResumesFromPreviousCheckpoint()
    {
        string TempFiles(string job) => string.Join(",", Directory.Exists(_cluster.FoldFolder(job))
            ? Directory.GetFiles(_cluster.FoldFolder(job), ".checkpoint_latest.ckpt.tmp-*") : []);
        var (coordinator, survivor, job) = await KillVictimWhen("checkpoint:3:30000", j => TempFiles(j).Length > 0);
        var leftBehind = TempFiles(job);
        // at the kill, the visible checkpoint is the whole one of epoch 2; epoch 3's sits complete in a temp file
        using (var visible = JsonDocument.Parse(File.ReadAllText(Path.Combine(_cluster.FoldFolder(job), "checkpoint_latest.ckpt"))))
            Assert.Equal(2, visible.RootElement.GetProperty("epoch").GetInt32());

        AssertSweepCompletedOnce(coordinator, survivor, job);
        var log = _cluster.ReadLog(job);
        Assert.Contains("continue from checkpoint at epoch 2\n", log);
        Assert.True(File.Exists(leftBehind.Split(',')[0]), "the killed writer's temp file is left behind (and was never read)");
    }

    [Fact]
    public async Task SigkillDuringValidation_NoHalfSummary_FoldResumesFromFinalCheckpoint_ValidatesOnce()
    {
        var summary = (string job) => Path.Combine(_cluster.FoldFolder(job), "validation", "summary.json");
        var (coordinator, survivor, job) = await KillVictimWhen("validation:30000", j => _cluster.ReadLog(j).Contains("attempt 1: validation"));
        Assert.False(File.Exists(summary(job)), "summary.json must not exist before validation ends");
        Assert.False(File.Exists(Path.Combine(_cluster.FoldFolder(job), "checkpoint_final.ckpt")));

        AssertSweepCompletedOnce(coordinator, survivor, job);
        var log = _cluster.ReadLog(job);
        Assert.Contains("continue from checkpoint at epoch 6\n", log);
        Assert.Equal(2, Regex.Count(log, @"attempt \d+: validation")); // the killed one and the one that finished
        using var parsed = JsonDocument.Parse(File.ReadAllText(summary(job)));
        Assert.True(parsed.RootElement.GetProperty("foreground_mean").GetProperty("Dice").GetDouble() > 0);
    }
}
