using Spectre.Console.Cli;

namespace NnUnet.Cli;

/// <summary>Every verb of the <c>nnunet</c> command, one line each; the commands live in Commands/.</summary>
internal static class CommandRegistry
{
    public static void Register(IConfigurator config)
    {
        // verbs are added here
        config.AddCommand<Commands.Selection.FindBestCommand>("find-best").WithDescription("choose the best configuration or pair ensemble on cross-validation Dice and its postprocessing, as nnU-Net's find_best_configuration");
    }
}
