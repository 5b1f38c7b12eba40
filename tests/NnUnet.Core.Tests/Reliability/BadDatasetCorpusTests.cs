using NnUnet.Core.Datasets;
using NnUnet.Core.Imaging.Nifti;
using NnUnet.Core.Preprocessing;
using NnUnet.Core.Tests.Preprocessing;

namespace NnUnet.Core.Tests.Reliability;

/// <summary>
/// The raw datasets of tests/fixtures/bad/datasets: dataset.json problems and unsafe case ids are refused when the
/// dataset is opened, with the file and field named; broken cases fail preprocessing by name while the finished cases
/// of an earlier run keep their bytes and times.
/// </summary>
public sealed class BadDatasetCorpusTests : IDisposable
{
    private readonly string _temp = Directory.CreateTempSubdirectory("nnunet-bad-").FullName;

    public void Dispose()
    {
        try { Directory.Delete(_temp, recursive: true); } catch (IOException) { }
    }

    [Theory]
    [InlineData("json_missing_labels", "labels", "is missing")]
    [InlineData("json_missing_file_ending", "file_ending", "is missing")]
    [InlineData("json_wrong_types", "numTraining", "must be an integer")]
    [InlineData("json_labels_not_object", "labels", "must be a non-empty object")]
    [InlineData("json_not_json", "dataset.json", "not valid JSON")]
    public void Bad_dataset_json_is_refused_naming_file_and_field(string dataset, string field, string problem)
    {
        string folder = BadInput.Dataset(dataset);
        var before = BadInput.Snapshot(folder);
        var ex = Record.Exception(() => RawDataset.Open(folder));
        Assert.NotNull(ex);
        BadInput.AssertNotACrash(ex);
        var invalid = Assert.IsType<InvalidDataException>(ex);
        Assert.Contains(Path.Combine(folder, "dataset.json"), invalid.Message);
        Assert.Contains(field, invalid.Message);
        Assert.Contains(problem, invalid.Message);
        BadInput.AssertUnchanged(before, folder);
    }

    [Fact]
    public void Case_id_that_climbs_out_of_the_dataset_is_refused()
    {
        string folder = BadInput.Dataset("traversal_case_id");
        var ex = Assert.Throws<InvalidDataException>(() => RawDataset.Open(folder));
        Assert.Contains(Path.Combine(folder, "dataset.json"), ex.Message);
        Assert.Contains("../../escaped", ex.Message);
        Assert.Contains("file name", ex.Message);
    }

    [Theory]
    [InlineData("a/b")]
    [InlineData("..")]
    [InlineData("")]
    [InlineData("/abs")]
    [InlineData("a\\b")]
    public void Unsafe_case_ids_in_the_dataset_key_are_refused(string caseId)
    {
        string id = caseId.Replace("\\", "\\\\");
        string json = "{\"channel_names\": {\"0\": \"CT\"}, \"labels\": {\"background\": 0, \"x\": 1}, \"numTraining\": 1, " +
                      "\"file_ending\": \".nii.gz\", \"dataset\": {\"" + id + "\": {\"images\": [\"imagesTr/a_0000.nii.gz\"], \"label\": \"labelsTr/a.nii.gz\"}}}";
        var doc = DatasetJson.Parse(json, "x/dataset.json");
        var ex = Assert.Throws<InvalidDataException>(() => doc.ExplicitCases(_temp));
        Assert.StartsWith("x/dataset.json", ex.Message);
    }

    [Fact]
    public void Ordinary_case_ids_in_the_dataset_key_still_work()
    {
        string json = """
            {"channel_names": {"0": "CT"}, "labels": {"background": 0, "x": 1}, "numTraining": 1, "file_ending": ".nii.gz",
             "dataset": {"case.01-a_b": {"images": ["../elsewhere/a_0000.nii.gz"], "label": "labelsTr/a.nii.gz"}}}
            """;
        var cases = DatasetJson.Parse(json).ExplicitCases(_temp)!;
        // file paths may point anywhere (nnU-Net allows it: inputs are only read); only the id becomes an output name
        Assert.Equal(Path.GetFullPath(Path.Combine(_temp, "../elsewhere/a_0000.nii.gz")), cases["case.01-a_b"].Images[0]);
    }

