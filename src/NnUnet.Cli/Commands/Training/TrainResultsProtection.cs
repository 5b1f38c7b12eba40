using System.Globalization;
using NnUnet.Core.Results;
using NnUnet.Training.Trainer;

namespace NnUnet.Cli.Commands.Training;

/// <summary>
/// What <c>nnunet train</c> checks before it writes into a fold folder: no running sweep writes into its
/// <c>TRAINER__PLANS__CONFIG</c> folder and no other <c>nnunet train</c> into the fold; a fold that already holds a
/// training is continued only with <c>--continue</c> and replaced only with <c>--overwrite</c> (which moves it to
/// <c>superseded/</c>). Holds a lock in the fold folder while it trains (folds of one configuration may train in parallel).
/// </summary>
internal static class TrainResultsProtection
{
    private static readonly string[] Checkpoints = ["checkpoint_final.ckpt", "checkpoint_latest.ckpt", "checkpoint_best.ckpt"];

    public static ResultsLockKeeper Protect(TrainingJob job, bool overwrite)
    {
        var now = DateTime.UtcNow;
        var fold = job.FoldOutputFolder;
        if (new ResultsLock(job.TrainerOutputFolder).LiveHolderOtherThan(null, now) is { } sweep)
            throw new ResultsLockedException(job.TrainerOutputFolder, sweep, now);
        if (new ResultsLock(fold).LiveHolderOtherThan(null, now) is { } other)
            throw new ResultsLockedException(fold, other, now);

        var me = new RunSettings
        {
            SweepId = null, Dataset = job.DatasetName, Trainer = job.Trainer, Plans = job.PlansName, Configurations = [job.Configuration],
            Folds = [job.Fold], Epochs = job.Epochs, ItersPerEpoch = job.ItersPerEpoch, ValIters = job.ValIters,
            PlansSha256 = RunSettings.HashPlans(Path.Combine(job.PreprocessedRoot, job.DatasetName, job.PlansName + ".json")),
        };
        var state = FoldFolderState.Inspect(job.Configuration, job.Fold, fold);
        var existing = Checkpoints.Where(c => File.Exists(Path.Combine(fold, c))).ToArray();
        if (!job.ContinueTraining && !job.ValidationOnly && existing.Length > 0)
        {
            if (!overwrite) throw new ResultsConflictException(DescribeExisting(job, state, existing));
            var target = Superseded.Move(Path.Combine(job.ResultsRoot, job.DatasetName), [fold],
                $"nnunet train {job.DatasetName} {job.Configuration} {job.FoldName} --overwrite ({me.DescribeBudget()})", now);
            Console.Error.WriteLine($"--overwrite: the previous {Path.GetFileName(fold)} moved to {target}");
            state = FoldFolderState.Inspect(job.Configuration, job.Fold, fold);
        }

        if (job.ContinueTraining && state.Owner is not null && ResultsGuard.WhyNotContinue(me, state) is { } why)
            throw new ResultsConflictException($"{fold} cannot be continued with these settings: {why}; nothing was written. " +
                $"Continue it with its own settings ({state.Owner.Settings.DescribeBudget()}) or more epochs, train beside it with --results-suffix NAME, or replace it with --overwrite");

        var keeper = new ResultsLockKeeper([fold], null, ResultsLock.DefaultLease, line => Console.Error.WriteLine(line));
        try
        {
            // --validation-only changes no training: the owner stays; continuing the same training keeps it too (a sweep's
            // fold finished by hand is still the sweep's); anything else is now this training's
            bool sameTraining = state.Owner is { } o && o.Settings.Epochs == me.Epochs && ResultsGuard.WhyNotContinue(me, state) is null;
            if (!job.ValidationOnly && !(job.ContinueTraining && sameTraining))
                FoldOwner.ForThisProcess(me, state.HasResults ? state.Owner : null).Save(fold);
            return keeper;
        }
        catch
        {
            keeper.Dispose();
            throw;
        }
    }

    private static string DescribeExisting(TrainingJob job, FoldFolderState state, string[] existing)
    {
        var what = state.Finished ? "a finished training" : "an unfinished training";
        var owner = state.Owner is { } o ? $"written by {o.Settings.Describe()} ({o.Settings.DescribeBudget()}) on {o.Host}"
            : $"written by an older version or by hand (no {FoldOwner.FileName})";
        var epochs = state.Owner?.Settings.Epochs;
        var cmd = $"nnunet train {job.DatasetName} {job.Configuration} {job.FoldName}";
        return $"{job.FoldOutputFolder} already holds {what} ({string.Join(", ", existing)}), {owner}; nothing was written. Choose one:" +
               $"\n  - continue it: {cmd} --continue" + (epochs is { } e ? string.Create(CultureInfo.InvariantCulture, $" --epochs {e} (or more epochs to extend it)") : " (same --epochs, or more to extend it)") +
               $"\n  - train beside it: {cmd} --results-suffix NAME (folder {job.Trainer}_NAME__{job.PlansName}__{job.Configuration})" +
               $"\n  - replace it: {cmd} --overwrite (it is first moved to {Path.Combine(job.ResultsRoot, job.DatasetName, Superseded.FolderName)}/<date>/, nothing is deleted)";
    }
}
