using NnUnet.Core.Results;

namespace NnUnet.Core.Tests.Results;

/// <summary>The results tree spelled as nnU-Net v2 spells it (nnunetv2/utilities/file_path_utilities.py, run_training.py, find_best_configuration.py).</summary>
public sealed class ResultLayoutTests
{
    private static readonly string Root = Path.Combine(Path.GetTempPath(), "results");
    private static string Under(params string[] parts) => Path.Combine([Root, .. parts]);

    [Fact]
    public void ModelAndFoldFolders_AreNnUnetsNames()
    {
        Assert.Equal("nnUNetTrainer__nnUNetPlans__3d_fullres", ResultLayout.ModelFolderName("nnUNetTrainer", "nnUNetPlans", "3d_fullres"));
        string model = ResultLayout.ModelFolder(Root, "Dataset004_Hippocampus", "nnUNetTrainer", "nnUNetPlans", "2d");
        Assert.Equal(Under("Dataset004_Hippocampus", "nnUNetTrainer__nnUNetPlans__2d"), model);
        Assert.Equal(Path.Combine(model, "fold_3"), ResultLayout.FoldFolder(model, 3));
        Assert.Equal(Path.Combine(model, "fold_all"), ResultLayout.FoldFolder(model, ResultLayout.AllFolds));
        Assert.Equal(ResultLayout.FoldFolder(model, 1), ResultLayout.FoldFolder(Root, "Dataset004_Hippocampus", "nnUNetTrainer", "nnUNetPlans", "2d", 1));
    }

    [Fact]
    public void FilesOfAFold_AreNnUnetsNames_WithOurCheckpointExtension()
    {
        string fold = Under("D", "T__P__C", "fold_0");
        Assert.Equal(Path.Combine(fold, "checkpoint_final.ckpt"), ResultLayout.Checkpoint(fold, ResultLayout.CheckpointFinal));
        Assert.Equal(Path.Combine(fold, "checkpoint_latest.ckpt"), ResultLayout.Checkpoint(fold, ResultLayout.CheckpointLatest));
        Assert.Equal(Path.Combine(fold, "checkpoint_best.ckpt"), ResultLayout.Checkpoint(fold, ResultLayout.CheckpointBest));
        Assert.Equal(Path.Combine(fold, "training_log.txt"), ResultLayout.TrainingLog(fold));
        Assert.Equal(Path.Combine(fold, "progress.png"), ResultLayout.ProgressPlot(fold));
        Assert.Equal(Path.Combine(fold, "validation", "summary.json"), ResultLayout.ValidationSummary(fold));
    }

    [Fact]
    public void SelectionAndCascadeFolders_AreNnUnetsNames()
    {
        string dataset = Under("Dataset004_Hippocampus");
        string lowres = Path.Combine(dataset, "nnUNetTrainer__nnUNetPlans__3d_lowres");
        Assert.Equal(Path.Combine(lowres, "predicted_next_stage", "3d_cascade_fullres"), ResultLayout.NextStageFolder(lowres, "3d_cascade_fullres"));
        Assert.Equal(Path.Combine(lowres, "crossval_results_folds_0_1_2_3_4"), ResultLayout.CrossValidationFolder(lowres, [0, 1, 2, 3, 4]));
        string name = ResultLayout.EnsembleName("nnUNetTrainer__nnUNetPlans__2d", "nnUNetTrainer__nnUNetPlans__3d_fullres", [0, 1]);
        Assert.Equal("ensemble___nnUNetTrainer__nnUNetPlans__2d___nnUNetTrainer__nnUNetPlans__3d_fullres___0_1", name);
        Assert.Equal(Path.Combine(dataset, "ensembles", name), ResultLayout.EnsembleFolder(dataset, name));
        Assert.Equal(Path.Combine(dataset, "inference_information.json"), ResultLayout.InferenceInformation(dataset));
        Assert.Equal(Path.Combine(dataset, "inference_instructions.txt"), ResultLayout.InferenceInstructions(dataset));
        Assert.Equal(Path.Combine(dataset, "best_configuration.json"), ResultLayout.BestConfigurationJson(dataset));
        Assert.Equal(Path.Combine(dataset, "sweeps.db"), ResultLayout.DefaultSweepDatabase(Root, "Dataset004_Hippocampus"));
    }

    [Fact]
    public void ModelFolderNames_ParseBack_AndASiblingIsTheSameTrainerAndPlans()
    {
        Assert.True(ResultLayout.TryParseModelFolderName("nnUNetTrainer__nnUNetResEncUNetMPlans__3d_lowres", out var trainer, out var plans, out var configuration));
        Assert.Equal(("nnUNetTrainer", "nnUNetResEncUNetMPlans", "3d_lowres"), (trainer, plans, configuration));
        Assert.False(ResultLayout.TryParseModelFolderName("nnUNetTrainer__3d_lowres", out _, out _, out _));
        Assert.False(ResultLayout.TryParseModelFolderName("a____b", out _, out _, out _));
        string cascade = Under("D", "nnUNetTrainer__nnUNetPlans__3d_cascade_fullres");
        Assert.Equal(Under("D", "nnUNetTrainer__nnUNetPlans__3d_lowres"), ResultLayout.SiblingModelFolder(cascade + Path.DirectorySeparatorChar, "3d_lowres"));
        var error = Assert.Throws<ArgumentException>(() => ResultLayout.SiblingModelFolder(Under("D", "not_a_model"), "2d"));
        Assert.Contains("not_a_model", error.Message);
    }
}
