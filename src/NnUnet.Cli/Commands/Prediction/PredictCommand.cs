using System.ComponentModel;
using System.Globalization;
using NnUnet.Core.Datasets;
using NnUnet.Training.Inference;
using NnUnet.Cli.Commands.Datasets;
using Spectre.Console;
using Spectre.Console.Cli;

namespace NnUnet.Cli.Commands.Prediction;

/// <summary>
/// <c>nnunet predict -i INPUT -o OUTPUT -d DATASET (-c CONFIG | --best) [--folds ...]</c>: nnUNetv2_predict over a folder
/// of raw cases with the trained folds (or the find-best winner), postprocessing included. A thin wrapper over
/// <see cref="Predictor.PredictFolder"/>; exit 1 when some case failed (each is named on stderr).
/// </summary>
public sealed class PredictCommand : Command<PredictCommand.Settings>
{
    public sealed class Settings : Cluster.ClusterAdmissionSettings
    {
        [CommandOption("-i|--input <FOLDER>")]
        [Description("folder of raw cases CASE_XXXX.nii.gz (XXXX: channel, as imagesTs)")]
        public string Input { get; init; } = "";

        [CommandOption("-o|--output <FOLDER>")]
        [Description("folder for the segmentations CASE.nii.gz (created)")]
        public string Output { get; init; } = "";

        [CommandOption("-d|--dataset <DATASET>")]
        [Description("dataset id (4 or 004) or name (Dataset004_Hippocampus)")]
        public string Dataset { get; init; } = "";

        [CommandOption("-m|--model-folder <FOLDER>")]
        [Description("a trained-model folder, ours or nnU-Net v2's (plans.json, dataset.json, fold_N/checkpoint_final.ckpt|.pth), instead of -d/-c, as nnUNetv2_predict_from_modelfolder")]
        public string? ModelFolder { get; init; }

        [CommandOption("--checkpoint <NAME>")]
        [Description("checkpoint file of each fold (default checkpoint_final: .ckpt, else .pth); nnU-Net's spelling -chk works too")]
        [DefaultValue("checkpoint_final")]
        public string Checkpoint { get; init; } = "checkpoint_final";

        [CommandOption("--disable-tta")]
        [Description("no mirroring at test time (faster, slightly worse), as nnU-Net's --disable_tta")]
        public bool DisableTta { get; init; }

        [CommandOption("-c|--configuration <CONFIG>")]
        [Description("configuration: 2d, 3d_fullres, 3d_lowres or 3d_cascade_fullres (the cascade runs its 3d_lowres stage first)")]
        public string? Configuration { get; init; }

        [CommandOption("--best")]
        [Description("use best_configuration.json (nnunet find-best): its model or pair ensemble, folds and postprocessing")]
        public bool Best { get; init; }

        [CommandOption("-f|--folds <FOLDS>")]
        [Description("folds to average (repeat or comma-separate; default: best_configuration.json's, else 0,1,2,3,4)")]
        public string[]? Folds { get; init; }

        [CommandOption("--device <DEVICE>")]
        [Description("auto, cpu, cuda or cuda:N (default auto)")]
        [DefaultValue("auto")]
        public string Device { get; init; } = "auto";

        [CommandOption("--save-probabilities")]
        [Description("also write CASE.npz (softmax probabilities) and CASE.pkl.json, for ensembling")]
        public bool SaveProbabilities { get; init; }

        [CommandOption("-p|--plans <NAME>")]
        [Description("plans identifier (default nnUNetPlans)")]
        [DefaultValue("nnUNetPlans")]
        public string Plans { get; init; } = "nnUNetPlans";

        [CommandOption("--trainer <NAME>")]
        [Description("trainer name in the model folder names (default nnUNetTrainer)")]
        [DefaultValue("nnUNetTrainer")]
        public string Trainer { get; init; } = "nnUNetTrainer";

        [CommandOption("--postprocessing <FILE>")]
        [Description("postprocessing.json to apply instead of the one find-best chose")]
        public string? PostprocessingFile { get; init; }

        [CommandOption("--disable-postprocessing")]
        [Description("write the raw argmax, no postprocessing")]
        public bool DisablePostprocessing { get; init; }

