using NnUnet.Core.Datasets;

namespace NnUnet.Core.Tests.Datasets;

public class RawDatasetTests
{
    private const string TwoChannels = """{"channel_names": {"0": "T2", "1": "ADC"}, "labels": {"background": 0, "a": 1}, "numTraining": 3, "file_ending": ".nii.gz"}""";

    [Fact]
    public void ListsTrainingCasesSortedOrdinallyWithChannelAndLabelPaths()
    {
        using var tmp = new TempFolder();
        string ds = tmp.Sub("Dataset005_Prostate");
        tmp.Write("Dataset005_Prostate/dataset.json", TwoChannels);
        foreach (string id in new[] { "prostate_10", "prostate_2", "Prostate_1" })
        {
            tmp.Write($"Dataset005_Prostate/imagesTr/{id}_0000.nii.gz", "");
            tmp.Write($"Dataset005_Prostate/imagesTr/{id}_0001.nii.gz", "");
            tmp.Write($"Dataset005_Prostate/labelsTr/{id}.nii.gz", "");
        }
        tmp.Write("Dataset005_Prostate/imagesTr/.DS_Store", "");
        tmp.Write("Dataset005_Prostate/imagesTr/notes.txt", "");
        tmp.Write("Dataset005_Prostate/imagesTs/test_7_0000.nii.gz", "");

        var dataset = RawDataset.Open(ds);
        Assert.Equal("Dataset005_Prostate", dataset.Name);
        Assert.Equal(["Prostate_1", "prostate_10", "prostate_2"], dataset.TrainingCaseIds);
        var first = dataset.TrainingCases[0];
        Assert.Equal(System.IO.Path.Combine(ds, "imagesTr", "Prostate_1_0000.nii.gz"), first.ImageFiles[0]);
        Assert.Equal(System.IO.Path.Combine(ds, "imagesTr", "Prostate_1_0001.nii.gz"), first.ImageFiles[1]);
        Assert.Equal(System.IO.Path.Combine(ds, "labelsTr", "Prostate_1.nii.gz"), first.LabelFile);
        Assert.Single(dataset.TestCases);
        Assert.Equal("test_7", dataset.TestCases[0].Id);
        Assert.Null(dataset.TestCases[0].LabelFile);
        Assert.False(dataset.UsesExplicitCaseList);
    }

    [Fact]
    public void CaseWithOnlyOneChannelStillListsEveryExpectedChannelPath()
    {
        using var tmp = new TempFolder();
        string ds = tmp.Sub("Dataset006_X");
        tmp.Write("Dataset006_X/dataset.json", TwoChannels);
        tmp.Write("Dataset006_X/imagesTr/a_0001.nii.gz", "");
        var dataset = RawDataset.Open(ds);
        Assert.Equal(["a"], dataset.TrainingCaseIds);
        Assert.Equal(2, dataset.TrainingCases[0].ImageFiles.Count);
        Assert.EndsWith("a_0000.nii.gz", dataset.TrainingCases[0].ImageFiles[0]);
    }

    [Fact]
    public void ExplicitDatasetKeyResolvesRelativePaths()
    {
        using var tmp = new TempFolder();
        string ds = tmp.Sub("Dataset007_Y");
        tmp.Write("Dataset007_Y/dataset.json", """
            {"channel_names": {"0": "CT"}, "labels": {"background": 0, "a": 1}, "numTraining": 2, "file_ending": ".nii.gz",
             "dataset": {"b": {"images": ["img/b.nii.gz"], "label": "seg/b.nii.gz"},
                         "a": {"images": ["/abs/a.nii.gz"], "label": "seg/a.nii.gz"}}}
            """);
        var dataset = RawDataset.Open(ds);
        Assert.True(dataset.UsesExplicitCaseList);
        Assert.Equal(["a", "b"], dataset.TrainingCaseIds);
        Assert.Equal("/abs/a.nii.gz", dataset.TrainingCases[0].ImageFiles[0]);
        Assert.Equal(System.IO.Path.Combine(ds, "img", "b.nii.gz"), dataset.TrainingCases[1].ImageFiles[0]);
        Assert.Equal(System.IO.Path.Combine(ds, "seg", "b.nii.gz"), dataset.TrainingCases[1].LabelFile);
    }

    [Fact]
    public void MissingImagesTrIsAClearError()
    {
        using var tmp = new TempFolder();
        string ds = tmp.Sub("Dataset008_Z");
        tmp.Write("Dataset008_Z/dataset.json", TwoChannels);
        var ex = Assert.Throws<DirectoryNotFoundException>(() => RawDataset.Open(ds));
        Assert.Contains("imagesTr", ex.Message);
    }

    [Theory]
    [InlineData("case_1_0000.nii.gz", ".nii.gz", "case_1", 0)]
    [InlineData("la_003_0012.nii.gz", ".nii.gz", "la_003", 12)]
    [InlineData("x_0001.nii", ".nii", "x", 1)]
    public void ParsesImageFileNames(string name, string ending, string id, int channel)
    {
        Assert.True(RawDataset.TryParseImageFileName(name, ending, out string caseId, out int c));
        Assert.Equal(id, caseId);
        Assert.Equal(channel, c);
    }

    [Theory]
    [InlineData("case_000.nii.gz")]
    [InlineData("case0000.nii.gz")]
    [InlineData("_0000.nii.gz")]
    [InlineData("case_00a0.nii.gz")]
    [InlineData("case_0000.nii")]
    public void RejectsOtherFileNames(string name) =>
        Assert.False(RawDataset.TryParseImageFileName(name, ".nii.gz", out _, out _));
}
