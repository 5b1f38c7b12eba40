using System.Text.Json;
using NnUnet.Cli.Commands.Demo;
using NnUnet.Core.Datasets;
using NnUnet.Core.Demo;
using NnUnet.Core.Reproducibility;

namespace NnUnet.Cli.Tests.Demo;

/// <summary>
/// The demo's dataset and memory target make nnU-Net's planner plan all four configurations by its own rules, and the
/// quick demo's sweep is the whole grid: 4 configurations x 5 folds, each cascade fold waiting for the five low-res folds.
/// The sweep runs for real with the simulated backend (the TorchSharp run is the demo itself, see DemoProcessTests).
/// </summary>
[Collection(ConsoleCollection.Name)]
public sealed class DemoPlanTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("nnunet-cli-demo-").FullName;
    private readonly Dictionary<string, string?> _saved = [];

    public DemoPlanTests()
    {
        foreach (var (variable, folder) in new[] { (NnUnetPaths.RawVariable, "raw"), (NnUnetPaths.PreprocessedVariable, "pre"), (NnUnetPaths.ResultsVariable, "res") })
        {
            _saved[variable] = Environment.GetEnvironmentVariable(variable);
            Environment.SetEnvironmentVariable(variable, Path.Combine(_root, folder));
        }
    }

    public void Dispose()
    {
        foreach (var (variable, value) in _saved) Environment.SetEnvironmentVariable(variable, value);
        try { Directory.Delete(_root, recursive: true); } catch (IOException) { }
    }

    private static void Step(string name, string[] args)
    {
        var (code, _, error) = CliRunner.Run(args);
        Assert.True(code == NnUnetApp.ExitOk, $"{name}: {error}");
    }

    [Fact]
    public void DefaultDemo_PlansAllFourConfigurations()
    {
        SyntheticDataset.Write(Path.Combine(_root, "raw"), DemoCommand.DatasetId, DemoCommand.DatasetShortName, DemoProfile.Default.DatasetOptions);
        // planning is all this test needs: preprocessing the default volumes is the demo's own work
        var plans = DemoCommand.Prepare("990", DemoProfile.Default, (name, args) => { if (name != "preprocess") Step(name, args); });
        Assert.Equal(["2d", "3d_lowres", "3d_fullres", "3d_cascade_fullres"], plans.ConfigurationNames);
        Assert.Equal("3d_lowres", plans.GetConfiguration("3d_cascade_fullres").PreviousStage);
    }

    [Fact]
    public void QuickDemo_PlansAllFourConfigurations_AndItsSweepIsTwentyFoldsWithTheCascadeWaitingForTheFiveLowresFolds()
    {
        SyntheticDataset.Write(Path.Combine(_root, "raw"), DemoCommand.DatasetId, DemoCommand.DatasetShortName, DemoProfile.Quick.DatasetOptions);
        var plans = DemoCommand.Prepare("990", DemoProfile.Quick, Step);
        Assert.Equal(["2d", "3d_lowres", "3d_fullres", "3d_cascade_fullres"], plans.ConfigurationNames);
        // the low-res data is coarser in-plane than the full-res data, and both were preprocessed
        Assert.True(plans.GetConfiguration("3d_lowres").Spacing[1] > plans.GetConfiguration("3d_fullres").Spacing[1]);
        Assert.True(Directory.Exists(Path.Combine(_root, "pre", "Dataset990_Demo", "nnUNetPlans_3d_lowres")));

        var sweep = DemoCommand.SweepArguments(plans, DemoProfile.Quick.Epochs, DemoProfile.Quick.ItersPerEpoch, workers: 1, "0,1,2,3,4");
        var (code, output, error) = CliRunner.Run([.. sweep, "--simulate", "--sim-epoch-ms", "5", "--json", "--no-dashboard"]);
        Assert.True(code == NnUnetApp.ExitOk, error);
        using var grid = JsonDocument.Parse(output);
        var jobs = grid.RootElement.GetProperty("jobs").EnumerateArray().ToList();
        var training = jobs.Where(j => j.GetProperty("kind").GetString() == "train").ToList();
        Assert.Equal(20, training.Count);
        Assert.All(jobs, j => Assert.Equal("completed", j.GetProperty("status").GetString()));
        string[] lowres = [.. Enumerable.Range(0, 5).Select(f => $"3d_lowres/fold_{f}")];
        foreach (var job in training)
        {
            string id = job.GetProperty("job_id").GetString()!;
            string[] dependsOn = [.. job.GetProperty("depends_on").EnumerateArray().Select(d => d.GetString()!)];
            if (id.StartsWith("3d_cascade_fullres/", StringComparison.Ordinal)) Assert.Equal(lowres, dependsOn);
            else Assert.Empty(dependsOn);
        }
        Assert.Contains(jobs, j => j.GetProperty("job_id").GetString() == "select");
        Assert.Contains(jobs, j => j.GetProperty("job_id").GetString() == "predict");

        var manifest = SweepManifest.Load(Path.Combine(_root, "res", "Dataset990_Demo", SweepManifest.FileName));
        Assert.Equal(20, manifest.FoldSeeds.Count);
        Assert.Equal(new TrainingBudget(DemoProfile.Quick.Epochs, DemoProfile.Quick.ItersPerEpoch, 3), manifest.Budget);
    }

    [Fact]
    public void ADemoOverFewerFolds_LeavesTheCascadeOut()
    {
        SyntheticDataset.Write(Path.Combine(_root, "raw"), DemoCommand.DatasetId, DemoCommand.DatasetShortName, DemoProfile.Quick.DatasetOptions);
        var plans = DemoCommand.Prepare("990", DemoProfile.Quick, (name, args) => { if (name != "preprocess") Step(name, args); });
        var sweep = DemoCommand.SweepArguments(plans, 1, 2, workers: 1, "0,1");
        Assert.Equal("2d,3d_lowres,3d_fullres", sweep[sweep.IndexOf("-c") + 1]);
    }
}
