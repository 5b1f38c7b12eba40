using System.Text.RegularExpressions;

namespace NnUnet.Cluster.Tests.Faults;

/// <summary>SIGKILL of the `nnunet coordinator` process mid-sweep, then the same command again.</summary>
[Collection(ProcessTests.Collection)]
public sealed class CoordinatorCrashTests : IDisposable
{
    private readonly ProcessCluster _cluster = new();
    public void Dispose() => _cluster.Dispose();

    [Fact]
    public async Task SigkilledCoordinator_RestartedWithSameCommand_ContinuesFromJournal_WorkersRejoinByThemselves_NothingRedone()
    {
        string[] sweep = ["-c", "2d,3d_fullres", "--folds", "0,1,2", "--epochs", "24"];
        string[] trainJobs = ["2d/fold_0", "2d/fold_1", "2d/fold_2", "3d_fullres/fold_0", "3d_fullres/fold_1", "3d_fullres/fold_2"];
        var first = _cluster.Coordinator(sweep);
        var workers = new[] { _cluster.Worker(250), _cluster.Worker(250) };

        // kill once a fold is done and a fold of the next round has just checkpointed epoch 2 (22 epochs = 5.5 s to go:
        // longer than the ~3.5 s until the workers' nodes are downed, so that fold is interrupted)
        await Eventually.Until(() =>
        {
            var logs = trainJobs.Select(j => _cluster.ReadLog(j)).ToArray();
            return logs.Any(l => l.Contains("training done")) && logs.Any(l => l.Contains("epoch 2:") && !l.Contains("epoch 4:"));
        }, TimeSpan.FromSeconds(45), () => "no fold completed:\n" + first.Text + string.Join("\n", workers.Select(w => w.Text)));
        first.Sigkill();
        Assert.True(first.Process.WaitForExit(TimeSpan.FromSeconds(5)));
        var doneBeforeCrash = trainJobs.Where(j => _cluster.ReadLog(j).Contains("training done")).ToArray();

        // the same command again: recovers the sweep from nnUNet_results/DATASET/sweeps.db; the workers were not restarted
        var second = _cluster.Coordinator(sweep);
        ProcessCluster.AssertExits(second, 0, TimeSpan.FromSeconds(50), "restarted coordinator");
        foreach (var w in workers) ProcessCluster.AssertExits(w, 0, TimeSpan.FromSeconds(20), "worker");

        using var grid = ProcessCluster.FinalGrid(second);
        Assert.Equal("completed", grid.RootElement.GetProperty("status").GetString());
        _cluster.AssertEachFoldTrainedOnce(trainJobs);
        foreach (var job in doneBeforeCrash) Assert.DoesNotMatch("continue from checkpoint", _cluster.ReadLog(job));
        // Nobody restarted the workers: they finished the sweep with the new coordinator (exit 0 above). At least one
        // node was removed with the coordinator and rejoined in the same process; a node that the restarted coordinator
        // reached before its removal simply stayed a member (which one happens is timing).
        Assert.Contains(workers, w => w.Text.Contains("rejoining"));
        // a fold interrupted by the crash (its worker's node was downed before the fold's end) resumed from its checkpoint
        Assert.True(trainJobs.Any(j => Regex.IsMatch(_cluster.ReadLog(j), @"continue from checkpoint at epoch ([2-9]|1[0-9]|2[0-3])\b")),
            "no fold resumed from a checkpoint:\n" + string.Join("\n", trainJobs.Select(j => j + ":\n" + _cluster.ReadLog(j))) + string.Join("\n", workers.Select(w => w.Text)));
    }
}
