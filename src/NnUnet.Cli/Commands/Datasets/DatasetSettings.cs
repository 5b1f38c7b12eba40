using System.ComponentModel;
using NnUnet.Core.Datasets;
using Spectre.Console.Cli;

namespace NnUnet.Cli.Commands.Datasets;

/// <summary>Options shared by the dataset verbs: the nnU-Net roots (default: the environment variables).</summary>
public class RootsSettings : CommandSettings
{
    [CommandOption("--raw <FOLDER>")]
    [Description("nnUNet_raw folder (default: the nnUNet_raw environment variable)")]
    public string? Raw { get; init; }

    [CommandOption("--preprocessed <FOLDER>")]
    [Description("nnUNet_preprocessed folder (default: the nnUNet_preprocessed environment variable)")]
    public string? Preprocessed { get; init; }

    [CommandOption("--results <FOLDER>")]
    [Description("nnUNet_results folder (default: the nnUNet_results environment variable)")]
    public string? Results { get; init; }

    public NnUnetPaths Paths() => NnUnetPaths.FromEnvironment(Raw, Preprocessed, Results);
}

/// <summary>A verb that works on one dataset given by id, name or folder.</summary>
public class DatasetSettings : RootsSettings
{
    [CommandArgument(0, "<DATASET>")]
    [Description("dataset id (4 or 004), name (Dataset004_Hippocampus) or path to a dataset folder")]
    public string Dataset { get; init; } = "";

    [CommandOption("--json")]
    [Description("print the result as JSON (for scripts)")]
    public bool Json { get; init; }
}

/// <summary>A dataset verb that runs over cases in parallel.</summary>
public class ParallelDatasetSettings : DatasetSettings
{
    [CommandOption("-j|--np <N>")]
    [Description("cases processed in parallel (default: number of CPU cores)")]
    public int? Processes { get; init; }

    public int Parallelism => Processes is > 0 ? Processes.Value : Environment.ProcessorCount;

    public override Spectre.Console.ValidationResult Validate() =>
        Processes is <= 0 ? Spectre.Console.ValidationResult.Error("--np must be at least 1") : base.Validate();
}

/// <summary>A console bound to Console.Out at call time, so redirected output (tests, pipes, logs) gets the text.</summary>
internal static class CommandConsole
{
    public static Spectre.Console.IAnsiConsole Create()
    {
        var console = Spectre.Console.AnsiConsole.Create(new Spectre.Console.AnsiConsoleSettings { Out = new Spectre.Console.AnsiConsoleOutput(Console.Out) });
        // A log or pipe has no width: never wrap there, so every problem stays one greppable line.
        if (Console.IsOutputRedirected) console.Profile.Width = 4096;
        return console;
    }
}
