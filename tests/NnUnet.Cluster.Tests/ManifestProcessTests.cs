using System.Security.Cryptography;
using System.Text.Json;
using NnUnet.Cluster.Tests.Faults;
using NnUnet.Core.Reproducibility;

namespace NnUnet.Cluster.Tests;

/// <summary>
/// The reproducibility record of a real `nnunet sweep` process (simulated backend) on a real preprocessed dataset:
/// sweep_manifest.json beside the journal, fold_manifest.json per fold, `sweep-status --manifest`, and a re-run after a
/// preprocessed case file changed, which names that file before it resumes.
/// </summary>
[Collection(ProcessTests.Collection)]
public sealed class ManifestProcessTests : IDisposable
{
    private readonly ProcessCluster _cluster = new();

    public void Dispose() => _cluster.Dispose();

    private static string Sha256(string path) => Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(path)));

    [Fact]
    public void Sweep_WritesSweepAndFoldManifests_StatusPrintsThem_AndARerunNamesTheChangedInput()
    {
        string dataset = _cluster.PrepareSyntheticDataset(994, "Manifest", cases: 6);
        string[] sweep = ["sweep", dataset, "-c", "2d,3d_fullres", "--folds", "0,1", "--epochs", "2", "--iters-per-epoch", "3", "--val-iters", "2",
            "--workers", "1", "--simulate", "--sim-epoch-ms", "20", "--no-dashboard", "--config", _cluster.Hocon];
        ProcessCluster.AssertExits(_cluster.Start(sweep), 0, TimeSpan.FromMinutes(3), "nnunet sweep");

        string resultsFolder = Path.Combine(_cluster.Results, dataset);
        Assert.True(File.Exists(Path.Combine(resultsFolder, "sweeps.db")));
        var manifest = SweepManifest.Load(Path.Combine(resultsFolder, SweepManifest.FileName));
        Assert.Equal(dataset, manifest.Dataset);
        Assert.Equal(["2d", "3d_fullres"], manifest.Configurations);
        Assert.Equal(new TrainingBudget(2, 3, 2), manifest.Budget);
        Assert.Null(manifest.InputsError);
        var run = Assert.Single(manifest.Runs);
        Assert.Empty(run.ChangedInputs);
        Assert.Matches(@"^\d+\.\d+\.\d+", run.Environment.ProductVersion);
        Assert.Matches("^[0-9a-f]{40}$", run.Environment.Commit ?? "");
        Assert.Equal(Environment.Version.ToString(), run.Environment.DotNet);
        Assert.Equal(4, manifest.FoldSeeds.Count);

        // plans, splits, dataset.json and every raw and preprocessed case file, each with its real digest
        string preprocessed = Path.Combine(_cluster.Root, "preprocessed", dataset);
        var inputs = FileDigest.ByPath(manifest.Inputs);
        foreach (string name in new[] { "nnUNetPlans.json", "splits_final.json", "dataset.json" })
            Assert.Equal(Sha256(Path.Combine(preprocessed, name)), inputs[$"nnUNet_preprocessed/{dataset}/{name}"].Sha256);
        string caseFile = Directory.GetFiles(Path.Combine(preprocessed, "nnUNetPlans_3d_fullres"), "*.npy").Order(StringComparer.Ordinal).First();
        string caseKey = $"nnUNet_preprocessed/{dataset}/nnUNetPlans_3d_fullres/{Path.GetFileName(caseFile)}";
        Assert.Equal(Sha256(caseFile), inputs[caseKey].Sha256);
        Assert.Equal(6, manifest.Inputs.Count(f => f.Path.StartsWith($"nnUNet_raw/{dataset}/imagesTr/", StringComparison.Ordinal)));
        Assert.Equal(6, manifest.Inputs.Count(f => f.Path.StartsWith($"nnUNet_raw/{dataset}/labelsTr/", StringComparison.Ordinal)));
        // 6 cases x (.npy, _seg.npy, .json) + the folder's preprocessing_settings.json
        Assert.Equal(19, manifest.Inputs.Count(f => f.Path.StartsWith($"nnUNet_preprocessed/{dataset}/nnUNetPlans_2d/", StringComparison.Ordinal)));

        // each fold: its seed, its inputs, one completed attempt with the worker and times
        foreach (var jobId in manifest.FoldSeeds.Keys)
        {
            var fold = FoldManifest.Load(Path.Combine(_cluster.FoldFolder(jobId, dataset), FoldManifest.FileName));
            Assert.Equal(manifest.SweepId, fold.SweepId);
            Assert.Equal(manifest.Budget, fold.Budget);
            var attempt = Assert.Single(fold.Attempts);
            Assert.Equal("completed", attempt.Outcome);
            Assert.EndsWith("/cpu", attempt.Worker);
            Assert.Null(attempt.Seed); // the simulated backend draws nothing; the TorchSharp backend's seed: TorchBackendRecordTests
            Assert.True(attempt.EndedAt >= attempt.StartedAt);
            Assert.Null(fold.InputsError);
            var foldInputs = FileDigest.ByPath(fold.Inputs);
            Assert.True(foldInputs.ContainsKey($"nnUNet_preprocessed/{dataset}/splits_final.json"));
            string configuration = jobId.Split('/')[0];
            Assert.Equal(18, fold.Inputs.Count(f => f.Path.StartsWith($"nnUNet_preprocessed/{dataset}/nnUNetPlans_{configuration}/", StringComparison.Ordinal)));
            Assert.Equal(6, fold.Inputs.Count(f => f.Path.StartsWith($"nnUNet_raw/{dataset}/imagesTr/", StringComparison.Ordinal)));
            foreach (var file in fold.Inputs) Assert.Equal(inputs[file.Path].Sha256, file.Sha256);
        }

        var status = _cluster.Start("sweep-status", "--manifest", dataset);
        ProcessCluster.AssertExits(status, 0, TimeSpan.FromMinutes(1), "nnunet sweep-status --manifest");
        Assert.Contains(manifest.SweepId, status.Text);
        Assert.Contains("3d_fullres/fold_1", status.Text);
        Assert.Contains("completed", status.Text);
        var json = _cluster.Start("sweep-status", "--manifest", Path.Combine(resultsFolder, SweepManifest.FileName), "--json");
        ProcessCluster.AssertExits(json, 0, TimeSpan.FromMinutes(1), "nnunet sweep-status --manifest --json");
        using (var document = JsonDocument.Parse(json.Text))
        {
            Assert.Equal(manifest.SweepId, document.RootElement.GetProperty("sweep").GetProperty("sweep_id").GetString());
            Assert.Equal(4, document.RootElement.GetProperty("folds").GetArrayLength());
        }

        // a preprocessed case changes (same size, new content): the re-run names it, then resumes (nothing left to train)
        var bytes = File.ReadAllBytes(caseFile);
        bytes[^1] ^= 0xFF;
        File.WriteAllBytes(caseFile, bytes);
        var again = _cluster.Start(sweep);
        ProcessCluster.AssertExits(again, 0, TimeSpan.FromMinutes(3), "nnunet sweep (re-run)");
        Assert.Contains("1 input file(s) differ", again.Text);
        Assert.Contains(caseKey + " changed", again.Text);
        var after = SweepManifest.Load(Path.Combine(resultsFolder, SweepManifest.FileName));
        Assert.Equal(2, after.Runs.Count);
        var change = Assert.Single(after.Runs[1].ChangedInputs);
        Assert.Equal(new InputChange(caseKey, InputChangeKind.Changed, inputs[caseKey].Sha256, Sha256(caseFile)), change);
    }
}
