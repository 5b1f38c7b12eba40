using System.Text.Json;
using System.Text.Json.Nodes;
using NnUnet.Core.Datasets;
using NnUnet.Core.Imaging;
using NnUnet.Core.Planning;
using NnUnet.Core.Preprocessing;

namespace NnUnet.Training.Tests.Inference;

/// <summary>Small plans, dataset.json and case properties for export and validation tests.</summary>
internal static class InferenceTestData
{
    public static NnUnetPlans Plans(int[] transposeForward, Dictionary<string, (double[] Spacing, int[] Patch, string? Next, string? Previous)> configurations)
    {
        var backward = PreprocessingInverse.Backward(transposeForward);
        var configs = new Dictionary<string, JsonObject>();
        foreach (var (name, c) in configurations)
        {
            var configuration = new PlansConfiguration
            {
                DataIdentifier = "nnUNetPlans_" + name,
                BatchSize = 2,
                PatchSize = c.Patch,
                MedianImageSizeInVoxels = c.Patch.Select(p => (double)p).ToArray(),
                Spacing = c.Spacing,
                NormalizationSchemes = ["ZScoreNormalization"],
                UseMaskForNorm = [false],
                Architecture = new ArchitectureSpec
                {
                    ArchKwargs = new ArchitectureKwargs
                    {
                        NStages = 1, FeaturesPerStage = [4], ConvOp = c.Patch.Length == 3 ? "torch.nn.modules.conv.Conv3d" : "torch.nn.modules.conv.Conv2d",
                        KernelSizes = [c.Patch.Select(_ => 3).ToArray()], Strides = [c.Patch.Select(_ => 1).ToArray()],
                        NConvPerStage = [2], NConvPerStageDecoder = [],
                    },
                },
                BatchDice = true,
                PreviousStage = c.Previous,
                NextStage = c.Next is null ? null : [c.Next],
            };
            configs[name] = JsonSerializer.SerializeToNode(configuration, NnUnetPlans.JsonOptions)!.AsObject();
        }
        return new NnUnetPlans
        {
            DatasetName = "Dataset999_Test",
            OriginalMedianSpacingAfterTransp = [1, 1, 1],
            OriginalMedianShapeAfterTransp = [8, 8, 8],
            TransposeForward = transposeForward,
            TransposeBackward = backward,
            Configurations = configs,
            ForegroundIntensityPropertiesPerChannel = new(),
        };
    }

    public static DatasetJson Labels(int count) =>
        DatasetJson.Create(["CT"], Enumerable.Range(0, count).Select(i => new DatasetLabel(i == 0 ? "background" : $"l{i}", [i])).ToList(), 2, ".nii.gz");

    public static DatasetJson Regions() =>
        DatasetJson.Create(["CT"], [new DatasetLabel("background", [0]), new DatasetLabel("whole", [1, 2]), new DatasetLabel("core", [2])], 2, ".nii.gz",
            regionsClassOrder: [1, 2]);

    /// <param name="rawShape">(z, y, x) raw array shape.</param>
    /// <param name="bbox">[start, end) per raw axis.</param>
    public static CaseProperties Properties(int[] rawShape, int[][] bbox, double[] rawSpacing, int[] transposeForward)
    {
        int[] croppedRaw = [bbox[0][1] - bbox[0][0], bbox[1][1] - bbox[1][0], bbox[2][1] - bbox[2][0]];
        return new CaseProperties
        {
            Geometry = new ImageGeometry([rawSpacing[2], rawSpacing[1], rawSpacing[0]], [10, -5, 3], [1, 0, 0, 0, 1, 0, 0, 0, 1]),
            Spacing = rawSpacing,
            ShapeBeforeCropping = rawShape,
            BboxUsedForCropping = bbox,
            ShapeAfterCroppingAndBeforeResampling = Transposition.Permute(croppedRaw, transposeForward),
        };
    }
}
