using System.Text.Json.Nodes;
using NnUnet.Cli.Backends;
using NnUnet.Cluster.Backends;
using NnUnet.Cluster.Sweeps;
using NnUnet.Core.Datasets;
using NnUnet.Core.Demo;
using NnUnet.Core.Evaluation;
using NnUnet.Core.Preprocessing;
using NnUnet.Training.Inference;
using NnUnet.Training.Trainer;
using NnUnet.Core.Results;

namespace NnUnet.Cli.Tests.Training;

/// <summary>
/// The cascade end to end with the real verbs on a tiny synthetic raw dataset: fingerprint, plan (the plans are then
/// shrunk and given a 3d_lowres + 3d_cascade_fullres pair, which the planner only makes for large images), preprocess,
/// the cascade refusing to start, all five 3d_lowres folds trained and validated (they export the next-stage inputs),
/// then a cascade fold trained and validated by <c>nnunet train</c> and another by the cluster's TorchSharp backend.
/// </summary>
[Collection(ConsoleCollection.Name)]
public sealed class CascadeTrainCommandTests : IDisposable
{
    private const string Cascade = "3d_cascade_fullres", Lowres = "3d_lowres";
    private readonly string _root = Directory.CreateTempSubdirectory("cli-cascade-").FullName;
    private string Raw => Path.Combine(_root, "raw");
    private string Preprocessed => Path.Combine(_root, "preprocessed");
    private string Results => Path.Combine(_root, "results");

    public void Dispose() => Directory.Delete(_root, recursive: true);

    private (int ExitCode, string Out, string Error) Run(params string[] args) =>
        CliRunner.Run([.. args, "--raw", Raw, "--preprocessed", Preprocessed]);

    private (int ExitCode, string Out, string Error) Train(string configuration, string fold, params string[] more) =>
        Run(["train", "5", configuration, fold, "--epochs", "1", "--iters-per-epoch", "2", "--val-iters", "1", "--device", "cpu",
             "--seed", "3", "--results", Results, .. more]);

    /// <summary>2-stage networks and small patches; 3d_lowres at half the in-plane resolution.</summary>
    private void ShrinkPlansAndAddTheCascade(string datasetName)
    {
        string path = Path.Combine(Preprocessed, datasetName, "nnUNetPlans.json");
        var plans = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        var configurations = plans["configurations"]!.AsObject();
        Assert.False(configurations.ContainsKey(Lowres)); // tiny images: the planner sees no need for a low resolution
        var fullres = configurations["3d_fullres"]!.AsObject();
        JsonNode Arch() => JsonNode.Parse("""
            {"n_stages": 2, "features_per_stage": [4, 8], "conv_op": "torch.nn.modules.conv.Conv3d",
             "kernel_sizes": [[1, 3, 3], [3, 3, 3]], "strides": [[1, 1, 1], [1, 2, 2]], "n_conv_per_stage": [1, 1],
             "n_conv_per_stage_decoder": [1], "conv_bias": true, "norm_op": "torch.nn.modules.instancenorm.InstanceNorm3d",
             "norm_op_kwargs": {"eps": 1e-05, "affine": true}, "dropout_op": null, "dropout_op_kwargs": null,
             "nonlin": "torch.nn.LeakyReLU", "nonlin_kwargs": {"inplace": true}}
            """)!;
        fullres["architecture"]!["arch_kwargs"] = Arch();
        fullres["patch_size"] = new JsonArray(4, 16, 16);
        fullres["batch_size"] = 2;
        var lowres = fullres.DeepClone().AsObject();
        lowres["data_identifier"] = "nnUNetPlans_3d_lowres";
        var spacing = fullres["spacing"]!.AsArray();
        lowres["spacing"] = new JsonArray(spacing[0]!.GetValue<double>(), spacing[1]!.GetValue<double>() * 2, spacing[2]!.GetValue<double>() * 2);
        lowres["patch_size"] = new JsonArray(4, 8, 8);
        lowres["next_stage"] = Cascade;
        configurations[Lowres] = lowres;
        configurations[Cascade] = new JsonObject { ["inherits_from"] = "3d_fullres", ["previous_stage"] = Lowres };
        configurations.Remove("2d");
        File.WriteAllText(path, plans.ToJsonString());
    }

