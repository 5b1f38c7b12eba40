using NnUnet.Core.Datasets;
using NnUnet.Core.Ensembling;
using NnUnet.Core.Evaluation;
using NnUnet.Core.Imaging;
using NnUnet.Core.Imaging.Nifti;
using NnUnet.Core.Postprocessing;
using NnUnet.Core.Preprocessing;
using NnUnet.Core.Selection;
using NnUnet.Training.Devices;
using TorchSharp;
using static TorchSharp.torch;
using NnUnet.Core.IO;
using NnUnet.Core.Results;
using System.Globalization;

namespace NnUnet.Training.Inference;

/// <summary>What to predict with: one configuration (<see cref="Configuration"/>) or the winner of find-best (<see cref="UseBest"/>).</summary>
public sealed record PredictionOptions
{
    /// <summary>Dataset id, name or folder (resolved against nnUNet_results / nnUNet_raw like the other verbs).</summary>
    /// <summary>Dataset id or name; unused with <see cref="ModelFolder"/>.</summary>
    public string Dataset { get; init; } = "";
    /// <summary>nnU-Net's <c>-m</c> (<c>nnUNetv2_predict_from_modelfolder</c>): a trained-model folder, ours or nnU-Net v2's, instead of dataset + configuration.</summary>
    public string? ModelFolder { get; init; }
    /// <summary>nnU-Net's <c>-chk</c>: the checkpoint file of each fold (default checkpoint_final, .ckpt or .pth).</summary>
    public string CheckpointName { get; init; } = ResultLayout.CheckpointFinal;
    /// <summary>nnU-Net's <c>--disable_tta</c>: no mirroring.</summary>
    public bool DisableTta { get; init; }
    /// <summary>Configuration to use (2d, 3d_fullres, 3d_lowres, 3d_cascade_fullres); null with <see cref="UseBest"/>.</summary>
    public string? Configuration { get; init; }
    /// <summary>Use <c>best_configuration.json</c>: its model or pair ensemble, its folds and its postprocessing.</summary>
    public bool UseBest { get; init; }
    /// <summary>Folds to average; null: those of best_configuration.json, else 0..4 (as nnUNetv2_predict).</summary>
    public IReadOnlyList<int>? Folds { get; init; }
    public string Trainer { get; init; } = "nnUNetTrainer";
    public string Plans { get; init; } = "nnUNetPlans";
    /// <summary>"auto", "cpu", "cuda" or "cuda:N".</summary>
    public string Device { get; init; } = "auto";
    /// <summary>Also write <c>CASE.npz</c> (softmax probabilities, raw array order) and <c>CASE.pkl.json</c>.</summary>
    public bool SaveProbabilities { get; init; }
    /// <summary>A postprocessing.json to apply instead of the one found with the model.</summary>
    public string? PostprocessingFile { get; init; }
    public bool DisablePostprocessing { get; init; }
    /// <summary>Called after every case with its result, the number of cases done and the case count (from a pipeline
    /// thread, one call at a time).</summary>
    public Action<CasePredictionResult, int, int>? OnCaseDone { get; init; }
    /// <summary>Called when a case starts (is read) with its id, position and the case count (one call at a time).</summary>
    public Action<string, int, int>? OnCaseStart { get; init; }
    /// <summary>Overlap of reading/preprocessing, device and export across cases; <see cref="PipelineOptions.Sequential"/> for one at a time.</summary>
    public PipelineOptions Pipeline { get; init; } = PipelineOptions.Default;
    /// <summary>Logit precision (float16, as nnU-Net), device memory budget with host fallback, export chunks.</summary>
    public InferenceMemoryOptions Memory { get; init; } = InferenceMemoryOptions.Default;
    /// <summary>
    /// Resumable output (cluster prediction): a case whose receipt (<see cref="PredictionRecords"/>) says it was
    /// written completely for this model is not predicted again, and every case written gets its receipt.
    /// </summary>
    public bool Resume { get; init; }
    /// <summary>Only the cases of shard <see cref="Shard"/> of <see cref="Shards"/> (<see cref="PredictionRecords.InShard"/>); 0 shards: every case.</summary>
    public int Shard { get; init; }
    public int Shards { get; init; }
    /// <summary>When every case of the input is complete, write <c>prediction_manifest.json</c> (<see cref="PredictionManifest"/>) last (the merge step).</summary>
    public bool WriteManifest { get; init; }
    /// <summary>Who predicts (recorded in the receipts), e.g. the cluster worker's id.</summary>
    public string? Worker { get; init; }
}

