using System.Text.Json;
using System.Text.Json.Nodes;
using NnUnet.Core.Datasets;
using NnUnet.Core.Imaging;
using NnUnet.Core.Imaging.Nifti;
using NnUnet.Core.Planning;
using NnUnet.Core.Postprocessing;
using NnUnet.Core.Selection;
using NnUnet.Core.Preprocessing;
using NnUnet.Training.Network;
using NnUnet.Training.Trainer;
using TorchSharp;
using NnUnet.Core.Results;

namespace NnUnet.TestSupport;

/// <summary>
/// A real, tiny nnUNet_results tree: model folders <c>TRAINER__PLANS__CONFIG</c> with plans.json, dataset.json and
/// <c>fold_F/checkpoint_final.ckpt</c> of seeded random PlainConvUNets (2 stages), and oblique raw NIfTI input cases.
/// Used by the Training and CLI prediction tests.
/// </summary>
public sealed class PredictionFixture : IDisposable
{
    public const string DatasetName = "Dataset777_Predict";
    public static readonly int[] TransposeForward = [0, 2, 1];

    public PredictionFixture(string prefix)
    {
        Root = Directory.CreateTempSubdirectory(prefix).FullName;
        Directory.CreateDirectory(ResultsDataset);
        Directory.CreateDirectory(Input);
    }

    public string Root { get; }
    public string Results => Path.Combine(Root, "results");
    public string ResultsDataset => Path.Combine(Results, DatasetName);
    public string Input => Path.Combine(Root, "input");
    public string Output => Path.Combine(Root, "output");
    public NnUnetPaths Paths => new(null, null, Results);

    public void Dispose() => Directory.Delete(Root, recursive: true);

    public static DatasetJson Dataset() =>
        DatasetJson.Create(["CT"], [new DatasetLabel("background", [0]), new DatasetLabel("organ", [1]), new DatasetLabel("tumor", [2])], 3, ".nii.gz");

    /// <summary>Plans with 3d_fullres, 3d_lowres (coarser spacing) and 3d_cascade_fullres; spacings in transposed order.</summary>
    public static NnUnetPlans Plans()
    {
        JsonObject Config(string identifier, double[] spacing, string? previous = null, string? next = null)
        {
            var configuration = new PlansConfiguration
            {
                DataIdentifier = identifier, BatchSize = 2, PatchSize = [4, 8, 8], MedianImageSizeInVoxels = [6, 10, 9], Spacing = spacing,
                NormalizationSchemes = ["ZScoreNormalization"], UseMaskForNorm = [false],
                Architecture = new ArchitectureSpec
                {
                    ArchKwargs = new ArchitectureKwargs
                    {
                        NStages = 2, FeaturesPerStage = [4, 8], ConvOp = "torch.nn.modules.conv.Conv3d",
                        KernelSizes = [[3, 3, 3], [3, 3, 3]], Strides = [[1, 1, 1], [2, 2, 2]], NConvPerStage = [1, 1], NConvPerStageDecoder = [1],
                    },
                },
                BatchDice = true, PreviousStage = previous, NextStage = next is null ? null : [next],
            };
            return JsonSerializer.SerializeToNode(configuration, NnUnetPlans.JsonOptions)!.AsObject();
        }
        return new NnUnetPlans
        {
            DatasetName = DatasetName, OriginalMedianSpacingAfterTransp = [1.5, 1, 1], OriginalMedianShapeAfterTransp = [6, 10, 9],
            TransposeForward = TransposeForward, TransposeBackward = PreprocessingInverse.Backward(TransposeForward),
            Configurations = new()
            {
                ["3d_fullres"] = Config("nnUNetPlans_3d_fullres", [1.5, 1, 1]),
                ["3d_lowres"] = Config("nnUNetPlans_3d_lowres", [2, 1.6, 1.6], next: "3d_cascade_fullres"),
                ["3d_cascade_fullres"] = Config("nnUNetPlans_3d_fullres", [1.5, 1, 1], previous: "3d_lowres"),
            },
            ForegroundIntensityPropertiesPerChannel = new(),
        };
    }

