using System.Diagnostics;
using System.Globalization;
using NnUnet.Core.Datasets;
using NnUnet.Core.Planning;
using NnUnet.Core.Preprocessing;
using NnUnet.Training.Augmentation;
using NnUnet.Training.Data;
using NnUnet.Training.Devices;
using NnUnet.Training.Inference;
using NnUnet.Training.Loss;
using NnUnet.Training.Network;
using NnUnet.Training.Optim;
using TorchSharp;
using static TorchSharp.torch;
using NnUnet.Training.Torch;
using NnUnet.Core.Results;
using NnUnet.Core.IO;

namespace NnUnet.Training.Trainer;

/// <summary>
/// nnU-Net v2's <c>nnUNetTrainer</c> for one fold: PlainConvUNet from the plan, Dice+CE with deep supervision, SGD
/// (1e-2, momentum 0.99, Nesterov, wd 3e-5), poly LR set at each epoch start, grad-norm clip 12, 250 iterations and
/// 50 validation iterations per epoch, online pseudo-Dice with EMA, checkpoints and progress.png.
/// Differences on purpose (see docs/training.md): checkpoint_latest every epoch (nnU-Net: every 50), a mid-epoch
/// checkpoint on cancellation, and batches that depend only on (seed, batch index) so <c>--continue</c> reproduces
/// the uninterrupted run exactly on CPU. Precision is fp32 throughout (TF32 matmuls allowed on CUDA): TorchSharp has no
/// autocast, and fp32 keeps resume bit-exact.
/// <para>Cascade (a configuration with <c>previous_stage</c>, nnU-Net's <c>is_cascaded</c>): every case's previous-stage
/// prediction (<see cref="NextStagePredictions"/>, written by that stage's fold validations) travels as a second seg
/// channel through patch sampling and the spatial transforms, then becomes one one-hot input channel per foreground label
/// (with nnU-Net's random binary operators and component removal in training); the network has image channels +
/// foreground labels inputs. A run refuses to start while a case's prediction is missing.</para>
/// </summary>
public sealed class NnUnetTrainer
{
    public const double InitialLearningRate = 1e-2;
    public const double GradientClipNorm = 12;
    public const double OversampleForegroundPercent = 0.33;
    private const int TrainStream = 0, ValidationStream = 1;

    private readonly IFoldValidator? validator;
    private readonly Func<FoldSetup, IBatchAugmenter>? augmenterFactory;

    /// <param name="validator">Runs the post-training validation (normally <c>NnUnet.Training.Inference.FoldValidator</c>); null skips it (with a message).</param>
    /// <param name="augmenterFactory">Builds the training augmentation; null: nnU-Net's pipeline (<see cref="DefaultAugmenter"/>).</param>
    public NnUnetTrainer(IFoldValidator? validator = null, Func<FoldSetup, IBatchAugmenter>? augmenterFactory = null)
    {
        this.validator = validator;
        this.augmenterFactory = augmenterFactory;
    }

    /// <summary>Everything resolved from the files before training starts (also used by <c>--dry-run</c>).</summary>
    /// <param name="InputChannels">Network inputs: image channels, plus one per foreground label for a cascade.</param>
    /// <param name="Cascade">The previous stage's predictions (cascade configurations only).</param>
    public sealed record FoldSetup(
        TrainingJob Job, NnUnetPlans Plans, PlansConfiguration Configuration, DatasetJson Dataset, string DataFolder,
        int InputChannels, int NumClasses, CrossValidationFold Split, PatchGeometry Geometry, CascadeInput? Cascade = null);

    /// <summary>
    /// A cascade's extra input: the <paramref name="PreviousStage"/> configuration's predictions in
    /// <paramref name="PredictionsFolder"/> (<c>nnUNet_results/DATASET/TRAINER__PLANS__PREVIOUS/predicted_next_stage/CONFIG</c>,
    /// nnU-Net's <c>folder_with_segs_from_previous_stage</c>), one-hot over <paramref name="ForegroundLabels"/>.
    /// </summary>
    public sealed record CascadeInput(string PreviousStage, string PredictionsFolder, int[] ForegroundLabels);

