using NnUnet.Cli.Commands.Imaging;
using Spectre.Console.Cli;

namespace NnUnet.Cli;

/// <summary>Every verb of the <c>nnunet</c> command, one line each; the commands live in Commands/.</summary>
internal static class CommandRegistry
{
    public static void Register(IConfigurator config)
    {
        // verbs are added here
        config.AddCommand<Commands.Datasets.VerifyCommand>("verify").WithDescription("check a raw dataset and list every problem (writes nothing)");
        config.AddCommand<Commands.Datasets.FingerprintCommand>("fingerprint").WithDescription("extract the dataset fingerprint into nnUNet_preprocessed");
        config.AddCommand<Commands.Datasets.SplitsCommand>("splits").WithDescription("create or check the 5-fold cross-validation splits (splits_final.json)");
        config.AddCommand<Commands.Datasets.ConvertMsdCommand>("convert-msd").WithDescription("convert a Medical Segmentation Decathlon task to an nnU-Net v2 dataset");
        config.AddBranch("image", image => { image.SetDescription("Medical image files (NIfTI)"); image.AddCommand<ImageInfoCommand>("info").WithDescription("Shape, dtype, geometry (LPS and RAS affine) and intensity summary of a NIfTI file"); });
        config.AddCommand<Commands.Preprocessing.PreprocessCommand>("preprocess").WithDescription("crop, normalise and resample every training case for the chosen configurations, as nnUNetv2_preprocess (resumable)");
        config.AddCommand<Commands.Planning.PlanCommand>("plan").WithDescription("plan the configurations (patch, network, batch) from a dataset fingerprint, as nnU-Net's ExperimentPlanner");
        config.AddCommand<Commands.Training.TrainCommand>("train").WithDescription("train one fold of a configuration (nnUNetTrainer: checkpoints, progress.png, exact --continue), then validate it");
        config.AddCommand<Commands.Cluster.SweepVerb>("sweep").WithDescription("train every configuration x fold and the final stages on an embedded cluster (resumable)");
        config.AddCommand<Commands.Cluster.CoordinatorVerb>("coordinator").WithDescription("host a sweep's coordinator for workers on other nodes");
        config.AddCommand<Commands.Cluster.WorkerVerb>("worker").WithDescription("join a cluster and train jobs on this node's GPUs (or CPUs)");
        config.AddCommand<Commands.Cluster.SweepStatusVerb>("sweep-status").WithDescription("print the grid of the sweep a cluster is running");
        config.AddCommand<Commands.Cluster.SweepControlVerb>("sweep-control").WithDescription("pause or resume the sweep, retry or cancel a job, release a quarantined worker");
        config.AddCommand<Commands.Selection.FindBestCommand>("find-best").WithDescription("choose the best configuration or pair ensemble on cross-validation Dice and its postprocessing, as nnU-Net's find_best_configuration");
        config.AddCommand<Commands.Prediction.PredictCommand>("predict").WithDescription("segment a folder of raw cases with a trained configuration or the find-best winner (folds averaged, mirroring, cascade, ensemble, postprocessing), as nnUNetv2_predict");
        config.AddCommand<Commands.Prediction.ExportNnUnetCommand>("export-nnunet").WithDescription("write nnU-Net v2's trained-model folder (plans, dataset, fingerprint, fold_N/checkpoint_final.pth) for one of ours");
        config.AddCommand<Commands.Demo.DemoCommand>("demo").WithDescription("generate a synthetic dataset and run the whole pipeline embedded on CPU: verify, fingerprint, plan, preprocess, 5-fold sweep, selection, prediction (resumable)");
    }
}
