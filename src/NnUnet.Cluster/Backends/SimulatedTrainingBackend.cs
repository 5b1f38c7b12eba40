using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using NnUnet.Cluster.Sweeps;
using NnUnet.Core.IO;
using NnUnet.Core.Postprocessing;
using NnUnet.Core.Selection;
using NnUnet.Core.Results;

namespace NnUnet.Cluster.Backends;

/// <summary>Settings of <see cref="SimulatedTrainingBackend"/>.</summary>
public sealed class SimulatedBackendOptions
{
    /// <summary>Wall time of one epoch of a job (default 20 ms; the selection/prediction take one "epoch").</summary>
    public Func<JobSpec, TimeSpan> EpochDuration { get; init; } = _ => TimeSpan.FromMilliseconds(20);

    /// <summary>Return an error message to make the job throw at that epoch (spec, epoch about to run); null = go on.</summary>
    public Func<JobSpec, int, string?> FailAt { get; init; } = (_, _) => null;

    /// <summary>Write checkpoint_latest every this many epochs (nnU-Net: 50); 1 makes resume tests precise.</summary>
    public int CheckpointEvery { get; init; } = 1;

    /// <summary>Called after each epoch (spec, epoch); tests use it to act mid-job.</summary>
    public Action<JobSpec, int>? AfterEpoch { get; init; }

    /// <summary>
    /// Fault injection: how long to stall inside the write of checkpoint_latest after an epoch (spec, epoch), between
    /// the complete temp file and its rename, so a test can kill the process at that moment. Zero = no stall.
    /// </summary>
    public Func<JobSpec, int, TimeSpan> StallInCheckpointWrite { get; init; } = (_, _) => TimeSpan.Zero;

    /// <summary>
    /// A long validation: how long the validation phase lasts (after "validation" is logged, before summary.json). It
    /// validates one simulated case about every second and reports each (progress moves), as a real validation does.
    /// </summary>
    public Func<JobSpec, TimeSpan> StallInValidation { get; init; } = _ => TimeSpan.Zero;

    /// <summary>Fault injection, a true hang: how long the validation phase blocks without any progress (zero = never).</summary>
    public Func<JobSpec, TimeSpan> HangInValidation { get; init; } = _ => TimeSpan.Zero;

    /// <summary>How many test cases the simulated prediction writes (one output file each, then its manifest).</summary>
    public int PredictCases { get; init; } = 3;

    /// <summary>Wall time of one simulated prediction case (spec); cancellable, as a real case is between its stages.</summary>
    public Func<JobSpec, TimeSpan> PredictCaseDuration { get; init; } = _ => TimeSpan.Zero;

    /// <summary>Called after each predicted case's file is written (spec, cases written); tests act mid-prediction.</summary>
    public Action<JobSpec, int>? AfterPredictedCase { get; init; }

    /// <summary>Records every run; shared between backends of one test to check "each job done once".</summary>
    public SimulatedRunLog Log { get; init; } = new();
}

/// <summary>What the simulated backends did, across workers.</summary>
public sealed class SimulatedRunLog
{
    public sealed record Run(string JobId, int Attempt, string Device, int StartEpoch, bool Completed, bool Cancelled, string? Error);

    private readonly ConcurrentQueue<Run> _runs = new();
    public IReadOnlyCollection<Run> Runs => _runs.ToArray();
    internal void Add(Run run) => _runs.Enqueue(run);
    public int CompletedRuns(string jobId) => _runs.Count(r => r.JobId == jobId && r.Completed);
}

/// <summary>
/// A stand-in trainer for tests, benchmarks and <c>--simulate</c>: sleeps per epoch, reports progress, writes real
/// (small) files in nnU-Net's layout atomically: <c>checkpoint_latest.ckpt</c> (JSON with the epoch and attempt),
/// <c>training_log.txt</c>, then the validation: low-res folds' <c>predicted_next_stage/</c> file of each simulated
/// validation case, <c>validation/summary.json</c> (listing those cases), <c>checkpoint_final.ckpt</c>; the selection writes a stand-in <c>best_configuration.json</c> (see
/// <see cref="WriteStandInSelection"/>), then <c>inference_information.json</c>; the prediction one file per simulated
/// case, then <c>prediction_manifest.json</c>. Every write goes through the attempt's fence (<see cref="WriteFence"/>),
/// log lines included. Continue-from-checkpoint resumes at the saved epoch, so resume is observable in the log exactly
/// as with the real trainer.
/// </summary>
public sealed class SimulatedTrainingBackend(SimulatedBackendOptions options, string device = "sim") : ITrainingBackend
{
    public string Name => "simulated";
    public SimulatedBackendOptions Options => options;