    public static FoldSetup Resolve(TrainingJob job)
    {
        job.Validate();
        string datasetFolder = Path.Combine(job.PreprocessedRoot, job.DatasetName);
        string plansPath = Path.Combine(datasetFolder, job.PlansName + ".json");
        if (!File.Exists(plansPath)) throw new FileNotFoundException($"{plansPath}: plans not found; run nnunet plan first", plansPath);
        var plans = NnUnetPlans.Load(plansPath);
        var config = plans.GetConfiguration(job.Configuration);

        string datasetJsonPath = Path.Combine(datasetFolder, DatasetJson.FileName);
        if (!File.Exists(datasetJsonPath) && job.RawRoot is not null) datasetJsonPath = Path.Combine(job.RawRoot, job.DatasetName, DatasetJson.FileName);
        if (!File.Exists(datasetJsonPath)) throw new FileNotFoundException($"{datasetJsonPath}: dataset.json not found (neither in the preprocessed nor the raw dataset folder)", datasetJsonPath);
        var dataset = DatasetJson.Load(datasetJsonPath);
        if (dataset.HasRegions) throw new NotSupportedException($"{datasetJsonPath}: region-based training is not implemented in this trainer");
        int numClasses = 0;
        foreach (var label in dataset.Labels)
            if (!(dataset.IgnoreLabel is { } ignore && label.Values[0] == ignore)) numClasses++;
        if (dataset.HasIgnoreLabel) throw new NotSupportedException($"{datasetJsonPath}: datasets with an ignore label are not supported by this trainer");

        string dataFolder = Path.Combine(datasetFolder, config.DataIdentifier);
        if (!Directory.Exists(dataFolder)) throw new DirectoryNotFoundException($"{dataFolder}: preprocessed data for '{job.Configuration}' not found; run nnunet preprocess first");
        var caseIds = PreprocessedStore.ListCases(dataFolder);
        if (caseIds.Count == 0) throw new InvalidDataException($"{dataFolder}: no preprocessed cases");
        CrossValidationFold split = job.Fold == TrainingJob.AllFolds
            ? CrossValidationSplits.AllCasesFold(caseIds)
            : CrossValidationSplits.SelectFold(CrossValidationSplits.LoadOrCreate(datasetFolder, caseIds, out _), job.Fold, caseIds);
        foreach (var id in split.Train.Concat(split.Val))
            if (!File.Exists(PreprocessedStore.DataPath(dataFolder, id)))
                throw new InvalidDataException($"{Path.Combine(datasetFolder, CrossValidationSplits.FileName)}: case '{id}' of fold {job.FoldName} has no preprocessed data in {dataFolder}");
        if (split.Train.Count == 0 || split.Val.Count == 0)
            throw new InvalidDataException($"fold {job.FoldName} has {split.Train.Count} training and {split.Val.Count} validation cases; both must be non-empty");

        int dims = config.Architecture.ArchKwargs.SpatialDims;
        if (config.PatchSize.Length != dims)
            throw new InvalidDataException($"{plansPath}: configuration '{job.Configuration}' has a {config.PatchSize.Length}-axis patch for a {dims}D network");
        CascadeInput? cascade = null;
        if (config.PreviousStage is { } previous)
        {
            if (!plans.ConfigurationNames.Contains(previous))
                throw new InvalidDataException($"{plansPath}: configuration '{job.Configuration}' has previous_stage '{previous}', which the plans do not define");
            if (dims != 3) throw new InvalidDataException($"{plansPath}: cascade configuration '{job.Configuration}' must be 3D");
            string previousModel = (job with { Configuration = previous }).TrainerOutputFolder;
            cascade = new CascadeInput(previous, NextStagePredictions.FolderForModel(previousModel, job.Configuration), NextStagePredictions.ForegroundLabels(dataset));
        }
        int inputChannels = dataset.NumChannels + (cascade?.ForegroundLabels.Length ?? 0);
        return new FoldSetup(job, plans, config, dataset, dataFolder, inputChannels, numClasses, split, PatchGeometry.For(config.PatchSize), cascade);
    }

