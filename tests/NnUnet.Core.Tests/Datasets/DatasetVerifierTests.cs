using NnUnet.Core.Datasets;
using NnUnet.Core.Imaging;

namespace NnUnet.Core.Tests.Datasets;

public class DatasetVerifierTests
{
    [Fact]
    public void ValidDatasetHasNoProblems()
    {
        using var tmp = new TempFolder();
        string folder = SyntheticDataset.CreateValid(tmp.Path, "Dataset001_Ok", ["a", "b", "c"], channels: 2);
        var report = DatasetVerifier.Verify(folder, maxParallelism: 2);
        Assert.Empty(report.Problems);
        Assert.Equal(3, report.TrainingCases);
        Assert.False(report.HasErrors);
    }

    [Fact]
    public void ReportsEveryProblemAtOnceNamingTheCase()
    {
        using var tmp = new TempFolder();
        int[] shape = [6, 7, 8];
        string folder = SyntheticDataset.CreateValid(tmp.Path, "Dataset002_Bad", ["ok", "nochan", "nolabel", "shape", "spacing", "origin", "values", "nan", "broken"], channels: 2);
        File.Delete(Path.Combine(folder, "imagesTr", "nochan_0001.nii.gz"));
        File.Delete(Path.Combine(folder, "labelsTr", "nolabel.nii.gz"));
        SyntheticDataset.WriteLabel(folder, "shape", SyntheticDataset.Label([6, 7, 9], (_, _, _) => 0));
        SyntheticDataset.WriteImage(folder, "spacing", 1, SyntheticDataset.Image(shape, (_, _, _) => 1, ImageGeometry.Identity(0.8, 0.8, 3.0)));
        var shifted = new ImageGeometry([0.8, 0.8, 2.5], [10, 0, 0], [1, 0, 0, 0, 1, 0, 0, 0, 1]);
        SyntheticDataset.WriteLabel(folder, "origin", SyntheticDataset.Label(shape, (_, _, _) => 0, shifted));
        SyntheticDataset.WriteLabel(folder, "values", SyntheticDataset.Label(shape, (z, _, x) => z == 2 ? (x == 1 ? 7 : 5) : 0));
        SyntheticDataset.WriteImage(folder, "nan", 0, SyntheticDataset.Image(shape, (z, y, x) => z == 0 && y == 0 ? (x < 2 ? float.NaN : float.PositiveInfinity) : 1));
        File.WriteAllBytes(Path.Combine(folder, "imagesTr", "broken_0000.nii.gz"), [1, 2, 3, 4, 5]);
        File.WriteAllText(Path.Combine(folder, "imagesTr", "readme.txt"), "x");
        File.WriteAllText(Path.Combine(folder, "imagesTr", "ok_0002.nii.gz"), "x");
        File.WriteAllText(Path.Combine(folder, "labelsTr", "orphan.nii.gz"), "x");
        File.WriteAllText(Path.Combine(folder, "dataset.json"), SyntheticDataset.DatasetJson(2, 2, 12));

        var report = DatasetVerifier.Verify(folder, maxParallelism: 2);
        string all = string.Join("\n", report.Problems);

        void Has(string? caseId, ProblemSeverity severity, params string[] fragments) =>
            Assert.True(report.Problems.Any(p => p.CaseId == caseId && p.Severity == severity && fragments.All(f => p.Message.Contains(f))),
                $"expected a {severity} for {caseId ?? "the dataset"} containing [{string.Join(" | ", fragments)}] in:\n{all}");

        Has(null, ProblemSeverity.Error, "numTraining = 12", "9 training cases");
        Has(null, ProblemSeverity.Error, "readme.txt");
        Has("ok", ProblemSeverity.Error, "ok_0002.nii.gz", "channel 2");
        Has("orphan", ProblemSeverity.Error, "orphan.nii.gz", "no images");
        Has("nochan", ProblemSeverity.Error, "missing image file", "nochan_0001.nii.gz");
        Has("nolabel", ProblemSeverity.Error, "missing label file", "nolabel.nii.gz");
        Has("shape", ProblemSeverity.Error, "shape mismatch", "shape.nii.gz");
        Has("spacing", ProblemSeverity.Error, "spacing mismatch", "spacing_0001.nii.gz");
        Has("origin", ProblemSeverity.Warning, "origin mismatch", "origin.nii.gz");
        Has("values", ProblemSeverity.Error, "not declared", "5, 7");
        Has("nan", ProblemSeverity.Error, "2 NaN voxels", "nan_0000.nii.gz");
        Has("nan", ProblemSeverity.Error, "6 infinite voxels");
        Has("broken", ProblemSeverity.Error, "cannot read", "broken_0000.nii.gz");
        Assert.DoesNotContain(report.Problems, p => p.CaseId == "ok" && !p.Message.Contains("ok_0002"));
        Assert.True(report.HasErrors);
        Assert.Equal(1, report.WarningCount);
    }

    [Fact]
    public void InvalidDatasetJsonIsTheOnlyProblemReported()
    {
        using var tmp = new TempFolder();
        string folder = SyntheticDataset.CreateValid(tmp.Path, "Dataset003_Json", ["a"]);
        File.WriteAllText(Path.Combine(folder, "dataset.json"), """{"channel_names": {"0": "CT"}, "labels": {"background": 0}, "numTraining": 1}""");
        var report = DatasetVerifier.Verify(folder);
        var problem = Assert.Single(report.Problems);
        Assert.Contains("file_ending", problem.Message);
        Assert.Contains("dataset.json", problem.Message);
    }

    [Fact]
    public void MissingLabelsFolderIsReported()
    {
        using var tmp = new TempFolder();
        string folder = SyntheticDataset.CreateValid(tmp.Path, "Dataset004_NoLabels", ["a"]);
        Directory.Delete(Path.Combine(folder, "labelsTr"), recursive: true);
        var report = DatasetVerifier.Verify(folder);
        Assert.Contains(report.Problems, p => p.CaseId is null && p.Message.Contains("labelsTr") && p.Message.Contains("does not exist"));
        Assert.Contains(report.Problems, p => p.CaseId == "a" && p.Message.Contains("missing label file"));
    }

    [Fact]
    public void RawCaseReaderStacksChannelsAndRejectsShapeMismatch()
    {
        using var tmp = new TempFolder();
        string folder = SyntheticDataset.CreateValid(tmp.Path, "Dataset005_Read", ["a"], channels: 3);
        var rawCase = RawDataset.Open(folder).TrainingCases[0];
        var image = RawCaseReader.ReadImages(rawCase);
        Assert.Equal(3, image.Channels);
        Assert.Equal([6, 7, 8], image.SpatialShape);
        var data = image.ToFloat32();
        Assert.Equal(1f, data[0]);
        Assert.Equal(2f, data[336]);
        Assert.Equal(3f, data[672]);
        SyntheticDataset.WriteImage(folder, "a", 2, SyntheticDataset.Image([6, 7, 9], (_, _, _) => 0));
        var ex = Assert.Throws<InvalidDataException>(() => RawCaseReader.ReadImages(rawCase));
        Assert.Contains("case a", ex.Message);
        Assert.Contains("a_0002.nii.gz", ex.Message);
    }
}
