using NnUnet.Cluster.Sweeps;
using NnUnet.Core.Reproducibility;

namespace NnUnet.Cluster.Backends;

/// <summary>Receives a running job's per-epoch progress. Thread-safe: called from the job's own thread.</summary>
public interface IJobProgressSink
{
    void ReportEpoch(EpochMetrics epoch);
}

/// <summary>What a successful job leaves behind: the validation summary and its headline metrics.</summary>
public sealed record JobOutcome(string SummaryPath, Dictionary<string, double> Metrics);

/// <summary>
/// The seam between the cluster and the work: runs one job (a training fold, the selection, the prediction) given
/// only ids and paths. Failure = an exception; cancellation = <see cref="OperationCanceledException"/> after writing
/// whatever checkpoint the trainer writes on stop. With <see cref="JobSpec.ContinueFromCheckpoint"/> the trainer
/// resumes from <c>checkpoint_latest.ckpt</c> (or starts fresh when there is none).
/// </summary>
public interface ITrainingBackend
{
    /// <summary>Short name shown in logs, e.g. "simulated" or "torchsharp".</summary>
    string Name { get; }

    Task<JobOutcome> RunAsync(JobSpec spec, IJobProgressSink progress, CancellationToken cancellationToken);

    /// <summary>The seed a training job of this backend uses (recorded in the fold's manifest); null when it uses none.</summary>
    long? SeedFor(JobSpec spec) => null;

    /// <summary>What runs the jobs on <paramref name="device"/> (product, runtime, Torch, device name), for the manifests.</summary>
    RuntimeEnvironment Describe(string device) => RuntimeEnvironment.Current(device: device);
}

/// <summary>
/// How a node obtains its backend: the CLI registers one (the TorchSharp trainer adapter lives there, because
/// NnUnet.Cluster must not depend on NnUnet.Training); tests and <c>--simulate</c> pass the simulated one.
/// <paramref name="device"/> is the worker's device: "cuda:N" or "cpu".
/// </summary>
public delegate ITrainingBackend TrainingBackendFactory(string device);
