using NnUnet.Core.Datasets;

namespace NnUnet.Core.Tests.Reliability;

/// <summary>
/// <see cref="DatasetVerifier.Verify"/> over every dataset of tests/fixtures/bad/datasets: each broken one is reported
/// as an error naming the case (or dataset.json) and the problem, nothing throws, and the folder keeps its bytes and times.
/// </summary>
public class BadDatasetVerifyTests
{
    [Theory]
    [InlineData("nan_image", "case_000", "NaN")]
    [InlineData("undeclared_label", "case_000", "5")]
    [InlineData("channel_mismatch", "case_000", "case_000_0001.nii.gz")]
    [InlineData("shape_mismatch", "case_000", "case_000.nii.gz")]
    [InlineData("geometry_mismatch", "case_000", "spacing")]
    [InlineData("json_missing_labels", null, "'labels' is missing")]
    [InlineData("json_missing_file_ending", null, "'file_ending' is missing")]
    [InlineData("json_wrong_types", null, "'numTraining' must be an integer")]
    [InlineData("json_labels_not_object", null, "'labels' must be a non-empty object")]
    [InlineData("json_not_json", null, "not valid JSON")]
    [InlineData("traversal_case_id", null, "not a valid case id")]
    public void Verify_reports_the_case_and_the_problem_and_changes_nothing(string dataset, string? caseId, string problem)
    {
        string folder = BadInput.Dataset(dataset);
        var before = BadInput.Snapshot(folder);
        var report = DatasetVerifier.Verify(folder);
        string all = string.Join("\n", report.Problems);
        Assert.True(report.HasErrors, $"{dataset}: no error reported:\n{all}");
        Assert.Contains(report.Problems, p => p.Severity == ProblemSeverity.Error && p.CaseId == caseId && p.Message.Contains(problem, StringComparison.Ordinal));
        if (caseId is null) Assert.Contains(report.Problems, p => p.Message.Contains(Path.Combine(folder, "dataset.json"), StringComparison.Ordinal));
        BadInput.AssertUnchanged(before, folder);
    }

    [Fact]
    public void Valid_dataset_has_no_errors()
    {
        var report = DatasetVerifier.Verify(BadInput.Dataset("valid"));
        Assert.False(report.HasErrors, string.Join("\n", report.Problems));
    }

    [Fact]
    public void Broken_image_files_are_reported_per_case_without_throwing()
    {
        using var temp = new Datasets.TempFolder();
        string folder = BadInput.CopyToTemp(BadInput.Dataset("valid"), temp.Path);
        string[] broken = ["truncated_gzip.nii.gz", "corrupt_gzip.nii.gz", "dims_larger_than_data.nii.gz", "wrong_magic.nii", "empty.nii.gz"];
        for (int i = 0; i < broken.Length; i++)
        {
            string id = $"case_{i + 1:D3}";
            File.Copy(BadInput.Nifti(broken[i]), Path.Combine(folder, "imagesTr", id + "_0000.nii.gz"));
            File.Copy(Path.Combine(folder, "labelsTr", "case_000.nii.gz"), Path.Combine(folder, "labelsTr", id + ".nii.gz"));
        }
        string json = File.ReadAllText(Path.Combine(folder, "dataset.json")).Replace("\"numTraining\": 1", $"\"numTraining\": {broken.Length + 1}");
        File.WriteAllText(Path.Combine(folder, "dataset.json"), json);
        var before = BadInput.Snapshot(folder);

        var report = DatasetVerifier.Verify(folder, maxParallelism: 2);
        for (int i = 0; i < broken.Length; i++)
        {
            string id = $"case_{i + 1:D3}";
            string file = Path.Combine(folder, "imagesTr", id + "_0000.nii.gz");
            Assert.Contains(report.Problems, p => p.Severity == ProblemSeverity.Error && p.CaseId == id && p.Message.Contains(file, StringComparison.Ordinal));
        }
        Assert.DoesNotContain(report.Problems, p => p.CaseId == "case_000" && p.Severity == ProblemSeverity.Error);
        BadInput.AssertUnchanged(before, folder);
    }

    [Fact]
    public void Empty_dataset_verify_does_not_throw_and_changes_nothing()
    {
        string folder = BadInput.Dataset("empty_dataset");
        var before = BadInput.Snapshot(folder);
        var report = DatasetVerifier.Verify(folder);
        Assert.Equal(0, report.TrainingCases);
        BadInput.AssertUnchanged(before, folder);
    }
}
