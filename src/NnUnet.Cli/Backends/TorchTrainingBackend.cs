using System.Text.Json;
using NnUnet.Cluster.Backends;
using NnUnet.Cluster.Sweeps;
using NnUnet.Core.Datasets;
using NnUnet.Core.Reproducibility;
using NnUnet.Core.Results;
using NnUnet.Core.Selection;
using NnUnet.Training.Devices;
using NnUnet.Training.Inference;
using NnUnet.Training.Trainer;

namespace NnUnet.Cli.Backends;

/// <summary>What a node adds to the jobs it runs (the training budget comes with each job, from the sweep).</summary>
public sealed record TorchBackendOptions
{
    /// <summary>Seed of every fold's training; null gives each fold the seed derived from its sweep and job
    /// (<see cref="FoldSeed"/>), which the sweep manifest lists. A resumed fold keeps its checkpoint's seed.</summary>
    public long? Seed { get; init; }
}

/// <summary>
/// The real backend of a worker: runs a sweep's jobs with the TorchSharp trainer (training folds, including their
/// validation), the best-configuration finder (selection) and the predictor (test-set prediction). The job carries
/// only ids and paths; raw and preprocessed roots come from this node's <see cref="NnUnetPaths"/> (shared storage).
/// </summary>
public sealed class TorchTrainingBackend(NnUnetPaths nodePaths, string device, TorchBackendOptions options) : ITrainingBackend
{
    public string Name => "torchsharp";

    public Task<JobOutcome> RunAsync(JobSpec spec, IJobProgressSink progress, CancellationToken cancellationToken) => spec.Kind switch
    {
        JobKind.Train => TrainAsync(spec, progress, cancellationToken),
        JobKind.Select => Task.Run(() => Select(spec), cancellationToken),
        JobKind.Predict or JobKind.PredictShard => Task.Run(() => Predict(spec, progress, cancellationToken), cancellationToken),
        _ => throw new ArgumentOutOfRangeException(nameof(spec), spec.Kind, "unknown job kind"),
    };

    public long? SeedFor(JobSpec spec) => options.Seed ?? FoldSeed.For(spec.SweepId, spec.JobId);

    public RuntimeEnvironment Describe(string device)
    {
        var (torchSharp, libTorch) = VersionReport.TorchVersions();
        return RuntimeEnvironment.Current(torchSharp, libTorch, TorchDevices.Describe(device));
    }

    private NnUnetPaths PathsFor(JobSpec spec) => nodePaths with { Results = spec.ResultsRoot };

    private async Task<JobOutcome> TrainAsync(JobSpec spec, IJobProgressSink progress, CancellationToken ct)
    {
        var paths = PathsFor(spec);
        var job = new TrainingJob
        {
            RawRoot = paths.Raw,
            PreprocessedRoot = paths.Preprocessed ?? throw new InvalidOperationException("nnUNet_preprocessed is not set on this worker node"),
            ResultsRoot = spec.ResultsRoot,
            DatasetName = spec.DatasetName,
            Configuration = spec.Configuration ?? throw new ArgumentException($"training job {spec.JobId} has no configuration"),
            Fold = spec.Fold,
            PlansName = spec.PlansName,
            Epochs = spec.Epochs,
            ItersPerEpoch = spec.ItersPerEpoch,
            ValIters = spec.ValIters,
            Device = device,
            Seed = SeedFor(spec),
            Trainer = spec.TrainerName,
        };
        // a fold this sweep took over with --continue-training extends the old training even on its first attempt
        job = job with { ContinueTraining = spec.ContinueFromCheckpoint || FoldOwner.WasAdopted(job.FoldOutputFolder) };
        var trainer = new NnUnetTrainer(new FoldValidator());
        var outcome = await Task.Run(() => trainer.RunAsync(job, new ProgressForwarder(progress), ct), ct).ConfigureAwait(false);
        if (outcome.Status == TrainingStatus.Cancelled) throw new OperationCanceledException($"{spec.JobId} was cancelled at epoch {outcome.EpochsCompleted}");
        string summary = ResultLayout.ValidationSummary(job.FoldOutputFolder);
        var metrics = new Dictionary<string, double> { ["epochs"] = outcome.EpochsCompleted };
        if (ReadForegroundDice(summary) is { } dice) metrics["foreground_mean_dice"] = dice;
        if (outcome.BestEmaPseudoDice is { } best) metrics["best_ema_pseudo_dice"] = best;
        return new JobOutcome(summary, metrics);
    }

    private JobOutcome Select(JobSpec spec)
    {
        var result = BestConfigurationFinder.Run(PathsFor(spec), spec.DatasetName, new SelectionOptions
        {
            Configurations = spec.Configurations,
            Folds = spec.Folds,
            Trainer = spec.TrainerName,
            Plans = spec.PlansName,
        });
        var metrics = new Dictionary<string, double> { ["foreground_mean_dice"] = result.ForegroundMeanDiceAfterPostprocessing };
        foreach (var candidate in result.Candidates) metrics["cv_dice:" + candidate.Name] = candidate.ForegroundMeanDice;
        return new JobOutcome(JobOutputs.OutputPath(spec), metrics);
    }

