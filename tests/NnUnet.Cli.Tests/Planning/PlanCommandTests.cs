using System.Text.Json;
using System.Text.Json.Nodes;
using NnUnet.Core.Fingerprinting;
using NnUnet.Core.Planning;

namespace NnUnet.Cli.Tests.Planning;

/// <summary><c>nnunet plan</c> end to end through <see cref="NnUnetApp.Run"/>, on real files in a temp folder.</summary>
[Collection(ConsoleCollection.Name)]
public sealed class PlanCommandTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("nnunet-cli-plan-").FullName;
    private string Raw => Path.Combine(_root, "raw");
    private string Preprocessed => Path.Combine(_root, "pre");

    public void Dispose()
    {
        try { Directory.Delete(_root, recursive: true); } catch (IOException) { }
    }

    /// <summary>63 cases at MSD Lung's median spacing and shape (see the planner tests for the published numbers).</summary>
    private static DatasetFingerprint LungFingerprint()
    {
        var spacings = new List<double[]>();
        var shapes = new List<int[]>();
        for (int i = 0; i < 63; i++)
        {
            spacings.Add([1.245, 0.78515625, 0.78515625]);
            shapes.Add([252, 512, 512]);
        }
        var intensities = new Dictionary<string, IntensityProperties> { ["0"] = new(-300, -200, 300, -1024, 3000, 500, -1000) };
        return new DatasetFingerprint(intensities, 1.0, shapes, spacings);
    }

    private const string LungDatasetJson =
        """{"channel_names": {"0": "CT"}, "labels": {"background": 0, "cancer": 1}, "numTraining": 63, "file_ending": ".nii.gz", "name": "Lung"}""";

    private string WriteFile(string relativePath, string content)
    {
        string path = Path.Combine(_root, relativePath);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, content);
        return path;
    }

    private string WriteFingerprint(string relativePath) => WriteFile(relativePath, JsonSerializer.Serialize(LungFingerprint()));

    private static (int ExitCode, string Out, string Error) Run(params string[] args) => CliRunner.Run(args);

    [Fact]
    public void Fingerprint_and_dataset_json_alone_print_the_plans_as_json()
    {
        string fingerprint = WriteFingerprint("files/fp.json");
        string datasetJson = WriteFile("files/dataset.json", LungDatasetJson);

        var (exitCode, output, error) = Run("plan", "--fingerprint", fingerprint, "--dataset-json", datasetJson, "--json");

        Assert.True(exitCode == NnUnetApp.ExitOk, error);
        var plans = JsonSerializer.Deserialize<NnUnetPlans>(output, NnUnetPlans.JsonOptions)!;
        Assert.Equal("Lung", plans.DatasetName);
        Assert.Equal(["2d", "3d_lowres", "3d_fullres", "3d_cascade_fullres"], plans.ConfigurationNames);
        Assert.Equal([80, 192, 160], plans.GetConfiguration("3d_fullres").PatchSize);
        Assert.Equal(12, plans.GetConfiguration("2d").BatchSize);
        Assert.Equal(["CTNormalization"], plans.GetConfiguration("3d_fullres").NormalizationSchemes);
        Assert.Equal(-300, plans.ForegroundIntensityPropertiesPerChannel["0"].Mean);
        Assert.Empty(Directory.GetFiles(Path.Combine(_root, "files"), "*Plans*"));
    }

    [Fact]
    public void Gpu_memory_option_changes_the_plans()
    {
        string fingerprint = WriteFingerprint("files/fp.json");
        string datasetJson = WriteFile("files/dataset.json", LungDatasetJson);

        var (exitCode, output, error) = Run("plan", "--fingerprint", fingerprint, "--dataset-json", datasetJson, "--json", "--gpu-memory-gb", "4");

        Assert.True(exitCode == NnUnetApp.ExitOk, error);
        var plans = JsonSerializer.Deserialize<NnUnetPlans>(output, NnUnetPlans.JsonOptions)!;
        Assert.Equal([64, 128, 128], plans.GetConfiguration("3d_fullres").PatchSize);
        Assert.Equal(6, plans.GetConfiguration("2d").BatchSize);
    }

    [Fact]
    public void Without_json_a_summary_table_is_printed_and_output_writes_a_file()
    {
        string fingerprint = WriteFingerprint("Dataset006_Lung/dataset_fingerprint.json");
        string datasetJson = WriteFile("elsewhere/dataset.json", LungDatasetJson);
        string output = Path.Combine(_root, "out", "plans.json");

        var (exitCode, text, error) = Run("plan", "--fingerprint", fingerprint, "--dataset-json", datasetJson, "-o", output);

        Assert.True(exitCode == NnUnetApp.ExitOk, error);
        Assert.Contains("Dataset006_Lung", text);
        Assert.Contains("3d_cascade_fullres", text);
        Assert.Contains("80x192x160", text);
        Assert.Contains("132x267x267", text);
        Assert.Contains("CTNormalization", text);
        Assert.Contains("wrote " + output, text);
        Assert.DoesNotContain("\"configurations\"", text);
        Assert.Equal("Dataset006_Lung", NnUnetPlans.Load(output).DatasetName);
    }

    [Fact]
    public void Dataset_mode_writes_nnUNetPlans_json_and_copies_dataset_json()
    {
        WriteFingerprint("pre/Dataset006_Lung/dataset_fingerprint.json");
        WriteFile("raw/Dataset006_Lung/dataset.json", LungDatasetJson);

        var (exitCode, text, error) = Run("plan", "6", "--raw", Raw, "--preprocessed", Preprocessed);

        Assert.True(exitCode == NnUnetApp.ExitOk, error);
        string plansPath = Path.Combine(Preprocessed, "Dataset006_Lung", "nnUNetPlans.json");
        Assert.Contains("wrote " + plansPath, text);
        var plans = NnUnetPlans.Load(plansPath);
        Assert.Equal("Dataset006_Lung", plans.DatasetName);
        Assert.Equal([80, 192, 160], plans.GetConfiguration("3d_cascade_fullres").PatchSize);
        Assert.Equal(LungDatasetJson, File.ReadAllText(Path.Combine(Preprocessed, "Dataset006_Lung", "dataset.json")));
    }

    [Fact]
    public void Dataset_mode_works_from_nnUNet_preprocessed_alone_and_keeps_custom_configurations()
    {
        WriteFingerprint("pre/Dataset006_Lung/dataset_fingerprint.json");
        WriteFile("pre/Dataset006_Lung/dataset.json", LungDatasetJson);
        string plansPath = WriteFile("pre/Dataset006_Lung/nnUNetPlans.json",
            """{"configurations": {"3d_fullres": {"data_identifier": "old"}, "3d_fullres_bs4": {"inherits_from": "3d_fullres", "batch_size": 4}}}""");

        var (exitCode, text, error) = Run("plan", "Dataset006_Lung", "--preprocessed", Preprocessed, "--json");

        Assert.True(exitCode == NnUnetApp.ExitOk, error);
        Assert.Equal("Dataset006_Lung", JsonNode.Parse(text)!["dataset_name"]!.GetValue<string>());
        var plans = NnUnetPlans.Load(plansPath);
        Assert.Equal("nnUNetPlans_3d_fullres", plans.GetConfiguration("3d_fullres").DataIdentifier);
        Assert.Equal(4, plans.GetConfiguration("3d_fullres_bs4").BatchSize);
        Assert.Equal([80, 192, 160], plans.GetConfiguration("3d_fullres_bs4").PatchSize);
    }

    [Fact]
    public void Fingerprint_then_plan_on_a_real_dataset()
    {
        var location = NnUnet.Core.Demo.SyntheticDataset.Write(Raw, 5, "Demo", new NnUnet.Core.Demo.SyntheticDatasetOptions(TrainingCases: 5, TestCases: 0));
        var fingerprinted = Run("fingerprint", "5", "--raw", Raw, "--preprocessed", Preprocessed, "--np", "2", "--foreground-samples", "5000", "--json");
        Assert.True(fingerprinted.ExitCode == NnUnetApp.ExitOk, fingerprinted.Error);

        var (exitCode, output, error) = Run("plan", "5", "--raw", Raw, "--preprocessed", Preprocessed, "--json");

        Assert.True(exitCode == NnUnetApp.ExitOk, error);
        var fingerprint = DatasetFingerprintExtractor.Load(Path.Combine(Preprocessed, location.Name, DatasetFingerprintExtractor.FileName));
        var plans = NnUnetPlans.Load(Path.Combine(Preprocessed, location.Name, "nnUNetPlans.json"));
        Assert.Equal(JsonNode.Parse(output)!.ToJsonString(), JsonNode.Parse(plans.ToJson())!.ToJsonString());
        Assert.Equal(location.Name, plans.DatasetName);
        var expected = ExperimentPlanner.Plan(fingerprint, new PlannerDatasetInfo(location.Name, ["CT"], 3, 5));
        Assert.Equal(expected.ToJson(), plans.ToJson());
        Assert.Equal([3.0, 1.0, 1.0], plans.GetConfiguration("3d_fullres").Spacing);
        Assert.Equal(["CTNormalization"], plans.GetConfiguration("2d").NormalizationSchemes);
    }

    [Fact]
    public void Plans_name_sets_the_file_and_the_data_identifiers()
    {
        WriteFingerprint("pre/Dataset006_Lung/dataset_fingerprint.json");
        WriteFile("raw/Dataset006_Lung/dataset.json", LungDatasetJson);

        var (exitCode, _, error) = Run("plan", "6", "-p", "MyPlans", "--gpu-memory-gb", "24", "--raw", Raw, "--preprocessed", Preprocessed);

        Assert.True(exitCode == NnUnetApp.ExitOk, error);
        Assert.False(File.Exists(Path.Combine(Preprocessed, "Dataset006_Lung", "nnUNetPlans.json")));
        var plans = NnUnetPlans.Load(Path.Combine(Preprocessed, "Dataset006_Lung", "MyPlans.json"));
        Assert.Equal("MyPlans", plans.PlansName);
        Assert.Equal("MyPlans_3d_lowres", plans.GetConfiguration("3d_lowres").DataIdentifier);
        Assert.Equal([112, 256, 256], plans.GetConfiguration("3d_fullres").PatchSize);
    }

    [Fact]
    public void Missing_fingerprint_is_a_bad_input_error_naming_the_file()
    {
        WriteFile("raw/Dataset006_Lung/dataset.json", LungDatasetJson);
        Directory.CreateDirectory(Preprocessed);

        var (exitCode, _, error) = Run("plan", "Dataset006_Lung", "--raw", Raw, "--preprocessed", Preprocessed);

        Assert.Equal(NnUnetApp.ExitBadInput, exitCode);
        Assert.Contains(Path.Combine(Preprocessed, "Dataset006_Lung", "dataset_fingerprint.json"), error);
        Assert.Contains("nnunet fingerprint", error);
    }

    [Fact]
    public void Malformed_fingerprint_is_a_bad_input_error_naming_the_file()
    {
        string fingerprint = WriteFile("files/fp.json", """{"spacings": "oops"}""");
        string datasetJson = WriteFile("files/dataset.json", LungDatasetJson);

        var (exitCode, output, error) = Run("plan", "--fingerprint", fingerprint, "--dataset-json", datasetJson, "--json");

        Assert.Equal(NnUnetApp.ExitBadInput, exitCode);
        Assert.Contains(fingerprint, error);
        Assert.Equal("", output);
    }

    [Fact]
    public void Fingerprint_of_another_dataset_is_rejected()
    {
        string fingerprint = WriteFingerprint("files/fp.json");
        string datasetJson = WriteFile("files/dataset.json",
            """{"channel_names": {"0": "CT", "1": "PET"}, "labels": {"background": 0, "tumour": 1}, "numTraining": 63, "file_ending": ".nii.gz"}""");

        var (exitCode, _, error) = Run("plan", "--fingerprint", fingerprint, "--dataset-json", datasetJson);

        Assert.Equal(NnUnetApp.ExitBadInput, exitCode);
        Assert.Contains("1 channel(s) but dataset.json names 2", error);
    }

    [Theory]
    [InlineData(new[] { "plan" }, "give a DATASET")]
    [InlineData(new[] { "plan", "6", "--fingerprint", "a.json", "--dataset-json", "b.json" }, "not both")]
    [InlineData(new[] { "plan", "--fingerprint", "a.json" }, "go together")]
    [InlineData(new[] { "plan", "6", "--gpu-memory-gb", "0" }, "--gpu-memory-gb must be a positive number")]
    [InlineData(new[] { "plan", "6", "--output", "x.json" }, "--output is for --fingerprint mode")]
    public void Bad_usage_exits_2_with_a_clear_message(string[] args, string message)
    {
        var (exitCode, _, error) = Run(args);
        Assert.Equal(NnUnetApp.ExitBadInput, exitCode);
        Assert.Contains(message, error);
    }
}
