using NnUnet.Cluster.Sweeps;
using NnUnet.Core.Results;

namespace NnUnet.Cluster.Backends;

/// <summary>Where a job's outputs land in nnU-Net's results tree (<see cref="ResultLayout"/>), from its spec.</summary>
public static class JobOutputs
{
    public static string FoldFolder(JobSpec spec) =>
        ResultLayout.FoldFolder(spec.ResultsRoot, spec.DatasetName, spec.TrainerName, spec.PlansName,
            spec.Configuration ?? throw new ArgumentException($"job {spec.JobId} has no configuration"), spec.Fold);

    /// <summary>
    /// A job's output, the file whose existence completes it: the fold's validation summary, the selection's inference
    /// information, a shard's marker, the prediction's manifest (written last by the merge job); for the one prediction
    /// job of a journal written before shards, the prediction folder.
    /// </summary>
    public static string OutputPath(JobSpec spec) => spec.Kind switch
    {
        JobKind.Train => ResultLayout.ValidationSummary(FoldFolder(spec)),
        JobKind.Select => ResultLayout.InferenceInformation(ResultLayout.DatasetFolder(spec.ResultsRoot, spec.DatasetName)),
        JobKind.PredictShard => PredictionRecords.ShardMarkerPath(PredictionFolder(spec), spec.Fold, spec.PredictShards),
        _ when IsLegacyPrediction(spec) => PredictionFolder(spec),
        _ => PredictionRecords.Manifest(PredictionFolder(spec)),
    };

    /// <summary>Where a prediction job writes its cases: the submission's output folder, or the sweep's <c>predictions_imagesTs</c>.</summary>
    public static string PredictionFolder(JobSpec spec) =>
        spec.Prediction?.OutputFolder ?? ResultLayout.TestPredictions(ResultLayout.DatasetFolder(spec.ResultsRoot, spec.DatasetName));

    /// <summary>The one prediction job of a sweep journaled before shards: complete when its folder exists, as then.</summary>
    public static bool IsLegacyPrediction(JobSpec spec) => spec is { Kind: JobKind.Predict, PredictShards: 0, Prediction: null };
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
        var output = JobOutputs.OutputPath(spec);
        var written = JobOutputs.IsLegacyPrediction(spec) ? Directory.GetLastWriteTimeUtc(output) : File.GetLastWriteTimeUtc(output);
        return written >= sinceUtc - TimestampTolerance;
    }

    public string? MissingOutputs(JobSpec spec)
    {
        switch (spec.Kind)
        {
            case JobKind.Train:
            {
                var fold = JobOutputs.FoldFolder(spec);
                var summary = ResultLayout.ValidationSummary(fold);
                var final = ResultLayout.Checkpoint(fold, ResultLayout.CheckpointFinal);
                if (!File.Exists(summary)) return $"{summary} does not exist";
                if (!File.Exists(final)) return $"{final} does not exist";
                return null;
            }
            case JobKind.Predict when JobOutputs.IsLegacyPrediction(spec):
            {
                var path = JobOutputs.OutputPath(spec);
                return Directory.Exists(path) ? null : $"{path} does not exist";
            }
            default:
            {
                var path = JobOutputs.OutputPath(spec);
                return File.Exists(path) ? null : $"{path} does not exist";
            }
        }
    }
}