        [CommandOption("--results <FOLDER>")]
        [Description("nnUNet_results folder (default: the nnUNet_results environment variable)")]
        public string? Results { get; init; }

        [CommandOption("--raw <FOLDER>")]
        [Description("nnUNet_raw folder, to resolve a dataset id (default: the nnUNet_raw environment variable)")]
        public string? Raw { get; init; }

        [CommandOption("--preprocessed <FOLDER>")]
        [Description("nnUNet_preprocessed folder, to resolve a dataset id (default: the nnUNet_preprocessed environment variable)")]
        public string? Preprocessed { get; init; }

        [CommandOption("--preprocess-workers <N>")]
        [Description("threads reading and preprocessing the next cases while the device predicts (nnU-Net -npp; default 2; 0: one case at a time, no overlap)")]
        [DefaultValue(2)]
        public int PreprocessWorkers { get; init; } = 2;

        [CommandOption("--export-workers <N>")]
        [Description("threads exporting finished cases (resampling, argmax, postprocessing, write) while the device predicts (nnU-Net -nps; default 2)")]
        [DefaultValue(2)]
        public int ExportWorkers { get; init; } = 2;

        [CommandOption("--device-memory <GB>")]
        [Description("device memory the sliding window's logits may take; larger volumes accumulate in host memory (default: try the device, fall back when it runs out)")]
        public double? DeviceMemoryGb { get; init; }

        [CommandOption("--cluster <SEED>")]
        [Description("send the prediction to a running cluster (`nnunet coordinator ... --stay` with workers) at this seed address: free workers predict shards of the cases; progress is printed; exit 0 when every case is written and the manifest exists. The same command again resumes. Folders must be on storage every node mounts at the same path")]
        public string[]? Cluster { get; init; }

        [CommandOption("--shards <N>")]
        [Description("with --cluster: split the cases into N shard jobs (default: one per worker registered at submission)")]
        public int? Shards { get; init; }

        [CommandOption("--host <HOST>")]
        [Description("with --cluster: address other nodes reach this client node at")]
        [DefaultValue("127.0.0.1")]
        public string Host { get; init; } = "127.0.0.1";

        [CommandOption("--float32-logits")]
        [Description("accumulate logits in float32 (default float16, as nnU-Net: half the memory)")]
        public bool Float32Logits { get; init; }

        internal IReadOnlyList<int>? FoldList
        {
            get
            {
                if (Folds is null || Folds.Length == 0) return null;
                var folds = new List<int>();
                foreach (string value in Folds)
                foreach (string part in value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
                {
                    if (!int.TryParse(part, NumberStyles.None, CultureInfo.InvariantCulture, out int fold))
                        throw new ArgumentException($"--folds: '{part}' is not a non-negative integer");
                    folds.Add(fold);
                }
                return folds;
            }
        }

        public override ValidationResult Validate()
        {
            if (string.IsNullOrWhiteSpace(Input)) return ValidationResult.Error("give the input folder with -i");
            if (string.IsNullOrWhiteSpace(Output)) return ValidationResult.Error("give the output folder with -o");
            if (ModelFolder is not null)
            {
                if (Best || Configuration is not null || !string.IsNullOrWhiteSpace(Dataset))
                    return ValidationResult.Error("-m MODEL_FOLDER replaces -d/-c/--best: give one or the other");
            }
            else
            {
                if (string.IsNullOrWhiteSpace(Dataset)) return ValidationResult.Error("give the dataset with -d (or a model folder with -m)");
                if (Best == (Configuration is not null)) return ValidationResult.Error("give either -c CONFIG or --best");
            }
            if (DisablePostprocessing && PostprocessingFile is not null) return ValidationResult.Error("--postprocessing and --disable-postprocessing exclude each other");
            if (PreprocessWorkers < 0) return ValidationResult.Error($"--preprocess-workers must be 0 or more, got {PreprocessWorkers}");
            if (ExportWorkers < 1 && PreprocessWorkers > 0) return ValidationResult.Error($"--export-workers must be 1 or more, got {ExportWorkers}");
            if (Shards is < 1) return ValidationResult.Error($"--shards must be 1 or more, got {Shards}");
            if (Shards is not null && Cluster is null) return ValidationResult.Error("--shards splits a --cluster prediction; give --cluster SEED");
            if (DeviceMemoryGb is <= 0) return ValidationResult.Error($"--device-memory must be a positive number of GB, got {DeviceMemoryGb}");
            try
            {
                if (FoldList is { } folds && folds.Distinct().Count() != folds.Count)
                    return ValidationResult.Error($"--folds lists a fold twice: {string.Join(",", folds)}");
            }
            catch (ArgumentException ex) { return ValidationResult.Error(ex.Message); }
            if (Path.GetFullPath(Input).TrimEnd(Path.DirectorySeparatorChar) == Path.GetFullPath(Output).TrimEnd(Path.DirectorySeparatorChar))
                return ValidationResult.Error("the output folder must differ from the input folder");
            return ValidationResult.Success();
        }
    }

