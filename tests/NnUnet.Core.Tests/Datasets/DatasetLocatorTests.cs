using NnUnet.Core.Datasets;

namespace NnUnet.Core.Tests.Datasets;

public class DatasetLocatorTests
{
    private const string MinimalJson = """{"channel_names": {"0": "CT"}, "labels": {"background": 0}, "numTraining": 0, "file_ending": ".nii.gz"}""";

    [Theory]
    [InlineData("4")]
    [InlineData("004")]
    [InlineData("Dataset004_Hippo")]
    public void LocatesByIdOrName(string argument)
    {
        using var tmp = new TempFolder();
        string raw = tmp.Sub("raw");
        tmp.Write("raw/Dataset004_Hippo/dataset.json", MinimalJson);
        tmp.Sub("raw", "Dataset0045_Other");
        tmp.Sub("raw", "Dataset040_Other");
        var location = DatasetLocator.Locate(argument, new NnUnetPaths(raw, null, null));
        Assert.Equal("Dataset004_Hippo", location.Name);
        Assert.Equal(4, location.Id);
        Assert.Equal(System.IO.Path.Combine(raw, "Dataset004_Hippo"), location.RawFolder);
    }

    [Fact]
    public void LocatesByDirectPath()
    {
        using var tmp = new TempFolder();
        tmp.Write("anywhere/MyData/dataset.json", MinimalJson);
        var location = DatasetLocator.Locate(System.IO.Path.Combine(tmp.Path, "anywhere", "MyData") + "/", new NnUnetPaths(null, null, null));
        Assert.Equal("MyData", location.Name);
        Assert.Null(location.Id);
    }

    [Fact]
    public void IdIsFoundInPreprocessedWhenRawLacksIt()
    {
        using var tmp = new TempFolder();
        tmp.Sub("pre", "Dataset012_Liver");
        var paths = new NnUnetPaths(tmp.Sub("raw"), System.IO.Path.Combine(tmp.Path, "pre"), null);
        Assert.Equal("Dataset012_Liver", DatasetLocator.ResolveName("12", paths));
    }

    [Fact]
    public void AmbiguousIdNamesBothCandidates()
    {
        using var tmp = new TempFolder();
        tmp.Sub("raw", "Dataset002_Heart");
        tmp.Sub("pre", "Dataset002_Heart2");
        var paths = new NnUnetPaths(System.IO.Path.Combine(tmp.Path, "raw"), System.IO.Path.Combine(tmp.Path, "pre"), null);
        var ex = Assert.Throws<InvalidDataException>(() => DatasetLocator.ResolveName("2", paths));
        Assert.Contains("Dataset002_Heart,", ex.Message);
        Assert.Contains("Dataset002_Heart2", ex.Message);
    }

    [Fact]
    public void UnknownIdAndUnsetRootsAreClearErrors()
    {
        using var tmp = new TempFolder();
        var ex = Assert.Throws<DirectoryNotFoundException>(() => DatasetLocator.Locate("9", new NnUnetPaths(tmp.Path, null, null)));
        Assert.Contains("Dataset009_*", ex.Message);
        var unset = Assert.Throws<InvalidOperationException>(() => DatasetLocator.Locate("Dataset001_X", new NnUnetPaths(null, null, null)));
        Assert.Contains("nnUNet_raw is not set", unset.Message);
        Assert.Throws<ArgumentException>(() => DatasetLocator.Locate("hippo", new NnUnetPaths(tmp.Path, null, null)));
    }

    [Fact]
    public void FolderWithoutDatasetJsonIsRejected()
    {
        using var tmp = new TempFolder();
        string raw = tmp.Sub("raw");
        tmp.Sub("raw", "Dataset003_Liver");
        var ex = Assert.Throws<FileNotFoundException>(() => DatasetLocator.Locate("3", new NnUnetPaths(raw, null, null)));
        Assert.Contains("dataset.json", ex.Message);
    }

    [Fact]
    public void PathsPreferExplicitValuesOverEnvironment()
    {
        var paths = NnUnetPaths.FromEnvironment(raw: "/explicit/raw");
        Assert.Equal("/explicit/raw", paths.Raw);
        Assert.Equal(System.IO.Path.Combine("/r", "Dataset001_A"), new NnUnetPaths(null, "/r", null).PreprocessedDatasetFolder("Dataset001_A"));
        Assert.Throws<InvalidOperationException>(() => new NnUnetPaths(null, null, null).RequireResults());
    }

    [Fact]
    public void FormatsAndParsesNames()
    {
        Assert.Equal("Dataset004_Hippocampus", DatasetLocator.FormatName(4, "Hippocampus"));
        Assert.Equal("Dataset1234_X", DatasetLocator.FormatName(1234, "X"));
        Assert.True(DatasetLocator.TryParseName("Dataset220_KiTS2023", out int id, out string name));
        Assert.Equal(220, id);
        Assert.Equal("KiTS2023", name);
        Assert.False(DatasetLocator.TryParseName("Task04_Hippocampus", out _, out _));
    }
}
