using NnUnet.Core.Datasets;
using NnUnet.Core.Evaluation;
using NnUnet.Core.Imaging;
using NnUnet.Core.Imaging.Nifti;
using NnUnet.Core.Postprocessing;

namespace NnUnet.Core.Tests.Evaluation;

public sealed class FolderEvaluationTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("nnunet-eval").FullName;
    private static readonly ImageGeometry Geometry = new([0.8, 0.8, 3.0], [10, -20, 5], [1, 0, 0, 0, 1, 0, 0, 0, 1]);

    public void Dispose() => Directory.Delete(_root, recursive: true);

    private string Write(string folder, string name, int sizeZ, int sizeY, int sizeX, int[] labels, VoxelType type = VoxelType.UInt8)
    {
        string path = Path.Combine(_root, folder, name);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        NiftiWriter.Write(path, new LabelVolume(sizeZ, sizeY, sizeX, labels).ToImage(type, Geometry));
        return path;
    }

    [Fact]
    public void Evaluates_every_prediction_against_the_reference_of_the_same_name()
    {
        // case a (2 slices): label 1 tp 2 fp 1 fn 0; label 2 tp 1 fp 0 fn 1. case b: label 1 empty both, label 2 tp 2.
        Write("ref", "a.nii.gz", 2, 1, 4, [1, 1, 0, 0, 2, 2, 0, 0]);
        Write("pred", "a.nii.gz", 2, 1, 4, [1, 1, 1, 0, 2, 0, 0, 0], VoxelType.Int16);
        Write("ref", "b.nii.gz", 1, 2, 2, [2, 2, 0, 0]);
        Write("pred", "b.nii.gz", 1, 2, 2, [2, 2, 0, 0]);
        Write("ref", "c.nii.gz", 1, 2, 2, [2, 2, 0, 0]); // no prediction: not evaluated (nnU-Net's chill mode)

        var summary = SegmentationEvaluator.EvaluateFolder(Path.Combine(_root, "ref"), Path.Combine(_root, "pred"), LabelOrRegion.Labels(1, 2), null, ".nii.gz", 2);

        Assert.Equal(2, summary.MetricPerCase.Count);
        Assert.EndsWith("a.nii.gz", summary.MetricPerCase[0].PredictionFile);
        Assert.Equal(Path.Combine(_root, "ref", "a.nii.gz"), summary.MetricPerCase[0].ReferenceFile);
        Assert.Equal(new LabelMetrics(2, 1, 0, 5), summary.MetricPerCase[0].Metrics["1"]);
        Assert.True(double.IsNaN(summary.MetricPerCase[1].Metrics["1"].Dice));
        Assert.Equal(4.0 / 5.0, summary.Mean["1"].Dice, 15);
        Assert.Equal((2.0 / 3.0 + 1.0) / 2, summary.Mean["2"].Dice, 15);
        Assert.Equal((4.0 / 5.0 + (2.0 / 3.0 + 1.0) / 2) / 2, summary.ForegroundMean.Dice, 15);
    }

    [Fact]
    public void A_prediction_without_reference_or_of_another_shape_is_an_error_naming_the_case()
    {
        Write("ref", "a.nii.gz", 1, 2, 2, [1, 0, 0, 0]);
        Write("pred", "a.nii.gz", 1, 2, 2, [1, 0, 0, 0]);
        Write("pred", "zz.nii.gz", 1, 2, 2, [1, 0, 0, 0]);
        var missing = Assert.Throws<InvalidDataException>(() => SegmentationEvaluator.EvaluateFolder(Path.Combine(_root, "ref"), Path.Combine(_root, "pred"), LabelOrRegion.Labels(1), null, ".nii.gz"));
        Assert.Contains("zz.nii.gz", missing.Message);

        Write("ref", "zz.nii.gz", 1, 1, 4, [1, 0, 0, 0]);
        var shape = Assert.Throws<InvalidDataException>(() => SegmentationEvaluator.EvaluateFolder(Path.Combine(_root, "ref"), Path.Combine(_root, "pred"), LabelOrRegion.Labels(1), null, ".nii.gz"));
        Assert.Contains("zz.nii.gz", shape.Message);
    }

    [Fact]
    public void Ignore_label_voxels_of_the_reference_are_left_out()
    {
        Write("ref", "a.nii.gz", 1, 1, 6, [1, 1, 3, 3, 0, 0]);
        Write("pred", "a.nii.gz", 1, 1, 6, [1, 1, 1, 1, 0, 1]);
        var summary = SegmentationEvaluator.EvaluateFolder(Path.Combine(_root, "ref"), Path.Combine(_root, "pred"), LabelOrRegion.Labels(1, 2), 3, ".nii.gz");
        Assert.Equal(new LabelMetrics(2, 1, 0, 1), summary.MetricPerCase[0].Metrics["1"]);
    }

    [Fact]
    public void Postprocessing_for_a_folder_writes_the_json_and_the_postprocessed_files_in_the_prediction_geometry()
    {
        var dataset = DatasetJson.Create(["CT"], [new DatasetLabel("background", [0]), new DatasetLabel("organ", [1])], 2, ".nii.gz");
        Write("ref", "a.nii.gz", 2, 2, 5, [1, 1, 0, 0, 0, 1, 1, 0, 0, 0, /**/ 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        Write("pred", "a.nii.gz", 2, 2, 5, [1, 1, 0, 0, 0, 1, 1, 0, 0, 0, /**/ 0, 0, 0, 0, 1, 0, 0, 0, 0, 0], VoxelType.Int16);
        Write("ref", "b.nii.gz", 1, 1, 6, [0, 1, 1, 1, 0, 0]);
        Write("pred", "b.nii.gz", 1, 1, 6, [0, 1, 1, 1, 0, 1], VoxelType.Int16);

        var result = PostprocessingDecision.DetermineForFolder(Path.Combine(_root, "pred"), Path.Combine(_root, "ref"), dataset, 2);

        Assert.Single(result.Steps); // the isolated false positives go
        Assert.Equal(1.0, result.Postprocessed.ForegroundMean.Dice);
        Assert.Equal(((8.0 / 9.0) + (6.0 / 7.0)) / 2, result.Baseline.ForegroundMean.Dice, 15);
        Assert.True(File.Exists(Path.Combine(_root, "pred", "postprocessing.json")));
        Assert.Equal(result.Baseline.ForegroundMean.Dice, EvaluationSummary.Load(Path.Combine(_root, "pred", "summary.json")).ForegroundMean.Dice);
        var postprocessedSummary = EvaluationSummary.Load(Path.Combine(_root, "pred", "postprocessed", "summary.json"));
        Assert.Equal(1.0, postprocessedSummary.ForegroundMean.Dice);
        Assert.Contains("postprocessed", postprocessedSummary.MetricPerCase[0].PredictionFile);

        var written = NiftiReader.Read(Path.Combine(_root, "pred", "postprocessed", "a.nii.gz"));
        Assert.Equal(VoxelType.Int16, written.Type);
        Assert.Equal(NiftiReader.Read(Path.Combine(_root, "pred", "a.nii.gz")).Geometry, written.Geometry); // the prediction's geometry as stored
        Assert.Equal(new short[] { 1, 1, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 }, (short[])written.Voxels);
    }
}