    public async Task<JobOutcome> RunAsync(JobSpec spec, IJobProgressSink progress, CancellationToken cancellationToken)
    {
        int startEpoch = 0;
        try
        {
            return spec.Kind == JobKind.Train
                ? await TrainAsync(spec, progress, s => startEpoch = s, cancellationToken)
                : await FinalStageAsync(spec, progress, cancellationToken);
        }
        catch (OperationCanceledException)
        {
            options.Log.Add(new(spec.JobId, spec.Attempt, device, startEpoch, false, true, null));
            throw;
        }
        catch (Exception ex)
        {
            options.Log.Add(new(spec.JobId, spec.Attempt, device, startEpoch, false, false, ex.Message));
            throw;
        }
    }

    private async Task<JobOutcome> TrainAsync(JobSpec spec, IJobProgressSink progress, Action<int> started, CancellationToken ct)
    {
        var fold = JobOutputs.FoldFolder(spec);
        Directory.CreateDirectory(fold);
        var logPath = ResultLayout.TrainingLog(fold);
        var latest = ResultLayout.Checkpoint(fold, ResultLayout.CheckpointLatest);
        int epoch = 0;
        double ema = 0;
        // a fold this sweep took over with --continue-training extends the old training even on its first attempt
        if ((spec.ContinueFromCheckpoint || FoldOwner.WasAdopted(fold)) && File.Exists(latest))
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(latest));
            epoch = doc.RootElement.GetProperty("epoch").GetInt32();
            ema = doc.RootElement.GetProperty("ema_pseudo_dice").GetDouble();
            AppendLog(logPath, $"{DateTime.UtcNow:O} attempt {spec.Attempt}: continue from checkpoint at epoch {epoch}\n");
        }
        else
        {
            AppendLog(logPath, $"{DateTime.UtcNow:O} attempt {spec.Attempt}: start at epoch 0\n");
        }
        started(epoch);
        var duration = options.EpochDuration(spec);
        while (epoch < spec.Epochs)
        {
            ct.ThrowIfCancellationRequested();
            if (options.FailAt(spec, epoch) is { } error)
                throw new InvalidOperationException(error);
            var clock = Stopwatch.StartNew();
            if (duration > TimeSpan.Zero) await Task.Delay(duration, ct);
            epoch++;
            // a plausible learning curve: pseudo-Dice rises towards 0.9, EMA as in nnU-Net (0.9 * ema + 0.1 * new)
            double dice = 0.9 * (1 - Math.Exp(-3.0 * epoch / spec.Epochs)) + 0.01 * spec.Fold;
            ema = epoch == 1 ? dice : 0.9 * ema + 0.1 * dice;
            double trainLoss = -dice + 0.3 * Math.Exp(-epoch / 10.0);
            if (epoch % options.CheckpointEvery == 0 || epoch == spec.Epochs)
            {
                var stall = options.StallInCheckpointWrite(spec, epoch);
                AtomicFile.WriteAllText(latest, JsonSerializer.Serialize(new { epoch, ema_pseudo_dice = ema, attempt = spec.Attempt, simulated = true }),
                    stall > TimeSpan.Zero ? () => Task.Delay(stall, ct).GetAwaiter().GetResult() : null);
            }
            AppendLog(logPath, string.Create(CultureInfo.InvariantCulture, $"epoch {epoch}: train_loss {trainLoss:F4} pseudo_dice {dice:F4} ema {ema:F4}\n"));
            progress.ReportStep(JobPhase.Training, epoch, spec.Epochs);
            progress.ReportEpoch(new EpochMetrics(epoch, spec.Epochs, trainLoss, trainLoss + 0.05, dice, ema, clock.Elapsed.TotalSeconds));
            options.AfterEpoch?.Invoke(spec, epoch);
        }
        // the validation (next-stage files of a low-res fold), its summary, checkpoint_final: a fold is complete when all
        // are there (CompletionMarkers; the real trainer writes checkpoint_final before the validation)
        AppendLog(logPath, $"{DateTime.UtcNow:O} attempt {spec.Attempt}: validation\n");
        var cases = await ValidateAsync(spec, progress, ct);
        if (spec.Configuration == SweepDefinition.Lowres)
        {
            var nextStage = ResultLayout.NextStageFolder(Path.GetDirectoryName(fold)!, SweepDefinition.Cascade);
            foreach (var caseId in cases) AtomicFile.WriteAllText(ResultLayout.NextStageFile(nextStage, caseId), "simulated");
        }
        double foregroundMean = ema;
        var summary = ResultLayout.ValidationSummary(fold);
        AtomicFile.WriteAllText(summary, JsonSerializer.Serialize(new
        {
            metric_per_case = cases.Select(c => new { reference_file = c + ".nii.gz", prediction_file = Path.Combine(ResultLayout.ValidationFolder(fold), c + ".nii.gz"), metrics = new { } }),
            mean = new Dictionary<string, object> { ["1"] = new { Dice = foregroundMean } },
            foreground_mean = new { Dice = foregroundMean },
            simulated = true,
        }));
        AtomicFile.WriteAllText(ResultLayout.Checkpoint(fold, ResultLayout.CheckpointFinal), JsonSerializer.Serialize(new { epoch, attempt = spec.Attempt, simulated = true }));
        AppendLog(logPath, $"{DateTime.UtcNow:O} attempt {spec.Attempt}: training done\n");
        options.Log.Add(new(spec.JobId, spec.Attempt, device, 0, true, false, null));
        return new JobOutcome(summary, new Dictionary<string, double> { ["foreground_mean_dice"] = foregroundMean, ["epochs"] = epoch });
    }

    /// <summary>
    /// The simulated validation: one case about every second for <see cref="SimulatedBackendOptions.StallInValidation"/>
    /// (at least one), each reported; or a hang without progress. Returns the validated case ids.
    /// </summary>
    private async Task<List<string>> ValidateAsync(JobSpec spec, IJobProgressSink progress, CancellationToken ct)
    {
        var hang = options.HangInValidation(spec);
        if (hang > TimeSpan.Zero)
        {
            progress.ReportStep(JobPhase.Validating, 0, 1);
            await Task.Delay(hang, ct);
        }
        var duration = options.StallInValidation(spec);
        int count = Math.Max(1, (int)Math.Ceiling(duration.TotalSeconds));
        var perCase = duration / count;
        var cases = new List<string>(count);
        for (int done = 1; done <= count; done++)
        {
            if (perCase > TimeSpan.Zero) await Task.Delay(perCase, ct);
            cases.Add(string.Create(CultureInfo.InvariantCulture, $"sim_{ResultLayout.FoldName(spec.Fold)}_{done:D3}"));
            progress.ReportStep(JobPhase.Validating, done, count);
        }
        return cases;
    }

    /// <summary>A training log line, appended after the attempt's fence check (a superseded attempt stops here).</summary>
    private static void AppendLog(string path, string line)
    {
        WriteFence.CheckCurrent();
        File.AppendAllText(path, line);
    }

    private async Task<JobOutcome> FinalStageAsync(JobSpec spec, IJobProgressSink progress, CancellationToken ct)
    {
        if (options.FailAt(spec, 0) is { } error) throw new InvalidOperationException(error);
        var clock = Stopwatch.StartNew();
        var duration = options.EpochDuration(spec);
        var phase = spec.Kind == JobKind.Select ? JobPhase.Selecting : JobPhase.Predicting;
        progress.ReportStep(phase, 0, 1);
        if (duration > TimeSpan.Zero) await Task.Delay(duration, ct);
        var output = JobOutputs.OutputPath(spec);
        if (spec.Kind == JobKind.Select)
        {
            var folds = new List<string>();
            foreach (var config in spec.Configurations)
                foreach (var fold in spec.Folds)
                {
                    var summary = ResultLayout.ValidationSummary(JobOutputs.FoldFolder(spec with { Kind = JobKind.Train, Configuration = config, Fold = fold }));
                    if (!File.Exists(summary)) throw new FileNotFoundException($"selection needs {summary}, which does not exist");
                    folds.Add(summary);
                }
            var best = WriteStandInSelection(spec);
            AtomicFile.WriteAllText(output, JsonSerializer.Serialize(new { simulated = true, summaries = folds, best_configuration = best.Best.Configurations[0] }));
        }
        else
        {
            await PredictAsync(spec, progress, ct);
        }
        progress.ReportStep(phase, 1, 1);
        progress.ReportEpoch(new EpochMetrics(1, 1, 0, 0, 0, 0, clock.Elapsed.TotalSeconds));
        options.Log.Add(new(spec.JobId, spec.Attempt, device, 0, true, false, null));
        return new JobOutcome(output, new Dictionary<string, double>());
    }

    /// <summary>
    /// The simulated test-set prediction, as the real one: a previous run's manifest is removed first (a half-done re-run
    /// is never complete); a shard writes its cases (<see cref="PredictionRecords.InShard"/>) that have no valid receipt,
    /// each with its receipt, then its marker; the merge job writes any case still missing, then the manifest, last.
    /// </summary>
    private async Task PredictAsync(JobSpec spec, IJobProgressSink progress, CancellationToken ct)
    {
        const string modelKey = "simulated";
        string folder = JobOutputs.PredictionFolder(spec);
        Directory.CreateDirectory(folder);
        PredictionManifest.Invalidate(folder);
        bool shard = spec.Kind == JobKind.PredictShard;
        var mine = new List<string>();
        for (int i = 0; i < options.PredictCases; i++)
            if (!shard || PredictionRecords.InShard(i, spec.Fold, spec.PredictShards)) mine.Add(string.Create(CultureInfo.InvariantCulture, $"sim_test_{i:D3}"));
        var perCase = options.PredictCaseDuration(spec);
        int done = 0;
        foreach (string caseId in mine)
        {
            string file = Path.Combine(folder, caseId + ".nii.gz");
            if (PredictionRecords.ValidReceipt(folder, caseId, modelKey) is null)
            {
                if (perCase > TimeSpan.Zero) await Task.Delay(perCase, ct);
                ct.ThrowIfCancellationRequested();
                AtomicFile.WriteAllText(file, $"simulated prediction of {caseId}, attempt {spec.Attempt}");
                PredictionRecords.WriteReceipt(folder, new CaseReceipt(caseId, modelKey, PredictionRecords.Describe([file]), DateTime.UtcNow,
                    $"{spec.JobId} attempt {spec.Attempt}"));
            }
            progress.ReportStep(JobPhase.Predicting, ++done, mine.Count);
            options.AfterPredictedCase?.Invoke(spec, done);
        }
        if (shard) PredictionRecords.WriteShardMarker(folder, new ShardMarker(spec.Fold, spec.PredictShards, modelKey, mine.ToArray(), DateTime.UtcNow, device));
        else PredictionManifest.Write(folder, "simulated imagesTs", mine.Select(c => (c, Path.Combine(folder, c + ".nii.gz"))), modelKey);
    }

    /// <summary>
    /// The selection's stand-in: each configuration scored by the mean foreground Dice of its folds' summaries, the
    /// best one chosen, no ensemble, no postprocessing; written as <c>nnunet find-best</c> writes it (with an empty
    /// postprocessing.json), so that what reads the choice (the dashboard, the sweep's summary) shows one after a
    /// simulated sweep too. Not a selection: the real one ensembles and decides postprocessing on the predictions.
    /// </summary>
    private static BestConfiguration WriteStandInSelection(JobSpec spec)
    {
        var dataset = ResultLayout.DatasetFolder(spec.ResultsRoot, spec.DatasetName);
        var candidates = new List<SelectionCandidate>();
        foreach (var config in spec.Configurations)
        {
            double sum = 0;
            foreach (var fold in spec.Folds)
            {
                using var summary = JsonDocument.Parse(File.ReadAllText(ResultLayout.ValidationSummary(
                    ResultLayout.FoldFolder(spec.ResultsRoot, spec.DatasetName, spec.TrainerName, spec.PlansName, config, fold))));
                sum += summary.RootElement.GetProperty("foreground_mean").GetProperty("Dice").GetDouble();
            }
            var model = ResultLayout.ModelFolder(spec.ResultsRoot, spec.DatasetName, spec.TrainerName, spec.PlansName, config);
            candidates.Add(new SelectionCandidate(Path.GetFileName(model), "single", [config], [model], model, sum / Math.Max(1, spec.Folds.Length)));
        }
        var best = candidates.MaxBy(c => c.ForegroundMeanDice)!;
        var postprocessing = Path.Combine(dataset, PostprocessingDecision.FileName);
        AtomicFile.WriteAllText(postprocessing, """{"postprocessing_fns": [], "postprocessing_kwargs": [], "simulated": true}""");
        var selection = new BestConfiguration
        {
            Dataset = spec.DatasetName, Trainer = spec.TrainerName, Plans = spec.PlansName, Folds = spec.Folds, Best = best,
            ForegroundMeanDiceAfterPostprocessing = best.ForegroundMeanDice, PostprocessingFile = postprocessing, PostprocessingSteps = [],
            Candidates = candidates,
        };
        selection.Save(ResultLayout.BestConfigurationJson(dataset));
        return selection;
    }
}