    public override int Execute(CommandContext context, Settings settings, CancellationToken cancellationToken)
    {
        if (settings.Cluster is { Length: > 0 }) return ClusterPrediction.RunAsync(settings, cancellationToken).GetAwaiter().GetResult();
        var paths = NnUnetPaths.FromEnvironment(settings.Raw, settings.Preprocessed, settings.Results);
        var options = new PredictionOptions
        {
            Dataset = settings.Dataset,
            ModelFolder = settings.ModelFolder,
            CheckpointName = settings.Checkpoint,
            DisableTta = settings.DisableTta,
            Configuration = settings.Configuration,
            UseBest = settings.Best,
            Folds = settings.FoldList,
            Trainer = settings.Trainer,
            Plans = settings.Plans,
            Device = settings.Device,
            SaveProbabilities = settings.SaveProbabilities,
            PostprocessingFile = settings.PostprocessingFile,
            DisablePostprocessing = settings.DisablePostprocessing,
            Pipeline = settings.PreprocessWorkers == 0
                ? PipelineOptions.Sequential
                : new PipelineOptions { PreprocessWorkers = settings.PreprocessWorkers, ExportWorkers = settings.ExportWorkers },
            Memory = new InferenceMemoryOptions
            {
                Precision = settings.Float32Logits ? LogitsPrecision.Float32 : LogitsPrecision.Half,
                DeviceMemoryBudgetBytes = settings.DeviceMemoryGb is { } gb ? (long)(gb * 1e9) : null,
            },
        };
        // a console on the current Console.Out (the static AnsiConsole.Console keeps the writer it first saw)
        var console = CommandConsole.Create();
        PredictionRun run = null!;
        console.Progress()
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
            .Start(progress =>
            {
                var task = progress.AddTask("loading the model", maxValue: 1);
                run = Predictor.PredictFolder(paths, settings.Input, settings.Output, options with
                {
                    OnCaseStart = (caseId, index, total) =>
                    {
                        task.MaxValue = total;
                        task.Description = $"predicting {Markup.Escape(caseId)} ({index + 1}/{total})";
                    },
                    OnCaseDone = (result, done, total) =>
                    {
                        task.MaxValue = total;
                        task.Value = done;
                        if (!result.Succeeded) Console.Error.WriteLine($"case {result.CaseId} failed: {result.Error}");
                        else if (result.Note is not null) Console.Error.WriteLine($"case {result.CaseId}: {result.Note}");
                    },
                }, cancellationToken);
                task.Description = "done";
            });

        // plain lines (not markup): no wrapping of long paths, easy to parse
        var stdout = Console.Out;
        stdout.WriteLine($"model: {run.Model}, folds {string.Join(", ", run.Folds)}");
        stdout.WriteLine(run.PostprocessingSource is null
            ? "postprocessing: none"
            : $"postprocessing: {(run.PostprocessingSteps.Count == 0 ? "none accepted" : string.Join("; ", run.PostprocessingSteps))} ({run.PostprocessingSource})");
        int failed = run.Failed;
        stdout.WriteLine($"{run.Cases.Count - failed} of {run.Cases.Count} cases written to {Path.GetFullPath(settings.Output)}");
        if (failed == 0) return NnUnetApp.ExitOk;
        var names = new List<string>();
        foreach (var c in run.Cases) if (!c.Succeeded) names.Add(c.CaseId);
        Console.Error.WriteLine($"{failed} case(s) failed: {string.Join(", ", names)}");
        return NnUnetApp.ExitProblems;
    }
}