    /// <summary>
    /// Cascade: refuses to start unless every case the run reads (training and validation cases; only validation ones
    /// for <c>--validation-only</c>) has its previous-stage prediction, in the preprocessed shape. No-op otherwise.
    /// </summary>
    public static void RequirePreviousStagePredictions(FoldSetup setup)
    {
        if (setup.Cascade is not { } cascade) return;
        var cases = setup.Job.ValidationOnly ? setup.Split.Val : setup.Split.Train.Concat(setup.Split.Val).ToList();
        NextStagePredictions.RequireAll(cascade.PredictionsFolder, setup.DataFolder, cases, cascade.PreviousStage, setup.Job.DatasetName);
    }

    /// <summary>nnU-Net v2's training augmentation for the configuration's patch (masked channels from use_mask_for_norm).</summary>
    public static IBatchAugmenter DefaultAugmenter(FoldSetup setup) =>
        new NnUnetAugmenter(AugmentationOptions.ForPatch(setup.Configuration.PatchSize, setup.Configuration.UseMaskForNorm) with
        {
            Cascade = setup.Cascade is { } cascade ? new CascadeAugmentationOptions { ForegroundLabels = cascade.ForegroundLabels } : null,
        });

    /// <summary>Training without augmentation: only the centre crop of the loaded patch (cascade: + the one-hot previous stage).</summary>
    public static IBatchAugmenter NoAugmentation(FoldSetup setup) => new CenterCropAugmenter(setup.Geometry.FinalPatchSize, setup.Cascade?.ForegroundLabels);

    /// <summary>The network the job would train (for <c>--dry-run</c> and tests); <paramref name="seed"/>: the run's seed, for its initial weights.</summary>
    public static PlainConvUNet BuildNetwork(FoldSetup setup, long? seed = null) =>
        new(setup.Configuration.Architecture.ArchKwargs, setup.InputChannels, setup.NumClasses, deepSupervision: true, seed);

