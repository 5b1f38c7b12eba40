using System.ComponentModel;
using System.Globalization;
using System.Text.Json;
using NnUnet.Core.Datasets;
using NnUnet.Training.Inference;
using NnUnet.Training.Trainer;
using NnUnet.Cli.Commands.Datasets;
using Spectre.Console;
using Spectre.Console.Cli;
using NnUnet.Core.IO;

namespace NnUnet.Cli.Commands.Training;

/// <summary>
/// <c>nnunet train DATASET CONFIG FOLD</c>: nnU-Net's nnUNetTrainer for one fold (checkpoints, training_log.txt,
/// progress.png under nnUNet_results/DATASET/nnUNetTrainer__PLANS__CONFIG/fold_F), then validation of the fold.
/// Ctrl-C stops at the next iteration after writing checkpoint_latest; <c>--continue</c> resumes exactly.
/// </summary>
internal sealed class TrainCommand : AsyncCommand<TrainCommand.Settings>
{
    internal sealed class Settings : DatasetSettings
    {
        [CommandArgument(1, "<CONFIGURATION>")]
        [Description("2d, 3d_fullres, 3d_lowres or 3d_cascade_fullres (a configuration of the plans; the cascade needs every 3d_lowres fold trained and validated first)")]
        public string Configuration { get; init; } = "";

        [CommandArgument(2, "<FOLD>")]
        [Description("Fold index (0-4 for the default 5-fold split, larger: random 80:20 split) or 'all'")]
        public string Fold { get; init; } = "";

        [CommandOption("--epochs <N>")]
        [Description("Training epochs (nnU-Net: 1000)")]
        [DefaultValue(1000)]
        public int Epochs { get; init; } = 1000;

        [CommandOption("--iters-per-epoch <N>")]
        [Description("Training iterations per epoch (nnU-Net: 250)")]
        [DefaultValue(250)]
        public int ItersPerEpoch { get; init; } = 250;

        [CommandOption("--val-iters <N>")]
        [Description("Validation iterations per epoch for the online pseudo-Dice (nnU-Net: 50)")]
        [DefaultValue(50)]
        public int ValIters { get; init; } = 50;

        [CommandOption("--device <DEVICE>")]
        [Description("auto (CUDA when available, else CPU), cpu, cuda or cuda:N")]
        [DefaultValue("auto")]
        public string Device { get; init; } = "auto";

        [CommandOption("--seed <N>")]
        [Description("Seed of weight init and batch sampling (default: random, recorded in the checkpoint)")]
        public long? Seed { get; init; }

        [CommandOption("-c|--continue")]
        [Description("Resume from checkpoint_final, _latest (or its previous copy if damaged) or _best")]
        public bool Continue { get; init; }

        [CommandOption("--validation-only|--val")]
        [Description("Only run the validation of a finished fold (needs checkpoint_final)")]
        public bool ValidationOnly { get; init; }

        [CommandOption("--dry-run")]
        [Description("Resolve plans, split and network, print them (parameter count included) and exit")]
        public bool DryRun { get; init; }

        [CommandOption("--no-augmentation")]
        [Description("Train without data augmentation (centre crop only)")]
        public bool NoAugmentation { get; init; }

        [CommandOption("--overwrite")]
        [Description("The fold already holds a training: move it to nnUNet_results/DATASET/superseded/<date>/ first, then train from scratch")]
        public bool Overwrite { get; init; }

        [CommandOption("--results-suffix <NAME>")]
        [Description("Train beside existing results: the trainer folder becomes nnUNetTrainer_NAME__PLANS__CONFIG")]
        public string? ResultsSuffix { get; init; }

        [CommandOption("--pretrained-weights <FILE>")]
        [Description("Start from these weights (ours .ckpt or nnU-Net's .pth): every weight but the segmentation heads, shapes checked; as nnU-Net's -pretrained_weights (ignored with --continue)")]
        public string? PretrainedWeights { get; init; }

