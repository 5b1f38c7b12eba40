using System.Text.Json;
using NnUnet.Core.Datasets;
using NnUnet.Core.Fingerprinting;
using NnUnet.Core.Imaging;
using NnUnet.Core.Imaging.Nifti;
using NnUnet.Core.Planning;
using NnUnet.Core.Preprocessing;

namespace NnUnet.Cli.Tests.Preprocessing;

/// <summary>`nnunet preprocess` end to end on a tiny NIfTI dataset (real files, real reader).</summary>
[Collection(ConsoleCollection.Name)]
public sealed class PreprocessCommandTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("cli-preprocess-").FullName;
    private string Raw => Path.Combine(_root, "raw");
    private string Preprocessed => Path.Combine(_root, "preprocessed");
    private const string Name = "Dataset042_Tiny";

    public void Dispose() => Directory.Delete(_root, recursive: true);

    private void MakeDataset(bool brokenCase)
    {
        string folder = Path.Combine(Raw, Name);
        Directory.CreateDirectory(Path.Combine(folder, "imagesTr"));
        Directory.CreateDirectory(Path.Combine(folder, "labelsTr"));
        DatasetJson.Create(["CT"], [new("background", [0]), new("organ", [1])], 3, ".nii.gz").Save(Path.Combine(folder, "dataset.json"));
        var rng = new Random(3);
        var geometry = new ImageGeometry([0.8, 0.8, 2.0], [0, 0, 0], [1, 0, 0, 0, 1, 0, 0, 0, 1]);
        foreach (string id in new[] { "tiny_001", "tiny_002", "tiny_003" })
        {
            var image = new float[4 * 10 * 9];
            var label = new byte[image.Length];
            for (int i = 0; i < image.Length; i++)
            {
                image[i] = (float)(rng.NextDouble() * 300 + 1);
                label[i] = (byte)(image[i] > 200 ? 1 : 0);
            }
            if (brokenCase && id == "tiny_002") label[5] = 200; // above int8: must fail with the case named
            NiftiWriter.Write(Path.Combine(folder, "imagesTr", id + "_0000.nii.gz"), MedicalImage.FromFloat(image, 1, 4, 10, 9, geometry));
            NiftiWriter.Write(Path.Combine(folder, "labelsTr", id + ".nii.gz"), new MedicalImage(1, 4, 10, 9, VoxelType.UInt8, label, geometry));
        }
        var plans = new NnUnetPlans
        {
            DatasetName = Name, OriginalMedianSpacingAfterTransp = [2, 0.8, 0.8], OriginalMedianShapeAfterTransp = [4, 10, 9],
            TransposeForward = [0, 1, 2], TransposeBackward = [0, 1, 2],
            Configurations = new()
            {
                ["3d_fullres"] = Node(Configuration("nnUNetPlans_3d_fullres", [2.0, 1.0, 1.0])),
                ["2d"] = Node(Configuration("nnUNetPlans_2d", [1.0, 1.0])),
            },
            ForegroundIntensityPropertiesPerChannel = new() { ["0"] = new IntensityProperties(150, 150, 80, 1, 300, 290, 5) },
        };
        Directory.CreateDirectory(Path.Combine(Preprocessed, Name));
        File.WriteAllText(Path.Combine(Preprocessed, Name, "nnUNetPlans.json"), plans.ToJson());
    }

    private static System.Text.Json.Nodes.JsonObject Node(PlansConfiguration c) => JsonSerializer.SerializeToNode(c, NnUnetPlans.JsonOptions)!.AsObject();

    private static PlansConfiguration Configuration(string id, double[] spacing) => new()
    {
        DataIdentifier = id, BatchSize = 2, PatchSize = spacing.Length == 3 ? [4, 8, 8] : [8, 8],
        MedianImageSizeInVoxels = spacing.Length == 3 ? [4, 8, 8] : [8, 8], Spacing = spacing,
        NormalizationSchemes = ["CTNormalization"], UseMaskForNorm = [false], BatchDice = false,
        Architecture = new ArchitectureSpec { ArchKwargs = new ArchitectureKwargs { NStages = 1, FeaturesPerStage = [8],
            ConvOp = spacing.Length == 3 ? "torch.nn.modules.conv.Conv3d" : "torch.nn.modules.conv.Conv2d",
            KernelSizes = [[3, 3, 3]], Strides = [[1, 1, 1]], NConvPerStage = [2], NConvPerStageDecoder = [] } },
    };

    private (int Exit, string Out, string Err) Run(params string[] args) => CliRunner.Run([.. args, "--raw", Raw, "--preprocessed", Preprocessed]);

    [Fact]
    public void Preprocesses_configurations_nnunet_style_and_resumes()
    {
        MakeDataset(brokenCase: false);
        var (exit, _, err) = Run("preprocess", "42", "-c", "3d_fullres", "2d", "3d_lowres", "--np", "2");
        Assert.True(exit == 0, err);
        string full = Path.Combine(Preprocessed, Name, "nnUNetPlans_3d_fullres");
        Assert.Equal(["tiny_001", "tiny_002", "tiny_003"], PreprocessedStore.ListCases(full));
        var c = PreprocessedStore.Load(full, "tiny_001");
        Assert.Equal([4, 8, 7], c.Shape); // (4, 10, 9) at (2, .8, .8) -> (2, 1, 1)
        Assert.Equal(3, PreprocessedStore.ListCases(Path.Combine(Preprocessed, Name, "nnUNetPlans_2d")).Count);

        var (exit2, json, _) = Run("preprocess", Name, "-c", "3d_fullres", "--json");
        Assert.Equal(0, exit2);
        var summary = JsonDocument.Parse(json).RootElement.GetProperty("3d_fullres");
        Assert.Equal(3, summary.GetProperty("skipped").GetArrayLength());
        Assert.Equal(0, summary.GetProperty("done").GetArrayLength());
    }

    [Fact]
    public void A_failing_case_is_named_the_others_finish_and_the_exit_code_is_1()
    {
        MakeDataset(brokenCase: true);
        var (exit, _, err) = Run("preprocess", Name, "-c", "3d_fullres");
        Assert.Equal(1, exit);
        Assert.Contains("tiny_002", err);
        Assert.Equal(["tiny_001", "tiny_003"], PreprocessedStore.ListCases(Path.Combine(Preprocessed, Name, "nnUNetPlans_3d_fullres")));
    }

    [Fact]
    public void Missing_plans_is_bad_input()
    {
        MakeDataset(brokenCase: false);
        File.Delete(Path.Combine(Preprocessed, Name, "nnUNetPlans.json"));
        var (exit, _, err) = Run("preprocess", Name);
        Assert.Equal(2, exit);
        Assert.Contains("nnUNetPlans.json", err);
    }
}
