using System.Globalization;
using System.Text;

namespace NnUnet.Core.Results;

/// <summary>What a fold folder holds, as far as protecting it goes.</summary>
/// <param name="Configuration">its configuration.</param>
/// <param name="Fold">its fold (-1 = "all").</param>
/// <param name="Folder">the fold folder.</param>
/// <param name="Owner">its <see cref="FoldOwner"/> record; null when it has none.</param>
/// <param name="HasResults">whether it holds anything besides the owner record (checkpoints, logs, validation).</param>
/// <param name="Finished">whether <c>checkpoint_final</c> exists.</param>
public sealed record FoldFolderState(string Configuration, int Fold, string Folder, FoldOwner? Owner, bool HasResults, bool Finished)
{
    public const string CheckpointFinal = "checkpoint_final.ckpt";
    public const string CheckpointLatest = "checkpoint_latest.ckpt";

    /// <summary>
    /// For a folder without an owner record: the settings its newest checkpoint says it was trained with (the trainer
    /// records them), so results of an older version can still be continued when that is sound. Null when unknown.
    /// </summary>
    public RunSettings? FromCheckpoint { get; init; }

    /// <summary>
    /// Reads a fold folder (absent = empty). <paramref name="readCheckpoint"/> turns a checkpoint file into the settings
    /// it records (the trainer's format; Core cannot read it), used only when the folder has no owner record.
    /// </summary>
    public static FoldFolderState Inspect(string configuration, int fold, string folder, Func<string, RunSettings?>? readCheckpoint = null)
    {
        var state = ReadFolder(configuration, fold, folder);
        if (state.Owner is not null || !state.HasResults || readCheckpoint is null) return state;
        foreach (var name in new[] { CheckpointFinal, CheckpointLatest })
        {
            var path = Path.Combine(folder, name);
            if (File.Exists(path) && readCheckpoint(path) is { } settings) return state with { FromCheckpoint = settings };
        }
        return state;
    }

    private static FoldFolderState ReadFolder(string configuration, int fold, string folder)
    {
        if (!Directory.Exists(folder)) return new(configuration, fold, folder, null, false, false);
        bool hasResults = false;
        foreach (var entry in Directory.EnumerateFileSystemEntries(folder))
        {
            var name = Path.GetFileName(entry);
            if (name == FoldOwner.FileName || name == ResultsLock.FileName || name.StartsWith('.')) continue;
            hasResults = true;
            break;
        }
        return new(configuration, fold, folder, FoldOwner.TryLoad(folder), hasResults, File.Exists(Path.Combine(folder, CheckpointFinal)));
    }

    /// <summary>"fold_0" or "fold_all".</summary>
    public string FoldName => "fold_" + RunSettings.FoldName(Fold);
}

/// <summary>A fold folder that holds results of another run than the one about to start.</summary>
/// <param name="State">what the folder holds.</param>
/// <param name="ContinueRefusal">null when extending it with <c>--continue-training</c> is sound, else why not.</param>
public sealed record FoldConflict(FoldFolderState State, string? ContinueRefusal)
{
    public FoldOwner? Other => State.Owner;
}

/// <summary>
/// The pure rules that keep one run from silently destroying another's results: which fold folders are someone
/// else's, what differs between the two runs, and whether continuing them is sound.
/// </summary>
public static class ResultsGuard
{
    /// <summary>Fold folders of <paramref name="folds"/> that hold results of another run than <paramref name="me"/>.</summary>
    public static List<FoldConflict> Conflicts(RunSettings me, IEnumerable<FoldFolderState> folds)
    {
        var conflicts = new List<FoldConflict>();
        foreach (var fold in folds)
        {
            if (!fold.HasResults) continue;                        // nothing to lose (absent, empty, or only claimed)
            if (IsSameRun(me, fold.Owner)) continue;               // our own results: resume
            conflicts.Add(new FoldConflict(fold, WhyNotContinue(me, fold)));
        }
        return conflicts;
    }

    /// <summary>The same sweep (same id); for <c>nnunet train</c>, never (a hand-run training has no identity to resume).</summary>
    public static bool IsSameRun(RunSettings me, FoldOwner? owner) =>
        owner is not null && me.SweepId is not null && owner.Settings.SweepId == me.SweepId;

