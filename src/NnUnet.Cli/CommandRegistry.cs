using NnUnet.Cli.Commands.Imaging;
using Spectre.Console.Cli;

namespace NnUnet.Cli;

/// <summary>Every verb of the <c>nnunet</c> command, one line each; the commands live in Commands/.</summary>
internal static class CommandRegistry
{
    public static void Register(IConfigurator config)
    {
        // verbs are added here
        config.AddBranch("image", image => { image.SetDescription("Medical image files (NIfTI)"); image.AddCommand<ImageInfoCommand>("info").WithDescription("Shape, dtype, geometry (LPS and RAS affine) and intensity summary of a NIfTI file"); });
        config.AddCommand<Commands.Planning.PlanCommand>("plan").WithDescription("plan the configurations (patch, network, batch) from a dataset fingerprint, as nnU-Net's ExperimentPlanner");
    }
}