/// <summary>One input case: its segmentation file on success, else the error naming what went wrong.</summary>
public sealed record CasePredictionResult(string CaseId, string? OutputFile, string? Error)
{
    public bool Succeeded => Error is null;
    /// <summary>Something the user should know about a written case (its logits fell back to host memory).</summary>
    public string? Note { get; init; }
    /// <summary>Written completely by an earlier run for the same model (<see cref="PredictionOptions.Resume"/>): not predicted again.</summary>
    public bool Reused { get; init; }
}

/// <summary>Outcome of <see cref="Predictor.PredictFolder"/>.</summary>
public sealed record PredictionRun(string Model, IReadOnlyList<string> ModelFolders, IReadOnlyList<int> Folds,
    string? PostprocessingSource, IReadOnlyList<string> PostprocessingSteps, IReadOnlyList<CasePredictionResult> Cases)
{
    public int Failed => Cases.Count(c => !c.Succeeded);
    public int Reused => Cases.Count(c => c.Reused);
    /// <summary>Identity of the model and settings the cases were written with (<see cref="Predictor.ModelKey"/>).</summary>
    public string ModelKey { get; init; } = "";
}

/// <summary>
/// nnU-Net's <c>nnUNetv2_predict</c> for a folder of raw cases (<c>CASE_XXXX.nii.gz</c>, one file per channel): each
/// case is preprocessed like the training data, predicted by the sliding window (mirroring, folds averaged), exported
/// back to the input's geometry, postprocessed and written as <c>CASE{file_ending}</c>. A pair ensemble averages the two
/// configurations' softmax probabilities in raw geometry (<see cref="ProbabilityEnsembler"/>) before the argmax, as
/// <c>nnUNetv2_ensemble</c>. A case that fails is reported and the others go on.
/// <para>Differences from nnU-Net, on purpose: the cascade's previous stage is run in the same call (nnU-Net needs a
/// separate 3d_lowres run and <c>-prev_stage_predictions</c>), and postprocessing is applied here (nnU-Net:
/// a separate <c>nnUNetv2_apply_postprocessing</c>), both so that one verb produces the final segmentation.</para>
/// </summary>
public static class Predictor
{
    public static readonly IReadOnlyList<int> DefaultFolds = [0, 1, 2, 3, 4];

