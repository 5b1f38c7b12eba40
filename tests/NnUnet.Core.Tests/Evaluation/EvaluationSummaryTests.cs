using NnUnet.Core.Evaluation;

namespace NnUnet.Core.Tests.Evaluation;

public class EvaluationSummaryTests
{
    private static LabelVolume Vol(params int[] labels) => new(1, 1, labels.Length, labels);

    [Fact]
    public void Means_are_nanmeans_over_cases_and_foreground_mean_averages_label_means()
    {
        // case a: label 1 tp=2 fp=1 fn=1 -> dice 4/6; label 2 both empty -> NaN
        // case b: label 1 tp=1 fp=0 fn=0 -> dice 1;   label 2 tp=1 fp=1 fn=0 -> dice 2/3
        var cases = new List<LabeledCase>
        {
            new("ref/a.nii.gz", "pred/a.nii.gz", Vol(1, 1, 1, 0, 0), Vol(1, 1, 0, 1, 0)),
            new("ref/b.nii.gz", "pred/b.nii.gz", Vol(1, 2, 0, 0), Vol(1, 2, 2, 0)),
        };
        var summary = SegmentationEvaluator.EvaluateCases(cases, LabelOrRegion.Labels(1, 2), null, 2);
        double dice1 = (4.0 / 6.0 + 1.0) / 2;
        double dice2 = 2.0 / 3.0; // NaN of case a left out
        Assert.Equal(dice1, summary.Mean["1"].Dice, 15);
        Assert.Equal(dice2, summary.Mean["2"].Dice, 15);
        Assert.Equal((dice1 + dice2) / 2, summary.ForegroundMean.Dice, 15);
        Assert.Equal((2 + 1) / 2.0, summary.Mean["1"].TP);
        Assert.Equal((0 + 1) / 2.0, summary.Mean["2"].TP); // counts are not NaN, both cases count
        Assert.True(double.IsNaN(summary.MetricPerCase[0].Metrics["2"].Dice));
    }

    [Fact]
    public void A_label_that_is_empty_everywhere_makes_foreground_mean_nan_as_numpy_mean()
    {
        var cases = new List<LabeledCase> { new("r", "p", Vol(1, 0), Vol(1, 0)) };
        var summary = SegmentationEvaluator.EvaluateCases(cases, LabelOrRegion.Labels(1, 2), null);
        Assert.Equal(1.0, summary.Mean["1"].Dice);
        Assert.True(double.IsNaN(summary.Mean["2"].Dice));
        Assert.True(double.IsNaN(summary.ForegroundMean.Dice));
    }

    [Fact]
    public void Summary_json_is_written_as_nnunet_save_json_writes_it_and_loads_back()
    {
        var cases = new List<LabeledCase>
        {
            new("/r/a.nii.gz", "/p/a.nii.gz", Vol(1, 1, 0, 0), Vol(1, 0, 0, 0)),
        };
        var summary = SegmentationEvaluator.EvaluateCases(cases, [LabelOrRegion.Label(1), LabelOrRegion.Region(1, 2)], null);
        // Written by hand in the layout of Python's json.dump(indent=4, sort_keys=True); label 2 never occurs.
        string expected = """
{
    "foreground_mean": {
        "Dice": 0.6666666666666666,
        "FN": 1.0,
        "FP": 0.0,
        "IoU": 0.5,
        "TN": 2.0,
        "TP": 1.0,
        "n_pred": 1.0,
        "n_ref": 2.0
    },
    "mean": {
        "(1, 2)": {
            "Dice": 0.6666666666666666,
            "FN": 1.0,
            "FP": 0.0,
            "IoU": 0.5,
            "TN": 2.0,
            "TP": 1.0,
            "n_pred": 1.0,
            "n_ref": 2.0
        },
        "1": {
            "Dice": 0.6666666666666666,
            "FN": 1.0,
            "FP": 0.0,
            "IoU": 0.5,
            "TN": 2.0,
            "TP": 1.0,
            "n_pred": 1.0,
            "n_ref": 2.0
        }
    },
    "metric_per_case": [
        {
            "metrics": {
                "(1, 2)": {
                    "Dice": 0.6666666666666666,
                    "FN": 1,
                    "FP": 0,
                    "IoU": 0.5,
                    "TN": 2,
                    "TP": 1,
                    "n_pred": 1,
                    "n_ref": 2
                },
                "1": {
                    "Dice": 0.6666666666666666,
                    "FN": 1,
                    "FP": 0,
                    "IoU": 0.5,
                    "TN": 2,
                    "TP": 1,
                    "n_pred": 1,
                    "n_ref": 2
                }
            },
            "prediction_file": "/p/a.nii.gz",
            "reference_file": "/r/a.nii.gz"
        }
    ]
}
""";
        Assert.Equal(expected, summary.ToJson());

        string folder = Directory.CreateTempSubdirectory("nnunet-summary").FullName;
        try
        {
            string path = Path.Combine(folder, "summary.json");
            summary.Save(path);
            var loaded = EvaluationSummary.Load(path);
            Assert.Equal(summary.ToJson(), loaded.ToJson());
        }
        finally { Directory.Delete(folder, true); }
    }

    [Fact]
    public void NaN_is_written_as_the_bare_python_literal_and_read_back()
    {
        var cases = new List<LabeledCase> { new("r", "p", Vol(0, 0), Vol(0, 0)) };
        var summary = SegmentationEvaluator.EvaluateCases(cases, LabelOrRegion.Labels(1), null);
        string json = summary.ToJson();
        Assert.Contains("\"Dice\": NaN,", json);
        var loaded = EvaluationSummary.Parse(json, "test");
        Assert.True(double.IsNaN(loaded.ForegroundMean.Dice));
        Assert.True(double.IsNaN(loaded.MetricPerCase[0].Metrics["1"].Dice));
        Assert.Equal(2, loaded.MetricPerCase[0].Metrics["1"].TN);
    }

    [Theory]
    [InlineData(0.8571428571428571, "0.8571428571428571")]
    [InlineData(1.0, "1.0")]
    [InlineData(0.0, "0.0")]
    [InlineData(-0.0, "-0.0")]
    [InlineData(1e-05, "1e-05")]
    [InlineData(0.0001, "0.0001")]
    [InlineData(123456789012345678.0, "1.2345678901234568e+17")]
    [InlineData(1e16, "1e+16")]
    [InlineData(1e15, "1000000000000000.0")]
    [InlineData(5e-324, "5e-324")]
    [InlineData(1.7976931348623157e308, "1.7976931348623157e+308")]
    [InlineData(0.30000000000000004, "0.30000000000000004")]
    [InlineData(12.5, "12.5")]
    [InlineData(100.0, "100.0")]
    public void Floats_are_formatted_like_python_repr(double value, string python)
    {
        // expected strings printed by CPython 3's repr()
        Assert.Equal(python, PythonJson.FormatFloat(value));
    }

    [Fact]
    public void Python_json_escapes_non_ascii_and_writes_empty_containers_inline()
    {
        var value = new Dictionary<string, object?> { ["b"] = new List<object?> { 1, 2.5, double.NaN }, ["a"] = new Dictionary<string, object?>(), ["c"] = new List<object?>(), ["d"] = "\u00e9\u007f" };
        string expected = "{\n    \"a\": {},\n    \"b\": [\n        1,\n        2.5,\n        NaN\n    ],\n    \"c\": [],\n    \"d\": \"\\u00e9\\u007f\"\n}";
        Assert.Equal(expected, PythonJson.Serialize(value));
    }
}
