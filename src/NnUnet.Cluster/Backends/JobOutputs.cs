using NnUnet.Cluster.Sweeps;
using NnUnet.Core.IO;
using NnUnet.Core.Results;

namespace NnUnet.Cluster.Backends;

/// <summary>Where a job's outputs land in nnU-Net's results tree (<see cref="ResultLayout"/>), from its spec.</summary>
public static class JobOutputs
{
    public static string FoldFolder(JobSpec spec) =>
        ResultLayout.FoldFolder(spec.ResultsRoot, spec.DatasetName, spec.TrainerName, spec.PlansName,
            spec.Configuration ?? throw new ArgumentException($"job {spec.JobId} has no configuration"), spec.Fold);

    /// <summary>A job's output: the fold's validation summary, the selection's inference information, a prediction shard's marker, the prediction folder (merge job).</summary>
    public static string OutputPath(JobSpec spec) => spec.Kind switch
    {
        JobKind.Train => ResultLayout.ValidationSummary(FoldFolder(spec)),
        JobKind.Select => ResultLayout.InferenceInformation(DatasetFolder(spec)),
        JobKind.PredictShard => PredictionRecords.ShardMarkerPath(PredictionFolder(spec), spec.Fold, spec.PredictShards),
        _ => PredictionFolder(spec),
    };

    /// <summary>Where a prediction job writes its cases: the submission's output folder, or the sweep's <c>predictions_imagesTs</c>.</summary>
    public static string PredictionFolder(JobSpec spec) => spec.Prediction?.OutputFolder ?? ResultLayout.TestPredictions(DatasetFolder(spec));

    /// <summary>
    /// The job's fence file (<see cref="WriteFence"/>): <c>fold_F/attempt.fence</c>, <c>predictions_imagesTs/attempt.fence</c>
    /// (the merge job), one per shard beside the shard markers (<c>.nnunet-prediction/shard_K.attempt.fence</c>: shards
    /// write the same folder side by side, each fenced against its own later attempts), and for the selection (whose
    /// outputs lie in the dataset folder) <c>DATASET/select.attempt.fence</c>.
    /// </summary>
    public static string FencePath(JobSpec spec) => spec.Kind switch
    {
        JobKind.Train => Path.Combine(FoldFolder(spec), WriteFence.FileName),
        JobKind.Select => Path.Combine(DatasetFolder(spec), "select." + WriteFence.FileName),
        JobKind.PredictShard => Path.Combine(PredictionFolder(spec), PredictionRecords.FolderName,
            string.Create(System.Globalization.CultureInfo.InvariantCulture, $"shard_{spec.Fold}.{WriteFence.FileName}")),
        _ => Path.Combine(PredictionFolder(spec), WriteFence.FileName),
    };

    /// <summary>The job's completion marker: its last artifact, written after every other output (<see cref="CompletionMarkers"/>).</summary>
    public static string CompletionMarker(JobSpec spec) => spec.Kind switch
    {
        JobKind.Train => CompletionMarkers.FoldMarker(FoldFolder(spec)),
        JobKind.Select => CompletionMarkers.SelectionMarker(DatasetFolder(spec)),
        JobKind.PredictShard => PredictionRecords.ShardMarkerPath(PredictionFolder(spec), spec.Fold, spec.PredictShards),
        _ => CompletionMarkers.PredictionMarker(PredictionFolder(spec)),
    };

    /// <summary>Null when the job's results are complete on storage (<see cref="CompletionMarkers"/>); otherwise what is missing.</summary>
    public static string? MissingOutputs(JobSpec spec) => spec.Kind switch
    {
        JobKind.Train => CompletionMarkers.FoldMissing(FoldFolder(spec), ExportsNextStage(spec)
            ? ResultLayout.NextStageFolder(Path.GetDirectoryName(FoldFolder(spec))!, SweepDefinition.Cascade) : null),
        JobKind.Select => CompletionMarkers.SelectionMissing(DatasetFolder(spec)),
        JobKind.PredictShard => PredictionRecords.ShardMissing(PredictionFolder(spec), spec.Fold, spec.PredictShards),
        _ => CompletionMarkers.PredictionMissing(PredictionFolder(spec)),
    };

    /// <summary>A 3d_lowres fold of a sweep that also trains the cascade must leave the cascade's inputs (its validation cases).</summary>
    public static bool ExportsNextStage(JobSpec spec) =>
        spec is { Kind: JobKind.Train, Configuration: SweepDefinition.Lowres } && spec.Configurations.Contains(SweepDefinition.Cascade);

    private static string DatasetFolder(JobSpec spec) => ResultLayout.DatasetFolder(spec.ResultsRoot, spec.DatasetName);
}

/// <summary>The coordinator's view of shared storage: does a job's output really exist before its completion is accepted?</summary>
public interface IResultStore
{
    /// <summary>Null when the job's results are complete (its completion marker and every output it vouches for); otherwise a message naming what is missing.</summary>
    string? MissingOutputs(JobSpec spec);

    /// <summary>
    /// True when the results are complete and the completion marker was written at or after <paramref name="sinceUtc"/> (the start of
    /// an attempt): used after a coordinator crash to accept an attempt that finished while nobody listened, without
    /// mistaking the outputs of an earlier run in the same folder for it.
    /// </summary>
    bool OutputsWrittenSince(JobSpec spec, DateTime sinceUtc);
}

/// <summary>
/// Checks the files on the (shared) file system with the completion markers (<see cref="JobOutputs.MissingOutputs"/>).
/// Blocking file-system calls (a stat on a slow NFS mount can take seconds): the coordinator calls it off its message
/// thread.
/// </summary>
public sealed class FileResultStore : IResultStore
{
    /// <summary>File-system timestamps are coarse on some shares (and the writer's clock may differ slightly).</summary>
    private static readonly TimeSpan TimestampTolerance = TimeSpan.FromSeconds(2);

    public bool OutputsWrittenSince(JobSpec spec, DateTime sinceUtc) =>
        MissingOutputs(spec) is null && File.GetLastWriteTimeUtc(JobOutputs.CompletionMarker(spec)) >= sinceUtc - TimestampTolerance;

    public string? MissingOutputs(JobSpec spec) => JobOutputs.MissingOutputs(spec);
}
