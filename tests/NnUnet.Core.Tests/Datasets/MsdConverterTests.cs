using NnUnet.Core.Datasets;
using NnUnet.Core.Imaging;
using NnUnet.Core.Imaging.Nifti;

namespace NnUnet.Core.Tests.Datasets;

public class MsdConverterTests
{
    private const string MsdJson = """
        {"name": "Prostate", "description": "Prostate transitional zone and peripheral zone segmentation",
         "tensorImageSize": "4D", "modality": {"0": "T2", "1": "ADC"},
         "labels": {"0": "background", "1": "PZ", "2": "TZ"},
         "numTraining": 2, "numTest": 1,
         "training": [{"image": "./imagesTr/prostate_00.nii.gz", "label": "./labelsTr/prostate_00.nii.gz"},
                      {"image": "./imagesTr/prostate_01.nii.gz", "label": "./labelsTr/prostate_01.nii.gz"}],
         "test": ["./imagesTs/prostate_03.nii.gz"]}
        """;

    private static string CreateTask(TempFolder tmp, string name = "Task05_Prostate")
    {
        string task = tmp.Sub("downloads", name);
        Directory.CreateDirectory(Path.Combine(task, "imagesTr"));
        Directory.CreateDirectory(Path.Combine(task, "labelsTr"));
        Directory.CreateDirectory(Path.Combine(task, "imagesTs"));
        File.WriteAllText(Path.Combine(task, "dataset.json"), MsdJson);
        var geometry = new ImageGeometry([0.6, 0.6, 3.6], [-90, -80, 20], [1, 0, 0, 0, 1, 0, 0, 0, 1]);
        foreach (var (folder, id) in new[] { ("imagesTr", "prostate_00"), ("imagesTr", "prostate_01"), ("imagesTs", "prostate_03") })
        {
            // Two channels, channel c voxel i = 1000 c + i.
            var voxels = new short[2 * 3 * 4 * 5];
            for (int i = 0; i < voxels.Length; i++) voxels[i] = (short)(i < 60 ? i : 1000 + i - 60);
            NiftiWriter.Write(Path.Combine(task, folder, id + ".nii.gz"), new MedicalImage(2, 3, 4, 5, VoxelType.Int16, voxels, geometry));
        }
        foreach (string id in new[] { "prostate_00", "prostate_01" })
            NiftiWriter.Write(Path.Combine(task, "labelsTr", id + ".nii.gz"), SyntheticDataset.Label([3, 4, 5], (z, _, _) => z, geometry));
        File.WriteAllText(Path.Combine(task, "imagesTr", "._prostate_00.nii.gz"), "mac debris");
        return task;
    }

    [Fact]
    public void ConvertsTaskToV2DatasetSplittingChannels()
    {
        using var tmp = new TempFolder();
        string task = CreateTask(tmp);
        var paths = new NnUnetPaths(tmp.Sub("raw"), null, null);
        var result = MsdConverter.Convert(task, paths, maxParallelism: 2);

        Assert.Equal("Dataset005_Prostate", result.DatasetName);
        Assert.Equal(2, result.TrainingCases);
        Assert.Equal(1, result.TestCases);
        var dataset = RawDataset.Open(result.TargetFolder);
        Assert.Equal(["prostate_00", "prostate_01"], dataset.TrainingCaseIds);
        Assert.Equal(["T2", "ADC"], dataset.Json.ChannelNames);
        Assert.Equal(["background", "PZ", "TZ"], dataset.Json.Labels.Select(l => l.Name));
        Assert.Equal([0, 1, 2], dataset.Json.AllLabels);
        Assert.Equal(".nii.gz", dataset.Json.FileEnding);
        Assert.Equal(2, dataset.Json.NumTraining);
        Assert.False(dataset.Json.Document.ContainsKey("training"));
        Assert.False(dataset.Json.Document.ContainsKey("modality"));
        Assert.Equal("Prostate", (string?)dataset.Json.Document["name"]);

        var adc = NiftiReader.Read(Path.Combine(result.TargetFolder, "imagesTr", "prostate_01_0001.nii.gz"));
        Assert.Equal(1, adc.Channels);
        Assert.Equal([3, 4, 5], adc.SpatialShape);
        Assert.Equal(1000f, adc.ToFloat32()[0]);
        Assert.Equal(new[] { 0.6, 0.6, 3.6 }, adc.Geometry.Spacing.Select(v => Math.Round(v, 5)));
        Assert.True(File.Exists(Path.Combine(result.TargetFolder, "imagesTs", "prostate_03_0000.nii.gz")));
        Assert.True(File.Exists(Path.Combine(result.TargetFolder, "labelsTr", "prostate_00.nii.gz")));
        Assert.Empty(DatasetVerifier.Verify(result.TargetFolder).Problems);
    }

    [Fact]
    public void TakenIdIsRefusedAndAnotherIdCanBeChosen()
    {
        using var tmp = new TempFolder();
        string task = CreateTask(tmp);
        var paths = new NnUnetPaths(tmp.Sub("raw"), tmp.Sub("pre"), null);
        tmp.Sub("pre", "Dataset005_Other");
        var ex = Assert.Throws<InvalidDataException>(() => MsdConverter.Convert(task, paths));
        Assert.Contains("Dataset005_Other", ex.Message);
        var result = MsdConverter.Convert(task, paths, targetId: 205);
        Assert.Equal("Dataset205_Prostate", result.DatasetName);
        Assert.Single(Directory.GetDirectories(paths.Raw!));
    }

    [Fact]
    public void BadInputsAreNamed()
    {
        using var tmp = new TempFolder();
        var paths = new NnUnetPaths(tmp.Sub("raw"), null, null);
        Assert.Contains("TaskXX_Name", Assert.Throws<ArgumentException>(() => MsdConverter.Convert(tmp.Sub("Prostate"), paths)).Message);

        string task = CreateTask(tmp, "Task06_Broken");
        File.WriteAllBytes(Path.Combine(task, "imagesTr", "prostate_01.nii.gz"), [9, 9, 9]);
        var ex = Assert.ThrowsAny<Exception>(() => MsdConverter.Convert(task, paths));
        Assert.Contains("prostate_01.nii.gz", ex.Message);
        Assert.Empty(Directory.GetFileSystemEntries(paths.Raw!)); // nothing half-written is left behind

        File.WriteAllText(Path.Combine(task, "dataset.json"), """{"modality": {"0": "CT"}, "labels": {"zero": "background"}}""");
        Assert.Contains("labels", Assert.Throws<InvalidDataException>(() => MsdConverter.Convert(task, paths)).Message);
    }
}
