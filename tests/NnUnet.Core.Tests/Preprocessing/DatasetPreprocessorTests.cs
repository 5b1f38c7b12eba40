using NnUnet.Core.Datasets;
using NnUnet.Core.Imaging;
using NnUnet.Core.Preprocessing;

namespace NnUnet.Core.Tests.Preprocessing;

/// <summary>Whole-dataset runs on a raw folder whose images are .npy files (the NIfTI reader is another area's; the
/// runner takes the reader as a function).</summary>
public sealed class DatasetPreprocessorTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("dataset-pre-tests-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static MedicalImage ReadNpy(string path)
    {
        var voxels = NpyFile.Read<float>(path, out var shape);
        return MedicalImage.FromFloat(voxels, 1, shape[0], shape[1], shape[2], ImageGeometry.Identity(0.8, 0.8, 2.0));
    }

    private string MakeRawDataset()
    {
        string raw = Path.Combine(_dir, "Dataset042_Tiny");
        Directory.CreateDirectory(Path.Combine(raw, "imagesTr"));
        Directory.CreateDirectory(Path.Combine(raw, "labelsTr"));
        DatasetJson.Create(["CT"], [new("background", [0]), new("organ", [1])], 3, ".npy").Save(Path.Combine(raw, "dataset.json"));
        var rng = new Random(5);
        foreach (string id in new[] { "tiny_001", "tiny_002", "tiny_003" })
        {
            int[] shape = [5, 12, 11];
            var image = new float[5 * 12 * 11];
            var label = new float[image.Length];
            for (int i = 0; i < image.Length; i++)
            {
                image[i] = (float)(rng.NextDouble() * 300);
                label[i] = image[i] > 200 ? 1 : 0;
            }
            if (id == "tiny_002") label[7] = 5.5f; // not an integer label: this case must fail, the others not
            NpyFile.Write<float>(Path.Combine(raw, "imagesTr", id + "_0000.npy"), image, shape);
            NpyFile.Write<float>(Path.Combine(raw, "labelsTr", id + ".npy"), label, shape);
        }
        return raw;
    }

    [Fact]
    public void Runs_all_cases_reports_the_failing_one_and_resumes()
    {
        var rawDataset = RawDataset.Open(MakeRawDataset());
        var config = TestPlans.Configuration("nnUNetPlans_3d_fullres", [2.0, 1.0, 1.0], ["CTNormalization"], [false]);
        var plans = TestPlans.Plans([0, 1, 2], new() { ["0"] = new(100, 100, 50, 0, 300, 290, 5) }, ("3d_fullres", config));
        var runner = new DatasetPreprocessor(plans, rawDataset.Json, ReadNpy);
        string output = runner.OutputFolder(Path.Combine(_dir, "preprocessed", "Dataset042_Tiny"), "3d_fullres");
        Assert.EndsWith("nnUNetPlans_3d_fullres", output);

        var seen = new List<string>();
        var results = runner.Run("3d_fullres", rawDataset.TrainingCases, output, 2, r => { lock (seen) seen.Add(r.CaseId); });
        Assert.Equal(3, seen.Count);
        Assert.Equal(["tiny_001", "tiny_002", "tiny_003"], results.Select(r => r.CaseId));
        Assert.False(results[0].Failed);
        Assert.True(results[1].Failed);
        Assert.Contains("tiny_002", results[1].Error);
        Assert.False(results[2].Failed);
        Assert.Equal(["tiny_001", "tiny_003"], PreprocessedStore.ListCases(output));

        var loaded = PreprocessedStore.Load(output, "tiny_003");
        Assert.Equal([5, 10, 9], loaded.Shape); // (5, 12, 11) at spacing (2, .8, .8) -> (2, 1, 1)
        Assert.NotEmpty(loaded.Properties.ClassLocations[1]);

        var again = runner.Run("3d_fullres", rawDataset.TrainingCases, output, 2);
        Assert.True(again[0].Skipped);
        Assert.True(again[1].Failed);
        Assert.True(again[2].Skipped);

        string preprocessedDataset = Path.Combine(_dir, "preprocessed", "Dataset042_Tiny");
        Assert.Equal(3, runner.CopyGroundTruth(rawDataset.TrainingCases, preprocessedDataset));
        Assert.True(File.Exists(Path.Combine(preprocessedDataset, "gt_segmentations", "tiny_002.npy")));
        Assert.Equal(0, runner.CopyGroundTruth(rawDataset.TrainingCases, preprocessedDataset));

        // other intensity statistics: the finished cases are stale and made again
        var changedPlans = TestPlans.Plans([0, 1, 2], new() { ["0"] = new(90, 100, 50, 0, 300, 290, 5) }, ("3d_fullres", config));
        var third = new DatasetPreprocessor(changedPlans, rawDataset.Json, ReadNpy).Run("3d_fullres", rawDataset.TrainingCases, output, 2);
        Assert.False(third[0].Skipped);
        Assert.False(third[0].Failed);
    }

    [Fact]
    public void Missing_and_mismatched_files_are_named()
    {
        string raw = MakeRawDataset();
        File.Delete(Path.Combine(raw, "labelsTr", "tiny_001.npy"));
        NpyFile.Write<float>(Path.Combine(raw, "labelsTr", "tiny_003.npy"), new float[4 * 4 * 4], [4, 4, 4]);
        var rawDataset = RawDataset.Open(raw);
        var config = TestPlans.Configuration("x", [2.0, 1.0, 1.0], ["ZScoreNormalization"], [false]);
        var plans = TestPlans.Plans([0, 1, 2], new(), ("3d_fullres", config));
        var results = new DatasetPreprocessor(plans, rawDataset.Json, ReadNpy).Run("3d_fullres", rawDataset.TrainingCases, Path.Combine(_dir, "out"), 1);
        Assert.Contains("tiny_001.npy", results[0].Error);
        Assert.Contains("tiny_003", results[2].Error);
        Assert.Contains("shape", results[2].Error);
    }
}
