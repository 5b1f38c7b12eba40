using System.Text.Json;
using NnUnet.Core.Datasets;
using NnUnet.Core.Fingerprinting;
using NnUnet.Core.Planning;

namespace NnUnet.Core.Tests.Preprocessing;

/// <summary>Small plans / dataset.json objects for preprocessing tests.</summary>
internal static class TestPlans
{
    public static PlansConfiguration Configuration(string dataIdentifier, double[] spacing, string[] schemes, bool[] useMask) => new()
    {
        DataIdentifier = dataIdentifier,
        BatchSize = 2,
        PatchSize = spacing.Length == 3 ? [16, 16, 16] : [16, 16],
        MedianImageSizeInVoxels = spacing.Length == 3 ? [10, 10, 10] : [10, 10],
        Spacing = spacing,
        NormalizationSchemes = schemes,
        UseMaskForNorm = useMask,
        BatchDice = false,
        Architecture = new ArchitectureSpec
        {
            ArchKwargs = new ArchitectureKwargs
            {
                NStages = 2, FeaturesPerStage = [8, 16], ConvOp = spacing.Length == 3 ? "torch.nn.modules.conv.Conv3d" : "torch.nn.modules.conv.Conv2d",
                KernelSizes = [[3, 3, 3], [3, 3, 3]], Strides = [[1, 1, 1], [2, 2, 2]], NConvPerStage = [2, 2], NConvPerStageDecoder = [2],
            },
        },
    };

    public static NnUnetPlans Plans(int[] transposeForward, Dictionary<string, IntensityProperties> intensities, params (string Name, PlansConfiguration Config)[] configurations)
    {
        var dict = new Dictionary<string, System.Text.Json.Nodes.JsonObject>();
        foreach (var (name, config) in configurations) dict[name] = JsonSerializer.SerializeToNode(config, NnUnetPlans.JsonOptions)!.AsObject();
        var backward = new int[3];
        for (int i = 0; i < 3; i++) backward[transposeForward[i]] = i;
        return new NnUnetPlans
        {
            DatasetName = "Dataset999_Test",
            OriginalMedianSpacingAfterTransp = [1, 1, 1],
            OriginalMedianShapeAfterTransp = [10, 10, 10],
            TransposeForward = transposeForward,
            TransposeBackward = backward,
            Configurations = dict,
            ForegroundIntensityPropertiesPerChannel = intensities,
        };
    }

    public static DatasetJson Dataset(int channels, params int[] labels)
    {
        var names = new List<string>();
        for (int c = 0; c < channels; c++) names.Add(c == 0 ? "CT" : "MR" + c);
        var list = new List<DatasetLabel> { new("background", [0]) };
        foreach (int l in labels) list.Add(new DatasetLabel("class" + l, [l]));
        return DatasetJson.Create(names, list, 1, ".nii.gz");
    }
}