        [CommandOption("-p|--plans <NAME>")]
        [Description("Plans identifier (nnUNet_preprocessed/DATASET/<NAME>.json)")]
        [DefaultValue("nnUNetPlans")]
        public string Plans { get; init; } = "nnUNetPlans";

        public override ValidationResult Validate()
        {
            if (ParseFold(Fold) is null) return ValidationResult.Error($"FOLD must be a non-negative number or 'all', got '{Fold}'");
            if (Epochs < 1 || ItersPerEpoch < 1 || ValIters < 1) return ValidationResult.Error("--epochs, --iters-per-epoch and --val-iters must be at least 1");
            if (Continue && ValidationOnly) return ValidationResult.Error("--continue and --validation-only exclude each other");
            if (Overwrite && (Continue || ValidationOnly)) return ValidationResult.Error("--overwrite starts a new training: it excludes --continue and --validation-only");
            if (Cluster.ResultsNaming.CheckSuffix(ResultsSuffix) is { } suffixError) return ValidationResult.Error(suffixError);
            if (PretrainedWeights is not null && !File.Exists(PretrainedWeights)) return ValidationResult.Error($"--pretrained-weights: {PretrainedWeights} does not exist");
            return ValidationResult.Success();
        }
    }

    internal static int? ParseFold(string fold) =>
        fold.Equals("all", StringComparison.OrdinalIgnoreCase) ? TrainingJob.AllFolds
        : int.TryParse(fold, NumberStyles.None, CultureInfo.InvariantCulture, out int f) ? f : null;

