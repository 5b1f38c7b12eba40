using NnUnet.Core.Datasets;

namespace NnUnet.Core.Tests.Datasets;

public class DatasetJsonTests
{
    private const string Valid = """
        {
          "channel_names": {"0": "T2", "1": "ADC"},
          "labels": {"background": 0, "PZ": 1, "TZ": 2},
          "numTraining": 32,
          "file_ending": ".nii.gz",
          "name": "Prostate"
        }
        """;

    [Fact]
    public void ParsesV2Fields()
    {
        var json = DatasetJson.Parse(Valid);
        Assert.Equal(["T2", "ADC"], json.ChannelNames);
        Assert.False(json.UsesLegacyModalityKey);
        Assert.Equal(3, json.Labels.Count);
        Assert.Equal("TZ", json.Labels[2].Name);
        Assert.Equal([0, 1, 2], json.AllLabels);
        Assert.False(json.HasRegions);
        Assert.Null(json.IgnoreLabel);
        Assert.Equal(32, json.NumTraining);
        Assert.Equal(".nii.gz", json.FileEnding);
        Assert.Equal(3, json.NumSegmentationHeads);
        Assert.Equal("Prostate", (string?)json.Document["name"]);
    }

    [Fact]
    public void AcceptsLegacyModalityKeyAndChannelKeysOutOfOrder()
    {
        var json = DatasetJson.Parse("""{"modality": {"1": "B", "0": "A"}, "labels": {"background": 0, "x": 1}, "numTraining": 1, "file_ending": ".nii"}""");
        Assert.True(json.UsesLegacyModalityKey);
        Assert.Equal(["A", "B"], json.ChannelNames);
    }

    [Fact]
    public void ParsesRegionsWithClassOrderAndIgnoreLabel()
    {
        var json = DatasetJson.Parse("""
            {"channel_names": {"0": "FLAIR"},
             "labels": {"background": 0, "whole tumor": [1, 2, 3], "tumor core": [2, 3], "enhancing tumor": 3, "ignore": 4},
             "regions_class_order": [1, 2, 3], "numTraining": 5, "file_ending": ".nii.gz"}
            """);
        Assert.True(json.HasRegions);
        Assert.Equal([1, 2, 3], json.RegionsClassOrder!);
        Assert.Equal(4, json.IgnoreLabel);
        Assert.Equal([0, 1, 2, 3], json.AllLabels);
        Assert.Equal([0, 1, 2, 3, 4], json.AllowedSegmentationValues);
        Assert.Equal(3, json.ForegroundRegions.Count);
        Assert.Equal(3, json.NumSegmentationHeads);
        Assert.Equal([2, 3], json.ForegroundRegions[1].Values);
    }

    [Fact]
    public void IntegralFloatNumbersAreAccepted()
    {
        var json = DatasetJson.Parse("""{"channel_names": {"0": "CT"}, "labels": {"background": 0.0, "a": 1}, "numTraining": 3.0, "file_ending": ".nii.gz"}""");
        Assert.Equal(3, json.NumTraining);
    }

