using System.Globalization;
using NnUnet.Cluster.Sweeps;
using NnUnet.Core.Results;

namespace NnUnet.Cli.Commands.Cluster;

/// <summary>How a sweep may treat fold folders that hold another run's results (<c>--continue-training</c>, <c>--overwrite</c>).</summary>
internal sealed record ProtectionChoice(bool ContinueTraining, bool Overwrite, TimeSpan LockLease);

/// <summary>
/// What <c>nnunet sweep</c> and <c>nnunet coordinator</c> do before their sweep writes anything: refuse folders a live
/// run of something else writes into, refuse (exit 2) fold folders holding another run's results unless told how to
/// treat them, then lock the sweep's <c>TRAINER__PLANS__CONFIG</c> folders and record the sweep as the owner of its
/// fold folders. The rules themselves are <see cref="ResultsGuard"/>'s.
/// </summary>
internal static class SweepResultsProtection
{
    public static RunSettings SettingsOf(SweepDefinition d, string? plansFile) => new()
    {
        SweepId = d.SweepId, Dataset = d.DatasetName, Trainer = d.TrainerName, Plans = d.PlansName, Configurations = d.Configurations,
        Folds = d.Folds, Epochs = d.Epochs, ItersPerEpoch = d.ItersPerEpoch, ValIters = d.ValIters, Predict = d.PredictTest,
        PlansSha256 = plansFile is null ? null : RunSettings.HashPlans(plansFile),
    };

    /// <summary>Checks, then locks and claims; the returned keeper renews the locks until disposed (end of the sweep).</summary>
    public static ResultsLockKeeper Protect(SweepDefinition definition, string resultsRoot, string? plansFile, ProtectionChoice choice, string verb)
    {
        var me = SettingsOf(definition, plansFile);
        var configFolders = definition.Configurations
            .Select(c => ResultLayout.ModelFolder(resultsRoot, definition.DatasetName, definition.TrainerName, definition.PlansName, c)).ToArray();

        // read-only first: a refusal leaves every file as it was (not even a lock file or an empty folder appears)
        var conflicts = Check(definition, resultsRoot, me, configFolders, choice, verb, null);
        var keeper = new ResultsLockKeeper(configFolders, definition.SweepId, choice.LockLease, line => Console.Error.WriteLine(line));
        try
        {
            // again under the lock: another run may have written between the first look and the lock
            conflicts = Check(definition, resultsRoot, me, configFolders, choice, verb, keeper.Token);
            var now = DateTime.UtcNow;
            if (conflicts.Count > 0 && choice.Overwrite)
            {
                var target = Superseded.Move(Path.Combine(resultsRoot, definition.DatasetName), conflicts.Select(c => c.State.Folder),
                    $"{me.Describe()} ({me.DescribeBudget()}) was started with --overwrite", now);
                Console.Error.WriteLine($"--overwrite: {conflicts.Count} fold folder(s) of other runs moved to {target}");
            }
            // results without an owner record are adopted under what their checkpoint records (Check let only those through)
            var adopted = choice.ContinueTraining
                ? conflicts.ToDictionary(c => c.State.Folder, c => c.Other ?? new FoldOwner { Settings = c.State.FromCheckpoint!, Host = "unknown" })
                : [];
            foreach (var config in definition.Configurations)
                foreach (var fold in definition.Folds)
                {
                    var folder = ResultLayout.FoldFolder(resultsRoot, definition.DatasetName, definition.TrainerName, definition.PlansName, config, fold);
                    var owner = FoldOwner.TryLoad(folder);
                    if (ResultsGuard.IsSameRun(me, owner)) continue;
                    FoldOwner.ForThisProcess(me, adopted.GetValueOrDefault(folder)).Save(folder);
                }
            if (adopted.Count > 0)
                Console.Error.WriteLine($"--continue-training: {adopted.Count} fold(s) of other runs continue to {definition.Epochs} epochs from their checkpoints");
            return keeper;
        }
        catch
        {
            keeper.Dispose();
            throw;
        }
    }

    private static List<FoldConflict> Check(SweepDefinition definition, string resultsRoot, RunSettings me, string[] configFolders,
        ProtectionChoice choice, string verb, string? myToken)
    {
        var now = DateTime.UtcNow;
        foreach (var folder in configFolders)
            if (new ResultsLock(folder).LiveHolderOtherThan(myToken, now) is { } holder && holder.SweepId != definition.SweepId)
                throw new ResultsLockedException(folder, holder, now);
        var states = new List<FoldFolderState>();
        foreach (var config in definition.Configurations)
            foreach (var fold in definition.Folds)
            {
                var folder = ResultLayout.FoldFolder(resultsRoot, definition.DatasetName, definition.TrainerName, definition.PlansName, config, fold);
                // a fold trained by hand right now (nnunet train holds a lock in the fold folder)
                if (new ResultsLock(folder).LiveHolderOtherThan(myToken, now) is { } trainer)
                    throw new ResultsLockedException(folder, trainer, now);
                states.Add(FoldFolderState.Inspect(config, fold, folder, SettingsInCheckpoint));
            }
        var conflicts = ResultsGuard.Conflicts(me, states);
        if (conflicts.Count == 0 || choice.Overwrite) return conflicts;
        if (choice.ContinueTraining && conflicts.All(c => c.ContinueRefusal is null)) return conflicts;
        throw new ResultsConflictException(ResultsGuard.DescribeSweepConflict(me, resultsRoot, conflicts, other => ResumeCommand(verb, other)));
    }

    /// <summary>What a fold's checkpoint records it was trained with (the trainer writes this into every checkpoint).</summary>
    internal static RunSettings? SettingsInCheckpoint(string checkpointPath) =>
        NnUnet.Training.Trainer.Checkpoint.TryReadMetadata(checkpointPath) is { } m
            ? new RunSettings
            {
                Dataset = m.DatasetName, Trainer = m.TrainerName, Plans = m.PlansName, Configurations = [m.Configuration],
                Folds = [m.Fold == "all" ? -1 : int.Parse(m.Fold, CultureInfo.InvariantCulture)], Epochs = m.MaxEpochs,
                ItersPerEpoch = m.ItersPerEpoch, ValIters = m.ValIters,
            }
            : null;

    /// <summary>The command line that defines the other sweep again (same id), so it resumes from its journal.</summary>
    internal static string ResumeCommand(string verb, RunSettings other)
    {
        var args = new List<string> { "nnunet", verb, other.Dataset, "-c", string.Join(",", other.Configurations),
            "--folds", string.Join(",", other.Folds.Select(f => f.ToString(CultureInfo.InvariantCulture))),
            "--epochs", other.Epochs.ToString(CultureInfo.InvariantCulture) };
        if (other.ItersPerEpoch != SweepDefinition.NnUnetItersPerEpoch) args.AddRange(["--iters-per-epoch", other.ItersPerEpoch.ToString(CultureInfo.InvariantCulture)]);
        if (other.ValIters != SweepDefinition.NnUnetValIters) args.AddRange(["--val-iters", other.ValIters.ToString(CultureInfo.InvariantCulture)]);
        if (other.Plans != "nnUNetPlans") args.AddRange(["-p", other.Plans]);
        if (other.Trainer != "nnUNetTrainer") args.AddRange(["--trainer", other.Trainer]);
        if (other.Predict) args.Add("--predict");
        return string.Join(' ', args);
    }
}