    public async Task<TrainingOutcome> RunAsync(TrainingJob job, ITrainingProgressSink sink, CancellationToken ct)
    {
        var setup = Resolve(job);
        RequirePreviousStagePredictions(setup);
        var device = TorchDevices.Resolve(job.Device);
        ConfigureTorch(device);
        Directory.CreateDirectory(job.FoldOutputFolder);
        CopyPlanningFiles(setup);
        using var log = new TrainingLogWriter(ResultLayout.TrainingLog(job.FoldOutputFolder), sink);

        if (job.ValidationOnly) return await ValidateOnlyAsync(setup, device, log, sink, ct).ConfigureAwait(false);

        Checkpoint? resume = job.ContinueTraining ? FindResumeCheckpoint(job.FoldOutputFolder, log) : null;
        long seed = resume?.Metadata.Seed ?? job.Seed ?? Random.Shared.NextInt64(0, long.MaxValue);
        if (resume is not null && job.Seed is { } asked && asked != seed)
            log.Line($"--seed {asked} ignored: continuing with the checkpoint's seed {seed}");

        using var network = BuildNetwork(setup, seed);
        if (resume is null && job.PretrainedWeights is { } pretrained)
            log.Line(Interop.PretrainedWeights.LoadInto(network, pretrained));
        network.to(device);
        using var optimizer = new NesterovSgd(network.parameters(), InitialLearningRate);
        var curves = new TrainingCurves();
        double? bestEma = null;
        int startEpoch = 0, startIteration = 0;
        var partialLosses = new List<double>();
        int? extendedFrom = null;
        if (resume is not null)
        {
            using (resume)
            {
                CheckCompatible(resume.Metadata, setup, job);
                resume.LoadWeightsInto(network);
                optimizer.LoadMomentumBuffers(resume.MomentumBuffers);
                curves = resume.Metadata.Curves;
                bestEma = resume.Metadata.BestEma;
                startEpoch = resume.Metadata.Epoch;
                startIteration = resume.Metadata.Iteration;
                partialLosses = resume.Metadata.PartialTrainLosses;
                extendedFrom = resume.Metadata.MaxEpochs < job.Epochs ? resume.Metadata.MaxEpochs : null;
                if (resume.Metadata.TorchRngState is { } state)
                {
                    using var stateTensor = tensor(Convert.FromBase64String(state), ScalarType.Byte);
                    random.set_rng_state(stateTensor);
                }
            }
            log.Line($"continuing from epoch {startEpoch}{(startIteration > 0 ? $", iteration {startIteration}" : "")}");
            if (extendedFrom is { } previousEpochs)
                log.Line($"extending the training from {previousEpochs} to {job.Epochs} epochs: the learning rate follows the {job.Epochs}-epoch schedule from epoch {startEpoch} on");
        }

        log.Line($"training {job.DatasetName} {job.Configuration} fold {job.FoldName} on {device} (TorchSharp, fp32{(device.type == DeviceType.CUDA ? ", TF32 matmuls" : "")}), seed {seed}");
        log.Line($"{setup.Split.Train.Count} training and {setup.Split.Val.Count} validation cases; patch [{string.Join(", ", setup.Configuration.PatchSize)}], loaded patch [{string.Join(", ", setup.Geometry.InitialPatchSize)}], batch {setup.Configuration.BatchSize}; {network.ParameterCount():N0} parameters");

        var run = new FoldRun(this, setup, network, optimizer, device, seed, curves, bestEma, log, sink);
        var status = await run.TrainAsync(startEpoch, startIteration, partialLosses, ct).ConfigureAwait(false);
        string? finalPath = null;
        bool validated = false;
        if (status == TrainingStatus.Completed)
        {
            finalPath = run.SaveCheckpoint(ResultLayout.CheckpointFinal, job.Epochs, 0, [], keepPrevious: false);
            // as nnU-Net: once final exists, latest is obsolete
            string latest = ResultLayout.Checkpoint(job.FoldOutputFolder, ResultLayout.CheckpointLatest);
            File.Delete(latest);
            File.Delete(latest + ResultLayout.PreviousCheckpointSuffix);
            validated = await RunValidatorAsync(setup, network, device, log, sink, ct).ConfigureAwait(false);
        }
        return new TrainingOutcome(status, job.FoldOutputFolder, run.Curves.Count, run.BestEma,
            run.Curves.Count > 0 ? run.Curves.EmaForegroundDice[^1] : null, finalPath, validated);
    }

    private async Task<TrainingOutcome> ValidateOnlyAsync(FoldSetup setup, Device device, TrainingLogWriter log, ITrainingProgressSink sink, CancellationToken ct)
    {
        string finalPath = ResultLayout.Checkpoint(setup.Job.FoldOutputFolder, ResultLayout.CheckpointFinal);
        if (!File.Exists(finalPath)) throw new FileNotFoundException($"{finalPath}: --validation-only needs a finished training (checkpoint_final)", finalPath);
        using var checkpoint = Checkpoint.Load(finalPath);
        using var network = BuildNetwork(setup);
        checkpoint.LoadWeightsInto(network);
        network.to(device);
        bool validated = await RunValidatorAsync(setup, network, device, log, sink, ct).ConfigureAwait(false);
        var curves = checkpoint.Metadata.Curves;
        return new TrainingOutcome(TrainingStatus.ValidatedOnly, setup.Job.FoldOutputFolder, curves.Count, checkpoint.Metadata.BestEma,
            curves.Count > 0 ? curves.EmaForegroundDice[^1] : null, finalPath, validated);
    }

    private async Task<bool> RunValidatorAsync(FoldSetup setup, PlainConvUNet network, Device device, TrainingLogWriter log,
        ITrainingProgressSink sink, CancellationToken ct)
    {
        if (validator is null)
        {
            log.Line("validation of the fold skipped: no validator (sliding-window predictor) configured");
            return false;
        }
        network.eval();
        log.Line($"validating {setup.Split.Val.Count} cases");
        var context = new FoldValidationContext(setup.Plans, setup.Job.Configuration, setup.Dataset,
            Path.Combine(setup.Job.PreprocessedRoot, setup.Job.DatasetName), setup.Geometry.MirrorAxes, device,
            PreviousStagePredictionsFolder: setup.Cascade?.PredictionsFolder, CaseValidated: sink.OnValidationCase);
        await validator.ValidateAsync(setup.Job.FoldOutputFolder, network, context, setup.Split.Val, ct).ConfigureAwait(false);
        return true;
    }

