using NnUnet.Cluster.Sweeps;

namespace NnUnet.Cluster.Backends;

/// <summary>nnU-Net v2's folder names under <c>nnUNet_results</c>, in one place.</summary>
public static class ResultLayout
{
    // The trainer's own checkpoint format (NnUnet.Training.Trainer.Checkpoint): nnU-Net's names, .ckpt because it is not a PyTorch pickle.
    public const string CheckpointFinal = "checkpoint_final.ckpt";
    public const string CheckpointLatest = "checkpoint_latest.ckpt";
    public const string CheckpointBest = "checkpoint_best.ckpt";
    public const string TrainingLog = "training_log.txt";
    public const string SweepDatabase = "sweeps.db";
    public const string InferenceInformation = "inference_information.json";
    public const string PredictionsFolder = "predictions_imagesTs";

    public static string DatasetFolder(string resultsRoot, string dataset) => Path.Combine(resultsRoot, dataset);

    public static string TrainingOutputFolder(string resultsRoot, string dataset, string trainer, string plans, string configuration) =>
        Path.Combine(resultsRoot, dataset, $"{trainer}__{plans}__{configuration}");

    public static string FoldFolder(JobSpec spec) =>
        FoldFolder(spec.ResultsRoot, spec.DatasetName, spec.TrainerName, spec.PlansName,
            spec.Configuration ?? throw new ArgumentException($"job {spec.JobId} has no configuration"), spec.Fold);

    public static string FoldFolder(string resultsRoot, string dataset, string trainer, string plans, string configuration, int fold) =>
        Path.Combine(TrainingOutputFolder(resultsRoot, dataset, trainer, plans, configuration), $"fold_{fold}");

    public static string ValidationSummary(string foldFolder) => Path.Combine(foldFolder, "validation", "summary.json");

    /// <summary>Where a job's output summary lives: the fold's validation summary, the selection's inference information, the prediction folder.</summary>
    public static string OutputPath(JobSpec spec) => spec.Kind switch
    {
        JobKind.Train => ValidationSummary(FoldFolder(spec)),
        JobKind.Select => Path.Combine(DatasetFolder(spec.ResultsRoot, spec.DatasetName), InferenceInformation),
        _ => Path.Combine(DatasetFolder(spec.ResultsRoot, spec.DatasetName), PredictionsFolder),
    };

    /// <summary>Default journal file of an embedded or single-coordinator sweep: next to the dataset's results.</summary>
    public static string DefaultSweepDatabase(string resultsRoot, string dataset) => Path.Combine(DatasetFolder(resultsRoot, dataset), SweepDatabase);
}

/// <summary>The coordinator's view of shared storage: does a job's output really exist before its completion is accepted?</summary>
public interface IResultStore
{
    /// <summary>Null when every required output exists; otherwise a message naming what is missing.</summary>
    string? MissingOutputs(JobSpec spec);

    /// <summary>
    /// True when every required output exists and was written at or after <paramref name="sinceUtc"/> (the start of
    /// an attempt): used after a coordinator crash to accept an attempt that finished while nobody listened, without
    /// mistaking the outputs of an earlier run in the same folder for it.
    /// </summary>
    bool OutputsWrittenSince(JobSpec spec, DateTime sinceUtc);
}

/// <summary>Checks the files on the (shared) file system: a training fold needs <c>validation/summary.json</c> and <c>checkpoint_final.ckpt</c>.</summary>
public sealed class FileResultStore : IResultStore
{
    /// <summary>File-system timestamps are coarse on some shares (and the writer's clock may differ slightly).</summary>
    private static readonly TimeSpan TimestampTolerance = TimeSpan.FromSeconds(2);

    public bool OutputsWrittenSince(JobSpec spec, DateTime sinceUtc)
    {
        if (MissingOutputs(spec) is not null) return false;
        var output = ResultLayout.OutputPath(spec);
        var written = spec.Kind == JobKind.Predict ? Directory.GetLastWriteTimeUtc(output) : File.GetLastWriteTimeUtc(output);
        return written >= sinceUtc - TimestampTolerance;
    }

    public string? MissingOutputs(JobSpec spec)
    {
        switch (spec.Kind)
        {
            case JobKind.Train:
            {
                var fold = ResultLayout.FoldFolder(spec);
                var summary = ResultLayout.ValidationSummary(fold);
                var final = Path.Combine(fold, ResultLayout.CheckpointFinal);
                if (!File.Exists(summary)) return $"{summary} does not exist";
                if (!File.Exists(final)) return $"{final} does not exist";
                return null;
            }
            case JobKind.Select:
            {
                var path = ResultLayout.OutputPath(spec);
                return File.Exists(path) ? null : $"{path} does not exist";
            }
            default:
            {
                var path = ResultLayout.OutputPath(spec);
                return Directory.Exists(path) ? null : $"{path} does not exist";
            }
        }
    }
}
