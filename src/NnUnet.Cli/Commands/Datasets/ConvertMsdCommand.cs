using System.ComponentModel;
using NnUnet.Core.Datasets;
using Spectre.Console;
using Spectre.Console.Cli;

namespace NnUnet.Cli.Commands.Datasets;

/// <summary><c>nnunet convert-msd TASK_FOLDER</c>: Medical Segmentation Decathlon task -> nnUNet_raw/DatasetNNN_Name.</summary>
public sealed class ConvertMsdCommand : Command<ConvertMsdCommand.Settings>
{
    public sealed class Settings : RootsSettings
    {
        [CommandArgument(0, "<TASK_FOLDER>")]
        [Description("extracted MSD task folder, e.g. ~/Downloads/Task04_Hippocampus")]
        public string TaskFolder { get; init; } = "";

        [CommandOption("--id <N>")]
        [Description("dataset id of the result (default: the task number)")]
        public int? Id { get; init; }

        [CommandOption("-j|--np <N>")]
        [Description("files converted in parallel (default: number of CPU cores)")]
        public int? Processes { get; init; }

        public override ValidationResult Validate() =>
            Id is < 0 or > 9999 ? ValidationResult.Error("--id must be in 0..9999")
            : Processes is <= 0 ? ValidationResult.Error("--np must be at least 1")
            : base.Validate();
    }

    public override int Execute(CommandContext context, Settings settings, CancellationToken cancellationToken)
    {
        var console = CommandConsole.Create();
        var paths = settings.Paths();
        int parallelism = settings.Processes ?? Environment.ProcessorCount;
        MsdConversionResult? result = null;
        console.Progress().AutoClear(true).Start(progress =>
        {
            var task = progress.AddTask($"converting {Path.GetFileName(Path.TrimEndingDirectorySeparator(settings.TaskFolder))}");
            task.IsIndeterminate = true;
            result = MsdConverter.Convert(settings.TaskFolder, paths, settings.Id, parallelism, () => task.Increment(1), cancellationToken);
        });
        console.MarkupLineInterpolated($"wrote {result!.TargetFolder}: {result.TrainingCases} training and {result.TestCases} test cases, {result.Channels} channel(s)");
        return NnUnetApp.ExitOk;
    }
}