    /// <summary>checkpoint_final, then checkpoint_latest, its previous version, then checkpoint_best (nnU-Net's order), skipping damaged files.</summary>
    internal static Checkpoint? FindResumeCheckpoint(string foldFolder, TrainingLogWriter log)
    {
        string latest = ResultLayout.Checkpoint(foldFolder, ResultLayout.CheckpointLatest);
        string[] candidates =
        [
            ResultLayout.Checkpoint(foldFolder, ResultLayout.CheckpointFinal), latest, latest + ResultLayout.PreviousCheckpointSuffix,
            ResultLayout.Checkpoint(foldFolder, ResultLayout.CheckpointBest),
        ];
        foreach (var path in candidates)
        {
            if (!File.Exists(path)) continue;
            try
            {
                var checkpoint = Checkpoint.Load(path);
                log.Line($"resuming from {Path.GetFileName(path)}");
                return checkpoint;
            }
            catch (InvalidDataException ex)
            {
                log.Line($"WARNING: {ex.Message}; trying an older checkpoint");
            }
        }
        log.Line("WARNING: --continue found no usable checkpoint; starting a new training");
        return null;
    }

    private static void CheckCompatible(CheckpointMetadata m, FoldSetup setup, TrainingJob job)
    {
        if (m.Configuration != job.Configuration || m.Fold != job.FoldName || m.DatasetName != job.DatasetName)
            throw new InvalidDataException($"checkpoint in {job.FoldOutputFolder} belongs to {m.DatasetName} {m.Configuration} fold {m.Fold}");
        // more epochs extend the training (nnU-Net users do this by raising num_epochs): the poly learning rate then
        // follows the longer schedule from the checkpoint's epoch on; fewer epochs or another budget per epoch would not
        // be the same training continued
        if (m.MaxEpochs > job.Epochs || m.ItersPerEpoch != job.ItersPerEpoch || m.ValIters != job.ValIters)
            throw new InvalidDataException($"checkpoint in {job.FoldOutputFolder} was trained with --epochs {m.MaxEpochs} --iters-per-epoch {m.ItersPerEpoch} --val-iters {m.ValIters}; " +
                "continue with the same --iters-per-epoch and --val-iters and at least as many epochs");
        if (m.InputChannels != setup.InputChannels || m.NumClasses != setup.NumClasses)
            throw new InvalidDataException($"checkpoint in {job.FoldOutputFolder}: {m.InputChannels} channels / {m.NumClasses} classes, the dataset now has {setup.InputChannels} / {setup.NumClasses}");
    }

    private static void ConfigureTorch(Device device)
    {
        if (device.type == DeviceType.CUDA)
        {
            backends.cuda.matmul.allow_tf32 = true;
            backends.cudnn.allow_tf32 = true;
        }
        else if (Environment.GetEnvironmentVariable("OMP_NUM_THREADS") is null)
        {
            set_num_threads(Math.Max(1, Environment.ProcessorCount));
        }
    }

    private static void CopyPlanningFiles(FoldSetup setup)
    {
        string target = setup.Job.TrainerOutputFolder;
        string source = Path.Combine(setup.Job.PreprocessedRoot, setup.Job.DatasetName);
        (string from, string to)[] files =
        [
            (Path.Combine(source, setup.Job.PlansName + ".json"), ResultLayout.PlansFile),
            (setup.Dataset.Source, DatasetJson.FileName),
            (Path.Combine(source, ResultLayout.FingerprintFile), ResultLayout.FingerprintFile),
        ];
        foreach (var (from, to) in files)
        {
            if (!File.Exists(from)) continue;
            AtomicFile.Copy(from, Path.Combine(target, to));
        }
    }

