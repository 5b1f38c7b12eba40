using System.Globalization;
using System.Text;
using NnUnet.Core.Datasets;
using NnUnet.Core.Ensembling;
using NnUnet.Core.Evaluation;
using NnUnet.Core.IO;
using NnUnet.Core.Planning;
using NnUnet.Core.Postprocessing;
using NnUnet.Core.Results;

namespace NnUnet.Core.Selection;

/// <summary>Options of <see cref="BestConfigurationFinder"/>; defaults are nnU-Net's.</summary>
public sealed record SelectionOptions
{
    /// <summary>nnU-Net's order; it decides ties (earlier wins) and the pairs (i &lt; j).</summary>
    public static readonly IReadOnlyList<string> DefaultConfigurations = ["2d", "3d_fullres", "3d_lowres", "3d_cascade_fullres"];

    public IReadOnlyList<string> Configurations { get; init; } = DefaultConfigurations;
    public string Trainer { get; init; } = "nnUNetTrainer";
    public string Plans { get; init; } = "nnUNetPlans";
    public IReadOnlyList<int> Folds { get; init; } = [0, 1, 2, 3, 4];
    public bool AllowEnsembling { get; init; } = true;
    /// <summary>Cases evaluated, ensembled or postprocessed at the same time (0 = one per core).</summary>
    public int DegreeOfParallelism { get; init; }
    /// <summary>Progress lines ("evaluating ...", "ensemble ... : 0.87").</summary>
    public Action<string>? Log { get; init; }
}