    /// <summary>
    /// A prediction job: a shard predicts its cases of the input (skipping those an earlier attempt wrote completely)
    /// and writes its marker; the merge job checks every case (predicting any still missing) and writes the manifest
    /// last. The sweep's prediction reads imagesTs with the find-best winner; a submission names its own model and folders.
    /// </summary>
    private JobOutcome Predict(JobSpec spec, IJobProgressSink progress, CancellationToken ct)
    {
        var paths = PathsFor(spec);
        string input;
        PredictionOptions options;
        if (spec.Prediction is { } request)
        {
            input = request.InputFolder;
            options = new PredictionOptions
            {
                Dataset = request.Dataset ?? "", ModelFolder = request.ModelFolder, Configuration = request.Configuration, UseBest = request.UseBest,
                Folds = request.Folds, Trainer = request.Trainer, Plans = request.Plans, CheckpointName = request.CheckpointName,
                DisableTta = request.DisableTta, SaveProbabilities = request.SaveProbabilities, PostprocessingFile = request.PostprocessingFile,
                DisablePostprocessing = request.DisablePostprocessing,
            };
        }
        else
        {
            var location = DatasetLocator.Locate(spec.DatasetName, paths);
            input = Path.Combine(location.RawFolder, "imagesTs");
            options = new PredictionOptions { Dataset = spec.DatasetName, UseBest = true, Folds = spec.Folds, Trainer = spec.TrainerName, Plans = spec.PlansName };
        }
        if (!Directory.Exists(input)) throw new DirectoryNotFoundException($"{input}: no such input folder to predict");
        string output = JobOutputs.PredictionFolder(spec);
        bool shard = spec.Kind == JobKind.PredictShard;
        // the completion marker goes first and comes back last (the merge writes it): a folder being written is never complete
        PredictionManifest.Invalidate(output);
        var run = Predictor.PredictFolder(paths, input, output, options with
        {
            Device = device,
            Resume = true,
            Shard = shard ? spec.Fold : 0,
            Shards = shard ? spec.PredictShards : 0,
            WriteManifest = !shard,
            Worker = spec.JobId + " attempt " + spec.Attempt.ToString(System.Globalization.CultureInfo.InvariantCulture),
            OnCaseDone = (_, done, total) => progress.ReportStep(JobPhase.Predicting, done, total),
        }, ct);
        if (run.Failed > 0)
            throw new InvalidOperationException($"{run.Failed} of {run.Cases.Count} cases failed: " +
                string.Join("; ", run.Cases.Where(c => !c.Succeeded).Select(c => $"{c.CaseId}: {c.Error}")));
        if (shard)
            PredictionRecords.WriteShardMarker(output, new ShardMarker(spec.Fold, spec.PredictShards, run.ModelKey,
                run.Cases.Select(c => c.CaseId).ToArray(), DateTime.UtcNow, device));
        var metrics = new Dictionary<string, double> { ["cases"] = run.Cases.Count, ["cases_reused"] = run.Reused };
        return new JobOutcome(JobOutputs.OutputPath(spec), metrics);
    }

    private static double? ReadForegroundDice(string summaryPath)
    {
        if (!File.Exists(summaryPath)) return null;
        using var document = JsonDocument.Parse(File.ReadAllText(summaryPath), new JsonDocumentOptions { AllowTrailingCommas = true });
        if (document.RootElement.TryGetProperty("foreground_mean", out var mean) && mean.TryGetProperty("Dice", out var dice) &&
            dice.ValueKind == JsonValueKind.Number)
            return dice.GetDouble();
        return null;
    }

    /// <summary>
    /// Forwards the trainer's epochs to the worker (which sends them to the coordinator as progress), and its iterations
    /// and validated cases as steps (the liveness report's progress counter, so a long validation is not a hang).
    /// </summary>
    private sealed class ProgressForwarder(IJobProgressSink sink) : ITrainingProgressSink
    {
        public void OnEpochCompleted(EpochProgress p) =>
            sink.ReportEpoch(new EpochMetrics(p.Epoch, p.TotalEpochs, p.TrainLoss, p.ValLoss, p.MeanForegroundPseudoDice, p.EmaPseudoDice, p.EpochSeconds));

        public void OnIteration(int epoch, int iteration, int iterationsPerEpoch) => sink.ReportStep(JobPhase.Training, iteration, iterationsPerEpoch);

        public void OnValidationCase(int done, int total) => sink.ReportStep(JobPhase.Validating, done, total);

        public void OnMessage(string line) { }
    }
}