    /// <summary>
    /// Whether a fold trained with the owner's settings can be continued to <paramref name="me"/>'s: only more (or as
    /// many) epochs of the same training. Null = sound; otherwise the reason, in words.
    /// </summary>
    public static string? WhyNotContinue(RunSettings me, FoldFolderState fold)
    {
        var o = fold.Owner?.Settings ?? fold.FromCheckpoint;
        if (o is null)
            return "no record of the settings it was trained with (written by an older version or by hand), so nothing says continuing it would be the same training";
        if (o.Dataset != me.Dataset || o.Trainer != me.Trainer || o.Plans != me.Plans)
            return $"it was trained as {o.Dataset} {o.Trainer}__{o.Plans}, not {me.Dataset} {me.Trainer}__{me.Plans}";
        if (o.PlansSha256 is { } a && me.PlansSha256 is { } b && a != b)
            return $"the plans file {me.Plans}.json changed since it was trained (sha256 {a[..12]} -> {b[..12]}): the network, patch or spacing its weights were trained for may differ";
        if (o.ItersPerEpoch != me.ItersPerEpoch)
            return $"its epochs were trained with {o.ItersPerEpoch} iterations each, this run's have {me.ItersPerEpoch}: continuing would mix two budgets in one training";
        if (o.ValIters != me.ValIters)
            return $"its online pseudo-Dice (and so checkpoint_best) used {o.ValIters} validation iterations, this run {me.ValIters}";
        if (me.Epochs < o.Epochs)
            return $"it was trained for {o.Epochs} epochs and a training cannot be shortened: its learning rate followed a {o.Epochs}-epoch schedule, which {me.Epochs} epochs would cut short";
        return null;
    }

    /// <summary>What differs between the two runs, e.g. "epochs 1 -> 2", "configurations 2d -> 2d, 3d_fullres".</summary>
    public static List<string> Differences(RunSettings from, RunSettings to)
    {
        var d = new List<string>();
        void Add(string what, string a, string b) { if (a != b) d.Add($"{what} {a} -> {b}"); }
        Add("epochs", Int(from.Epochs), Int(to.Epochs));
        Add("iters-per-epoch", Int(from.ItersPerEpoch), Int(to.ItersPerEpoch));
        Add("val-iters", Int(from.ValIters), Int(to.ValIters));
        Add("plans", from.Plans, to.Plans);
        Add("trainer", from.Trainer, to.Trainer);
        if (from.PlansSha256 is { } a && to.PlansSha256 is { } b) Add("plans file sha256", a[..12], b[..12]);
        if (from.IsSweep && to.IsSweep)
        {
            Add("configurations", string.Join(",", from.Configurations), string.Join(",", to.Configurations));
            Add("folds", string.Join(",", from.Folds.Select(RunSettings.FoldName)), string.Join(",", to.Folds.Select(RunSettings.FoldName)));
            Add("predict", from.Predict ? "yes" : "no", to.Predict ? "yes" : "no");
        }
        return d;
    }

    private static string Int(int v) => v.ToString(CultureInfo.InvariantCulture);