    /// <summary>The state of one training run (network, optimizer, curves) and its epoch loop.</summary>
    private sealed class FoldRun(NnUnetTrainer owner, FoldSetup setup, PlainConvUNet network, NesterovSgd optimizer, Device device,
        long seed, TrainingCurves curves, double? bestEma, TrainingLogWriter log, ITrainingProgressSink sink)
    {
        public TrainingCurves Curves { get; } = curves;
        public double? BestEma { get; private set; } = bestEma;
        private TrainingJob Job => setup.Job;

        public async Task<TrainingStatus> TrainAsync(int startEpoch, int startIteration, List<double> partialLosses, CancellationToken ct)
        {
            var config = setup.Configuration;
            var geometry = setup.Geometry;
            var trainCases = new FolderCaseSource(setup.DataFolder, setup.Split.Train);
            var valCases = new FolderCaseSource(setup.DataFolder, setup.Split.Val);
            var previousStage = setup.Cascade is { } cascade ? new PreviousStageSource(cascade.PredictionsFolder) : null;
            var trainSampler = new PatchSampler(trainCases, geometry.FinalPatchSize, geometry.InitialPatchSize, config.BatchSize, OversampleForegroundPercent, previousStage);
            var valSampler = new PatchSampler(valCases, geometry.FinalPatchSize, geometry.FinalPatchSize, config.BatchSize, OversampleForegroundPercent, previousStage);
            var augmenter = (owner.augmenterFactory ?? DefaultAugmenter).Invoke(setup);
            // nnU-Net's validation transforms: no augmentation; the cascade's previous stage becomes one-hot channels
            var validationCrop = new CenterCropAugmenter(geometry.FinalPatchSize, setup.Cascade?.ForegroundLabels);
            // augmentation runs where the batch is made; on CUDA the spatial transforms run on the GPU
            var augmentDevice = device;
            var loss = new DeepSupervisionLoss(new DiceCeLoss(config.BatchDice), config.Architecture.ArchKwargs.NStages - 1);
            var parameters = network.parameters().ToArray();

            for (int epoch = startEpoch; epoch < Job.Epochs; epoch++)
            {
                var watch = Stopwatch.StartNew();
                double lr = PolyLearningRate.At(InitialLearningRate, epoch, Job.Epochs);
                optimizer.LearningRate = lr;
                log.Line("");
                log.Line($"Epoch {epoch}");
                log.Line($"Current learning rate: {lr.ToString("0.#####", CultureInfo.InvariantCulture)}");

                network.train();
                int firstIteration = epoch == startEpoch ? startIteration : 0;
                var losses = epoch == startEpoch ? new List<double>(partialLosses) : new List<double>(Job.ItersPerEpoch);
                await using (var loader = new BatchLoader(trainSampler, augmenter, seed, TrainStream, (long)epoch * Job.ItersPerEpoch + firstIteration,
                                 Job.ItersPerEpoch - firstIteration, Job.LoaderQueueCapacity, augmentDevice, CancellationToken.None))
                {
                    for (int it = firstIteration; it < Job.ItersPerEpoch; it++)
                    {
                        if (ct.IsCancellationRequested)
                        {
                            SaveCheckpoint(ResultLayout.CheckpointLatest, epoch, it, losses, keepPrevious: true);
                            log.Line($"cancelled at epoch {epoch}, iteration {it}: checkpoint_latest written; resume with --continue");
                            return TrainingStatus.Cancelled;
                        }
                        using var batch = await loader.NextAsync(CancellationToken.None).ConfigureAwait(false);
                        losses.Add(TrainStep(batch, loss, parameters));
                        sink.OnIteration(epoch, it, Job.ItersPerEpoch);
                    }
                }

                var (valLoss, dicePerClass) = await ValidateEpochAsync(valSampler, validationCrop, loss, epoch, augmentDevice).ConfigureAwait(false);
                double meanDice = NanMean(dicePerClass);
                double ema = TrainingCurves.NextEma(Curves.EmaForegroundDice, meanDice);
                double trainLoss = Mean(losses);
                double seconds = watch.Elapsed.TotalSeconds;
                Curves.TrainLosses.Add(trainLoss);
                Curves.ValLosses.Add(valLoss);
                Curves.DicePerClass.Add(dicePerClass);
                Curves.MeanForegroundDice.Add(meanDice);
                Curves.EmaForegroundDice.Add(ema);
                Curves.LearningRates.Add(lr);
                Curves.EpochSeconds.Add(seconds);

                log.Line($"train_loss {Round(trainLoss)}");
                log.Line($"val_loss {Round(valLoss)}");
                log.Line($"Pseudo dice [{string.Join(", ", dicePerClass.Select(Round))}]");
                log.Line($"Epoch time: {seconds.ToString("0.00", CultureInfo.InvariantCulture)} s");
                bool newBest = BestEma is null || ema > BestEma.Value;
                SaveCheckpoint(ResultLayout.CheckpointLatest, epoch + 1, 0, [], keepPrevious: true);
                if (newBest)
                {
                    BestEma = ema;
                    log.Line($"Yayy! New best EMA pseudo Dice: {Round(ema)}");
                    SaveCheckpoint(ResultLayout.CheckpointBest, epoch + 1, 0, [], keepPrevious: false);
                }
                // the curves for the dashboard and the plot for people; losing them must not stop training
                try
                {
                    Curves.Save(Job.FoldOutputFolder);
                    ProgressPlot.Save(Curves, ResultLayout.ProgressPlot(Job.FoldOutputFolder));
                }
                catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or InvalidOperationException or ArgumentException)
                {
                    log.Line($"WARNING: {TrainingCurves.FileName} / {ResultLayout.ProgressPlotFile} not written: {ex.Message}");
                }
                sink.OnEpochCompleted(new EpochProgress(epoch, Job.Epochs, trainLoss, valLoss, dicePerClass, meanDice, ema, newBest, lr, seconds,
                    EstimateTimeLeft(epoch)));
            }
            return TrainingStatus.Completed;
        }

        private double TrainStep(TrainingBatch batch, DeepSupervisionLoss loss, TorchSharp.Modules.Parameter[] parameters)
        {
            using var scope = NewDisposeScope();
            var data = batch.Data.to(device);
            var target = batch.Target.to(device);
            optimizer.ZeroGrad();
            var outputs = network.ForwardWithDeepSupervision(data);
            var value = loss.Compute(outputs, target);
            value.backward();
            nn.utils.clip_grad_norm_(parameters, GradientClipNorm);
            optimizer.Step();
            return value.item<float>();
        }

        private async Task<(double loss, double[] dice)> ValidateEpochAsync(PatchSampler sampler, IBatchAugmenter crop, DeepSupervisionLoss loss, int epoch, Device augmentDevice)
        {
            network.eval();
            int foreground = setup.NumClasses - 1;
            var tp = new double[foreground];
            var fp = new double[foreground];
            var fn = new double[foreground];
            double lossSum = 0;
            await using (var loader = new BatchLoader(sampler, crop, seed, ValidationStream, (long)epoch * Job.ValIters, Job.ValIters,
                             Job.LoaderQueueCapacity, augmentDevice, CancellationToken.None))
            {
                for (int v = 0; v < Job.ValIters; v++)
                {
                    using var batch = await loader.NextAsync(CancellationToken.None).ConfigureAwait(false);
                    using var scope = NewDisposeScope();
                    using var noGrad = no_grad();
                    var data = batch.Data.to(device);
                    var target = batch.Target.to(device);
                    var outputs = network.ForwardWithDeepSupervision(data);
                    lossSum += loss.Compute(outputs, target).item<float>();
                    var prediction = outputs[0].argmax(1);
                    var reference = target.select(1, 0);
                    var counts = new Tensor[3 * foreground];
                    for (int c = 1; c <= foreground; c++)
                    {
                        using var label = TorchScalars.Of(c);
                        var p = prediction.eq(label);
                        var g = reference.eq(label);
                        counts[3 * (c - 1)] = p.logical_and(g).sum();
                        counts[3 * (c - 1) + 1] = p.logical_and(g.logical_not()).sum();
                        counts[3 * (c - 1) + 2] = p.logical_not().logical_and(g).sum();
                    }
                    var host = stack(counts).cpu().data<long>().ToArray();
                    for (int c = 0; c < foreground; c++) { tp[c] += host[3 * c]; fp[c] += host[3 * c + 1]; fn[c] += host[3 * c + 2]; }
                }
            }
            network.train();
            var dice = new double[foreground];
            for (int c = 0; c < foreground; c++)
            {
                double denominator = 2 * tp[c] + fp[c] + fn[c];
                dice[c] = denominator == 0 ? double.NaN : 2 * tp[c] / denominator;
            }
            return (lossSum / Job.ValIters, dice);
        }

        public string SaveCheckpoint(string name, int epoch, int iteration, List<double> partialLosses, bool keepPrevious)
        {
            var geometry = setup.Geometry;
            var metadata = new CheckpointMetadata
            {
                TrainerName = Job.Trainer, PlansName = Job.PlansName, DatasetName = Job.DatasetName,
                Configuration = Job.Configuration, Fold = Job.FoldName, Architecture = network.Architecture,
                InputChannels = network.InputChannels, NumClasses = network.NumClasses, PatchSize = geometry.FinalPatchSize,
                MirrorAxes = geometry.MirrorAxes, MaxEpochs = Job.Epochs, ItersPerEpoch = Job.ItersPerEpoch, ValIters = Job.ValIters,
                Seed = seed, Epoch = epoch, Iteration = iteration, PartialTrainLosses = partialLosses, Curves = Curves, BestEma = BestEma,
                TorchRngState = RngState(),
            };
            string path = ResultLayout.Checkpoint(Job.FoldOutputFolder, name);
            Checkpoint.Save(path, metadata, network.state_dict(), optimizer.MomentumBuffers, keepPrevious);
            return path;
        }

        private static string RngState()
        {
            using var state = random.get_rng_state();
            return Convert.ToBase64String(state.data<byte>().ToArray());
        }

        private TimeSpan EstimateTimeLeft(int epoch)
        {
            int recent = Math.Min(5, Curves.EpochSeconds.Count);
            double sum = 0;
            for (int i = Curves.EpochSeconds.Count - recent; i < Curves.EpochSeconds.Count; i++) sum += Curves.EpochSeconds[i];
            return TimeSpan.FromSeconds(recent == 0 ? 0 : sum / recent * (Job.Epochs - epoch - 1));
        }
    }