/// <summary>
/// nnU-Net v2's find_best_configuration. Per trained configuration: its folds' validation predictions are merged into
/// <c>crossval_results_folds_F/</c> and evaluated; every pair (i &lt; j) is ensembled from the saved validation
/// probabilities into <c>nnUNet_results/DatasetXXX/ensembles/ensemble___A___B___F/</c> and evaluated. The best
/// foreground_mean Dice wins, the earlier candidate on a tie (single configurations first, then pairs in order); a NaN
/// score never wins. The postprocessing decision runs on the winner; <c>inference_information.json</c>,
/// <c>inference_instructions.txt</c> and <c>best_configuration.json</c> are written to <c>nnUNet_results/DatasetXXX/</c>.
/// Reference segmentations: <c>nnUNet_preprocessed/DatasetXXX/gt_segmentations</c>, else <c>nnUNet_raw/DatasetXXX/labelsTr</c>
/// (nnU-Net uses both, for different steps; they hold the same files).
/// </summary>
public static class BestConfigurationFinder
{
    public static BestConfiguration Run(NnUnetPaths paths, string datasetNameOrId, SelectionOptions options)
    {
        if (options.Configurations.Count == 0) throw new ArgumentException("no configurations to choose from");
        if (options.Folds.Count == 0) throw new ArgumentException("no folds given");
        string datasetName = DatasetLocator.ResolveName(datasetNameOrId, paths);
        string resultsFolder = paths.ResultsDatasetFolder(datasetName);
        if (!Directory.Exists(resultsFolder)) throw new DirectoryNotFoundException($"{resultsFolder} does not exist: no trained models for {datasetName}");
        var log = options.Log ?? (_ => { });

        var models = FindModels(paths, datasetName, resultsFolder, options, log);
        var dataset = LoadDatasetJson(paths, datasetName, models[0].Folder);
        string referenceFolder = FindReferenceFolder(paths, datasetName);
        var labels = LabelOrRegion.ForDataset(dataset);

        var candidates = new List<SelectionCandidate>();
        foreach (var model in models)
        {
            string merged = ResultLayout.CrossValidationFolder(model.Folder, options.Folds);
            log($"{model.Identifier}: merging folds {string.Join(", ", options.Folds)} and evaluating");
            MergeFolds(model.Folder, merged, options.Folds, dataset.FileEnding);
            var summary = SegmentationEvaluator.EvaluateFolderAndSave(referenceFolder, merged, labels, dataset.IgnoreLabel, dataset.FileEnding, options.DegreeOfParallelism);
            candidates.Add(new SelectionCandidate(model.Identifier, "single", [model.Configuration], [model.Folder], merged, summary.ForegroundMean.Dice));
            log($"{model.Identifier}: foreground mean Dice {summary.ForegroundMean.Dice:F5}");
        }
        if (options.AllowEnsembling)
        {
            for (int i = 0; i < models.Count; i++)
            {
                for (int j = i + 1; j < models.Count; j++)
                {
                    string name = ResultLayout.EnsembleName(models[i].Identifier, models[j].Identifier, options.Folds);
                    string output = ResultLayout.EnsembleFolder(resultsFolder, name);
                    log($"{name}: ensembling and evaluating");
                    if (Directory.Exists(output)) Directory.Delete(output, recursive: true);
                    FolderEnsembler.EnsembleCrossValidation([models[i].Folder, models[j].Folder], output, options.Folds, dataset, options.DegreeOfParallelism);
                    var summary = SegmentationEvaluator.EvaluateFolderAndSave(referenceFolder, output, labels, dataset.IgnoreLabel, dataset.FileEnding, options.DegreeOfParallelism);
                    candidates.Add(new SelectionCandidate(name, "ensemble", [models[i].Configuration, models[j].Configuration],
                        [models[i].Folder, models[j].Folder], output, summary.ForegroundMean.Dice));
                    log($"{name}: foreground mean Dice {summary.ForegroundMean.Dice:F5}");
                }
            }
        }

        var best = ChooseBest(candidates);
        log($"best: {best.Name} ({best.ForegroundMeanDice:F5}); determining postprocessing");
        var postprocessing = PostprocessingDecision.DetermineForFolder(best.SourceFolder, referenceFolder, dataset, options.DegreeOfParallelism);
        foreach (var trial in postprocessing.Trials)
            log($"postprocessing: {trial.Step.Description}: Dice {trial.DiceBefore:F5} -> {trial.DiceAfter:F5}, {(trial.Accepted ? "kept" : "rejected")}");

        var result = new BestConfiguration
        {
            Dataset = datasetName,
            Trainer = options.Trainer,
            Plans = options.Plans,
            Folds = options.Folds,
            Best = best,
            ForegroundMeanDiceAfterPostprocessing = postprocessing.Postprocessed.ForegroundMean.Dice,
            PostprocessingFile = Path.Combine(best.SourceFolder, PostprocessingDecision.FileName),
            PostprocessingSteps = postprocessing.Steps.Select(s => s.Description).ToList(),
            Candidates = candidates,
        };
        result.Save(ResultLayout.BestConfigurationJson(resultsFolder));
        AtomicFile.WriteAllText(ResultLayout.InferenceInstructions(resultsFolder), InferenceInstructions(result));
        // the selection's completion marker (CompletionMarkers.SelectionMarker): written last
        WriteInferenceInformation(result, datasetName, options, models, ResultLayout.InferenceInformation(resultsFolder));
        return result;
    }

    /// <summary>Highest foreground-mean Dice; the first candidate on a tie; NaN scores never win unless all are NaN.</summary>
    public static SelectionCandidate ChooseBest(IReadOnlyList<SelectionCandidate> candidates)
    {
        if (candidates.Count == 0) throw new ArgumentException("no candidates");
        SelectionCandidate best = candidates[0];
        foreach (var c in candidates)
            if (c.ForegroundMeanDice > best.ForegroundMeanDice || (double.IsNaN(best.ForegroundMeanDice) && !double.IsNaN(c.ForegroundMeanDice))) best = c;
        return best;
    }

    private sealed record TrainedModel(string Configuration, string Identifier, string Folder);

