using System.Security.Cryptography;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace NnUnet.Cluster.Tests.Faults;

/// <summary>
/// A sweep never silently destroys another run's results: real `nnunet sweep` / `coordinator` / `train` processes
/// (simulated trainer) on one nnUNet_results.
/// </summary>
[Collection(ProcessTests.Collection)]
public sealed class ResultsProtectionTests : IDisposable
{
    private const string Dataset = ProcessCluster.Dataset;
    private static readonly string[] Folds = ["2d/fold_0", "2d/fold_1"];
    private readonly ProcessCluster _cluster = new();
    public void Dispose() => _cluster.Dispose();

    private string[] Grid => ["-c", "2d", "--folds", "0,1"];
    private string ConfigFolder(string trainer = "nnUNetTrainer") => Path.Combine(_cluster.Results, Dataset, $"{trainer}__nnUNetPlans__2d");

    private ProcessCluster.Running Sweep(params string[] extra) =>
        _cluster.Start(["sweep", Dataset, .. Grid, "--simulate", "--sim-epoch-ms", "20", "--workers", "1", "--no-dashboard", "--config", _cluster.Hocon, .. extra]);

    private ProcessCluster.Running SweepExits(int code, params string[] extra)
    {
        var run = Sweep(extra);
        ProcessCluster.AssertExits(run, code, TimeSpan.FromSeconds(90), "nnunet sweep " + string.Join(' ', extra));
        return run;
    }

    private ProcessCluster.Running CoordinatorOn(int port, params string[] extra) =>
        _cluster.Start(["coordinator", Dataset, .. Grid, "--host", "127.0.0.1", "--port", port.ToString(), "--config", _cluster.Hocon,
            "--linger", "1", "--json", "--simulate", "--no-dashboard", .. extra]);

