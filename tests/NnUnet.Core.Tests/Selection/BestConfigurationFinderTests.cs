using System.Text.Json.Nodes;
using NnUnet.Core.Datasets;
using NnUnet.Core.Ensembling;
using NnUnet.Core.Evaluation;
using NnUnet.Core.Imaging;
using NnUnet.Core.Imaging.Nifti;
using NnUnet.Core.Selection;
using NnUnet.Core.Results;

namespace NnUnet.Core.Tests.Selection;

/// <summary>
/// Real files in a temporary nnUNet_results tree: two trained configurations (2d, 3d_fullres), two folds, four cases of
/// 2x4 voxels, three classes. Probabilities are handmade so that the right winner is known.
/// </summary>
public sealed class BestConfigurationFinderTests : IDisposable
{
    private const string DatasetName = "Dataset901_Select";
    private const int Classes = 3, SizeY = 2, SizeX = 4, Voxels = SizeY * SizeX;
    private readonly string _root = Directory.CreateTempSubdirectory("nnunet-select").FullName;
    private NnUnetPaths Paths => new(Path.Combine(_root, "raw"), Path.Combine(_root, "preprocessed"), Path.Combine(_root, "results"));

    // reference labels of the four cases
    private static readonly int[][] Truth =
    [
        [0, 1, 1, 0, 2, 2, 0, 0],
        [1, 1, 0, 0, 0, 2, 2, 0],
        [0, 0, 1, 1, 2, 0, 0, 2],
        [2, 2, 0, 1, 1, 0, 0, 0],
    ];

    public void Dispose() => Directory.Delete(_root, recursive: true);

    /// <summary>Probabilities that argmax to <paramref name="predicted"/>; where the prediction is wrong the truth gets
    /// <paramref name="truthWhenWrong"/>, where right the predicted class gets <paramref name="confidence"/>.</summary>
    private static float[] Probabilities(int[] truth, int[] predicted, float confidence, float wrongConfidence, float truthWhenWrong)
    {
        var p = new float[Classes * Voxels];
        for (int v = 0; v < Voxels; v++)
        {
            for (int c = 0; c < Classes; c++)
            {
                float value;
                if (predicted[v] == truth[v]) value = c == truth[v] ? confidence : (1 - confidence) / 2;
                else value = c == predicted[v] ? wrongConfidence : c == truth[v] ? truthWhenWrong : 1 - wrongConfidence - truthWhenWrong;
                p[c * Voxels + v] = value;
            }
        }
        return p;
    }

    private static int[] WithErrors(int[] truth, params (int voxel, int label)[] errors)
    {
        var copy = (int[])truth.Clone();
        foreach (var (voxel, label) in errors) copy[voxel] = label;
        return copy;
    }