    /// <summary>The requested configurations the plans define (a configuration the plans lack is skipped, as nnU-Net
    /// does for lowres and cascade); each must have its output folder. Without any plans file (neither in
    /// nnUNet_preprocessed nor in a model folder) the configurations that have a model folder are taken.</summary>
    private static List<TrainedModel> FindModels(NnUnetPaths paths, string datasetName, string resultsFolder, SelectionOptions options, Action<string> log)
    {
        HashSet<string>? planned = null;
        string? plansPath = null;
        if (paths.Preprocessed is not null)
        {
            string candidate = Path.Combine(paths.Preprocessed, datasetName, options.Plans + ".json");
            if (File.Exists(candidate)) plansPath = candidate;
        }
        if (plansPath is null)
        {
            foreach (string configuration in options.Configurations)
            {
                string candidate = Path.Combine(resultsFolder, ResultLayout.ModelFolderName(options.Trainer, options.Plans, configuration), ResultLayout.PlansFile);
                if (File.Exists(candidate)) { plansPath = candidate; break; }
            }
        }
        if (plansPath is not null) planned = new HashSet<string>(NnUnetPlans.Load(plansPath).ConfigurationNames, StringComparer.Ordinal);

        var models = new List<TrainedModel>();
        foreach (string configuration in options.Configurations)
        {
            if (planned is not null && !planned.Contains(configuration))
            {
                log($"{configuration}: not in the plans ({plansPath}), skipped");
                continue;
            }
            string identifier = ResultLayout.ModelFolderName(options.Trainer, options.Plans, configuration);
            string folder = Path.Combine(resultsFolder, identifier);
            if (planned is null && !Directory.Exists(folder))
            {
                log($"{configuration}: no plans file found and no model folder {folder}, skipped");
                continue;
            }
            if (!Directory.Exists(folder))
                throw new InvalidDataException($"{identifier}: no trained model folder {folder}; train all folds of {configuration} or leave it out with -c");
            models.Add(new TrainedModel(configuration, identifier, folder));
        }
        if (models.Count == 0) throw new InvalidDataException($"{datasetName}: none of the configurations {string.Join(", ", options.Configurations)} is planned and trained");
        return models;
    }

    private static DatasetJson LoadDatasetJson(NnUnetPaths paths, string datasetName, string modelFolder)
    {
        var places = new List<string> { Path.Combine(modelFolder, DatasetJson.FileName) };
        if (paths.Preprocessed is not null) places.Add(Path.Combine(paths.Preprocessed, datasetName, DatasetJson.FileName));
        if (paths.Raw is not null) places.Add(Path.Combine(paths.Raw, datasetName, DatasetJson.FileName));
        foreach (string place in places) if (File.Exists(place)) return DatasetJson.Load(place);
        throw new FileNotFoundException($"{datasetName}: no dataset.json in {string.Join(", ", places)}");
    }

    private static string FindReferenceFolder(NnUnetPaths paths, string datasetName)
    {
        var places = new List<string>();
        if (paths.Preprocessed is not null) places.Add(Path.Combine(paths.Preprocessed, datasetName, "gt_segmentations"));
        if (paths.Raw is not null) places.Add(Path.Combine(paths.Raw, datasetName, "labelsTr"));
        foreach (string place in places) if (Directory.Exists(place)) return place;
        throw new DirectoryNotFoundException($"{datasetName}: no reference segmentations (looked in {string.Join(", ", places)}; set nnUNet_preprocessed or nnUNet_raw)");
    }

    /// <summary>nnU-Net's accumulate_cv_results: a fresh folder with every fold's validation predictions; a case predicted
    /// by two folds is an error.</summary>
    public static void MergeFolds(string modelFolder, string mergedFolder, IReadOnlyList<int> folds, string fileEnding)
    {
        if (Directory.Exists(mergedFolder)) Directory.Delete(mergedFolder, recursive: true);
        Directory.CreateDirectory(mergedFolder);
        foreach (string name in new[] { ResultLayout.PlansFile, DatasetJson.FileName })
        {
            string source = Path.Combine(modelFolder, name);
            if (File.Exists(source)) File.Copy(source, Path.Combine(mergedFolder, name));
        }
        foreach (int fold in folds)
        {
            string validation = ResultLayout.ValidationFolder(ResultLayout.FoldFolder(modelFolder, fold));
            if (!Directory.Exists(validation))
                throw new InvalidDataException($"{modelFolder}: fold {fold} is missing ({validation} does not exist); train it first");
            foreach (string file in SegmentationEvaluator.ListCases(validation, fileEnding))
            {
                string target = Path.Combine(mergedFolder, Path.GetFileName(file));
                if (File.Exists(target)) throw new InvalidDataException($"{modelFolder}: more than one fold has a prediction for {Path.GetFileName(file)}");
                File.Copy(file, target);
            }
        }
    }

