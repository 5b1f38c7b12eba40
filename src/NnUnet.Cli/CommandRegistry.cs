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
        config.AddCommand<Commands.Preprocessing.PreprocessCommand>("preprocess").WithDescription("crop, normalise and resample every training case for the chosen configurations, as nnUNetv2_preprocess (resumable)");
        config.AddCommand<Commands.Planning.PlanCommand>("plan").WithDescription("plan the configurations (patch, network, batch) from a dataset fingerprint, as nnU-Net's ExperimentPlanner");
        config.AddCommand<Commands.Training.TrainCommand>("train").WithDescription("train one fold of a configuration (nnUNetTrainer: checkpoints, progress.png, exact --continue), then validate it");
        config.AddCommand<Commands.Cluster.SweepVerb>("sweep").WithDescription("train every configuration x fold and the final stages on an embedded cluster (resumable)");
        config.AddCommand<Commands.Cluster.CoordinatorVerb>("coordinator").WithDescription("host a sweep's coordinator for workers on other nodes");
        config.AddCommand<Commands.Cluster.WorkerVerb>("worker").WithDescription("join a cluster and train jobs on this node's GPUs (or CPUs)");
        config.AddCommand<Commands.Cluster.SweepStatusVerb>("sweep-status").WithDescription("print the grid of the sweep a cluster is running");
        config.AddCommand<Commands.Selection.FindBestCommand>("find-best").WithDescription("choose the best configuration or pair ensemble on cross-validation Dice and its postprocessing, as nnU-Net's find_best_configuration");
    }
}
