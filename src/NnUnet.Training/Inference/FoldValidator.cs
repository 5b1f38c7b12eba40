using NnUnet.Core.Evaluation;
using NnUnet.Core.Imaging.Nifti;
using NnUnet.Core.Preprocessing;
using NnUnet.Training.Trainer;
using TorchSharp;
using static TorchSharp.torch;
using NnUnet.Core.Results;

namespace NnUnet.Training.Inference;

/// <summary>
/// nnU-Net's <c>perform_actual_validation</c>: each validation case of the fold is loaded from the preprocessed folder,
/// predicted with the sliding window (step 0.5, Gaussian weighting, mirror test-time augmentation), exported to
/// <c>fold_F/validation/CASE{file_ending}</c> (+ <c>CASE.npz</c> probabilities) in the raw geometry and, for a
/// configuration with next stages (3d_lowres), resampled to each next stage's preprocessed shape into
/// <c>predicted_next_stage/NEXT/CASE.npy</c> (skipped, as nnU-Net, where the next stage is not preprocessed). Finally the folder is evaluated against
/// <c>nnUNet_preprocessed/DatasetXXX/gt_segmentations</c> into <c>validation/summary.json</c>.
/// A cascade configuration gets the previous stage's prediction as one-hot input channels, as in training.
/// </summary>
public sealed class FoldValidator : IFoldValidator
{
    public const string GroundTruthFolderName = DatasetPreprocessor.GroundTruthFolderName;

    public Task ValidateAsync(string foldDirectory, torch.nn.Module network, FoldValidationContext context,
        IReadOnlyList<string> validationCaseIds, CancellationToken ct) =>
        Task.Run(() => Validate(foldDirectory, network, context, validationCaseIds, ct), ct);