    [Fact]
    public void Empty_dataset_opens_with_no_cases_and_changes_nothing()
    {
        string folder = BadInput.CopyToTemp(BadInput.Dataset("empty_dataset"), _temp);
        var before = BadInput.Snapshot(folder);
        var dataset = RawDataset.Open(folder);
        Assert.Empty(dataset.TrainingCases);
        BadInput.AssertUnchanged(before, folder);
    }

    [Fact]
    public void Channel_count_mismatch_names_the_case_and_the_missing_file()
    {
        var dataset = RawDataset.Open(BadInput.Dataset("channel_mismatch"));
        var runner = Runner(dataset.Json);
        var ex = Assert.Throws<FileNotFoundException>(() => runner.ReadChannels(dataset.TrainingCases[0]));
        Assert.Contains("case case_000", ex.Message);
        Assert.Contains("case_000_0001.nii.gz", ex.Message);
    }

    /// <summary>
    /// A dataset whose case_000 was preprocessed earlier gains a broken case_001: the rerun reports case_001 with the
    /// file and the problem and leaves every byte and time of the earlier output as it was.
    /// </summary>
    [Theory]
    [InlineData("shape_mismatch", null, "has shape")]
    [InlineData(null, "truncated_gzip.nii.gz", "truncated")]
    [InlineData(null, "corrupt_gzip.nii.gz", "gzip")]
    [InlineData(null, "dims_larger_than_data.nii.gz", "more than a")]
    public void Broken_case_fails_by_name_and_earlier_output_is_untouched(string? badDataset, string? badImage, string problem)
    {
        string folder = BadInput.CopyToTemp(BadInput.Dataset("valid"), _temp);
        string output = Path.Combine(_temp, "preprocessed", "3d_fullres");
        var first = RunPreprocessing(folder, output);
        Assert.All(first, r => Assert.False(r.Failed, r.Error));
        var before = BadInput.Snapshot(output);

        string brokenImage = Path.Combine(folder, "imagesTr", "case_001_0000.nii.gz");
        string brokenLabel = Path.Combine(folder, "labelsTr", "case_001.nii.gz");
        if (badDataset is not null)
        {
            File.Copy(Path.Combine(BadInput.Dataset(badDataset), "imagesTr", "case_000_0000.nii.gz"), brokenImage);
            File.Copy(Path.Combine(BadInput.Dataset(badDataset), "labelsTr", "case_000.nii.gz"), brokenLabel);
        }
        else
        {
            File.Copy(BadInput.Nifti(badImage!), brokenImage);
            File.Copy(Path.Combine(folder, "labelsTr", "case_000.nii.gz"), brokenLabel);
        }

        var second = RunPreprocessing(folder, output);
        Assert.True(second[0].Skipped);
        Assert.Equal("case_001", second[1].CaseId);
        Assert.True(second[1].Failed);
        Assert.Contains(badDataset is null ? brokenImage : brokenLabel, second[1].Error);
        Assert.Contains(problem, second[1].Error);
        BadInput.AssertUnchanged(before, output);
    }

    private static IReadOnlyList<CasePreprocessingResult> RunPreprocessing(string datasetFolder, string output)
    {
        var dataset = RawDataset.Open(datasetFolder);
        return Runner(dataset.Json).Run("3d_fullres", dataset.TrainingCases, output, 1);
    }

    private static DatasetPreprocessor Runner(DatasetJson json)
    {
        var config = TestPlans.Configuration("nnUNetPlans_3d_fullres", [1.0, 1.0, 1.0], ["ZScoreNormalization"], [false]);
        var plans = TestPlans.Plans([0, 1, 2], new(), ("3d_fullres", config));
        return new DatasetPreprocessor(plans, json, NiftiReader.Read);
    }
}