    public override async Task<int> ExecuteAsync(CommandContext context, Settings settings, CancellationToken cancellationToken)
    {
        var paths = settings.Paths();
        var job = new TrainingJob
        {
            RawRoot = paths.Raw, PreprocessedRoot = paths.RequirePreprocessed(),
            ResultsRoot = settings.DryRun ? paths.Results ?? "nnUNet_results" : paths.RequireResults(),
            DatasetName = DatasetLocator.ResolveName(settings.Dataset, paths), Configuration = settings.Configuration,
            Fold = ParseFold(settings.Fold)!.Value, PlansName = settings.Plans, Epochs = settings.Epochs,
            ItersPerEpoch = settings.ItersPerEpoch, ValIters = settings.ValIters, Device = settings.Device, Seed = settings.Seed,
            ContinueTraining = settings.Continue, ValidationOnly = settings.ValidationOnly,
            Trainer = Cluster.ResultsNaming.WithSuffix(TrainingJob.TrainerName, settings.ResultsSuffix),
            PretrainedWeights = settings.PretrainedWeights,
        };
        if (settings.DryRun) return DryRun(job, settings.Json);
        using var foldLock = TrainResultsProtection.Protect(job, settings.Overwrite);

        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        ConsoleCancelEventHandler onCancel = (_, e) => { e.Cancel = true; cts.Cancel(); };
        Console.CancelKeyPress += onCancel;
        try
        {
            var console = CommandConsole.Create();
            var trainer = new NnUnetTrainer(new FoldValidator(), settings.NoAugmentation ? NnUnetTrainer.NoAugmentation : null);
            var outcome = settings.Json
                ? await trainer.RunAsync(job, new ConsoleSink(console, null), cts.Token).ConfigureAwait(false)
                : await console.Progress().AutoClear(false)
                    .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn())
                    .StartAsync(async progress =>
                    {
                        var task = progress.AddTask($"{Markup.Escape(job.Configuration)} fold {job.FoldName}: epoch 0/{job.Epochs}", maxValue: job.Epochs);
                        return await trainer.RunAsync(job, new ConsoleSink(console, task), cts.Token).ConfigureAwait(false);
                    }).ConfigureAwait(false);
            if (settings.Json) JsonStdout.Writer.WriteLine(JsonSerializer.Serialize(outcome, new JsonSerializerOptions { WriteIndented = true, NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals }));
            else console.MarkupLineInterpolated($"{outcome.Status}: {outcome.EpochsCompleted} epochs, best EMA pseudo-Dice {outcome.BestEmaPseudoDice?.ToString("F4", CultureInfo.InvariantCulture) ?? "-"} -> {outcome.OutputFolder}");
            return outcome.Status == TrainingStatus.Cancelled ? NnUnetApp.ExitInterrupted : NnUnetApp.ExitOk;
        }
        finally
        {
            Console.CancelKeyPress -= onCancel;
        }
    }

    private static int DryRun(TrainingJob job, bool json)
    {
        var setup = NnUnetTrainer.Resolve(job);
        using var network = NnUnetTrainer.BuildNetwork(setup);
        long parameters = network.ParameterCount();
        if (json)
        {
            JsonStdout.Writer.WriteLine(JsonSerializer.Serialize(new
            {
                dataset = job.DatasetName, configuration = job.Configuration, fold = job.FoldName, output = job.FoldOutputFolder,
                train_cases = setup.Split.Train.Count, val_cases = setup.Split.Val.Count, input_channels = setup.InputChannels,
                num_classes = setup.NumClasses, patch_size = setup.Configuration.PatchSize, initial_patch_size = setup.Geometry.InitialPatchSize,
                batch_size = setup.Configuration.BatchSize, batch_dice = setup.Configuration.BatchDice, parameters,
                previous_stage = setup.Cascade?.PreviousStage, previous_stage_predictions = setup.Cascade?.PredictionsFolder,
            }, IndentedJson.Options));
            return NnUnetApp.ExitOk;
        }
        Console.WriteLine($"dataset        {job.DatasetName}");
        Console.WriteLine($"configuration  {job.Configuration}, fold {job.FoldName}: {setup.Split.Train.Count} training / {setup.Split.Val.Count} validation cases");
        Console.WriteLine($"network        PlainConvUNet {setup.Configuration.Architecture.ArchKwargs.NStages} stages, {setup.InputChannels} input channel(s), {setup.NumClasses} classes");
        Console.WriteLine($"parameters     {parameters.ToString("N0", CultureInfo.InvariantCulture)}");
        Console.WriteLine($"patch          [{string.Join(", ", setup.Configuration.PatchSize)}] (loaded [{string.Join(", ", setup.Geometry.InitialPatchSize)}]), batch {setup.Configuration.BatchSize}, batch dice {setup.Configuration.BatchDice}");
        if (setup.Cascade is { } cascade)
            Console.WriteLine($"cascade        + one-hot of the {cascade.PreviousStage} predictions ({cascade.ForegroundLabels.Length} channel(s)) from {cascade.PredictionsFolder}");
        Console.WriteLine($"output         {job.FoldOutputFolder}");
        return NnUnetApp.ExitOk;
    }

    /// <summary>Prints the log lines (nnU-Net style) above a progress bar of the epochs; silent without a bar (--json).</summary>
    private sealed class ConsoleSink(IAnsiConsole console, ProgressTask? bar) : ITrainingProgressSink
    {
        private readonly string _name = bar?.Description.Split(':')[0] ?? "";

        public void OnEpochCompleted(EpochProgress p)
        {
            if (bar is null) return;
            bar.Value = p.Epoch + 1;
            bar.Description = $"{_name}: epoch {p.Epoch + 1}/{p.TotalEpochs}, EMA pseudo-Dice {p.EmaPseudoDice.ToString("F4", CultureInfo.InvariantCulture)}, ETA {p.EstimatedTimeLeft:hh\\:mm\\:ss}";
            // a log or pipe gets no live bar (only occasional snapshots of it): one line per epoch there instead
            if (!console.Profile.Capabilities.Interactive) console.WriteLine(bar.Description);
        }

        public void OnMessage(string line)
        {
            if (bar is not null) console.WriteLine(line);
        }
    }
}