    private static void WriteLabels(string path, int[] labels)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var bytes = labels.Select(l => (byte)l).ToArray();
        NiftiWriter.Write(path, new MedicalImage(1, 1, SizeY, SizeX, VoxelType.UInt8, bytes, ImageGeometry.Identity(0.5, 0.5, 2)));
    }

    private void WriteDataset()
    {
        var dataset = DatasetJson.Create(["CT"], [new DatasetLabel("background", [0]), new DatasetLabel("a", [1]), new DatasetLabel("b", [2])], Truth.Length, ".nii.gz");
        string pre = Path.Combine(Paths.Preprocessed!, DatasetName);
        Directory.CreateDirectory(pre);
        dataset.Save(Path.Combine(pre, DatasetJson.FileName));
        for (int i = 0; i < Truth.Length; i++) WriteLabels(Path.Combine(pre, "gt_segmentations", $"case_{i}.nii.gz"), Truth[i]);
    }

    /// <summary>A trained configuration: fold 0 validates cases 0 and 1, fold 1 cases 2 and 3.</summary>
    private string WriteModel(string configuration, int[][] predictions, float[][] probabilities)
    {
        string folder = Path.Combine(Paths.Results!, DatasetName, $"nnUNetTrainer__nnUNetPlans__{configuration}");
        for (int i = 0; i < Truth.Length; i++)
        {
            string validation = Path.Combine(folder, $"fold_{i / 2}", "validation");
            WriteLabels(Path.Combine(validation, $"case_{i}.nii.gz"), predictions[i]);
            new ProbabilityMap(Classes, 1, SizeY, SizeX, probabilities[i]).Save(Path.Combine(validation, $"case_{i}.npz"));
        }
        File.Copy(Path.Combine(Paths.Preprocessed!, DatasetName, DatasetJson.FileName), Path.Combine(folder, DatasetJson.FileName));
        return folder;
    }

    /// <summary>Independent foreground mean Dice: per case per label 2tp/(2tp+fp+fn), NaN when both are empty, nanmean
    /// over cases, mean over labels 1 and 2.</summary>
    private static double ForegroundMeanDice(int[][] predictions)
    {
        double total = 0;
        for (int label = 1; label <= 2; label++)
        {
            double sum = 0; int n = 0;
            for (int i = 0; i < Truth.Length; i++)
            {
                int tp = 0, fp = 0, fn = 0;
                for (int v = 0; v < Voxels; v++)
                {
                    bool r = Truth[i][v] == label, p = predictions[i][v] == label;
                    if (r && p) tp++; else if (p) fp++; else if (r) fn++;
                }
                if (tp + fp + fn == 0) continue;
                sum += 2.0 * tp / (2 * tp + fp + fn); n++;
            }
            total += sum / n;
        }
        return total / 2;
    }

    private static SelectionOptions Options => new() { Configurations = ["2d", "3d_fullres"], Folds = [0, 1], DegreeOfParallelism = 2 };

    [Fact]
    public void The_ensemble_wins_when_the_models_err_on_different_voxels_with_low_confidence()
    {
        WriteDataset();
        // 2d errs (confidence 0.6) on voxel 1 of case 0 and 4 of case 2; 3d_fullres on voxel 5 of case 1 and 0 of case 3
        int[][] predA = [WithErrors(Truth[0], (1, 0)), Truth[1], WithErrors(Truth[2], (4, 1)), Truth[3]];
        int[][] predB = [Truth[0], WithErrors(Truth[1], (5, 1)), Truth[2], WithErrors(Truth[3], (0, 0))];
        WriteModel("2d", predA, Enumerable.Range(0, 4).Select(i => Probabilities(Truth[i], predA[i], 0.9f, 0.6f, 0.3f)).ToArray());
        WriteModel("3d_fullres", predB, Enumerable.Range(0, 4).Select(i => Probabilities(Truth[i], predB[i], 0.9f, 0.6f, 0.3f)).ToArray());

        var result = BestConfigurationFinder.Run(Paths, DatasetName, Options);

        Assert.Equal(3, result.Candidates.Count);
        Assert.Equal(ForegroundMeanDice(predA), result.Candidates[0].ForegroundMeanDice, 12);
        Assert.Equal(ForegroundMeanDice(predB), result.Candidates[1].ForegroundMeanDice, 12);
        Assert.Equal(1.0, result.Candidates[2].ForegroundMeanDice); // averaging corrects every error
        Assert.True(result.IsEnsemble);
        Assert.Equal("ensemble___nnUNetTrainer__nnUNetPlans__2d___nnUNetTrainer__nnUNetPlans__3d_fullres___0_1", result.Best.Name);
        Assert.Equal(["2d", "3d_fullres"], result.Best.Configurations);

        string resultsFolder = Path.Combine(Paths.Results!, DatasetName);
        string ensembleFolder = Path.Combine(resultsFolder, "ensembles", result.Best.Name);
        for (int i = 0; i < Truth.Length; i++)
        {
            var written = NiftiReader.Read(Path.Combine(ensembleFolder, $"case_{i}.nii.gz"));
            Assert.Equal(Truth[i], ((byte[])written.Voxels).Select(b => (int)b));
            Assert.Equal(ImageGeometry.Identity(0.5, 0.5, 2), written.Geometry);
        }
        // the merged cross-validation summary is nnU-Net's summary.json and holds the same numbers
        var merged = EvaluationSummary.Load(Path.Combine(resultsFolder, "nnUNetTrainer__nnUNetPlans__2d", "crossval_results_folds_0_1", "summary.json"));
        Assert.Equal(4, merged.MetricPerCase.Count);
        Assert.Equal(ForegroundMeanDice(predA), merged.ForegroundMean.Dice, 12);

        Assert.True(File.Exists(Path.Combine(ensembleFolder, "postprocessing.json")));
        Assert.True(File.Exists(Path.Combine(ensembleFolder, "postprocessed", "summary.json")));
        var loaded = BestConfiguration.Load(Path.Combine(resultsFolder, BestConfiguration.FileName));
        Assert.Equal(result.Best.Name, loaded.Best.Name);
        Assert.Equal(3, loaded.Candidates.Count);
        var info = JsonNode.Parse(File.ReadAllText(Path.Combine(resultsFolder, ResultLayout.InferenceInformationFile)))!;
        Assert.Equal(2, info["best_model_or_ensemble"]!["selected_model_or_models"]!.AsArray().Count);
        Assert.Equal(1.0, info["all_results"]![result.Best.Name]!.GetValue<double>());
        Assert.Contains("--best", File.ReadAllText(Path.Combine(resultsFolder, ResultLayout.InferenceInstructionsFile)));
    }

    [Fact]
    public void A_single_model_wins_when_the_other_is_confidently_wrong()
    {
        WriteDataset();
        // 2d is right everywhere (0.9); 3d_fullres is wrong with 0.95 on several voxels, which outvotes 2d in the average
        int[][] predB = [WithErrors(Truth[0], (1, 2), (4, 0)), WithErrors(Truth[1], (0, 2)), Truth[2], WithErrors(Truth[3], (3, 2))];
        WriteModel("2d", Truth, Enumerable.Range(0, 4).Select(i => Probabilities(Truth[i], Truth[i], 0.9f, 0.6f, 0.3f)).ToArray());
        WriteModel("3d_fullres", predB, Enumerable.Range(0, 4).Select(i => Probabilities(Truth[i], predB[i], 0.9f, 0.95f, 0.025f)).ToArray());

        var result = BestConfigurationFinder.Run(Paths, DatasetName, Options);

        Assert.False(result.IsEnsemble);
        Assert.Equal("nnUNetTrainer__nnUNetPlans__2d", result.Best.Name);
        Assert.Equal(1.0, result.Candidates[0].ForegroundMeanDice);
        Assert.Equal(ForegroundMeanDice(predB), result.Candidates[1].ForegroundMeanDice, 12);
        // the average follows the confident wrong voxels: the ensemble predicts what 3d_fullres predicts
        Assert.Equal(ForegroundMeanDice(predB), result.Candidates[2].ForegroundMeanDice, 12);
        Assert.Equal(["2d"], result.Best.Configurations);
    }

    [Fact]
    public void On_a_tie_the_earlier_candidate_wins()
    {
        WriteDataset();
        WriteModel("2d", Truth, Enumerable.Range(0, 4).Select(i => Probabilities(Truth[i], Truth[i], 0.9f, 0.6f, 0.3f)).ToArray());
        WriteModel("3d_fullres", Truth, Enumerable.Range(0, 4).Select(i => Probabilities(Truth[i], Truth[i], 0.8f, 0.6f, 0.3f)).ToArray());

        var result = BestConfigurationFinder.Run(Paths, DatasetName, Options);

        Assert.All(result.Candidates, c => Assert.Equal(1.0, c.ForegroundMeanDice));
        Assert.Equal("nnUNetTrainer__nnUNetPlans__2d", result.Best.Name);
    }

    [Fact]
    public void A_case_predicted_by_two_folds_is_an_error_naming_it()
    {
        WriteDataset();
        string model = WriteModel("2d", Truth, Enumerable.Range(0, 4).Select(i => Probabilities(Truth[i], Truth[i], 0.9f, 0.6f, 0.3f)).ToArray());
        WriteModel("3d_fullres", Truth, Enumerable.Range(0, 4).Select(i => Probabilities(Truth[i], Truth[i], 0.9f, 0.6f, 0.3f)).ToArray());
        File.Copy(Path.Combine(model, "fold_0", "validation", "case_0.nii.gz"), Path.Combine(model, "fold_1", "validation", "case_0.nii.gz"));
        var ex = Assert.Throws<InvalidDataException>(() => BestConfigurationFinder.Run(Paths, DatasetName, Options));
        Assert.Contains("case_0.nii.gz", ex.Message);
    }

    /// <summary>nnUNetPlans.json in nnUNet_preprocessed with the given configurations (their content is not read).</summary>
    private void WritePlans(params string[] configurations)
    {
        var configs = new JsonObject();
        foreach (string c in configurations) configs[c] = new JsonObject { ["data_identifier"] = "nnUNetPlans_" + c };
        var plans = new JsonObject
        {
            ["dataset_name"] = DatasetName,
            ["original_median_spacing_after_transp"] = new JsonArray(2.0, 0.5, 0.5),
            ["original_median_shape_after_transp"] = new JsonArray(1, SizeY, SizeX),
            ["transpose_forward"] = new JsonArray(0, 1, 2),
            ["transpose_backward"] = new JsonArray(0, 1, 2),
            ["configurations"] = configs,
            ["foreground_intensity_properties_per_channel"] = new JsonObject(),
        };
        File.WriteAllText(Path.Combine(Paths.Preprocessed!, DatasetName, "nnUNetPlans.json"), plans.ToJsonString());
    }

    [Fact]
    public void A_planned_configuration_without_model_folder_is_an_error_naming_it()
    {
        WriteDataset();
        WritePlans("2d", "3d_fullres");
        WriteModel("2d", Truth, Enumerable.Range(0, 4).Select(i => Probabilities(Truth[i], Truth[i], 0.9f, 0.6f, 0.3f)).ToArray());
        var ex = Assert.Throws<InvalidDataException>(() => BestConfigurationFinder.Run(Paths, DatasetName, Options));
        Assert.Contains("nnUNetTrainer__nnUNetPlans__3d_fullres", ex.Message);
    }

    [Fact]
    public void Configurations_the_plans_lack_are_skipped()
    {
        WriteDataset();
        WritePlans("2d", "3d_fullres");
        WriteModel("2d", Truth, Enumerable.Range(0, 4).Select(i => Probabilities(Truth[i], Truth[i], 0.9f, 0.6f, 0.3f)).ToArray());
        WriteModel("3d_fullres", Truth, Enumerable.Range(0, 4).Select(i => Probabilities(Truth[i], Truth[i], 0.9f, 0.6f, 0.3f)).ToArray());
        var result = BestConfigurationFinder.Run(Paths, DatasetName, Options with { Configurations = SelectionOptions.DefaultConfigurations });
        Assert.Equal(["nnUNetTrainer__nnUNetPlans__2d", "nnUNetTrainer__nnUNetPlans__3d_fullres"], result.Candidates.Take(2).Select(c => c.Name));
        Assert.Equal(3, result.Candidates.Count);
    }
}
