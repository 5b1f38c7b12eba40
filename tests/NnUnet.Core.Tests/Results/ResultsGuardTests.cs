using NnUnet.Core.Results;

namespace NnUnet.Core.Tests.Results;

/// <summary>The rules that keep one run from overwriting another's results, on real folders.</summary>
public sealed class ResultsGuardTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("nnunet-guard-").FullName;
    public void Dispose() => Directory.Delete(_root, recursive: true);

    private static RunSettings Sweep(string id, int epochs = 1, int iters = 2, int valIters = 1, string? plansSha = null, string[]? configs = null) => new()
    {
        SweepId = id, Dataset = "Dataset990_Demo", Trainer = "nnUNetTrainer", Plans = "nnUNetPlans", Configurations = configs ?? ["2d"],
        Folds = [0, 1], Epochs = epochs, ItersPerEpoch = iters, ValIters = valIters, PlansSha256 = plansSha,
    };

    private string Fold(int fold) => Path.Combine(_root, "Dataset990_Demo", "nnUNetTrainer__nnUNetPlans__2d", $"fold_{fold}");

    private FoldFolderState Trained(int fold, RunSettings? by, bool finished = true)
    {
        var folder = Fold(fold);
        Directory.CreateDirectory(folder);
        File.WriteAllText(Path.Combine(folder, finished ? "checkpoint_final.ckpt" : "checkpoint_latest.ckpt"), "weights");
        if (by is not null) FoldOwner.ForThisProcess(by).Save(folder);
        return FoldFolderState.Inspect("2d", fold, folder);
    }

    [Fact]
    public void OwnResults_AbsentOrOnlyClaimedFolders_AreNoConflict()
    {
        var me = Sweep("A");
        var own = Trained(0, me);
        FoldOwner.ForThisProcess(Sweep("B")).Save(Fold(1));      // claimed by another sweep that never trained there
        var claimed = FoldFolderState.Inspect("2d", 1, Fold(1));
        var absent = FoldFolderState.Inspect("2d", 2, Fold(2));

        Assert.False(claimed.HasResults);
        Assert.False(absent.HasResults);
        Assert.Empty(ResultsGuard.Conflicts(me, [own, claimed, absent]));
    }

    [Fact]
    public void AnotherSweep_AHandTraining_AndAnUnknownWriter_AreConflicts()
    {
        var me = Sweep("A", epochs: 2);
        var train = Sweep("x") with { SweepId = null, Folds = [1] };
        var conflicts = ResultsGuard.Conflicts(me, [Trained(0, Sweep("B")), Trained(1, train), Trained(2, by: null)]);

        Assert.Equal(3, conflicts.Count);
        Assert.Equal("B", conflicts[0].Other!.Settings.SweepId);
        Assert.Null(conflicts[0].ContinueRefusal);                   // more epochs of the same training: sound
        Assert.False(conflicts[1].Other!.Settings.IsSweep);
        Assert.Contains("no record of the settings", conflicts[2].ContinueRefusal);
        // nnunet train has no identity to resume: even its own earlier run is someone else's results
        Assert.Single(ResultsGuard.Conflicts(train, [Trained(1, train)]));
    }

    [Theory]
    [InlineData(3, 2, 1, null)]
    [InlineData(2, 2, 1, null)]
    [InlineData(1, 2, 1, "cannot be shortened")]
    [InlineData(3, 4, 1, "mix two budgets")]
    [InlineData(3, 2, 5, "validation iterations")]
    public void ContinuingIsSound_OnlyForAsManyOrMoreEpochsOfTheSameBudget(int epochs, int iters, int valIters, string? refusal)
    {
        var state = Trained(0, Sweep("B", epochs: 2));
        var why = ResultsGuard.WhyNotContinue(Sweep("A", epochs, iters, valIters), state);
        if (refusal is null) Assert.Null(why);
        else Assert.Contains(refusal, why);
    }

    [Fact]
    public void ResultsOfAnOlderVersion_AreUnknownOwner_ContinuableOnlyWhenTheirCheckpointRecordsTheSameBudget()
    {
        Trained(0, by: null);
        var recorded = Sweep("x", epochs: 2) with { SweepId = null };
        var read = new List<string>();
        var state = FoldFolderState.Inspect("2d", 0, Fold(0), path => { read.Add(Path.GetFileName(path)); return recorded; });

        Assert.Null(state.Owner);
        Assert.Equal(["checkpoint_final.ckpt"], read);
        Assert.Null(ResultsGuard.WhyNotContinue(Sweep("A", epochs: 3), state));
        Assert.Contains("mix two budgets", ResultsGuard.WhyNotContinue(Sweep("A", epochs: 3, iters: 9), state));
        // a checkpoint it cannot read (another format) leaves it unknown: refused
        var unreadable = FoldFolderState.Inspect("2d", 0, Fold(0), _ => null);
        Assert.Contains("no record of the settings", ResultsGuard.WhyNotContinue(Sweep("A", epochs: 3), unreadable));
        var text = ResultsGuard.DescribeSweepConflict(Sweep("A", epochs: 3), _root, ResultsGuard.Conflicts(Sweep("A", epochs: 3), [state]), _ => "");
        Assert.Contains("unknown owner (no owner.json", text);
        Assert.Contains("its checkpoint records 2 epochs x 2 iterations", text);
    }

    [Fact]
    public void ChangedPlansFile_IsNotSoundToContinue_AndIsNamedAsADifference()
    {
        var state = Trained(0, Sweep("B", plansSha: new string('a', 64)));
        var me = Sweep("A", epochs: 5, plansSha: new string('b', 64));
        Assert.Contains("plans file nnUNetPlans.json changed", ResultsGuard.WhyNotContinue(me, state));
        Assert.Contains("plans file sha256 aaaaaaaaaaaa -> bbbbbbbbbbbb", ResultsGuard.Differences(state.Owner!.Settings, me));
    }

    [Fact]
    public void Differences_NameEachChangedSetting()
    {
        var d = ResultsGuard.Differences(Sweep("B", epochs: 1), Sweep("A", epochs: 2, iters: 4, configs: ["2d", "3d_fullres"]));
        Assert.Equal(["epochs 1 -> 2", "iters-per-epoch 2 -> 4", "configurations 2d -> 2d,3d_fullres"], d);
    }

    [Fact]
    public void Message_NamesTheOtherSweep_TheDifference_AndEveryWayOn()
    {
        var me = Sweep("A", epochs: 2);
        var conflicts = ResultsGuard.Conflicts(me, [Trained(0, Sweep("B", epochs: 1)), Trained(1, Sweep("B", epochs: 1), finished: false)]);
        var text = ResultsGuard.DescribeSweepConflict(me, _root, conflicts, other => $"RESUME {other.SweepId}");

        Assert.Contains("sweep B (2d x folds 0,1, 1 epoch x 2 iterations (1 validation)", text);
        Assert.Contains("nnUNetTrainer__nnUNetPlans__2d/fold_0, nnUNetTrainer__nnUNetPlans__2d/fold_1 (unfinished)", text);
        Assert.Contains("differs from this sweep: epochs 1 -> 2", text);
        Assert.Contains("RESUME B", text);
        Assert.Contains("--continue-training: extend those folds to 2 epochs", text);
        Assert.Contains("--results-suffix NAME", text);
        Assert.Contains("--overwrite", text);
        Assert.Contains(Path.Combine(_root, "Dataset990_Demo", "superseded"), text);
    }

    [Fact]
    public void LockRule_TakeRenewWaitTakeOverRefuse()
    {
        var now = new DateTime(2026, 1, 1, 12, 0, 0, DateTimeKind.Utc);
        LockHolder Holder(string? sweep, string token, double ageSeconds) => new()
        {
            SweepId = sweep, Host = "h", Pid = 1, Token = token, RenewedAtUtc = now.AddSeconds(-ageSeconds), LeaseSeconds = 60,
        };
        var me = Holder("A", "me", 0);
        Assert.Equal(LockDecision.Take, ResultsLock.Decide(null, me, now));
        Assert.Equal(LockDecision.Renew, ResultsLock.Decide(Holder("A", "me", 30), me, now));
        Assert.Equal(LockDecision.WaitForSameSweep, ResultsLock.Decide(Holder("A", "crashed", 30), me, now));
        Assert.Equal(LockDecision.TakeOver, ResultsLock.Decide(Holder("A", "crashed", 61), me, now));
        Assert.Equal(LockDecision.Refuse, ResultsLock.Decide(Holder("B", "other", 30), me, now));
        Assert.Equal(LockDecision.Refuse, ResultsLock.Decide(Holder(null, "train", 30), me, now));
        Assert.Equal(LockDecision.TakeOver, ResultsLock.Decide(Holder("B", "other", 61), me, now));
    }

    [Fact]
    public void Keeper_RefusesAnotherSweepsLiveLock_TakesOverTheSameSweepsAfterTheLease_AndReleases()
    {
        var folder = Path.Combine(_root, "cfg");
        var log = new List<string>();
        using (var first = new ResultsLockKeeper([folder], "A", TimeSpan.FromSeconds(30), log.Add))
        {
            Assert.Equal([folder], first.HeldFolders);
            var refused = Assert.Throws<ResultsLockedException>(() => new ResultsLockKeeper([folder], "B", TimeSpan.FromSeconds(30), log.Add));
            Assert.Contains("sweep A (host", refused.Message);
            Assert.Contains($"pid {Environment.ProcessId}", refused.Message);
        }
        Assert.False(File.Exists(Path.Combine(folder, ResultsLock.FileName)));   // released on dispose

        // a holder that stops renewing (crashed: its keeper is never disposed) loses its lock to its own sweep after the lease
        // (a process that took the lock and died: nobody renews it)
        var crashed = new LockHolder { SweepId = "A", Host = "gone", Pid = 999999, Token = "crashed", LeaseSeconds = 0.6 };
        Assert.Equal(LockDecision.Take, new ResultsLock(folder).TryAcquire(crashed, DateTime.UtcNow).Decision);
        using var successor = new ResultsLockKeeper([folder], "A", TimeSpan.FromMilliseconds(600), log.Add);
        Assert.Empty(successor.HeldFolders);
        Assert.Contains(log, l => l.Contains("taking it over once its lease runs out"));
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (successor.HeldFolders.Count == 0 && DateTime.UtcNow < deadline) Thread.Sleep(50);
        Assert.Equal([folder], successor.HeldFolders);
        Assert.Contains(log, l => l.Contains("taken over") && l.Contains("its lease ran out"));
        Assert.Equal(successor.Token, new ResultsLock(folder).Read()!.Token);
    }

    [Fact]
    public void Superseded_MovesFoldsKeepingEveryByte_AndCopiesThePlansNextToThem()
    {
        var fold = Trained(0, Sweep("B")).Folder;
        var config = Path.GetDirectoryName(fold)!;
        File.WriteAllText(Path.Combine(config, "plans.json"), "{\"plans\": 1}");
        var target = Superseded.Move(Path.Combine(_root, "Dataset990_Demo"), [fold], "test", DateTime.UtcNow);

        Assert.False(Directory.Exists(fold));
        var moved = Path.Combine(target, "nnUNetTrainer__nnUNetPlans__2d", "fold_0");
        Assert.Equal("weights", File.ReadAllText(Path.Combine(moved, "checkpoint_final.ckpt")));
        Assert.Equal("B", FoldOwner.TryLoad(moved)!.Settings.SweepId);
        Assert.Equal("{\"plans\": 1}", File.ReadAllText(Path.Combine(target, "nnUNetTrainer__nnUNetPlans__2d", "plans.json")));
        Assert.True(File.Exists(Path.Combine(config, "plans.json")));            // the live folder keeps its own
        Assert.Contains("fold_0 ->", File.ReadAllText(Path.Combine(target, Superseded.NoteFile)));
        Assert.StartsWith(Path.Combine(_root, "Dataset990_Demo", "superseded"), target);
    }
}
