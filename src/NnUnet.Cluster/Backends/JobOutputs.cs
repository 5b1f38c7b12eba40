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

    /// <summary>A job's output: the fold's validation summary, the selection's inference information, the test-set prediction folder.</summary>
    public static string OutputPath(JobSpec spec) => spec.Kind switch
    {
        JobKind.Train => ResultLayout.ValidationSummary(FoldFolder(spec)),
        JobKind.Select => ResultLayout.InferenceInformation(DatasetFolder(spec)),
        _ => ResultLayout.TestPredictions(DatasetFolder(spec)),
    };

    /// <summary>
    /// The job's fence file (<see cref="WriteFence"/>): <c>fold_F/attempt.fence</c>, <c>predictions_imagesTs/attempt.fence</c>,
    /// and for the selection (whose outputs lie in the dataset folder) <c>DATASET/select.attempt.fence</c>.
    /// </summary>
    public static string FencePath(JobSpec spec) => spec.Kind switch
    {
        JobKind.Train => Path.Combine(FoldFolder(spec), WriteFence.FileName),
        JobKind.Select => Path.Combine(DatasetFolder(spec), "select." + WriteFence.FileName),
        _ => Path.Combine(OutputPath(spec), WriteFence.FileName),
    };

    /// <summary>The job's completion marker: its last artifact, written after every other output (<see cref="CompletionMarkers"/>).</summary>
    public static string CompletionMarker(JobSpec spec) => spec.Kind switch
    {
        JobKind.Train => CompletionMarkers.FoldMarker(FoldFolder(spec)),
        JobKind.Select => CompletionMarkers.SelectionMarker(DatasetFolder(spec)),
        _ => CompletionMarkers.PredictionMarker(OutputPath(spec)),
    };

    /// <summary>Null when the job's results are complete on storage (<see cref="CompletionMarkers"/>); otherwise what is missing.</summary>
    public static string? MissingOutputs(JobSpec spec) => spec.Kind switch
    {
        JobKind.Train => CompletionMarkers.FoldMissing(FoldFolder(spec), ExportsNextStage(spec)
            ? ResultLayout.NextStageFolder(Path.GetDirectoryName(FoldFolder(spec))!, SweepDefinition.Cascade) : null),
        JobKind.Select => CompletionMarkers.SelectionMissing(DatasetFolder(spec)),
        _ => CompletionMarkers.PredictionMissing(OutputPath(spec)),
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