    /// <summary>Writes <c>nnUNetTrainer__nnUNetPlans__CONFIG</c> with a seeded random network per fold; returns the folder.</summary>
    public string WriteModel(string configuration, params int[] folds)
    {
        var plans = Plans();
        var dataset = Dataset();
        string folder = Path.Combine(ResultsDataset, ResultLayout.ModelFolderName("nnUNetTrainer", "nnUNetPlans", configuration));
        Directory.CreateDirectory(folder);
        File.WriteAllText(Path.Combine(folder, "plans.json"), plans.ToJson());
        dataset.Save(Path.Combine(folder, DatasetJson.FileName));
        var config = plans.GetConfiguration(configuration);
        int inputChannels = config.PreviousStage is null ? 1 : 1 + 2; // cascade: + one-hot of the 2 foreground labels
        foreach (int fold in folds)
        {
            torch.manual_seed(1000 * fold + configuration.Length);
            using var network = new PlainConvUNet(config.Architecture.ArchKwargs, inputChannels, 3, deepSupervision: true);
            var metadata = new CheckpointMetadata
            {
                TrainerName = "nnUNetTrainer", PlansName = "nnUNetPlans", DatasetName = DatasetName, Configuration = configuration, Fold = fold.ToString(),
                Architecture = config.Architecture.ArchKwargs, InputChannels = inputChannels, NumClasses = 3, PatchSize = config.PatchSize,
                MirrorAxes = [0, 1, 2], MaxEpochs = 1, ItersPerEpoch = 1, ValIters = 1, Seed = fold, Epoch = 1, Curves = new TrainingCurves(),
            };
            Checkpoint.Save(ResultLayout.Checkpoint(ResultLayout.FoldFolder(folder, fold), ResultLayout.CheckpointFinal), metadata, network.state_dict(), []);
        }
        return folder;
    }

    /// <summary>An oblique, anisotropic raw image (z, y, x) = (5, 11, 9): a bright blob in noise.</summary>
    public static MedicalImage Image(int seed)
    {
        const int sz = 5, sy = 11, sx = 9;
        var rng = new Random(seed);
        var values = new float[sz * sy * sx];
        for (int z = 0; z < sz; z++)
        for (int y = 0; y < sy; y++)
        for (int x = 0; x < sx; x++)
        {
            bool inside = Math.Abs(z - 2) <= 1 && Math.Abs(y - 5) <= 3 && Math.Abs(x - 4) <= 2;
            values[(z * sy + y) * sx + x] = (inside ? 100f : 10f) + (float)rng.NextDouble() * 5;
        }
        double c = Math.Cos(0.3), s = Math.Sin(0.3);
        // rotation about z, column-major direction as ITK (row-major 3x3)
        var geometry = new ImageGeometry([0.9, 1.1, 1.7], [-12.5, 30.25, 7], [c, -s, 0, s, c, 0, 0, 0, 1]);
        return MedicalImage.FromFloat(values, 1, sz, sy, sx, geometry);
    }

    public string WriteInput(string caseId, int seed)
    {
        string path = Path.Combine(Input, RawDataset.ImageFileName(caseId, 0, ".nii.gz"));
        NiftiWriter.Write(path, Image(seed));
        return path;
    }

    /// <summary>best_configuration.json choosing a single model (one configuration) or the pair ensemble, with a postprocessing.json that keeps the largest
    /// foreground component; returns the postprocessing file.</summary>
    public string WriteBestConfiguration(string[] configurations)
    {
        string source = Path.Combine(ResultsDataset, "ensembles", "chosen");
        Directory.CreateDirectory(source);
        string postprocessing = Path.Combine(source, PostprocessingDecision.FileName);
        File.WriteAllText(postprocessing,
            """{"postprocessing_fns": ["remove_all_but_largest_component_from_segmentation"], "postprocessing_kwargs": [{"labels_or_regions": [1, 2]}]}""");
        var folders = configurations.Select(c => Path.Combine(ResultsDataset, ResultLayout.ModelFolderName("nnUNetTrainer", "nnUNetPlans", c))).ToList();
        var ensemble = new SelectionCandidate(configurations.Length == 1 ? Path.GetFileName(folders[0]) : "ensemble___a___b___0", configurations.Length == 1 ? "single" : "ensemble", configurations, folders, source, 0.8);
        new BestConfiguration
        {
            Dataset = PredictionFixture.DatasetName, Trainer = "nnUNetTrainer", Plans = "nnUNetPlans", Folds = [0], Best = ensemble,
            ForegroundMeanDiceAfterPostprocessing = 0.81, PostprocessingFile = postprocessing, PostprocessingSteps = ["keep largest component of foreground"],
            Candidates = [ensemble],
        }.Save(Path.Combine(ResultsDataset, BestConfiguration.FileName));
        return postprocessing;
    }
}
