using System.Net;
using System.Text.Json;
using System.Text.RegularExpressions;
using NnUnet.Cluster.Tests.Faults;

namespace NnUnet.Cluster.Tests;

/// <summary>
/// The README's main job as a user runs it: a real `nnunet demo` process (with a smaller budget than --quick: 2 folds,
/// 1 epoch of 2 iterations, so the suite stays short; with 2 folds the cascade is left out, as it needs all five
/// low-res folds) goes from the generated dataset to the final table with real TorchSharp training, its dashboard
/// answers while the sweep runs, and running it again resumes instead of retraining. The whole 20-fold grid of the
/// quick demo is checked with the simulated backend in DemoPlanTests.
/// </summary>
[Collection(ProcessTests.Collection)]
public sealed class DemoProcessTests : IDisposable
{
    private readonly ProcessCluster _cluster = new();

    public void Dispose() => _cluster.Dispose();

    [Fact]
    public async Task Demo_RunsThePipelineToTheFinalTable_ServesTheDashboard_AndResumesWhenRunAgain()
    {
        string work = Path.Combine(_cluster.Root, "demo");
        int port = ProcessCluster.FreePort();
        string[] args = ["demo", "--quick", "--work", work, "--epochs", "1", "--iters-per-epoch", "2", "--folds", "0,1",
            "--dashboard", $"127.0.0.1:{port}", "--dashboard-token", "demo-test-token"];
        var first = _cluster.Start(args);

        // the dashboard comes up with the sweep and shows the demo's grid
        var url = await Eventually.Until(() => Regex.Match(first.Text, @"dashboard: (http://127\.0\.0\.1:\d+/)#token=") is { Success: true } m ? m.Groups[1].Value : null,
            TimeSpan.FromMinutes(3), () => "the demo never printed its dashboard URL:\n" + first.Text);
        Assert.Equal($"http://127.0.0.1:{port}/", url);
        using (var http = new HttpClient { BaseAddress = new Uri(url) })
        {
            using var sweep = JsonDocument.Parse(await http.GetStringAsync("/api/sweep"));
            Assert.Contains("Dataset990_Demo", sweep.RootElement.GetRawText());
            var refused = await http.PostAsync("/api/actions/pause", null);
            Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
        }

        ProcessCluster.AssertExits(first, 0, TimeSpan.FromMinutes(8), "nnunet demo");
        string output = first.Text;
        foreach (var step in new[] { "verify", "fingerprint", "plan", "preprocess" }) Assert.Contains(step, output);
        Assert.Contains("3d_cascade_fullres left out", output);
        Assert.Contains("cross-validation (foreground mean Dice)", output);
        Assert.Contains("(chosen)", output);
        Assert.Contains("test set (5 cases", output);

        string results = Path.Combine(work, "nnUNet_results", "Dataset990_Demo");
        using (var best = JsonDocument.Parse(File.ReadAllText(Path.Combine(results, "best_configuration.json"))))
            Assert.True(best.RootElement.GetProperty("candidates").GetArrayLength() >= 3); // 2d, 3d_lowres, 3d_fullres and pair ensembles
        Assert.Equal(5, Directory.GetFiles(Path.Combine(results, "predictions_imagesTs"), "*.nii.gz").Length);
        // the prediction's completion marker, written last by the real predict job: every case with its size
        Assert.Null(NnUnet.Core.Results.PredictionManifest.Missing(Path.Combine(results, "predictions_imagesTs")));
        var logs = Directory.GetFiles(results, "training_log.txt", SearchOption.AllDirectories);
        Assert.True(logs.Length >= 6, $"{logs.Length} training logs: " + string.Join(", ", logs));
        var written = logs.ToDictionary(l => l, File.GetLastWriteTimeUtc);

        // a second run finds everything done: same final table, no fold trained again
        var second = _cluster.Start(args);
        ProcessCluster.AssertExits(second, 0, TimeSpan.FromMinutes(3), "nnunet demo (second run)");
        Assert.Contains("test set (5 cases", second.Text);
        foreach (var (log, time) in written)
            Assert.True(time == File.GetLastWriteTimeUtc(log), $"{log} was written again by the second run:\n{second.Text}");
    }
}