    private static void WriteInferenceInformation(BestConfiguration result, string datasetName, SelectionOptions options,
        List<TrainedModel> models, string path)
    {
        var selected = new List<object?>();
        foreach (string configuration in result.Best.Configurations)
            selected.Add(new Dictionary<string, object?> { ["configuration"] = configuration, ["trainer"] = options.Trainer, ["plans_identifier"] = options.Plans });
        var considered = new List<object?>();
        foreach (var m in models)
            considered.Add(new Dictionary<string, object?> { ["plans"] = options.Plans, ["configuration"] = m.Configuration, ["trainer"] = options.Trainer });
        var allResults = new Dictionary<string, object?>();
        foreach (var c in result.Candidates) allResults[c.Name] = c.ForegroundMeanDice;
        var document = new Dictionary<string, object?>
        {
            ["folds"] = result.Folds.Select(f => (object?)f).ToList(),
            ["dataset_name_or_id"] = datasetName, // nnU-Net's entry point passes the resolved name
            ["considered_models"] = considered,
            ["ensembling_allowed"] = options.AllowEnsembling,
            ["all_results"] = allResults,
            ["best_model_or_ensemble"] = new Dictionary<string, object?>
            {
                ["result_on_crossval_pre_pp"] = result.Best.ForegroundMeanDice,
                ["result_on_crossval_post_pp"] = result.ForegroundMeanDiceAfterPostprocessing,
                ["postprocessing_file"] = result.PostprocessingFile,
                ["some_plans_file"] = Path.Combine(result.Best.SourceFolder, ResultLayout.PlansFile),
                ["selected_model_or_models"] = selected,
            },
        };
        PythonJson.Save(document, path);
    }

    /// <summary>The text of inference_instructions.txt: our commands for the chosen model or ensemble.</summary>
    public static string InferenceInstructions(BestConfiguration result)
    {
        string folds = string.Join(" ", result.Folds);
        var sb = new StringBuilder();
        sb.Append("***Run inference like this:***\n\n");
        sb.Append(CultureInfo.InvariantCulture, $"nnunet predict -d {result.Dataset} -i INPUT_FOLDER -o OUTPUT_FOLDER --best\n\n");
        sb.Append(CultureInfo.InvariantCulture, $"(uses {BestConfiguration.FileName}: ");
        if (result.IsEnsemble)
            sb.Append(CultureInfo.InvariantCulture, $"the ensemble of {string.Join(" and ", result.Best.Configurations)}, folds {folds}, probabilities averaged");
        else
            sb.Append(CultureInfo.InvariantCulture, $"{result.Best.Configurations[0]}, folds {folds}");
        sb.Append(", then the postprocessing below)\n\n");
        if (result.IsEnsemble)
        {
            sb.Append("An ensemble won. Step by step, the same is:\n\n");
            for (int i = 0; i < result.Best.Configurations.Count; i++)
                sb.Append(CultureInfo.InvariantCulture, $"nnunet predict -d {result.Dataset} -i INPUT_FOLDER -o OUTPUT_FOLDER_MODEL_{i + 1} -c {result.Best.Configurations[i]} --folds {folds} --save-probabilities\n");
            sb.Append("then average the probabilities of OUTPUT_FOLDER_MODEL_1 and OUTPUT_FOLDER_MODEL_2 (argmax) into OUTPUT_FOLDER\n");
        }
        else
        {
            sb.Append("Step by step, the same is:\n\n");
            sb.Append(CultureInfo.InvariantCulture, $"nnunet predict -d {result.Dataset} -i INPUT_FOLDER -o OUTPUT_FOLDER -c {result.Best.Configurations[0]} --folds {folds}\n");
        }
        sb.Append("\n***Postprocessing (");
        sb.Append(result.PostprocessingFile);
        sb.Append("):***\n\n");
        if (result.PostprocessingSteps.Count == 0) sb.Append("none: removing components did not improve the cross-validation Dice\n");
        foreach (string step in result.PostprocessingSteps) sb.Append(step).Append('\n');
        sb.Append(CultureInfo.InvariantCulture, $"\nCross-validation foreground mean Dice: {PythonJson.FormatFloat(result.Best.ForegroundMeanDice)} before, " +
                  $"{PythonJson.FormatFloat(result.ForegroundMeanDiceAfterPostprocessing)} after postprocessing\n");
        return sb.ToString();
    }
}
