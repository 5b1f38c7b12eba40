using System.Diagnostics;
using NnUnet.Cluster.Sweeps;

namespace NnUnet.Cluster.Tests.Faults;

/// <summary>
/// Storage errors under a running sweep (coordinator + worker ActorSystems on 127.0.0.1, simulated backend): one fold's
/// folder is a read-only file system, or a tiny tmpfs that fills while the fold saves its checkpoint. Tests run as root
/// (chmod does not stop root), so the faults are real mounts; where mounting is not permitted, a file stands where the
/// fold's folder is expected (the write fails the same way, with another message).
/// </summary>
[Collection(ProcessTests.Collection)]
public sealed class StorageFaultTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    /// <summary>A mount (or the fallback file) at a folder, undone on dispose.</summary>
    internal sealed class FaultyFolder : IDisposable
    {
        public string Path { get; }
        public bool Mounted { get; }

        public FaultyFolder(string path, string tmpfsOptions, bool readOnly)
        {
            Path = path;
            Directory.CreateDirectory(path);
            Mounted = Run("mount", "-t", "tmpfs", "-o", tmpfsOptions, "tmpfs", path) && (!readOnly || Run("mount", "-o", "remount,ro", path));
            if (!Mounted)
            {
                if (Run("mountpoint", "-q", path)) Run("umount", path);
                Directory.Delete(path, true);
                File.WriteAllText(path, "a file where a folder is expected");
            }
        }

        private static bool Run(string file, params string[] args)
        {
            try
            {
                var info = new ProcessStartInfo(file) { RedirectStandardError = true, RedirectStandardOutput = true };
                foreach (var a in args) info.ArgumentList.Add(a);
                using var p = Process.Start(info)!;
                p.WaitForExit(10_000);
                return p.ExitCode == 0;
            }
            catch (System.ComponentModel.Win32Exception) { return false; }
        }

        public void Dispose()
        {
            if (Mounted) Run("umount", "-l", Path);
        }
    }

    private static string FoldFolder(LocalCluster cluster, string config, int fold) =>
        Path.Combine(cluster.ResultsRoot, "Dataset004_Hippocampus", $"nnUNetTrainer__nnUNetPlans__{config}", $"fold_{fold}");

    /// <summary>Runs the sweep with fold 1 on the faulty folder; returns the fold's training log (read before unmounting; "" if none).</summary>
    private static async Task<string> RunSweepWithFaultyFold(LocalCluster cluster, string tmpfsOptions, bool readOnly, Func<bool, string> expectedError)
    {
        var definition = LocalCluster.Definition(["2d"], [0, 1, 2], 4, maxAttempts: 2);
        using var faulty = new FaultyFolder(FoldFolder(cluster, "2d", 1), tmpfsOptions, readOnly);
        var coordinator = cluster.StartCoordinator(definition);
        cluster.StartWorker(LocalCluster.AddressOf(coordinator), 2, cluster.Backend(TimeSpan.FromMilliseconds(20)));

        var snapshot = await LocalCluster.WaitFinished(coordinator, Timeout);

        Assert.Equal(SweepStatus.FinishedWithFailures, snapshot.Status);
        var failed = snapshot.Jobs.Single(j => j.JobId == "2d/fold_1");
        Assert.Equal(JobDisplayStatus.Failed, failed.Status);
        Assert.Equal(2, failed.Failures);
        Assert.Contains(expectedError(faulty.Mounted), failed.LastError);
        Assert.Contains("fold_1", failed.LastError); // names where
        Assert.Contains(snapshot.RecentEvents, e => e.Kind == "failed" && e.JobId == "2d/fold_1" && e.Text.Contains(expectedError(faulty.Mounted)));
        // the sweep went on with the other folds; the selection that needs every fold is blocked
        foreach (var other in new[] { "2d/fold_0", "2d/fold_2" })
        {
            Assert.Equal(JobDisplayStatus.Completed, snapshot.Jobs.Single(j => j.JobId == other).Status);
            Assert.Equal(1, cluster.Log.CompletedRuns(other));
        }
        Assert.Equal(JobDisplayStatus.Blocked, snapshot.Jobs.Single(j => j.JobId == "select").Status);
        Assert.Equal(0, cluster.Log.CompletedRuns("2d/fold_1"));
        var log = Path.Combine(faulty.Path, "training_log.txt");
        return faulty.Mounted && File.Exists(log) ? File.ReadAllText(log) : "";
    }

    [Fact]
    public async Task ReadOnlyFoldFolder_JobFailsWithReasonAfterMaxAttempts_SweepContinues()
    {
        using var cluster = new LocalCluster();
        await RunSweepWithFaultyFold(cluster, "size=64k", readOnly: true,
            mounted => mounted ? "Read-only file system" : "fold_1");
    }

    [Fact]
    public async Task DiskFullWhileSavingCheckpoint_JobFailsWithReasonAfterMaxAttempts_SweepContinues()
    {
        using var cluster = new LocalCluster();
        // 4 pages: the attempt's fence file, the training log, the fold manifest and the first checkpoint fit, the next
        // checkpoint's temp file does not; attempt 2 then cannot write its fence (before, it resumed from epoch 1 and
        // failed at the same checkpoint write): it fails at once, naming the full disk too
        var log = await RunSweepWithFaultyFold(cluster, "size=16k", readOnly: false,
            mounted => mounted ? "No space left on device" : "fold_1");
        if (log.Length > 0)
        {
            Assert.Contains("epoch 1:", log); // the checkpoint that fitted
            Assert.DoesNotContain("epoch 2:", log);
            Assert.DoesNotContain("attempt 2", log); // attempt 2 could not even take the fence
        }
    }

    /// <summary>
    /// The results dataset folder (where the default SQLite journal lives) is read-only: `nnunet coordinator` and
    /// `nnunet sweep` refuse at start with the folder's name and exit 2, instead of a journal that fails inside the
    /// coordinator and restarts for ever.
    /// </summary>
    [Fact]
    public void UnwritableResultsDatasetFolder_CoordinatorAndSweepRefuseAtStartNamingTheFolder()
    {
        using var cluster = new ProcessCluster();
        var datasetFolder = Path.Combine(cluster.Results, ProcessCluster.Dataset);
        using var faulty = new FaultyFolder(datasetFolder, "size=64k", readOnly: true);
        string[] sweep = ["-c", "2d", "--folds", "0", "--epochs", "2"];
        var runs = new[]
        {
            cluster.Coordinator(sweep),
            cluster.Start(["sweep", ProcessCluster.Dataset, .. sweep, "--simulate", "--no-dashboard", "--workers", "1"]),
        };
        foreach (var run in runs)
        {
            ProcessCluster.AssertExits(run, 2, TimeSpan.FromSeconds(60), "nnunet with an unwritable results folder");
            var text = run.Text;
            Assert.Contains("error: the sweep journal cannot be written: folder " + datasetFolder + " is not writable", text);
            Assert.Contains(faulty.Mounted ? "Read-only file system" : "already exists", text);
            Assert.Contains("--journal FILE", text);
            Assert.DoesNotContain("   at ", text);        // no stack trace
            Assert.DoesNotContain("Unhandled", text);
            Assert.DoesNotContain("Failure during SQL", text); // refused before the journal was tried
        }
        if (faulty.Mounted) Assert.Empty(Directory.GetFileSystemEntries(datasetFolder));
    }
}