    /// <summary>Relative path -> SHA-256 of every file under nnUNet_results.</summary>
    private Dictionary<string, string> Hashes(string? under = null)
    {
        var root = under ?? _cluster.Results;
        return Directory.GetFiles(root, "*", SearchOption.AllDirectories)
            .ToDictionary(f => Path.GetRelativePath(root, f), f => Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(f))));
    }

    private static string SweepIdOf(ProcessCluster.Running run) =>
        Regex.Match(run.Text, @"sweep (Dataset004_Hippocampus-[0-9a-f]{12})").Groups[1].Value;

    private JsonElement LockOf(string folder) =>
        JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "nnunet.lock"))).RootElement;

    [Fact]
    public void RerunWithAnotherBudget_Refuses_LeavesEveryFileByteIdentical_ThenASuffixTrainsBeside()
    {
        var first = SweepExits(0, "--epochs", "1");
        var before = Hashes();
        Assert.True(before.Count > 8, string.Join("\n", before.Keys));

        var second = SweepExits(2, "--epochs", "2");

        Assert.Equal(before, Hashes());                                       // not a byte changed, nothing added
        Assert.Contains($"sweep {SweepIdOf(first)}", second.Text);
        Assert.Contains("differs from this sweep: epochs 1 -> 2", second.Text);
        Assert.Contains($"nnunet sweep {Dataset} -c 2d --folds 0,1 --epochs 1", second.Text);   // resume it as it was
        Assert.Contains("--continue-training: extend those folds to 2 epochs", second.Text);
        Assert.Contains("--results-suffix NAME", second.Text);
        Assert.Contains("--overwrite", second.Text);

        var oldFolder = Hashes(ConfigFolder());
        SweepExits(0, "--epochs", "2", "--results-suffix", "longer");
        Assert.Equal(oldFolder, Hashes(ConfigFolder()));
        foreach (var fold in new[] { "fold_0", "fold_1" })
            Assert.Contains("epoch 2:", File.ReadAllText(Path.Combine(ConfigFolder("nnUNetTrainer_longer"), fold, "training_log.txt")));
    }

    [Fact]
    public void ContinueTraining_ExtendsTheFoldsFromTheirFinalCheckpoints_ButNeverShortensThem()
    {
        var first = SweepExits(0, "--epochs", "1");
        SweepExits(0, "--epochs", "3", "--continue-training");

        foreach (var job in Folds)
        {
            var log = _cluster.ReadLog(job);
            Assert.Equal(1, Regex.Count(log, "start at epoch 0"));              // never restarted from scratch
            Assert.Matches(@"epoch 1:[\s\S]*training done[\s\S]*continue from checkpoint at epoch 1\n[\s\S]*epoch 2:[\s\S]*epoch 3:[\s\S]*training done", log);
            using var owner = JsonDocument.Parse(File.ReadAllText(Path.Combine(_cluster.FoldFolder(job), "owner.json")));
            Assert.Equal(3, owner.RootElement.GetProperty("settings").GetProperty("epochs").GetInt32());
            Assert.Equal(SweepIdOf(first), owner.RootElement.GetProperty("adopted_from").GetProperty("settings").GetProperty("sweep_id").GetString());
        }

        var before = Hashes();
        var shorter = SweepExits(2, "--epochs", "2", "--continue-training");
        Assert.Contains("--continue-training is not sound here", shorter.Text);
        Assert.Contains("it was trained for 3 epochs and a training cannot be shortened", shorter.Text);
        Assert.Equal(before, Hashes());
    }

    [Fact]
    public void Overwrite_KeepsTheOldResultsUnderSuperseded_AndTheOldSweepRunAgainRetrainsWhatWasMoved()
    {
        SweepExits(0, "--epochs", "1");
        var old = Hashes(ConfigFolder());

        SweepExits(0, "--epochs", "2", "--overwrite");

        var superseded = Directory.GetDirectories(Path.Combine(_cluster.Results, Dataset, "superseded"));
        var moved = Assert.Single(superseded);
        foreach (var (file, hash) in old)                                      // every old byte kept (owner records included)
            Assert.Equal(hash, Hashes(Path.Combine(moved, "nnUNetTrainer__nnUNetPlans__2d"))[file]);
        Assert.Contains("--overwrite", File.ReadAllText(Path.Combine(moved, "superseded.txt")));
        foreach (var job in Folds)
        {
            var log = _cluster.ReadLog(job);
            Assert.Equal(1, Regex.Count(log, "start at epoch 0"));
            Assert.Contains("epoch 2:", log);
        }

        // the first sweep again, also with --overwrite: its journal says "done", but its results were moved away, so
        // its folds train again instead of reporting work that is gone
        var again = SweepExits(0, "--epochs", "1", "--overwrite", "--json");
        Assert.Equal(2, Directory.GetDirectories(Path.Combine(_cluster.Results, Dataset, "superseded")).Length);
        Assert.Contains("runs again: results gone from storage", again.Text);
        foreach (var job in Folds)
        {
            var log = _cluster.ReadLog(job);
            Assert.Contains("epoch 1:", log);
            Assert.DoesNotContain("epoch 2:", log);
            Assert.True(File.Exists(Path.Combine(_cluster.FoldFolder(job), "validation", "summary.json")), job);
        }
    }

    [Fact]
    public async Task SecondCoordinatorWithOtherSettings_Refuses_AndTrainByHandRefusesTheLockedFolder()
    {
        var first = CoordinatorOn(_cluster.Port, "--epochs", "1");     // no workers: it keeps running, holding its locks
        await Eventually.Until(() => File.Exists(Path.Combine(ConfigFolder(), "nnunet.lock")) ? "" : null,
            TimeSpan.FromSeconds(60), () => "the coordinator took no results lock:\n" + first.Text);
        var holder = LockOf(ConfigFolder());
        Assert.Equal(first.Process.Id, holder.GetProperty("pid").GetInt32());
        string firstId = holder.GetProperty("sweep_id").GetString()!;

        var second = CoordinatorOn(ProcessCluster.FreePort(), "--epochs", "2");
        ProcessCluster.AssertExits(second, 2, TimeSpan.FromSeconds(60), "second coordinator");
        Assert.Contains($"is being written by sweep {firstId} (host {Environment.MachineName}, pid {first.Process.Id}", second.Text);
        Assert.Contains("one writer per results folder", second.Text);

        var byHand = _cluster.Start("train", Dataset, "2d", "0", "--epochs", "1");
        ProcessCluster.AssertExits(byHand, 2, TimeSpan.FromSeconds(60), "nnunet train");
        Assert.Contains($"is being written by sweep {firstId}", byHand.Text);
        Assert.False(first.Process.HasExited, first.Text);
    }

    [Fact]
    public async Task CrashedCoordinatorsLock_IsTakenOverAfterItsLease_ByTheSameSweep_WhileOthersStayRefused()
    {
        string[] sweep = ["--epochs", "1", "--lock-lease", "15"];
        var crashed = CoordinatorOn(_cluster.Port, sweep);
        await Eventually.Until(() => File.Exists(Path.Combine(ConfigFolder(), "nnunet.lock")) ? "" : null,
            TimeSpan.FromSeconds(60), () => "the coordinator took no results lock:\n" + crashed.Text);
        crashed.Sigkill();
        Assert.True(crashed.Process.WaitForExit(TimeSpan.FromSeconds(5)));
        var lastRenewal = LockOf(ConfigFolder()).GetProperty("renewed_at").GetDateTime();

        // its lease still runs: another sweep is refused, naming the crashed holder
        var other = CoordinatorOn(ProcessCluster.FreePort(), "--epochs", "2", "--lock-lease", "15");
        ProcessCluster.AssertExits(other, 2, TimeSpan.FromSeconds(60), "coordinator of another sweep");
        Assert.Contains($"pid {crashed.Process.Id}", other.Text);

        // the same sweep starts at once (its journal keeps its own writers apart) and takes the lock over after the lease
        var successor = CoordinatorOn(ProcessCluster.FreePort(), sweep);
        var taken = await Eventually.Until(() =>
        {
            var l = LockOf(ConfigFolder());
            return l.GetProperty("pid").GetInt32() == successor.Process.Id ? (object)l.GetProperty("acquired_at").GetDateTime() : null;
        }, TimeSpan.FromSeconds(60), () => "the lock was not taken over:\n" + successor.Text);
        Assert.True((DateTime)taken - lastRenewal >= TimeSpan.FromSeconds(15), $"taken over {((DateTime)taken - lastRenewal).TotalSeconds:F1} s after the last renewal");
        Assert.Contains("taking it over once its lease runs out", successor.Text);
        // (its log line follows the write of the lock file)
        await Eventually.Until(() => Regex.IsMatch(successor.Text, $@"taken over from sweep .* pid {crashed.Process.Id}, .*its lease ran out") ? "" : null,
            TimeSpan.FromSeconds(10), () => "no take-over logged:\n" + successor.Text);
        Assert.False(successor.Process.HasExited, successor.Text);
    }
}
