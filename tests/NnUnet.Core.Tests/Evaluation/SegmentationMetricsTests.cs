using NnUnet.Core.Evaluation;

namespace NnUnet.Core.Tests.Evaluation;

public class SegmentationMetricsTests
{
    // Independent reference implementation: one boolean mask per region, counted voxel by voxel.
    private static (long tp, long fp, long fn, long tn) Count(int[] reference, int[] prediction, int[] region, int? ignore)
    {
        long tp = 0, fp = 0, fn = 0, tn = 0;
        for (int i = 0; i < reference.Length; i++)
        {
            if (ignore.HasValue && reference[i] == ignore.Value) continue;
            bool r = Array.IndexOf(region, reference[i]) >= 0;
            bool p = Array.IndexOf(region, prediction[i]) >= 0;
            if (r && p) tp++; else if (!r && p) fp++; else if (r && !p) fn++; else tn++;
        }
        return (tp, fp, fn, tn);
    }

    [Fact]
    public void Counts_and_dice_match_a_voxel_by_voxel_count_for_labels_regions_and_ignore_label()
    {
        var rng = new Random(7);
        int n = 5000;
        var reference = new int[n];
        var prediction = new int[n];
        for (int i = 0; i < n; i++) { reference[i] = rng.Next(0, 5); prediction[i] = rng.Next(0, 4); }
        prediction[3] = 9; // a value outside every label counts as background for all of them
        var targets = new[] { LabelOrRegion.Label(1), LabelOrRegion.Label(2), LabelOrRegion.Label(3), LabelOrRegion.Region(1, 2, 3), LabelOrRegion.Region(2, 3) };
        var metrics = SegmentationMetrics.Compute(reference.AsSpan(), prediction.AsSpan(), targets, ignoreLabel: 4);
        for (int k = 0; k < targets.Length; k++)
        {
            var (tp, fp, fn, tn) = Count(reference, prediction, targets[k].Values.ToArray(), 4);
            Assert.Equal(tp, metrics[k].TP);
            Assert.Equal(fp, metrics[k].FP);
            Assert.Equal(fn, metrics[k].FN);
            Assert.Equal(tn, metrics[k].TN);
            Assert.Equal(tp + fp, metrics[k].NPred);
            Assert.Equal(tp + fn, metrics[k].NRef);
            Assert.Equal(2.0 * tp / (2 * tp + fp + fn), metrics[k].Dice, 15);
            Assert.Equal((double)tp / (tp + fp + fn), metrics[k].IoU, 15);
        }
        long used = 0;
        foreach (int r in reference) if (r != 4) used++;
        Assert.Equal(used, metrics[0].TP + metrics[0].FP + metrics[0].FN + metrics[0].TN);
    }

    [Fact]
    public void Large_volumes_counted_in_parallel_chunks_give_the_same_numbers()
    {
        var rng = new Random(3);
        int n = (1 << 22) + 12345;
        var reference = new int[n];
        var prediction = new int[n];
        for (int i = 0; i < n; i++) { reference[i] = rng.Next(0, 3); prediction[i] = rng.Next(0, 3); }
        var targets = LabelOrRegion.Labels(1, 2);
        var parallel = SegmentationMetrics.Compute(reference, prediction, targets, null);
        var serial = SegmentationMetrics.Compute(reference.AsSpan(), prediction.AsSpan(), targets, null);
        Assert.Equal(serial, parallel);
        var (tp, fp, fn, tn) = Count(reference, prediction, [2], null);
        Assert.Equal(new LabelMetrics(tp, fp, fn, tn), parallel[1]);
    }

    [Fact]
    public void Both_empty_gives_nan_and_prediction_on_empty_reference_gives_zero()
    {
        int[] reference = [0, 0, 0, 0];
        int[] emptyPrediction = [0, 0, 0, 0];
        int[] wrongPrediction = [0, 1, 0, 0];
        var both = SegmentationMetrics.Compute(reference.AsSpan(), emptyPrediction.AsSpan(), LabelOrRegion.Labels(1), null)[0];
        Assert.True(double.IsNaN(both.Dice));
        Assert.True(double.IsNaN(both.IoU));
        Assert.Equal(4, both.TN);
        var wrong = SegmentationMetrics.Compute(reference.AsSpan(), wrongPrediction.AsSpan(), LabelOrRegion.Labels(1), null)[0];
        Assert.Equal(0.0, wrong.Dice);
        Assert.Equal(1, wrong.FP);
    }

    [Fact]
    public void Region_keys_are_written_as_python_writes_ints_and_tuples()
    {
        Assert.Equal("1", LabelOrRegion.Label(1).Key);
        Assert.Equal("(1, 2)", LabelOrRegion.Region(1, 2).Key);
        Assert.Equal("(3,)", LabelOrRegion.Region(3).Key);
        Assert.Equal(LabelOrRegion.Region(1, 2), LabelOrRegion.FromKey("(1, 2)"));
        Assert.Equal(LabelOrRegion.Label(7), LabelOrRegion.FromKey("7"));
    }

    [Fact]
    public void Different_shapes_are_an_error_naming_the_case()
    {
        var a = new LabelVolume(1, 2, 2, new int[4]);
        var b = new LabelVolume(1, 4, 1, new int[4]);
        var ex = Assert.Throws<InvalidDataException>(() => SegmentationEvaluator.EvaluateCase(a, b, LabelOrRegion.Labels(1), null, "case_007"));
        Assert.Contains("case_007", ex.Message);
    }
}

public class LabelOrRegionForDatasetTests
{
    [Fact]
    public void Region_datasets_evaluate_their_foreground_regions_with_nnunet_keys()
    {
        var dataset = NnUnet.Core.Datasets.DatasetJson.Parse("""
            {"channel_names": {"0": "MRI"}, "labels": {"background": 0, "whole": [1, 2, 3], "core": [2, 3], "enhancing": [3]},
             "regions_class_order": [1, 2, 3], "numTraining": 1, "file_ending": ".nii.gz"}
            """);
        var targets = LabelOrRegion.ForDataset(dataset);
        Assert.Equal(["(1, 2, 3)", "(2, 3)", "(3,)"], targets.Select(t => t.Key));
    }

    [Fact]
    public void Label_datasets_evaluate_their_foreground_labels_without_the_ignore_label()
    {
        var dataset = NnUnet.Core.Datasets.DatasetJson.Parse("""
            {"channel_names": {"0": "CT"}, "labels": {"background": 0, "liver": 1, "tumour": 2, "ignore": 3},
             "numTraining": 1, "file_ending": ".nii.gz"}
            """);
        Assert.Equal(["1", "2"], LabelOrRegion.ForDataset(dataset).Select(t => t.Key));
        Assert.Equal(3, dataset.IgnoreLabel);
    }
}