    /// <summary>Synchronous <see cref="ValidateAsync"/>; returns the summary it wrote to <c>validation/summary.json</c>.</summary>
    public static EvaluationSummary Validate(string foldDirectory, torch.nn.Module network, FoldValidationContext context,
        IReadOnlyList<string> validationCaseIds, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(network);
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(validationCaseIds);
        var configuration = context.Plans.GetConfiguration(context.ConfigurationName);
        string preprocessedFolder = Path.Combine(context.PreprocessedDatasetFolder, configuration.DataIdentifier);
        string validationFolder = ResultLayout.ValidationFolder(foldDirectory);
        Directory.CreateDirectory(validationFolder);

        var exporter = new PredictionExporter(context.Plans, configuration, context.Dataset);
        var predictor = new SlidingWindowPredictor(network, configuration.PatchSize, exporter.NumOutputChannels,
            context.MirrorAxes, context.Device);
        int[] foregroundLabels = NextStagePredictions.ForegroundLabels(context.Dataset);
        bool cascade = configuration.PreviousStage is not null;
        if (cascade && context.PreviousStagePredictionsFolder is null)
            throw new ArgumentException($"configuration {context.ConfigurationName} is a cascade stage: the previous stage's predictions folder is needed");

        var nextStages = configuration.NextStage ?? [];
        var nextStageFolders = new (string Folder, string PreprocessedFolder)[nextStages.Length];
        for (int i = 0; i < nextStages.Length; i++)
        {
            var next = context.Plans.GetConfiguration(nextStages[i]);
            nextStageFolders[i] = (NextStagePredictions.FolderFor(foldDirectory, nextStages[i]),
                Path.Combine(context.PreprocessedDatasetFolder, next.DataIdentifier));
        }

        if (validationCaseIds.Count == 0) throw new ArgumentException($"{foldDirectory}: the fold has no validation cases");
        string referenceFolder = Path.Combine(context.PreprocessedDatasetFolder, GroundTruthFolderName);
        var evaluated = new List<LabeledCase>(validationCaseIds.Count);
        foreach (string caseId in validationCaseIds)
        {
            ct.ThrowIfCancellationRequested();
            using var scope = torch.NewDisposeScope();
            var preprocessed = PreprocessedStore.Load(preprocessedFolder, caseId);
            var input = torch.tensor(preprocessed.Data, [preprocessed.Channels, .. preprocessed.Shape.Select(s => (long)s)]);
            if (cascade)
            {
                var previous = NextStagePredictions.Load(context.PreviousStagePredictionsFolder!, caseId, out var previousShape);
                if (!previousShape.AsSpan().SequenceEqual(preprocessed.Shape))
                    throw new InvalidDataException($"case {caseId}: previous stage prediction ({string.Join(", ", previousShape)}) does not match the preprocessed shape ({string.Join(", ", preprocessed.Shape)})");
                input = torch.cat([input, OneHot(previous, preprocessed.Shape, foregroundLabels)], 0);
            }
            var logits = predictor.PredictLogits(input, ct);
            string outputTruncated = Path.Combine(validationFolder, caseId);
            var prediction = exporter.Export(logits, preprocessed.Properties, outputTruncated, context.SaveProbabilities);
            evaluated.Add(ReferenceAndPrediction(referenceFolder, caseId, outputTruncated + context.Dataset.FileEnding, prediction, context));
            for (int i = 0; i < nextStages.Length; i++)
            {
                // as nnU-Net: without the next stage's preprocessed case there is no target shape; skip the export (the
                // cascade then refuses to start, naming the missing prediction)
                string nextData = PreprocessedStore.DataPath(nextStageFolders[i].PreprocessedFolder, caseId);
                if (!File.Exists(nextData)) continue;
                var header = NpyFile.ReadHeader(nextData);
                int[] target = [header.Shape[1], header.Shape[2], header.Shape[3]];
                var labels = exporter.ResampleSegmentationToShape(logits, target, preprocessed.Properties);
                NextStagePredictions.Save(nextStageFolders[i].Folder, caseId, labels, target);
            }
            context.CaseValidated?.Invoke(evaluated.Count, validationCaseIds.Count);
        }

        // nnU-Net's compute_metrics_on_folder over the validation cases (only those: stale files in the folder do not count)
        var summary = SegmentationEvaluator.EvaluateCases(evaluated, LabelOrRegion.ForDataset(context.Dataset), context.Dataset.IgnoreLabel);
        summary.Save(Path.Combine(validationFolder, EvaluationSummary.FileName)); // temp file + rename
        return summary;
    }

    private static LabeledCase ReferenceAndPrediction(string referenceFolder, string caseId, string predictionFile,
        ExportedPrediction prediction, FoldValidationContext context)
    {
        string referenceFile = Path.Combine(referenceFolder, caseId + context.Dataset.FileEnding);
        if (!File.Exists(referenceFile))
            throw new FileNotFoundException($"case {caseId}: reference segmentation {referenceFile} is missing (preprocessing copies it there)", referenceFile);
        var reference = LabelVolume.FromImage(NiftiReader.Read(referenceFile), referenceFile);
        var predicted = LabelVolume.FromImage(prediction.Segmentation, predictionFile);
        if (!reference.SameShape(predicted))
            throw new InvalidDataException($"case {caseId}: prediction shape ({string.Join(", ", predicted.Shape)}) differs from the reference {referenceFile} ({string.Join(", ", reference.Shape)})");
        return new LabeledCase(referenceFile, predictionFile, reference, predicted);
    }

    /// <summary>One float channel per foreground label of a (z, y, x) label map (the same encoding as training's
    /// <see cref="Augmentation.CascadeAugmentation.OneHot"/>).</summary>
    public static Tensor OneHot(byte[] labels, int[] shape, IReadOnlyList<int> foregroundLabels)
    {
        // (1, z, y, x): OneHot drops exactly that leading axis, also for a single-slice volume
        using var map = torch.tensor(labels, [1, shape[0], shape[1], shape[2]]);
        return Augmentation.CascadeAugmentation.OneHot(map, foregroundLabels, ScalarType.Float32);
    }
}
