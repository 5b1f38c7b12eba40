using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using NnUnet.Core.Datasets;
using NnUnet.Core.Fingerprinting;
using NnUnet.Core.Imaging;
using NnUnet.Core.Planning;
using NnUnet.Core.Preprocessing;

// usage: PreprocessBench RAW_DATASET_DIR OUTPUT_DIR NUM_PROCESSES
// Raw images are .npy (z, y, x) float32 with a spacing.json beside them (the NIfTI reader is timed elsewhere), the
// plans are made here: one 3d_fullres configuration at spacing (2.5, 0.8, 0.8), CTNormalization.
string rawDir = args[0], outDir = args[1];
int np = args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 2;
var spacings = JsonSerializer.Deserialize<Dictionary<string, double[]>>(File.ReadAllText(Path.Combine(rawDir, "spacing.json")))!;
MedicalImage Read(string path)
{
    var voxels = NpyFile.Read<float>(path, out var shape);
    string id = Path.GetFileName(path).Split('_')[0] + "_" + Path.GetFileName(path).Split('_')[1].Split('.')[0];
    var s = spacings[id]; // (z, y, x)
    return MedicalImage.FromFloat(voxels, 1, shape[0], shape[1], shape[2], ImageGeometry.Identity(s[2], s[1], s[0]));
}
var raw = RawDataset.Open(rawDir);
var config = new PlansConfiguration
{
    DataIdentifier = "nnUNetPlans_3d_fullres", BatchSize = 2, PatchSize = [64, 160, 160], MedianImageSizeInVoxels = [60, 200, 200],
    Spacing = [2.5, 0.8, 0.8], NormalizationSchemes = ["CTNormalization"], UseMaskForNorm = [false], BatchDice = false,
    Architecture = new ArchitectureSpec { ArchKwargs = new ArchitectureKwargs { NStages = 1, FeaturesPerStage = [32], ConvOp = "torch.nn.modules.conv.Conv3d",
        KernelSizes = [[3, 3, 3]], Strides = [[1, 1, 1]], NConvPerStage = [2], NConvPerStageDecoder = [] } },
};
var plans = new NnUnetPlans
{
    DatasetName = raw.Name, OriginalMedianSpacingAfterTransp = [2.5, 0.8, 0.8], OriginalMedianShapeAfterTransp = [60, 200, 200],
    TransposeForward = [0, 1, 2], TransposeBackward = [0, 1, 2],
    Configurations = new() { ["3d_fullres"] = JsonSerializer.SerializeToNode(config, NnUnetPlans.JsonOptions)!.AsObject() },
    ForegroundIntensityPropertiesPerChannel = new() { ["0"] = new IntensityProperties(60, 55, 80, -1000, 1500, 400, -150) },
};
var runner = new DatasetPreprocessor(plans, raw.Json, Read);
var sw = Stopwatch.StartNew();
var results = runner.Run("3d_fullres", raw.TrainingCases, outDir, np);
double seconds = sw.Elapsed.TotalSeconds;
int failed = results.Count(r => r.Failed);
foreach (var r in results) if (r.Failed) Console.Error.WriteLine($"{r.CaseId}: {r.Error}");
Console.WriteLine($"csharp {results.Count} cases {seconds:F2} s {results.Count / seconds:F3} cases/s np={np} failed={failed}");
