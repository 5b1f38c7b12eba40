using System.Text.RegularExpressions;
using NnUnet.Core.Demo;

namespace NnUnet.Cli.Tests.Training;

/// <summary>`nnunet train` end to end through the CLI on a tiny synthetic dataset: real TorchSharp, real files.</summary>
[Collection(ConsoleCollection.Name)]
public sealed class TrainCommandTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("cli-train-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    private (int ExitCode, string Out, string Error) Run(params string[] args) =>
        CliRunner.Run([.. args, "--raw", Path.Combine(_root, "raw"), "--preprocessed", Path.Combine(_root, "preprocessed")]);

    [Fact]
    public void TrainShowsTheLogAndAnEpochProgressBar_WritesTheFinalCheckpoint()
    {
        SyntheticDataset.Write(Path.Combine(_root, "raw"), 992, "TrainCli", new SyntheticDatasetOptions(TrainingCases: 6, TestCases: 0, Shape: [8, 24, 24]));
        foreach (var step in new[] { new[] { "fingerprint", "992" }, ["plan", "992"], ["preprocess", "992", "-c", "3d_fullres"] })
        {
            var (code, stdout, stderr) = Run(step);
            Assert.True(code == NnUnetApp.ExitOk, $"{string.Join(' ', step)}: {stdout}{stderr}");
        }

        var train = CliRunner.Run("train", "992", "3d_fullres", "0", "--epochs", "2", "--iters-per-epoch", "2", "--val-iters", "1",
            "--device", "cpu", "--preprocessed", Path.Combine(_root, "preprocessed"), "--results", Path.Combine(_root, "results"));

        Assert.True(train.ExitCode == NnUnetApp.ExitOk, train.Out + train.Error);
        Assert.Equal(2, Regex.Count(train.Out, "Epoch time"));                             // nnU-Net's log lines
        // not a terminal: the bar's state is printed once per epoch
        Assert.Matches(@"3d_fullres fold 0: epoch 1/2, EMA pseudo-Dice \d\.\d{4}, ETA", train.Out);
        Assert.Matches(@"3d_fullres fold 0: epoch 2/2, EMA pseudo-Dice \d\.\d{4}, ETA", train.Out);
        Assert.Contains("Completed: 2 epochs", train.Out);
        string fold = Path.Combine(_root, "results", "Dataset992_TrainCli", "nnUNetTrainer__nnUNetPlans__3d_fullres", "fold_0");
        Assert.True(File.Exists(Path.Combine(fold, "checkpoint_final.ckpt")));
        Assert.True(File.Exists(Path.Combine(fold, "validation", "summary.json")));

        // fine-tuning from nnU-Net's format: fold 0 exported as checkpoint_final.pth starts fold 1 (heads re-initialised)
        string model = Path.GetDirectoryName(fold)!;
        string exported = Path.Combine(_root, "exported");
        Assert.Equal(NnUnetApp.ExitOk, CliRunner.Run("export-nnunet", model, exported).ExitCode);
        var tuned = CliRunner.Run("train", "992", "3d_fullres", "1", "--epochs", "1", "--iters-per-epoch", "1", "--val-iters", "1", "--device", "cpu",
            "--pretrained-weights", Path.Combine(exported, "fold_0", "checkpoint_final.pth"),
            "--preprocessed", Path.Combine(_root, "preprocessed"), "--results", Path.Combine(_root, "results"));
        Assert.True(tuned.ExitCode == NnUnetApp.ExitOk, tuned.Out + tuned.Error);
        Assert.Matches(@"pretrained weights from .*checkpoint_final\.pth \(trainer nnUNetTrainer, 3d_fullres\): \d+ tensors loaded, \d+ segmentation-head tensors kept", tuned.Out);
    }
}
