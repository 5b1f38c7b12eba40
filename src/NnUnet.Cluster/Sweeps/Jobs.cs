using NnUnet.Cluster.Messages;

namespace NnUnet.Cluster.Sweeps;

/// <summary>
/// What a job does. <see cref="Predict"/> is the prediction's merge step (it checks every case of the input and writes
/// the prediction manifest last; in journals written before shards existed, the one job that predicted every case);
/// <see cref="PredictShard"/> predicts one shard of the input's cases (<see cref="JobRecord.Fold"/> = shard index).
/// </summary>
public enum JobKind { Train, Select, Predict, PredictShard }

/// <summary>What a running attempt is doing, as its worker's liveness report says (operator view; progress moves in each).</summary>
public enum JobPhase { Training, Validating, Exporting, Selecting, Predicting }

/// <summary>Persisted status of a job. Whether a pending job may start (dependencies) is derived, see <see cref="JobDisplayStatus"/>.</summary>
public enum JobStatus { Pending, Running, Completed, Failed, Cancelled }

/// <summary>
/// One job of the grid and everything the coordinator knows about it; immutable, replaced on every event.
/// <paramref name="Attempt"/> is the number of the last assignment (0 = never assigned); a worker's message counts
/// only when it carries the current attempt, so duplicates and late messages of re-queued attempts are harmless.
/// <paramref name="Requeues"/> counts the attempts that ended without a failure of the job's own but by losing their
/// worker (node lost, lease expired, worker restarted); bounded by <see cref="FailureLimits.MaxRequeues"/>.
/// <paramref name="Progress"/>, <paramref name="LastProgressAt"/>, <paramref name="Phase"/>, <paramref name="PhaseDone"/>
/// and <paramref name="PhaseTotal"/> come from the worker's liveness reports of the current attempt (not journaled:
/// a recovered coordinator re-queues running jobs anyway); <see cref="LastHeartbeatAt"/> is the last sign of life.
/// <paramref name="Failures"/> counts the job's own failures only (bounded by max-attempts);
/// <paramref name="UnconfirmedFailures"/> are the failures not (yet) seen with the same error on another worker (not
/// counted); <paramref name="OwnErrors"/> the errors known to be the job's own (seen on two workers: they count at once
/// from then on); <paramref name="LastFailedOn"/> is the worker of the last failed attempt (avoided for the retry while
/// another worker is idle).
/// </summary>
public sealed record JobRecord(
    string JobId,
    JobKind Kind,
    string? Configuration,
    int Fold,
    string[] DependsOn,
    JobStatus Status,
    int Attempt,
    int Failures,
    bool ResumeFromCheckpoint,
    bool AdoptableAfterRecovery,
    string? WorkerId,
    string? Node,
    string? LastError,
    int Epoch,
    int TotalEpochs,
    double? LastPseudoDice,
    double? BestEmaPseudoDice,
    DateTime? StartedAt,
    DateTime? LastHeartbeatAt,
    DateTime? FinishedAt,
    string? SummaryPath,
    Dictionary<string, double>? Metrics,
    DateTime? HeldUntil = null,
    int Requeues = 0,
    long Progress = 0,
    DateTime? LastProgressAt = null,
    JobPhase? Phase = null,
    int PhaseDone = 0,
    int PhaseTotal = 0,
    JobFailureNote[]? UnconfirmedFailures = null,
    string? LastFailedOn = null,
    string[]? OwnErrors = null,
    string? Submission = null) : INnUnetMessage
{
    public bool IsTerminal => Status is JobStatus.Completed or JobStatus.Failed or JobStatus.Cancelled;

    public static string TrainJobId(string configuration, int fold) => $"{configuration}/fold_{fold}";
    public const string SelectJobId = "select";
    public const string PredictJobId = "predict";
    public const string MergeJobName = "merge";

    /// <summary>Shard <paramref name="shard"/> of a prediction: <c>predict/shard_0</c> (the sweep's) or <c>SUBMISSION/shard_0</c>.</summary>
    public static string PredictShardJobId(string? submission, int shard) => $"{submission ?? PredictJobId}/shard_{shard}";

    /// <summary>The merge step of a prediction: <c>predict</c> (the sweep's, as before shards) or <c>SUBMISSION/merge</c>.</summary>
    public static string PredictMergeJobId(string? submission) => submission is null ? PredictJobId : $"{submission}/{MergeJobName}";

    internal static JobRecord New(string jobId, JobKind kind, string? configuration, int fold, string[] dependsOn, int totalEpochs, string? submission = null) =>
        new(jobId, kind, configuration, fold, dependsOn, JobStatus.Pending, 0, 0, false, false, null, null, null, 0,
            totalEpochs, null, null, null, null, null, null, null, Submission: submission);

    /// <summary>The shard jobs and the merge job of a prediction split into <paramref name="shards"/> (0: the one job of old journals).</summary>
    internal static IEnumerable<JobRecord> PredictionJobs(string? submission, int shards, string[] dependsOn)
    {
        var shardIds = new string[shards];
        for (int k = 0; k < shards; k++)
        {
            shardIds[k] = PredictShardJobId(submission, k);
            yield return New(shardIds[k], JobKind.PredictShard, null, k, dependsOn, 0, submission);
        }
        yield return New(PredictMergeJobId(submission), JobKind.Predict, null, -1, shards > 0 ? shardIds : dependsOn, 0, submission);
    }
}