    private static double Mean(List<double> values)
    {
        double s = 0;
        foreach (double v in values) s += v;
        return values.Count == 0 ? double.NaN : s / values.Count;
    }

    private static double NanMean(double[] values)
    {
        double s = 0; int n = 0;
        foreach (double v in values) if (!double.IsNaN(v)) { s += v; n++; }
        return n == 0 ? double.NaN : s / n;
    }

    private static string Round(double v) => Math.Round(v, 4).ToString(CultureInfo.InvariantCulture);
}

/// <summary>
/// training_log.txt (appended, timestamped like nnU-Net's) mirrored to the progress sink. Each line checks the job
/// attempt's fence first (<see cref="WriteFence"/>): a superseded attempt stops at its next log line.
/// </summary>
internal sealed class TrainingLogWriter : IDisposable
{
    private readonly StreamWriter writer;
    private readonly ITrainingProgressSink sink;

    public TrainingLogWriter(string path, ITrainingProgressSink sink)
    {
        writer = new StreamWriter(path, append: true) { AutoFlush = true };
        this.sink = sink;
    }

    public void Line(string text)
    {
        WriteFence.CheckCurrent();
        writer.WriteLine($"{DateTime.Now.ToString("yyyy-MM-dd HH:mm:ss.ffffff", CultureInfo.InvariantCulture)}: {text}");
        if (text.Length > 0) sink.OnMessage(text);
    }

    public void Dispose() => writer.Dispose();
}