    public static PredictionRun PredictFolder(NnUnetPaths paths, string inputFolder, string outputFolder, PredictionOptions options,
        CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(paths);
        ArgumentNullException.ThrowIfNull(options);
        if (!Directory.Exists(inputFolder)) throw new DirectoryNotFoundException($"input folder {inputFolder} does not exist");
        string modelName;
        IReadOnlyList<string> modelFolders;
        IReadOnlyList<int> folds;
        string? defaultPostprocessing;
        if (options.ModelFolder is { } modelFolder)
        {
            if (options.UseBest || options.Configuration is not null)
                throw new ArgumentException("a model folder (-m) excludes a configuration and 'best'");
            if (!Directory.Exists(modelFolder)) throw new DirectoryNotFoundException($"model folder {modelFolder} does not exist");
            // as nnU-Net's predictor with use_folds=None: every fold_N that holds the checkpoint
            folds = options.Folds ?? AvailableFolds(modelFolder, options.CheckpointName);
            modelName = Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(modelFolder)));
            modelFolders = [modelFolder];
            defaultPostprocessing = null; // nnU-Net's predictor applies none either; --postprocessing FILE adds one
        }
        else
        {
            if (options.UseBest == (options.Configuration is not null))
                throw new ArgumentException("give either a configuration or 'best' (best_configuration.json), not both or neither");
            string datasetName = DatasetLocator.ResolveName(options.Dataset, paths);
            string resultsFolder = paths.ResultsDatasetFolder(datasetName);
            if (!Directory.Exists(resultsFolder)) throw new DirectoryNotFoundException($"{resultsFolder} does not exist: no trained models for {datasetName}");
            (modelName, modelFolders, folds, defaultPostprocessing) = ChooseModels(resultsFolder, options);
        }
        var (postprocessing, postprocessingSource) = LoadPostprocessing(options, defaultPostprocessing);
        var steps = new List<string>();
        foreach (var step in postprocessing.Steps) steps.Add(step.Description);
        // dataset.json of the first model names the channels and the file ending; the networks load only when a case needs them
        foreach (string folder in modelFolders)
            if (!Directory.Exists(folder)) throw new DirectoryNotFoundException($"model folder {folder} does not exist (train the configuration first)");
        var dataset = DatasetJson.Load(PredictorModel.ModelFiles(modelFolders[0]).Dataset);
        string modelKey = ModelKey(modelFolders, folds, options, postprocessingSource);
        Directory.CreateDirectory(outputFolder);
        var allCases = ListInputCases(inputFolder, dataset, out var invalid);
        var cases = allCases;
        if (options.Shards > 0)
        {
            if (options.Shard < 0 || options.Shard >= options.Shards) throw new ArgumentOutOfRangeException(nameof(options), $"shard {options.Shard} of {options.Shards}");
            cases = [];
            for (int i = 0; i < allCases.Count; i++)
                if (PredictionRecords.InShard(i, options.Shard, options.Shards)) cases.Add(allCases[i]);
            invalid = []; // misnamed files belong to no shard: the merge step reports them
        }
        // a resumed run skips what an earlier one wrote completely for this same model
        var reused = new Dictionary<string, CasePredictionResult>(StringComparer.Ordinal);
        var todo = new List<RawCase>(cases.Count);
        foreach (var rawCase in cases)
        {
            if (options.Resume && PredictionRecords.ValidReceipt(outputFolder, rawCase.Id, modelKey) is { } receipt)
                reused[rawCase.Id] = new CasePredictionResult(rawCase.Id, Path.Combine(outputFolder, receipt.Files[0].Name), null) { Reused = true };
            else todo.Add(rawCase);
        }
        int total = cases.Count + invalid.Count;
        int done = 0;
        foreach (var r in invalid) options.OnCaseDone?.Invoke(r, ++done, total);
        foreach (var rawCase in cases)
            if (reused.TryGetValue(rawCase.Id, out var r)) options.OnCaseDone?.Invoke(r, ++done, total);
        var predicted = todo.Count == 0 ? [] : PredictCases(todo, modelFolders, folds, postprocessing, outputFolder, options, modelKey,
            i => options.OnCaseStart?.Invoke(todo[i].Id, done + i, total), result => options.OnCaseDone?.Invoke(result, ++done, total), ct);
        var byId = new Dictionary<string, CasePredictionResult>(reused, StringComparer.Ordinal);
        foreach (var r in predicted) byId[r.CaseId] = r;
        var results = new List<CasePredictionResult>(total);
        results.AddRange(invalid);
        foreach (var rawCase in cases) results.Add(byId[rawCase.Id]);
        var run = new PredictionRun(modelName, modelFolders, folds, postprocessingSource, steps, results) { ModelKey = modelKey };
        if (options.WriteManifest && run.Failed == 0) WriteManifest(run, inputFolder, outputFolder);
        return run;
    }

    /// <summary>Loads the models and runs the case pipeline over <paramref name="cases"/>; results in case order.</summary>
    private static IReadOnlyList<CasePredictionResult> PredictCases(List<RawCase> cases, IReadOnlyList<string> modelFolders, IReadOnlyList<int> folds,
        PostprocessingPlan postprocessing, string outputFolder, PredictionOptions options, string modelKey,
        Action<int> onStart, Action<CasePredictionResult> onDone, CancellationToken ct)
    {
        var device = TorchDevices.Resolve(options.Device);
        var models = new List<PredictorModel>(modelFolders.Count);
        try
        {
            foreach (string folder in modelFolders) models.Add(PredictorModel.Load(folder, folds, device,
                new ModelLoadOptions { CheckpointName = options.CheckpointName, DisableTta = options.DisableTta, Memory = options.Memory }));
            for (int m = 1; m < models.Count; m++)
                if (models[m].Exporter.NumOutputChannels != models[0].Exporter.NumOutputChannels)
                    throw new InvalidDataException($"ensemble members {modelFolders[0]} and {modelFolders[m]} predict different numbers of classes");
            var caseIds = new List<string>(cases.Count);
            foreach (var rawCase in cases) caseIds.Add(rawCase.Id);
            var stages = new CaseStages<PreparedCase, PredictedCase>(
                (i, _) => PrepareCase(cases[i], models),
                (i, prepared, token) => InferCase(prepared, models, token),
                (i, predicted, _) =>
                {
                    var written = ExportCase(predicted, models, postprocessing, outputFolder, options.SaveProbabilities);
                    // the receipt comes after every file of the case is in place: only then is the case complete
                    if (options.Resume)
                        PredictionRecords.WriteReceipt(outputFolder, new CaseReceipt(predicted.CaseId, modelKey,
                            PredictionRecords.Describe(written.Files), DateTime.UtcNow, options.Worker));
                    return (written.Files[0], written.Note);
                });
            return CasePipeline.Run(caseIds, options.Pipeline, stages, onStart, (_, result) => onDone(result), ct);
        }
        finally
        {
            foreach (var model in models) model.Dispose();
        }
    }

    /// <summary>
    /// Identity of what writes the cases: the model folders with their plans, dataset.json and each fold's checkpoint
    /// (size and write time), the folds, the postprocessing file's content and the settings that change the output. A
    /// case written by another model (retrained, other folds) is not taken as done when a prediction resumes.
    /// </summary>
    public static string ModelKey(IReadOnlyList<string> modelFolders, IReadOnlyList<int> folds, PredictionOptions options, string? postprocessingFile)
    {
        var text = new System.Text.StringBuilder();
        static void Stamp(System.Text.StringBuilder text, string file)
        {
            var info = new FileInfo(file);
            if (info.Exists) text.Append(CultureInfo.InvariantCulture, $"{info.FullName}:{info.Length}:{info.LastWriteTimeUtc.Ticks};");
        }
        foreach (string folder in modelFolders)
        {
            Stamp(text, Path.Combine(folder, ResultLayout.PlansFile));
            Stamp(text, Path.Combine(folder, DatasetJson.FileName));
            foreach (int fold in folds)
            {
                string foldFolder = ResultLayout.FoldFolder(folder, fold);
                if (Path.HasExtension(options.CheckpointName)) Stamp(text, Path.Combine(foldFolder, options.CheckpointName));
                else
                {
                    Stamp(text, Path.Combine(foldFolder, options.CheckpointName + Trainer.Checkpoint.Extension));
                    Stamp(text, Path.Combine(foldFolder, options.CheckpointName + Interop.NnUnetCheckpoint.Extension));
                }
            }
        }
        text.Append(CultureInfo.InvariantCulture, $"folds={string.Join(',', folds)};tta={!options.DisableTta};probabilities={options.SaveProbabilities};");
        text.Append(CultureInfo.InvariantCulture, $"precision={options.Memory.Precision};postprocessing=");
        if (postprocessingFile is not null && File.Exists(postprocessingFile)) text.Append(File.ReadAllText(postprocessingFile));
        return Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(text.ToString())));
    }

    /// <summary>
    /// The merge step: every case of the input must have a valid receipt now (the shards wrote them; a case that has
    /// none was not written completely and fails the merge, naming it); then <c>prediction_manifest.json</c>, last.
    /// </summary>
    private static void WriteManifest(PredictionRun run, string inputFolder, string outputFolder)
    {
        var outputs = new List<(string CaseId, string OutputFile)>();
        var missing = new List<string>();
        foreach (var c in run.Cases)
        {
            if (PredictionRecords.ValidReceipt(outputFolder, c.CaseId, run.ModelKey) is { } receipt) outputs.Add((c.CaseId, Path.Combine(outputFolder, receipt.Files[0].Name)));
            else missing.Add(c.CaseId);
        }
        if (missing.Count > 0)
            throw new InvalidDataException($"{outputFolder}: {missing.Count} case(s) not written completely, no manifest written: {string.Join(", ", missing)}");
        PredictionManifest.Write(outputFolder, inputFolder, outputs, run.ModelKey);
    }

    /// <summary>Folds <c>fold_N</c> of <paramref name="modelFolder"/> holding the checkpoint (ours or nnU-Net's), ascending.</summary>
    public static IReadOnlyList<int> AvailableFolds(string modelFolder, string checkpointName)
    {
        var folds = new List<int>();
        foreach (string dir in Directory.EnumerateDirectories(modelFolder, "fold_*"))
        {
            if (!int.TryParse(Path.GetFileName(dir)["fold_".Length..], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int fold)) continue;
            bool present = Path.HasExtension(checkpointName)
                ? File.Exists(Path.Combine(dir, checkpointName))
                : File.Exists(Path.Combine(dir, checkpointName + Trainer.Checkpoint.Extension)) || File.Exists(Path.Combine(dir, checkpointName + Interop.NnUnetCheckpoint.Extension));
            if (present) folds.Add(fold);
        }
        if (folds.Count == 0) throw new FileNotFoundException($"{modelFolder}: no fold_N folder holds {checkpointName} (.ckpt or .pth)");
        folds.Sort();
        return folds;
    }

    private static (string Name, IReadOnlyList<string> Folders, IReadOnlyList<int> Folds, string? Postprocessing) ChooseModels(
        string resultsFolder, PredictionOptions options)
    {
        string bestPath = ResultLayout.BestConfigurationJson(resultsFolder);
        if (options.UseBest)
        {
            var best = BestConfiguration.Load(bestPath);
            var folders = new List<string>();
            foreach (string configuration in best.Best.Configurations)
                folders.Add(Path.Combine(resultsFolder, ResultLayout.ModelFolderName(best.Trainer, best.Plans, configuration)));
            return (best.Best.Name, folders, options.Folds ?? best.Folds, best.PostprocessingFile);
        }
        string folder = Path.Combine(resultsFolder, ResultLayout.ModelFolderName(options.Trainer, options.Plans, options.Configuration!));
        var folds = options.Folds ?? DefaultFolds;
        // the postprocessing find-best determined for this very model, else none
        string? postprocessing = null;
        if (File.Exists(bestPath))
        {
            var best = BestConfiguration.Load(bestPath);
            if (!best.IsEnsemble && best.Trainer == options.Trainer && best.Plans == options.Plans && best.Best.Configurations.Count == 1
                && best.Best.Configurations[0] == options.Configuration)
                postprocessing = best.PostprocessingFile;
        }
        if (postprocessing is null)
        {
            string crossval = Path.Combine(ResultLayout.CrossValidationFolder(folder, folds), PostprocessingDecision.FileName);
            if (File.Exists(crossval)) postprocessing = crossval;
        }
        return (Path.GetFileName(folder), [folder], folds, postprocessing);
    }

    private static (PostprocessingPlan Plan, string? Source) LoadPostprocessing(PredictionOptions options, string? found)
    {
        if (options.DisablePostprocessing) return (new PostprocessingPlan([]), null);
        string? path = options.PostprocessingFile ?? found;
        if (path is null) return (new PostprocessingPlan([]), null);
        if (!File.Exists(path))
            throw new FileNotFoundException($"postprocessing file {path} does not exist (rerun find-best, or pass --disable-postprocessing)", path);
        return (PostprocessingPlan.Load(path), path);
    }

    /// <summary>
    /// Groups <c>CASE_XXXX{file_ending}</c> files into cases with channels 0..n-1 (n from dataset.json); files with the
    /// ending but another name pattern, and cases with missing or extra channels, come back as failed entries.
    /// </summary>
    public static List<RawCase> ListInputCases(string inputFolder, DatasetJson dataset, out List<CasePredictionResult> invalid)
    {
        invalid = [];
        var channels = new SortedDictionary<string, SortedDictionary<int, string>>(StringComparer.Ordinal);
        foreach (string name in RawDataset.VisibleFileNames(inputFolder))
        {
            if (!name.EndsWith(dataset.FileEnding, StringComparison.Ordinal)) continue;
            if (!RawDataset.TryParseImageFileName(name, dataset.FileEnding, out string caseId, out int channel))
            {
                string stem = name[..^dataset.FileEnding.Length];
                invalid.Add(new CasePredictionResult(stem, null, $"{Path.Combine(inputFolder, name)}: not named CASE_XXXX{dataset.FileEnding} (XXXX: the 4-digit channel)"));
                continue;
            }
            if (!channels.TryGetValue(caseId, out var files)) channels[caseId] = files = new SortedDictionary<int, string>();
            files[channel] = Path.Combine(inputFolder, name);
        }
        var cases = new List<RawCase>(channels.Count);
        foreach (var (caseId, files) in channels)
        {
            var ordered = new List<string>(files.Count);
            string? problem = null;
            for (int c = 0; c < dataset.NumChannels; c++)
            {
                if (files.TryGetValue(c, out var file)) ordered.Add(file);
                else problem ??= $"case {caseId}: channel file {RawDataset.ImageFileName(caseId, c, dataset.FileEnding)} is missing in {inputFolder} (the dataset has {dataset.NumChannels} channel(s))";
            }
            if (problem is null && files.Count != dataset.NumChannels)
                problem = $"case {caseId}: {files.Count} channel files in {inputFolder}, the dataset has {dataset.NumChannels} channel(s)";
            if (problem is null) cases.Add(new RawCase(caseId, ordered, null));
            else invalid.Add(new CasePredictionResult(caseId, null, problem));
        }
        if (cases.Count == 0 && invalid.Count == 0)
            throw new InvalidDataException($"{inputFolder}: no input images (CASE_XXXX{dataset.FileEnding})");
        return cases;
    }

    /// <summary>A case read and preprocessed for every model (CPU only).</summary>
    private sealed record PreparedCase(string CaseId, PreparedInput[] Inputs);

    /// <summary>Every model's logits of a case in host memory, owned here until the export has run.</summary>
    private sealed class PredictedCase(string caseId, Tensor[] logits, CaseProperties[] properties, string? note) : IDisposable
    {
        public string CaseId { get; } = caseId;
        public Tensor[] Logits { get; } = logits;
        public CaseProperties[] Properties { get; } = properties;
        public string? Note { get; } = note;

        public void Dispose()
        {
            foreach (var tensor in Logits) tensor?.Dispose();
        }
    }

    private static PreparedCase PrepareCase(RawCase rawCase, IReadOnlyList<PredictorModel> models)
    {
        var image = RawCaseReader.ReadImages(rawCase);
        var inputs = new PreparedInput[models.Count];
        for (int m = 0; m < models.Count; m++) inputs[m] = models[m].Prepare(rawCase.Id, image);
        return new PreparedCase(rawCase.Id, inputs);
    }

    /// <summary>The device's part: every model's sliding window; the logits move to host memory so that the device is free for the next case.</summary>
    private static PredictedCase InferCase(PreparedCase prepared, IReadOnlyList<PredictorModel> models, CancellationToken ct)
    {
        var logits = new Tensor[models.Count];
        var properties = new CaseProperties[models.Count];
        string? note = null;
        try
        {
            for (int m = 0; m < models.Count; m++)
            {
                using var scope = torch.NewDisposeScope();
                var (modelLogits, caseProperties) = models[m].PredictLogits(prepared.Inputs[m], ct);
                logits[m] = modelLogits.to(torch.CPU).DetachFromDisposeScope();
                properties[m] = caseProperties;
                if (models[m].LastAccumulation is { FellBackToHost: true, Reason: var reason })
                    note = $"{models[m].ConfigurationName}: logits accumulated in host memory ({reason})";
            }
            return new PredictedCase(prepared.CaseId, logits, properties, note);
        }
        catch
        {
            foreach (var tensor in logits) tensor?.Dispose();
            throw;
        }
    }

    /// <summary>Export (averaging probabilities for several models), postprocessing and the NIfTI write of one predicted case.</summary>
    private static (string[] Files, string? Note) ExportCase(PredictedCase predicted, IReadOnlyList<PredictorModel> models, PostprocessingPlan postprocessing,
        string outputFolder, bool saveProbabilities)
    {
        string caseId = predicted.CaseId;
        var first = models[0];
        string outputTruncated = Path.Combine(outputFolder, caseId);
        MedicalImage segmentation;
        CaseProperties properties = predicted.Properties[0];
        ProbabilityMap? probabilities = null;
        int[] raw = properties.ShapeBeforeCropping;
        if (models.Count == 1)
        {
            var exported = first.Exporter.Convert(predicted.Logits[0], properties, saveProbabilities, caseId);
            segmentation = exported.Segmentation;
            if (saveProbabilities)
                probabilities = new ProbabilityMap(exported.ProbabilityChannels, raw[0], raw[1], raw[2], exported.Probabilities!);
        }
        else
        {
            var members = new List<ProbabilityMap>(models.Count);
            for (int m = 0; m < models.Count; m++)
            {
                var exported = models[m].Exporter.Convert(predicted.Logits[m], predicted.Properties[m], withProbabilities: true, caseId);
                members.Add(new ProbabilityMap(exported.ProbabilityChannels, raw[0], raw[1], raw[2], exported.Probabilities!));
            }
            probabilities = ProbabilityEnsembler.Average(members, caseId);
            var labels = ProbabilityEnsembler.ToSegmentation(probabilities, SegmentationHeads.ForDataset(first.Dataset));
            segmentation = labels.ToImage(first.Exporter.SegmentationType, properties.Geometry);
        }

        if (!postprocessing.IsEmpty)
        {
            var labels = LabelVolume.FromImage(segmentation, outputTruncated + first.Dataset.FileEnding);
            postprocessing.ApplyTo(labels);
            segmentation = labels.ToImage(first.Exporter.SegmentationType, segmentation.Geometry);
        }

        if (saveProbabilities)
        {
            probabilities!.Save(outputTruncated + PredictionExporter.ProbabilitiesSuffix);
            AtomicFile.Write(outputTruncated + PredictionExporter.PropertiesSuffix, path =>
                File.WriteAllBytes(path, System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(properties, PreprocessedStore.JsonOptions)));
        }
        string segmentationPath = outputTruncated + first.Dataset.FileEnding;
        if (!segmentationPath.EndsWith(".nii.gz", StringComparison.Ordinal) && !segmentationPath.EndsWith(".nii", StringComparison.Ordinal))
            throw new NotSupportedException($"dataset file ending '{first.Dataset.FileEnding}': only NIfTI (.nii.gz, .nii) is written");
        NiftiWriter.Write(segmentationPath, segmentation);
        return (saveProbabilities
            ? [segmentationPath, outputTruncated + PredictionExporter.ProbabilitiesSuffix, outputTruncated + PredictionExporter.PropertiesSuffix]
            : [segmentationPath], predicted.Note);
    }
}
