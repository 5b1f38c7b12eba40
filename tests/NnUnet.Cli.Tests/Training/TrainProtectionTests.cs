using System.Security.Cryptography;
using System.Text.Json;
using System.Text.RegularExpressions;
using NnUnet.Core.Demo;

namespace NnUnet.Cli.Tests.Training;

/// <summary>`nnunet train` never overwrites a fold's training unasked; real TorchSharp on a tiny synthetic dataset.</summary>
[Collection(ConsoleCollection.Name)]
public sealed class TrainProtectionTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("cli-train-protect-").FullName;
    public void Dispose() => Directory.Delete(_root, recursive: true);

    private string Results => Path.Combine(_root, "results");
    private string Fold => Path.Combine(Results, "Dataset993_TrainGuard", "nnUNetTrainer__nnUNetPlans__3d_fullres", "fold_0");

    private (int ExitCode, string Out, string Error) Train(params string[] extra) =>
        CliRunner.Run(["train", "993", "3d_fullres", "0", "--iters-per-epoch", "2", "--val-iters", "1", "--device", "cpu", "--seed", "7",
            "--preprocessed", Path.Combine(_root, "preprocessed"), "--results", Results, .. extra]);

    private Dictionary<string, string> Hashes(string root) =>
        Directory.GetFiles(root, "*", SearchOption.AllDirectories)
            .ToDictionary(f => Path.GetRelativePath(root, f), f => Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(f))));

    [Fact]
    public void SecondTrainWithoutContinue_Refuses_OverwriteMovesTheOldFoldAside_ContinueExtendsFromTheFinalCheckpoint()
    {
        SyntheticDataset.Write(Path.Combine(_root, "raw"), 993, "TrainGuard", new SyntheticDatasetOptions(TrainingCases: 6, TestCases: 0, Shape: [8, 24, 24]));
        foreach (var step in new[] { new[] { "fingerprint", "993" }, ["plan", "993"], ["preprocess", "993", "-c", "3d_fullres"] })
        {
            var (code, stdout, stderr) = CliRunner.Run([.. step, "--raw", Path.Combine(_root, "raw"), "--preprocessed", Path.Combine(_root, "preprocessed")]);
            Assert.True(code == NnUnetApp.ExitOk, $"{string.Join(' ', step)}: {stdout}{stderr}");
        }
        var first = Train("--epochs", "1");
        Assert.True(first.ExitCode == NnUnetApp.ExitOk, first.Out + first.Error);
        var before = Hashes(Results);

        // the same command again (e.g. from shell history): refused, nothing touched
        var again = Train("--epochs", "1");
        Assert.Equal(NnUnetApp.ExitBadInput, again.ExitCode);
        Assert.Contains("already holds a finished training (checkpoint_final.ckpt", again.Error);
        Assert.Contains("written by nnunet train (outside any sweep)", again.Error);
        Assert.Contains("--continue --epochs 1 (or more epochs to extend it)", again.Error);
        Assert.Contains("--results-suffix NAME", again.Error);
        Assert.Contains("--overwrite", again.Error);
        Assert.Equal(before, Hashes(Results));

        // --overwrite: the old fold is kept, byte for byte, under superseded/<date>/
        var overwrite = Train("--epochs", "1", "--overwrite");
        Assert.True(overwrite.ExitCode == NnUnetApp.ExitOk, overwrite.Out + overwrite.Error);
        var moved = Path.Combine(Assert.Single(Directory.GetDirectories(Path.Combine(Results, "Dataset993_TrainGuard", "superseded"))),
            "nnUNetTrainer__nnUNetPlans__3d_fullres");
        var movedHashes = Hashes(moved);
        foreach (var (file, hash) in before.Where(b => b.Key.Contains("fold_0")))
            Assert.Equal(hash, movedHashes[Path.GetRelativePath("Dataset993_TrainGuard/nnUNetTrainer__nnUNetPlans__3d_fullres", file)]);
        Assert.True(File.Exists(Path.Combine(moved, "plans.json")));          // the old model stays usable
        Assert.True(File.Exists(Path.Combine(Fold, "checkpoint_final.ckpt")));

        // --continue with more epochs extends the finished training from checkpoint_final: one more epoch, not two
        var extend = Train("--epochs", "2", "--continue");
        Assert.True(extend.ExitCode == NnUnetApp.ExitOk, extend.Out + extend.Error);
        Assert.Contains("resuming from checkpoint_final.ckpt", extend.Out);
        Assert.Contains("continuing from epoch 1", extend.Out);
        Assert.Contains("extending the training from 1 to 2 epochs", extend.Out);
        Assert.Equal(1, Regex.Count(extend.Out, "Epoch time"));
        Assert.Contains("Completed: 2 epochs", extend.Out);
        using var progress = JsonDocument.Parse(File.ReadAllText(Path.Combine(Fold, "progress.json")));
        Assert.Equal(2, progress.RootElement.GetProperty("train_losses").GetArrayLength());
        using var owner = JsonDocument.Parse(File.ReadAllText(Path.Combine(Fold, "owner.json")));
        Assert.Equal(2, owner.RootElement.GetProperty("settings").GetProperty("epochs").GetInt32());
        Assert.False(File.Exists(Path.Combine(Fold, "nnunet.lock")));         // released at the end

        // fewer epochs than trained: refused before anything is written (a training cannot be shortened)
        var trained = Hashes(Results);
        var shorter = Train("--epochs", "1", "--continue");
        Assert.Equal(NnUnetApp.ExitBadInput, shorter.ExitCode);
        Assert.Contains("cannot be continued with these settings: it was trained for 2 epochs and a training cannot be shortened", shorter.Error);
        Assert.Equal(trained, Hashes(Results));

        // results of an older version (no owner.json) in a sweep's way: unknown owner, refused; its checkpoint records
        // its budget, so --continue-training extends it in the sweep (real TorchSharp backend) from checkpoint_final
        File.Delete(Path.Combine(Fold, "owner.json"));
        string[] sweep = ["sweep", "993", "-c", "3d_fullres", "--folds", "0", "--iters-per-epoch", "2", "--val-iters", "1", "--workers", "1",
            "--no-dashboard", "--preprocessed", Path.Combine(_root, "preprocessed"), "--results", Results];
        var unknown = CliRunner.Run([.. sweep, "--epochs", "3"]);
        Assert.Equal(NnUnetApp.ExitBadInput, unknown.ExitCode);
        Assert.Contains("unknown owner (no owner.json", unknown.Error);
        Assert.Contains("its checkpoint records 2 epochs x 2 iterations (1 validation)", unknown.Error);
        string? oldRaw = Environment.GetEnvironmentVariable("nnUNet_raw"), oldPre = Environment.GetEnvironmentVariable("nnUNet_preprocessed");
        try
        {
            // the worker reads raw/preprocessed from its node's environment (shared storage), as on a cluster node
            Environment.SetEnvironmentVariable("nnUNet_raw", Path.Combine(_root, "raw"));
            Environment.SetEnvironmentVariable("nnUNet_preprocessed", Path.Combine(_root, "preprocessed"));
            var adopted = CliRunner.Run([.. sweep, "--epochs", "3", "--continue-training"]);
            Assert.True(adopted.ExitCode == NnUnetApp.ExitOk, adopted.Out + adopted.Error);
        }
        finally
        {
            Environment.SetEnvironmentVariable("nnUNet_raw", oldRaw);
            Environment.SetEnvironmentVariable("nnUNet_preprocessed", oldPre);
        }
        var log = File.ReadAllText(Path.Combine(Fold, "training_log.txt"));
        Assert.Contains("extending the training from 2 to 3 epochs", log);
        using var extended = JsonDocument.Parse(File.ReadAllText(Path.Combine(Fold, "progress.json")));
        Assert.Equal(3, extended.RootElement.GetProperty("train_losses").GetArrayLength());
        using var adoptedOwner = JsonDocument.Parse(File.ReadAllText(Path.Combine(Fold, "owner.json")));
        Assert.Equal("unknown", adoptedOwner.RootElement.GetProperty("adopted_from").GetProperty("host").GetString());
    }
}
