using NnUnet.Core.Imaging;
using NnUnet.Core.Imaging.Nifti;

namespace NnUnet.Cli.Tests.Datasets;

/// <summary>The dataset verbs end to end through <see cref="NnUnetApp.Run"/>, on real files in a temp folder.</summary>
[Collection(ConsoleCollection.Name)]
public sealed class DatasetVerbsTests : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "nnunet-cli-ds-" + Guid.NewGuid().ToString("N")[..12]);
    private string Raw => Path.Combine(_root, "raw");
    private string Preprocessed => Path.Combine(_root, "pre");

    public DatasetVerbsTests()
    {
        Directory.CreateDirectory(Raw);
        Directory.CreateDirectory(Preprocessed);
    }

    public void Dispose()
    {
        try { Directory.Delete(_root, recursive: true); } catch (IOException) { }
    }

    private string CreateDataset(string name, int cases)
    {
        string folder = Path.Combine(Raw, name);
        Directory.CreateDirectory(Path.Combine(folder, "imagesTr"));
        Directory.CreateDirectory(Path.Combine(folder, "labelsTr"));
        File.WriteAllText(Path.Combine(folder, "dataset.json"),
            $$"""{"channel_names": {"0": "CT"}, "labels": {"background": 0, "liver": 1}, "numTraining": {{cases}}, "file_ending": ".nii.gz"}""");
        var geometry = ImageGeometry.Identity(0.75, 0.75, 2.0);
        for (int k = 0; k < cases; k++)
        {
            var image = new float[4 * 5 * 6];
            var label = new byte[image.Length];
            for (int i = 0; i < image.Length; i++)
            {
                int z = i / 30, y = i / 6 % 5, x = i % 6;
                bool inside = z >= 1 && y >= 1 && x >= 1 && x <= 4;
                image[i] = inside ? 100 + k + i : 0;
                label[i] = (byte)(inside && x >= 2 ? 1 : 0);
            }
            NiftiWriter.Write(Path.Combine(folder, "imagesTr", $"liver_{k:D3}_0000.nii.gz"), MedicalImage.FromFloat(image, 1, 4, 5, 6, geometry));
            NiftiWriter.Write(Path.Combine(folder, "labelsTr", $"liver_{k:D3}.nii.gz"), new MedicalImage(1, 4, 5, 6, VoxelType.UInt8, label, geometry));
        }
        return folder;
    }

    private (int ExitCode, string Out, string Error) Run(params string[] args) => CliRunner.Run([.. args, "--raw", Raw, "--preprocessed", Preprocessed]);

    [Fact]
    public void VerifyFingerprintAndSplitsOnAValidDataset()
    {
        CreateDataset("Dataset007_Liver", 6);
        var verify = Run("verify", "7", "--np", "2");
        Assert.Equal(NnUnetApp.ExitOk, verify.ExitCode);
        Assert.Contains("6 training cases OK", verify.Out);

        var fingerprint = Run("fingerprint", "Dataset007_Liver", "--np", "2", "--foreground-samples", "6000");
        Assert.Equal(NnUnetApp.ExitOk, fingerprint.ExitCode);
        Assert.Contains("dataset_fingerprint.json", fingerprint.Out);
        Assert.True(File.Exists(Path.Combine(Preprocessed, "Dataset007_Liver", "dataset_fingerprint.json")));
        Assert.True(File.Exists(Path.Combine(Preprocessed, "Dataset007_Liver", "dataset.json")));
        var again = Run("fingerprint", "7", "--json");
        Assert.Equal(NnUnetApp.ExitOk, again.ExitCode);
        var json = System.Text.Json.Nodes.JsonNode.Parse(again.Out)!;
        Assert.Equal(6, json["spacings"]!.AsArray().Count);
        Assert.Equal(2.0, (double)json["spacings"]![0]![0]!);

        var splitsRun = Run("splits", "007", "--fold", "5");
        Assert.Equal(NnUnetApp.ExitOk, splitsRun.ExitCode);
        Assert.Contains("random 80:20", splitsRun.Out);
        string splits = File.ReadAllText(Path.Combine(Preprocessed, "Dataset007_Liver", "splits_final.json"));
        Assert.Contains("liver_005", splits);
    }

    [Fact]
    public void VerifyReturnsProblemsExitCodeAndBadInputIsExitTwo()
    {
        string folder = CreateDataset("Dataset008_Broken", 3);
        File.Delete(Path.Combine(folder, "labelsTr", "liver_001.nii.gz"));
        var verify = Run("verify", "8", "--json");
        Assert.Equal(NnUnetApp.ExitProblems, verify.ExitCode);
        var problem = System.Text.Json.Nodes.JsonNode.Parse(verify.Out)!["problems"]![0]!;
        Assert.Equal("liver_001", (string?)problem["case"]);
        Assert.Contains("missing label file", (string?)problem["message"]);
        var text = Run("verify", "8");
        Assert.Contains("case liver_001: missing label file", text.Out);
        var unknown = Run("verify", "99");
        Assert.Equal(NnUnetApp.ExitBadInput, unknown.ExitCode);
        Assert.Contains("no dataset with id 99", unknown.Error);
        Assert.Equal(NnUnetApp.ExitBadInput, Run("fingerprint", "8", "--np", "0").ExitCode);

        File.WriteAllText(Path.Combine(folder, "dataset.json"), """{"channel_names": {"0": "CT"}, "labels": {"liver": 1}, "numTraining": 3, "file_ending": ".nii.gz"}""");
        var badJson = Run("verify", "8");
        Assert.Equal(NnUnetApp.ExitProblems, badJson.ExitCode);
        Assert.Contains("'labels.background'", badJson.Out);
    }

    [Fact]
    public void ConvertMsdCreatesAVerifiableDataset()
    {
        string task = Path.Combine(_root, "Task04_Hippocampus");
        Directory.CreateDirectory(Path.Combine(task, "imagesTr"));
        Directory.CreateDirectory(Path.Combine(task, "labelsTr"));
        File.WriteAllText(Path.Combine(task, "dataset.json"), """
            {"name": "Hippocampus", "modality": {"0": "MRI"}, "labels": {"0": "background", "1": "Anterior", "2": "Posterior"},
             "numTraining": 2, "training": [], "test": []}
            """);
        var geometry = ImageGeometry.Identity(1, 1, 1);
        foreach (string id in new[] { "hippocampus_001", "hippocampus_003" })
        {
            NiftiWriter.Write(Path.Combine(task, "imagesTr", id + ".nii.gz"), MedicalImage.FromFloat(Enumerable.Range(0, 60).Select(v => (float)v).ToArray(), 1, 3, 4, 5, geometry));
            NiftiWriter.Write(Path.Combine(task, "labelsTr", id + ".nii.gz"), new MedicalImage(1, 3, 4, 5, VoxelType.UInt8, Enumerable.Range(0, 60).Select(v => (byte)(v % 3)).ToArray(), geometry));
        }
        var convert = Run("convert-msd", task);
        Assert.Equal(NnUnetApp.ExitOk, convert.ExitCode);
        Assert.Contains("Dataset004_Hippocampus", convert.Out);
        Assert.True(File.Exists(Path.Combine(Raw, "Dataset004_Hippocampus", "imagesTr", "hippocampus_003_0000.nii.gz")));
        Assert.Equal(NnUnetApp.ExitOk, Run("verify", "4").ExitCode);
        var again = Run("convert-msd", task);
        Assert.Equal(NnUnetApp.ExitBadInput, again.ExitCode);
        Assert.Contains("already taken", again.Error);
    }

    [Fact]
    public void SplitsWithUnknownCasesInAnExistingFileAreProblems()
    {
        CreateDataset("Dataset009_Custom", 5);
        Directory.CreateDirectory(Path.Combine(Preprocessed, "Dataset009_Custom"));
        File.WriteAllText(Path.Combine(Preprocessed, "Dataset009_Custom", "splits_final.json"), """[{"train": ["liver_000", "nope"], "val": ["liver_001"]}]""");
        var run = Run("splits", "9");
        Assert.Equal(NnUnetApp.ExitProblems, run.ExitCode);
        Assert.Contains("'nope' is not a case", run.Out);
        Assert.Contains("nope", File.ReadAllText(Path.Combine(Preprocessed, "Dataset009_Custom", "splits_final.json")));
    }
}