    [Theory]
    [InlineData("""{"labels": {"background": 0}, "numTraining": 1, "file_ending": ".nii.gz"}""", "'channel_names'")]
    [InlineData("""{"channel_names": {"0": 5}, "labels": {"background": 0}, "numTraining": 1, "file_ending": ".nii.gz"}""", "'channel_names.0'")]
    [InlineData("""{"channel_names": {"1": "CT"}, "labels": {"background": 0}, "numTraining": 1, "file_ending": ".nii.gz"}""", "'channel_names'")]
    [InlineData("""{"channel_names": {"0": "CT"}, "numTraining": 1, "file_ending": ".nii.gz"}""", "'labels'")]
    [InlineData("""{"channel_names": {"0": "CT"}, "labels": {"background": 0, "liver": "1"}, "numTraining": 1, "file_ending": ".nii.gz"}""", "'labels.liver'")]
    [InlineData("""{"channel_names": {"0": "CT"}, "labels": {"background": 0, "liver": 1.5}, "numTraining": 1, "file_ending": ".nii.gz"}""", "'labels.liver'")]
    [InlineData("""{"channel_names": {"0": "CT"}, "labels": {"background": 0, "liver": [1, "x"]}, "regions_class_order": [1], "numTraining": 1, "file_ending": ".nii.gz"}""", "'labels.liver[1]'")]
    [InlineData("""{"channel_names": {"0": "CT"}, "labels": {"liver": 1}, "numTraining": 1, "file_ending": ".nii.gz"}""", "'labels.background'")]
    [InlineData("""{"channel_names": {"0": "CT"}, "labels": {"background": 1}, "numTraining": 1, "file_ending": ".nii.gz"}""", "'labels.background'")]
    [InlineData("""{"channel_names": {"0": "CT"}, "labels": {"background": 0, "a": 2}, "numTraining": 1, "file_ending": ".nii.gz"}""", "consecutive")]
    [InlineData("""{"channel_names": {"0": "CT"}, "labels": {"background": 0, "a": 1, "ignore": 5}, "numTraining": 1, "file_ending": ".nii.gz"}""", "'labels.ignore'")]
    [InlineData("""{"channel_names": {"0": "CT"}, "labels": {"background": 0, "a": 1, "ignore": [2]}, "numTraining": 1, "file_ending": ".nii.gz"}""", "'labels.ignore'")]
    [InlineData("""{"channel_names": {"0": "CT"}, "labels": {"background": 0, "wt": [1, 2], "tc": 2}, "numTraining": 1, "file_ending": ".nii.gz"}""", "'regions_class_order' is missing")]
    [InlineData("""{"channel_names": {"0": "CT"}, "labels": {"background": 0, "wt": [1, 2], "tc": 2}, "regions_class_order": [1], "numTraining": 1, "file_ending": ".nii.gz"}""", "'regions_class_order' has 1 entries")]
    [InlineData("""{"channel_names": {"0": "CT"}, "labels": {"background": 0}, "file_ending": ".nii.gz"}""", "'numTraining'")]
    [InlineData("""{"channel_names": {"0": "CT"}, "labels": {"background": 0}, "numTraining": "3", "file_ending": ".nii.gz"}""", "'numTraining'")]
    [InlineData("""{"channel_names": {"0": "CT"}, "labels": {"background": 0}, "numTraining": -1, "file_ending": ".nii.gz"}""", "'numTraining'")]
    [InlineData("""{"channel_names": {"0": "CT"}, "labels": {"background": 0}, "numTraining": 1}""", "'file_ending'")]
    [InlineData("""{"channel_names": {"0": "CT"}, "labels": {"background": 0}, "numTraining": 1, "file_ending": 7}""", "'file_ending'")]
    [InlineData("""{"modality": {"0": "CT"}, "labels": {"0": "background", "1": "liver"}, "numTraining": 1, "file_ending": ".nii.gz"}""", "convert-msd")]
    [InlineData("""[1, 2]""", "top level")]
    [InlineData("""{"channel_names": """, "not valid JSON")]
    public void InvalidDocumentsNameFileAndField(string text, string expected)
    {
        var ex = Assert.Throws<InvalidDataException>(() => DatasetJson.Parse(text, "/data/Dataset001_X/dataset.json"));
        Assert.Contains("/data/Dataset001_X/dataset.json", ex.Message);
        Assert.Contains(expected, ex.Message);
    }

    [Fact]
    public void CreateRoundTripsThroughFile()
    {
        using var tmp = new TempFolder();
        var created = DatasetJson.Create(["MRI"], [new DatasetLabel("background", [0]), new DatasetLabel("Anterior", [1]), new DatasetLabel("Posterior", [2])],
            260, ".nii.gz", extra: [new("name", "Hippocampus")]);
        string path = System.IO.Path.Combine(tmp.Path, "dataset.json");
        created.Save(path);
        var loaded = DatasetJson.Load(path);
        Assert.Equal(["MRI"], loaded.ChannelNames);
        Assert.Equal([0, 1, 2], loaded.AllLabels);
        Assert.Equal(260, loaded.NumTraining);
        Assert.Equal("Hippocampus", (string?)loaded.Document["name"]);
        Assert.Contains("\"Anterior\": 1", File.ReadAllText(path));
    }

    [Fact]
    public void LoadOfMissingFileNamesIt()
    {
        var ex = Assert.Throws<FileNotFoundException>(() => DatasetJson.Load("/nonexistent/dir/dataset.json"));
        Assert.Contains("/nonexistent/dir/dataset.json", ex.Message);
    }
}
