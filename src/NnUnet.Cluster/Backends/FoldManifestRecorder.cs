using NnUnet.Cluster.Sweeps;
using NnUnet.Core.Datasets;
using NnUnet.Core.IO;
using NnUnet.Core.Reproducibility;
using NnUnet.Core.Results;

namespace NnUnet.Cluster.Backends;

/// <summary>
/// Keeps a training fold's <c>fold_manifest.json</c> (in the fold's output folder) up to date around each attempt: before
/// the backend runs it records the worker, node, device, seed, start time and the digests of the fold's inputs; after,
/// the end time and outcome. Runs on the job's own task, never on an actor's thread. Input digests reuse those of the
/// dataset's <c>sweep_manifest.json</c> for files whose size and write time are unchanged, so twenty folds do not read
/// the dataset twenty times. A manifest that cannot be written never fails the job: the job's results matter more than
/// their record (the problem is logged in the manifest's place by the caller).
/// </summary>
public static class FoldManifestRecorder
{
    /// <summary>Runs <paramref name="run"/> between the two manifest updates (training jobs only; others run as they are).</summary>
    public static async Task<JobOutcome> RunAsync(JobSpec spec, string workerId, string node, string device, ITrainingBackend backend,
        Func<Task<JobOutcome>> run, Action<string>? warn = null)
    {
        if (spec.Kind != JobKind.Train) return await run().ConfigureAwait(false);
        string path = Path.Combine(JobOutputs.FoldFolder(spec), FoldManifest.FileName);
        long? seed = backend.SeedFor(spec);
        Try(() => Begin(path, spec, workerId, node, device, seed, backend.Describe(device)), warn);
        try
        {
            var outcome = await run().ConfigureAwait(false);
            Try(() => End(path, spec.Attempt, "completed", null), warn);
            return outcome;
        }
        catch (AttemptSupersededException)
        {
            throw; // the folder (and its manifest) belongs to the newer attempt now
        }
        catch (OperationCanceledException)
        {
            Try(() => End(path, spec.Attempt, "cancelled", null), warn);
            throw;
        }
        catch (Exception e)
        {
            Try(() => End(path, spec.Attempt, "failed", e.Message), warn);
            throw;
        }
    }

    /// <summary>Adds the attempt (or restarts it, when the same attempt number is started again) with the current inputs.</summary>
    public static FoldManifest Begin(string path, JobSpec spec, string workerId, string node, string device, long? seed, RuntimeEnvironment environment)
    {
        var previous = File.Exists(path) ? FoldManifest.Load(path) : null;
        var attempts = previous is not null && previous.SweepId == spec.SweepId ? previous.Attempts.Where(a => a.Attempt != spec.Attempt).ToList() : [];
        attempts.Add(new FoldAttempt(spec.Attempt, workerId, node, device, seed, spec.ContinueFromCheckpoint, DateTime.UtcNow, null, "running", null));
        List<HashedFile> inputs;
        string? inputsError = null;
        try { inputs = HashInputs(spec); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidDataException or ArgumentException or KeyNotFoundException)
        {
            inputs = [];
            inputsError = e.Message;
        }
        var manifest = new FoldManifest
        {
            SweepId = spec.SweepId,
            Dataset = spec.DatasetName,
            Configuration = spec.Configuration!,
            Fold = spec.Fold,
            Budget = new TrainingBudget(spec.Epochs, spec.ItersPerEpoch, spec.ValIters),
            Environment = environment,
            Inputs = inputs,
            InputsError = inputsError,
            Attempts = attempts,
        };
        manifest.Save(path);
        return manifest;
    }

    /// <summary>Sets the end time and outcome of <paramref name="attempt"/>.</summary>
    public static void End(string path, int attempt, string outcome, string? error)
    {
        if (!File.Exists(path)) return;
        var manifest = FoldManifest.Load(path);
        var attempts = manifest.Attempts.Select(a => a.Attempt == attempt ? a with { EndedAt = DateTime.UtcNow, Outcome = outcome, Error = error } : a).ToList();
        (manifest with { Attempts = attempts }).Save(path);
    }

    private static List<HashedFile> HashInputs(JobSpec spec)
    {
        var paths = NnUnetPaths.FromEnvironment(results: spec.ResultsRoot);
        if (paths.Preprocessed is null) throw new ArgumentException("nnUNet_preprocessed is not set on this worker's node");
        var inputs = SweepInputs.ForFold(paths, spec.DatasetName, spec.PlansName, spec.Configuration!, spec.Fold);
        string sweepManifest = Path.Combine(ResultLayout.DatasetFolder(spec.ResultsRoot, spec.DatasetName), SweepManifest.FileName);
        return FileDigest.HashAll(inputs, KnownDigests(sweepManifest));
    }

    private static readonly Lock KnownDigestsLock = new();
    private static (string Path, DateTime WrittenAt, long Length, Dictionary<string, HashedFile>? Digests)? _knownDigests;

    /// <summary>
    /// The sweep manifest's digests by path, parsed once per version of the file and process: a node's workers start
    /// thousands of folds of one sweep, and the manifest only changes when a coordinator starts.
    /// </summary>
    private static Dictionary<string, HashedFile>? KnownDigests(string sweepManifest)
    {
        var file = new FileInfo(sweepManifest);
        if (!file.Exists) return null;
        lock (KnownDigestsLock)
        {
            if (_knownDigests is { } cached && cached.Path == file.FullName && cached.WrittenAt == file.LastWriteTimeUtc && cached.Length == file.Length)
                return cached.Digests;
            Dictionary<string, HashedFile>? digests = null;
            try { digests = FileDigest.ByPath(SweepManifest.Load(sweepManifest).Inputs); }
            catch (InvalidDataException) { }
            _knownDigests = (file.FullName, file.LastWriteTimeUtc, file.Length, digests);
            return digests;
        }
    }

    private static void Try(Action write, Action<string>? warn)
    {
        try { write(); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidDataException)
        {
            warn?.Invoke($"fold manifest not written: {e.Message}");
        }
    }
}