/// <summary>A failed attempt not counted against the job (yet): on which worker, with which error signature, when.</summary>
public sealed record JobFailureNote(string WorkerId, string Error, DateTime At) : INnUnetMessage;

/// <summary>
/// Everything a worker needs to run one job: ids and paths, never tensors or checkpoints (the data lives on storage
/// every node mounts). <paramref name="ResultsRoot"/> is the coordinator's <c>nnUNet_results</c>; a worker that
/// mounts it elsewhere overrides it. <paramref name="Configurations"/> and <paramref name="Folds"/> (the whole grid)
/// are filled for the selection and prediction jobs only. <paramref name="ItersPerEpoch"/> and
/// <paramref name="ValIters"/> are the sweep's training budget (the same on every node).
/// </summary>
public sealed record JobSpec(
    string SweepId,
    string JobId,
    int Attempt,
    JobKind Kind,
    string DatasetName,
    string PlansName,
    string TrainerName,
    string? Configuration,
    int Fold,
    int Epochs,
    bool ContinueFromCheckpoint,
    string ResultsRoot,
    string[] Configurations,
    int[] Folds,
    int ItersPerEpoch = SweepDefinition.NnUnetItersPerEpoch,
    int ValIters = SweepDefinition.NnUnetValIters,
    int PredictShards = 0,
    PredictionRequest? Prediction = null) : INnUnetMessage;

/// <summary>
/// A prediction sent to a running cluster (<c>nnunet predict --cluster</c>): the model as the local <c>predict</c> verb
/// names it (a model folder, or dataset + configuration or the find-best winner, with trainer, plans, folds and
/// checkpoint), the input and output folders on shared storage, and how many shards the input is split into.
/// <see cref="SubmissionId"/> comes from everything but <see cref="Shards"/>: the same command submits the same
/// prediction again (it resumes), and the split stays the one the journal recorded first.
/// </summary>
public sealed record PredictionRequest(
    string InputFolder,
    string OutputFolder,
    string? ModelFolder,
    string? Dataset,
    string? Configuration,
    bool UseBest,
    int[]? Folds,
    string Trainer,
    string Plans,
    string CheckpointName,
    bool DisableTta,
    bool SaveProbabilities,
    string? PostprocessingFile,
    bool DisablePostprocessing,
    int Shards) : INnUnetMessage
{
    public string SubmissionId
    {
        get
        {
            string canonical = string.Join('|', InputFolder, OutputFolder, ModelFolder ?? "", Dataset ?? "", Configuration ?? "", UseBest ? "best" : "",
                Folds is null ? "" : string.Join(',', Folds), Trainer, Plans, CheckpointName, DisableTta ? "notta" : "", SaveProbabilities ? "probabilities" : "",
                PostprocessingFile ?? "", DisablePostprocessing ? "nopp" : "");
            var hash = System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(canonical));
            return "predict-" + Convert.ToHexStringLower(hash.AsSpan(0, 6));
        }
    }
}

/// <summary>Measured epoch time of one configuration (drives the duration estimates).</summary>
public sealed record ConfigurationTiming(string Configuration, double TotalEpochSeconds, int MeasuredEpochs) : INnUnetMessage;
