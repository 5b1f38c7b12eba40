using System.Text.RegularExpressions;
using NnUnet.Cluster.Tests.Faults;

namespace NnUnet.Cluster.Tests;

/// <summary>
/// Real `nnunet` processes (the CLI built next to these tests): one coordinator and two workers on 127.0.0.1, like
/// scripts/launch-local-cluster.sh. One worker is killed with SIGKILL in the middle of a fold; the fold resumes from
/// its checkpoint on the other worker and the sweep finishes: once with the simulated backend (fast, exact epochs), once
/// with real TorchSharp training of a tiny synthetic dataset (2 configurations x 2 folds).
/// </summary>
[Collection(ProcessTests.Collection)]
public sealed class MultiProcessTests : IDisposable
{
    private readonly ProcessCluster _cluster = new();

    public void Dispose() => _cluster.Dispose();

    private static Task<string> FirstJobStarted(ProcessCluster.Running worker, TimeSpan timeout) =>
        Eventually.Until(() => Regex.Match(worker.Text, @"starting (\S+) attempt 1") is { Success: true } m ? m.Groups[1].Value : null,
            timeout, () => "the victim worker never started a job:\n" + worker.Text);

    [Fact]
    public async Task SigkilledWorkerProcess_FoldResumesFromCheckpoint_SweepFinishes()
    {
        var coordinator = _cluster.Coordinator("-c", "2d,3d_fullres", "--folds", "0,1", "--epochs", "8");
        // The victim alone, so that it gets a job however slowly processes start; the survivor joins after the kill and
        // does the rest (so no timing decides who runs what).
        var victim = _cluster.Worker(150);
        var job = await FirstJobStarted(victim, TimeSpan.FromSeconds(60));

        // SIGKILL once the victim's fold has checkpointed epoch 3
        await Eventually.Until(() => _cluster.ReadLog(job).Contains("epoch 3:"), TimeSpan.FromSeconds(20), () => $"{job} did not reach epoch 3");
        victim.Sigkill();
        var survivor = _cluster.Worker(150);

        ProcessCluster.AssertExits(coordinator, 0, TimeSpan.FromSeconds(60), "coordinator");
        ProcessCluster.AssertExits(survivor, 0, TimeSpan.FromSeconds(20), "survivor worker");

        using var json = ProcessCluster.FinalGrid(coordinator);
        Assert.Equal("completed", json.RootElement.GetProperty("status").GetString());
        var killed = json.RootElement.GetProperty("jobs").EnumerateArray().Single(j => j.GetProperty("job_id").GetString() == job);
        Assert.True(killed.GetProperty("attempt").GetInt32() >= 2);
        Assert.Matches(@"continue from checkpoint at epoch [3-7]", _cluster.ReadLog(job));
        Assert.True(File.Exists(Path.Combine(_cluster.FoldFolder(job), "checkpoint_final.ckpt")));
    }

    [Fact]
    public async Task RealTraining_SigkilledWorkerProcess_FoldResumesFromCheckpoint_SweepFinishes()
    {
        // A tiny real dataset through the real pipeline: 10 cases, planned and preprocessed by the CLI.
        string dataset = _cluster.PrepareSyntheticDataset(991, "Tiny", cases: 10);

        // the training budget is part of the sweep: the coordinator sends it to every worker with each job
        var coordinator = _cluster.Start("coordinator", "991", "-c", "2d,3d_fullres", "--folds", "0,1", "--epochs", "6",
            "--iters-per-epoch", "3", "--val-iters", "2",
            "--host", "127.0.0.1", "--port", _cluster.Port.ToString(), "--config", _cluster.Hocon, "--linger", "1", "--json");
        string[] workerArgs = ["worker", "--seed", _cluster.Seed, "--cpu", "1", "--config", _cluster.Hocon];
        var victim = _cluster.Start(workerArgs);
        var job = await FirstJobStarted(victim, TimeSpan.FromSeconds(90));
        // SIGKILL once two epochs have ended; the second checkpoint may still be in flight, so the resume is from epoch 1 or 2.
        await Eventually.Until(() => Regex.Matches(_cluster.ReadLog(job, dataset), "Epoch time").Count >= 2,
            TimeSpan.FromSeconds(120), () => $"{job} did not finish two epochs");
        victim.Sigkill();
        var survivor = _cluster.Start(workerArgs); // joins after the kill and does the rest

        ProcessCluster.AssertExits(coordinator, 0, TimeSpan.FromMinutes(6), "coordinator");
        ProcessCluster.AssertExits(survivor, 0, TimeSpan.FromSeconds(30), "survivor worker");

        using var json = ProcessCluster.FinalGrid(coordinator);
        Assert.Equal("completed", json.RootElement.GetProperty("status").GetString());
        var killed = json.RootElement.GetProperty("jobs").EnumerateArray().Single(j => j.GetProperty("job_id").GetString() == job);
        Assert.True(killed.GetProperty("attempt").GetInt32() >= 2);
        var text = _cluster.ReadLog(job, dataset);
        Assert.True(Regex.IsMatch(text, @"continuing from epoch [1-5]"), "the fold did not resume from its checkpoint:\n" + text); // not from epoch 0
        Assert.True(File.Exists(Path.Combine(_cluster.FoldFolder(job, dataset), "checkpoint_final.ckpt")));
        Assert.True(File.Exists(Path.Combine(_cluster.FoldFolder(job, dataset), "validation", "summary.json")));
    }
}
