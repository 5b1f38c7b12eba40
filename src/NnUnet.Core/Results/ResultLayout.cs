using System.Globalization;
using NnUnet.Core.Evaluation;

namespace NnUnet.Core.Results;

/// <summary>
/// nnU-Net v2's folder tree under <c>nnUNet_results</c>, in one place (the trainer, the validator, the predictor, the
/// selection, the cluster, the dashboard and the CLI all name their paths through it):
/// <code>
/// nnUNet_results/DATASET/
///   TRAINER__PLANS__CONFIG/                   model folder: plans.json, dataset.json, dataset_fingerprint.json
///     fold_F/                                 checkpoint_{final,latest,best}.ckpt, training_log.txt, progress.{json,png},
///                                             attempt.fence (a sweep's current attempt, see WriteFence; ours)
///       validation/                           CASE{file_ending} (+ CASE.npz), summary.json
///     predicted_next_stage/NEXT_CONFIG/       a low-res stage's predictions for the cascade
///     crossval_results_folds_0_1_2_3_4/       merged validation of the folds, summary.json, postprocessing.json
///   ensembles/ensemble___A___B___0_1_2_3_4/   pair ensembles of the selection
///   best_configuration.json, inference_information.json, inference_instructions.txt
///   predictions_imagesTs/                     the sweep's test-set prediction, prediction_manifest.json written last (ours)
///   sweeps.db                                 the sweep journal (ours)
/// </code>
/// File names owned by the type that reads and writes the file (<see cref="EvaluationSummary.FileName"/>,
/// <see cref="TrainingCurves.FileName"/>, postprocessing.json, best_configuration.json) stay there; this class puts them
/// in the tree.
/// </summary>
public static class ResultLayout
{
    /// <summary>nnU-Net's fold "all": train and validate on every case; its folder is <c>fold_all</c>.</summary>
    public const int AllFolds = -1;

    /// <summary>The trainer's checkpoint format (not a PyTorch pickle, hence not .pth): nnU-Net's names with this extension.</summary>
    public const string CheckpointExtension = ".ckpt";
    public const string CheckpointFinal = "checkpoint_final";
    public const string CheckpointLatest = "checkpoint_latest";
    public const string CheckpointBest = "checkpoint_best";
    /// <summary>Suffix of the previous <c>checkpoint_latest</c>, kept while the new one is written.</summary>
    public const string PreviousCheckpointSuffix = ".prev";

    public const string TrainingLogFile = "training_log.txt";
    public const string ProgressPlotFile = "progress.png";
    /// <summary>The plans as copied into a model folder (nnU-Net renames <c>PLANS.json</c> to <c>plans.json</c> there).</summary>
    public const string PlansFile = "plans.json";
    public const string FingerprintFile = "dataset_fingerprint.json";
    public const string ValidationFolderName = "validation";
    public const string NextStageFolderName = "predicted_next_stage";
    public const string EnsemblesFolderName = "ensembles";
    public const string InferenceInformationFile = "inference_information.json";
    public const string InferenceInstructionsFile = "inference_instructions.txt";
    /// <summary>Where a sweep's prediction job writes the test set's predictions (ours; nnU-Net leaves it to the user).</summary>
    public const string TestPredictionsFolderName = "predictions_imagesTs";
    /// <summary>The sweep journal of an embedded or single-coordinator sweep (ours).</summary>
    public const string SweepDatabaseFile = "sweeps.db";

    private const string Separator = "__";

    public static string DatasetFolder(string resultsRoot, string dataset) => Path.Combine(resultsRoot, dataset);

    /// <summary><c>TRAINER__PLANS__CONFIG</c>, nnU-Net's model folder name.</summary>
    public static string ModelFolderName(string trainer, string plans, string configuration) =>
        $"{trainer}{Separator}{plans}{Separator}{configuration}";

    /// <summary>Splits a model folder name <c>TRAINER__PLANS__CONFIG</c>; false for any other name.</summary>
    public static bool TryParseModelFolderName(string folderName, out string trainer, out string plans, out string configuration)
    {
        var parts = folderName.Split(Separator);
        bool ok = parts.Length == 3 && parts.All(p => p.Length > 0);
        (trainer, plans, configuration) = ok ? (parts[0], parts[1], parts[2]) : ("", "", "");
        return ok;
    }

    public static string ModelFolder(string resultsRoot, string dataset, string trainer, string plans, string configuration) =>
        Path.Combine(DatasetFolder(resultsRoot, dataset), ModelFolderName(trainer, plans, configuration));

