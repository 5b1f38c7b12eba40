using NnUnet.Core.Datasets;
using NnUnet.Core.Planning;
using TorchSharp;

namespace NnUnet.Training.Trainer;

/// <summary>
/// Validation of a trained fold (nnU-Net's <c>perform_actual_validation</c>): predicts every validation case, exports
/// the segmentations (and probabilities) into <c>fold_F/validation/</c>, writes <c>validation/summary.json</c> and,
/// for a configuration with a next stage (3d_lowres), the next stage's inputs.
/// </summary>
public interface IFoldValidator
{
    /// <param name="foldDirectory"><c>nnUNet_results/DatasetXXX/TRAINER__PLANS__CONFIG/fold_F</c>.</param>
    /// <param name="network">The trained network (its weights as they are now); it is put in eval mode.</param>
    /// <param name="context">Plans, configuration, dataset and folders of the run.</param>
    /// <param name="validationCaseIds">The fold's validation cases (splits_final.json).</param>
    Task ValidateAsync(string foldDirectory, torch.nn.Module network, FoldValidationContext context,
        IReadOnlyList<string> validationCaseIds, CancellationToken ct);
}

/// <summary>What validation needs to know about the run besides the network.</summary>
/// <param name="Plans">The plans the network was trained with.</param>
/// <param name="ConfigurationName">2d, 3d_fullres, 3d_lowres or 3d_cascade_fullres.</param>
/// <param name="Dataset">dataset.json (labels, regions, file ending).</param>
/// <param name="PreprocessedDatasetFolder"><c>nnUNet_preprocessed/DatasetXXX</c>: holds the configuration's
/// <c>data_identifier</c> folder and <c>gt_segmentations/</c>.</param>
/// <param name="MirrorAxes">Axes mirrored for test-time augmentation (nnU-Net: all axes of the patch); empty for none.</param>
/// <param name="Device">Device of the network.</param>
/// <param name="PreviousStagePredictionsFolder">For a cascade configuration: the folder holding the previous stage's
/// predictions for it (<c>.../TRAINER__PLANS__3d_lowres/predicted_next_stage/3d_cascade_fullres</c>).</param>
/// <param name="SaveProbabilities">Write <c>CASE.npz</c> softmax probabilities (needed for ensembling).</param>
/// <param name="CaseValidated">Called after each case is predicted and exported (done, total): progress of a phase that
/// may last hours on large 3D datasets, so that a cluster worker does not look hung.</param>
public sealed record FoldValidationContext(
    NnUnetPlans Plans,
    string ConfigurationName,
    DatasetJson Dataset,
    string PreprocessedDatasetFolder,
    int[] MirrorAxes,
    torch.Device Device,
    string? PreviousStagePredictionsFolder = null,
    bool SaveProbabilities = true,
    Action<int, int>? CaseValidated = null);