    [Fact]
    public async Task Cascade_trains_on_the_predictions_of_all_lowres_folds_via_the_cli_and_the_cluster_backend()
    {
        var location = SyntheticDataset.Write(Raw, 5, "Cascade", new SyntheticDatasetOptions(TrainingCases: 5, TestCases: 0, Shape: [6, 24, 24]));
        var step = Run("fingerprint", "5", "--np", "2", "--foreground-samples", "2000");
        Assert.True(step.ExitCode == NnUnetApp.ExitOk, step.Error);
        step = Run("plan", "5");
        Assert.True(step.ExitCode == NnUnetApp.ExitOk, step.Error);
        ShrinkPlansAndAddTheCascade(location.Name);
        step = Run("preprocess", "5", "-c", "3d_fullres", Lowres);
        Assert.True(step.ExitCode == NnUnetApp.ExitOk, step.Error);

        // the dry run shows the extra input channels: 1 image channel + one-hot of 2 foreground labels
        step = Train(Cascade, "0", "--dry-run", "--json");
        Assert.True(step.ExitCode == NnUnetApp.ExitOk, step.Error);
        Assert.Equal(3, JsonNode.Parse(step.Out)!["input_channels"]!.GetValue<int>());

        string lowresModel = Path.Combine(Results, location.Name, "nnUNetTrainer__nnUNetPlans__" + Lowres);
        string predictions = Path.Combine(lowresModel, ResultLayout.NextStageFolderName, Cascade);
        var refused = Train(Cascade, "0");
        Assert.Equal(NnUnetApp.ExitBadInput, refused.ExitCode);
        Assert.Contains("5 of 5 cases have no 3d_lowres prediction", refused.Error);
        Assert.Contains(predictions, refused.Error.Replace("\n", "").Replace("\r", ""));
        Assert.Contains("Train and validate all 3d_lowres folds first", refused.Error.Replace("\n", " ").Replace("\r", ""));

        // every low-res fold validates its cases and exports them for the cascade, in 3d_fullres' preprocessed shape
        for (int fold = 0; fold < 5; fold++)
        {
            step = Train(Lowres, fold.ToString(System.Globalization.CultureInfo.InvariantCulture));
            Assert.True(step.ExitCode == NnUnetApp.ExitOk, step.Error);
            if (fold == 3)
            {
                // four folds done: the one case of fold 4 is still missing, and the message names it
                var splits = CrossValidationSplits.Load(Path.Combine(Preprocessed, location.Name, CrossValidationSplits.FileName));
                refused = Train(Cascade, "0");
                Assert.Equal(NnUnetApp.ExitBadInput, refused.ExitCode);
                Assert.Contains("1 of 5 cases", refused.Error);
                Assert.Contains(splits[4].Val[0] + ".npy", refused.Error);
            }
        }
        string fullresData = Path.Combine(Preprocessed, location.Name, "nnUNetPlans_3d_fullres");
        foreach (string caseId in PreprocessedStore.ListCases(fullresData))
        {
            var labels = NextStagePredictions.Load(predictions, caseId, out var shape);
            Assert.Equal(PreprocessedStore.Load(fullresData, caseId).Shape, shape);
            Assert.Contains(labels, l => l > 0); // the organ is large: even a barely trained low-res net marks something
        }

        step = Train(Cascade, "0");
        Assert.True(step.ExitCode == NnUnetApp.ExitOk, step.Error);
        string cascadeModel = Path.Combine(Results, location.Name, "nnUNetTrainer__nnUNetPlans__" + Cascade);
        AssertFinishedFold(Path.Combine(cascadeModel, "fold_0"));

        // the cluster worker's backend runs a cascade job the same way
        var backend = new TorchTrainingBackend(new NnUnetPaths(Raw, Preprocessed, null), "cpu", new TorchBackendOptions { Seed = 3 });
        var spec = new JobSpec("sweep-test", "train-3d_cascade_fullres-1", 1, JobKind.Train, location.Name, "nnUNetPlans", "nnUNetTrainer",
            Cascade, 1, 1, false, Results, [Lowres, Cascade], [0, 1, 2, 3, 4], ItersPerEpoch: 2, ValIters: 1);
        var outcome = await backend.RunAsync(spec, new NoProgress(), CancellationToken.None);
        Assert.Equal(Path.Combine(cascadeModel, "fold_1", "validation", "summary.json"), outcome.SummaryPath);
        Assert.True(outcome.Metrics.ContainsKey("foreground_mean_dice"));
        AssertFinishedFold(Path.Combine(cascadeModel, "fold_1"));
    }

    private static void AssertFinishedFold(string fold)
    {
        string final = Path.Combine(fold, "checkpoint_final" + Checkpoint.Extension);
        Assert.True(File.Exists(final), final);
        using (var checkpoint = Checkpoint.Load(final)) Assert.Equal(3, checkpoint.Metadata.InputChannels);
        var summary = EvaluationSummary.Load(Path.Combine(fold, "validation", EvaluationSummary.FileName));
        Assert.Single(summary.MetricPerCase);
    }

    private sealed class NoProgress : IJobProgressSink
    {
        public void ReportEpoch(NnUnet.Cluster.Sweeps.EpochMetrics epoch) { }
    }
}