    /// <summary>
    /// The refusal of a sweep: which other runs own which folders, what differs, and the four ways on.
    /// <paramref name="resumeCommand"/> turns the other sweep's settings into the command that resumes it.
    /// </summary>
    public static string DescribeSweepConflict(RunSettings me, string resultsRoot, IReadOnlyList<FoldConflict> conflicts, Func<RunSettings, string> resumeCommand)
    {
        var text = new StringBuilder();
        text.Append(CultureInfo.InvariantCulture, $"{conflicts.Count} fold folder(s) this sweep ({me.SweepId}) would train into hold results of another run; nothing was written.");
        foreach (var group in conflicts.GroupBy(c => c.Other?.Settings.SweepId ?? (c.Other is null ? "\u0001unknown" : "\u0002train")))
        {
            var first = group.First();
            var folders = string.Join(", ", group.Select(c => $"{Path.GetFileName(Path.GetDirectoryName(c.State.Folder))}/{c.State.FoldName}{(c.State.Finished ? "" : " (unfinished)")}"));
            if (first.Other is not { } other)
            {
                text.Append(CultureInfo.InvariantCulture, $"\n  unknown owner (no {FoldOwner.FileName}: written by an older version or by hand): {folders}");
                if (first.State.FromCheckpoint is { } recorded)
                    text.Append(CultureInfo.InvariantCulture, $"\n    its checkpoint records {recorded.Epochs} epochs x {recorded.ItersPerEpoch} iterations ({recorded.ValIters} validation)");
            }
            else
            {
                text.Append(CultureInfo.InvariantCulture, $"\n  {other.Settings.Describe()} ({other.Settings.DescribeBudget()}; host {other.Host}): {folders}");
                var diff = Differences(other.Settings, me);
                text.Append("\n    differs from this sweep: ").Append(diff.Count > 0 ? string.Join("; ", diff) : "no training setting (another sweep id)");
            }
        }
        text.Append("\nChoose one:");
        foreach (var other in conflicts.Select(c => c.Other?.Settings).OfType<RunSettings>().Where(s => s.IsSweep).DistinctBy(s => s.SweepId))
            text.Append(CultureInfo.InvariantCulture, $"\n  - resume {other.Describe()} as it was: {resumeCommand(other)}");
        var refusals = conflicts.Where(c => c.ContinueRefusal is not null).ToList();
        if (refusals.Count == 0)
            text.Append(CultureInfo.InvariantCulture, $"\n  - --continue-training: extend those folds to {me.Epochs} epochs from their final checkpoints (unfinished ones from their latest), with this sweep's settings");
        else
            text.Append("\n  - --continue-training is not sound here: ")
                .Append(string.Join("; ", refusals.GroupBy(r => r.ContinueRefusal).Select(g =>
                    $"{string.Join(", ", g.Select(r => $"{Path.GetFileName(Path.GetDirectoryName(r.State.Folder))}/{r.State.FoldName}"))}: {g.Key}")));
        text.Append(CultureInfo.InvariantCulture, $"\n  - --results-suffix NAME (or --trainer OTHER): train beside them, in {me.Trainer}_NAME__{me.Plans}__CONFIG folders");
        text.Append(CultureInfo.InvariantCulture, $"\n  - --overwrite: train from scratch here; the old fold folders are first moved to {Path.Combine(resultsRoot, me.Dataset, Superseded.FolderName)}/<date>/ (nothing is deleted)");
        return text.ToString();
    }
}

/// <summary>Moves results aside instead of deleting them: <c>nnUNet_results/DATASET/superseded/YYYYMMDD-HHMMSS/TRAINER__PLANS__CONFIG/fold_F</c>.</summary>
public static class Superseded
{
    public const string FolderName = "superseded";
    public const string NoteFile = "superseded.txt";

    /// <summary>
    /// Moves each fold folder under one dated folder of the dataset, keeping its <c>TRAINER__PLANS__CONFIG</c> parent
    /// name; copies that parent's plans.json / dataset.json / dataset_fingerprint.json next to it so the old model stays
    /// usable for prediction; writes a note of what was moved, when and why. Returns the dated folder.
    /// </summary>
    public static string Move(string datasetResultsFolder, IEnumerable<string> foldFolders, string reason, DateTime nowUtc)
    {
        var stamp = nowUtc.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture);
        var target = Path.Combine(datasetResultsFolder, FolderName, stamp);
        for (int n = 2; Directory.Exists(target); n++) target = Path.Combine(datasetResultsFolder, FolderName, $"{stamp}-{n}");
        var note = new StringBuilder($"{nowUtc:O} {reason}\n");
        foreach (var fold in foldFolders)
        {
            var configFolder = Path.GetDirectoryName(Path.GetFullPath(fold))!;
            var destinationConfig = Path.Combine(target, Path.GetFileName(configFolder));
            Directory.CreateDirectory(destinationConfig);
            foreach (var file in new[] { "plans.json", "dataset.json", "dataset_fingerprint.json" })
            {
                var source = Path.Combine(configFolder, file);
                var destination = Path.Combine(destinationConfig, file);
                if (File.Exists(source) && !File.Exists(destination)) File.Copy(source, destination);
            }
            var destinationFold = Path.Combine(destinationConfig, Path.GetFileName(fold));
            Directory.Move(fold, destinationFold);   // same file system: a rename, nothing copied or lost
            note.Append(CultureInfo.InvariantCulture, $"{fold} -> {destinationFold}\n");
        }
        File.WriteAllText(Path.Combine(target, NoteFile), note.ToString());
        return target;
    }
}

/// <summary>A run refused because it would overwrite results of another run; the message names them and the ways on.</summary>
public sealed class ResultsConflictException(string message) : InvalidOperationException(message);
