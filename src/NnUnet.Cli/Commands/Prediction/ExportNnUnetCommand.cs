using System.ComponentModel;
using NnUnet.Training.Interop;
using Spectre.Console.Cli;

namespace NnUnet.Cli.Commands.Prediction;

/// <summary>
/// <c>nnunet export-nnunet MODEL_FOLDER OUT</c>: writes nnU-Net v2's trained-model folder for one of ours (JSON files
/// copied, per fold <c>checkpoint_final.pth</c> in nnU-Net's checkpoint layout), for <c>nnUNetv2_predict_from_modelfolder</c>.
/// </summary>
public sealed class ExportNnUnetCommand : Command<ExportNnUnetCommand.Settings>
{
    public sealed class Settings : CommandSettings
    {
        [CommandArgument(0, "<MODEL_FOLDER>")]
        [Description("our trained-model folder, e.g. nnUNet_results/Dataset004_Hippocampus/nnUNetTrainer__nnUNetPlans__3d_fullres")]
        public string ModelFolder { get; init; } = "";

        [CommandArgument(1, "<OUT>")]
        [Description("folder to write nnU-Net's model folder into (created)")]
        public string Output { get; init; } = "";

        [CommandOption("--checkpoint <NAME>")]
        [Description("checkpoint of each fold to export (default checkpoint_final; the .pth keeps the name)")]
        [DefaultValue("checkpoint_final")]
        public string Checkpoint { get; init; } = "checkpoint_final";
    }

    public override int Execute(CommandContext context, Settings settings, CancellationToken cancellationToken)
    {
        var folds = NnUnetExport.ExportModelFolder(settings.ModelFolder, settings.Output, settings.Checkpoint);
        var stdout = Console.Out;
        foreach (var fold in folds) stdout.WriteLine($"fold {fold.Fold}: {fold.Checkpoint}");
        stdout.WriteLine($"nnU-Net v2 model folder written to {Path.GetFullPath(settings.Output)} ({folds.Count} fold(s)); predict with nnUNetv2_predict_from_modelfolder -m {Path.GetFullPath(settings.Output)}");
        return NnUnetApp.ExitOk;
    }
}
