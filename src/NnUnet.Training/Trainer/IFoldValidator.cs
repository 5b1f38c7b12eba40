using NnUnet.Core.Planning;
using NnUnet.Training.Network;

namespace NnUnet.Training.Trainer;

/// <summary>
/// Validation after training (nnU-Net's perform_actual_validation): sliding-window prediction of each validation case,
/// export in the original geometry and <c>validation/summary.json</c> under <paramref name="foldOutputDirectory"/>.
/// Implemented by the predictor (<c>NnUnet.Training.Inference</c>); the trainer calls it after <c>checkpoint_final</c>
/// with the trained network (eval mode, on the training device). The trainer has copied <c>plans.json</c>,
/// <c>dataset.json</c> and <c>dataset_fingerprint.json</c> into the parent folder (<c>nnUNetTrainer__PLANS__CONFIG</c>),
/// as nnU-Net does.
/// </summary>
public interface IFoldValidator
{
    Task ValidateAsync(string foldOutputDirectory, PlainConvUNet network, PlansConfiguration plansConfiguration,
        IReadOnlyList<string> validationCaseIds, CancellationToken ct);
}