    /// <summary>A sibling model folder of the same trainer and plans (a cascade's previous stage).</summary>
    public static string SiblingModelFolder(string modelFolder, string configuration)
    {
        string full = Path.TrimEndingDirectorySeparator(Path.GetFullPath(modelFolder));
        if (!TryParseModelFolderName(Path.GetFileName(full), out var trainer, out var plans, out _))
            throw new ArgumentException($"{modelFolder}: a model folder is named TRAINER{Separator}PLANS{Separator}CONFIG");
        return Path.Combine(Path.GetDirectoryName(full)!, ModelFolderName(trainer, plans, configuration));
    }

    /// <summary>"3" or "all" (<see cref="AllFolds"/>), as nnU-Net names folds.</summary>
    public static string FoldName(int fold) => fold == AllFolds ? "all" : fold.ToString(CultureInfo.InvariantCulture);

    public static string FoldFolderName(int fold) => "fold_" + FoldName(fold);

    public static string FoldFolder(string modelFolder, int fold) => Path.Combine(modelFolder, FoldFolderName(fold));

    public static string FoldFolder(string resultsRoot, string dataset, string trainer, string plans, string configuration, int fold) =>
        FoldFolder(ModelFolder(resultsRoot, dataset, trainer, plans, configuration), fold);

    /// <summary><c>FOLD/CHECKPOINT.ckpt</c> for one of <see cref="CheckpointFinal"/>, <see cref="CheckpointLatest"/>, <see cref="CheckpointBest"/>.</summary>
    public static string Checkpoint(string foldFolder, string checkpointName) => Path.Combine(foldFolder, checkpointName + CheckpointExtension);

    public static string TrainingLog(string foldFolder) => Path.Combine(foldFolder, TrainingLogFile);

    public static string ProgressPlot(string foldFolder) => Path.Combine(foldFolder, ProgressPlotFile);

    public static string ValidationFolder(string foldFolder) => Path.Combine(foldFolder, ValidationFolderName);

    /// <summary><c>FOLD/validation/summary.json</c>: the fold's evaluation.</summary>
    public static string ValidationSummary(string foldFolder) => Path.Combine(ValidationFolder(foldFolder), EvaluationSummary.FileName);

    /// <summary><c>MODEL/predicted_next_stage/NEXT_CONFIG</c>: a low-res model's predictions for the next (cascade) stage.</summary>
    public static string NextStageFolder(string modelFolder, string nextConfiguration) =>
        Path.Combine(Path.GetFullPath(modelFolder), NextStageFolderName, nextConfiguration);

    /// <summary><c>NEXT_STAGE_FOLDER/CASE.npy</c>: one case's label map for the next stage (see <see cref="NextStageFolder"/>).</summary>
    public static string NextStageFile(string nextStageFolder, string caseId) => Path.Combine(nextStageFolder, caseId + ".npy");

    /// <summary><c>crossval_results_folds_0_1_2</c>: a model's folds merged for the selection.</summary>
    public static string CrossValidationFolderName(IEnumerable<int> folds) => "crossval_results_folds_" + FoldsText(folds);

    public static string CrossValidationFolder(string modelFolder, IEnumerable<int> folds) => Path.Combine(modelFolder, CrossValidationFolderName(folds));

    /// <summary><c>ensemble___MODEL_A___MODEL_B___0_1_2</c> (model folder names, nnU-Net's).</summary>
    public static string EnsembleName(string modelA, string modelB, IEnumerable<int> folds) =>
        $"ensemble___{modelA}___{modelB}___{FoldsText(folds)}";

    public static string EnsembleFolder(string datasetFolder, string ensembleName) => Path.Combine(datasetFolder, EnsemblesFolderName, ensembleName);

    public static string InferenceInformation(string datasetFolder) => Path.Combine(datasetFolder, InferenceInformationFile);

    public static string InferenceInstructions(string datasetFolder) => Path.Combine(datasetFolder, InferenceInstructionsFile);

    /// <summary><c>DATASET/best_configuration.json</c>: the selection's result (<see cref="Selection.BestConfiguration"/>).</summary>
    public static string BestConfigurationJson(string datasetFolder) => Path.Combine(datasetFolder, Selection.BestConfiguration.FileName);

    public static string TestPredictions(string datasetFolder) => Path.Combine(datasetFolder, TestPredictionsFolderName);

    /// <summary>Default journal of an embedded or single-coordinator sweep: next to the dataset's results.</summary>
    public static string DefaultSweepDatabase(string resultsRoot, string dataset) => Path.Combine(DatasetFolder(resultsRoot, dataset), SweepDatabaseFile);

    private static string FoldsText(IEnumerable<int> folds) => string.Join("_", folds);
}
