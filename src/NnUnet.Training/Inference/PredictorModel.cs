using NnUnet.Core.Datasets;
using NnUnet.Core.Imaging;
using NnUnet.Core.Planning;
using NnUnet.Core.Preprocessing;
using NnUnet.Training.Interop;
using NnUnet.Training.Network;
using TorchSharp;
using NnUnet.Core.Results;
using static TorchSharp.torch;

namespace NnUnet.Training.Inference;

/// <summary>
/// One trained configuration ready to predict raw cases: its folds' networks (averaged in the sliding window), the
/// preprocessor and exporter of its plans and, for a cascade stage, the previous stage's model (run first on the same
/// case; its raw-geometry prediction is preprocessed like a segmentation and appended as one-hot channels, as nnU-Net's
/// <c>predict_from_raw_data</c> does with <c>prev_stage_predictions</c>).
/// </summary>
public sealed class PredictorModel : IDisposable
{
    private readonly List<PlainConvUNet> _networks;
    private readonly SlidingWindowPredictor _predictor;
    private readonly DefaultPreprocessor _preprocessor;
    private readonly int[] _foregroundLabels;

    private PredictorModel(string folder, string configurationName, NnUnetPlans plans, PlansConfiguration configuration, DatasetJson dataset,
        List<PlainConvUNet> networks, int[] mirrorAxes, Device device, PredictorModel? previousStage, InferenceMemoryOptions memory)
    {
        Folder = folder;
        ConfigurationName = configurationName;
        Plans = plans;
        Configuration = configuration;
        Dataset = dataset;
        _networks = networks;
        PreviousStage = previousStage;
        Exporter = new PredictionExporter(plans, configuration, dataset, memory);
        _predictor = new SlidingWindowPredictor(networks.Cast<nn.Module>().ToList(), configuration.PatchSize, Exporter.NumOutputChannels, mirrorAxes, device,
            memory: memory);
        _preprocessor = new DefaultPreprocessor(plans, configurationName, dataset);
        _foregroundLabels = NextStagePredictions.ForegroundLabels(dataset);
    }

    /// <summary>The model folder <c>TRAINER__PLANS__CONFIG</c>.</summary>
    public string Folder { get; }
    public string ConfigurationName { get; }
    public NnUnetPlans Plans { get; }
    public PlansConfiguration Configuration { get; }
    public DatasetJson Dataset { get; }
    public PredictionExporter Exporter { get; }
    public PredictorModel? PreviousStage { get; }
    public int FoldCount => _networks.Count;

    /// <summary>Where the last sliding window of this configuration accumulated its logits.</summary>
    public LogitsAccumulation? LastAccumulation => _predictor.LastAccumulation;

    /// <summary>A model folder's plans.json and dataset.json; a clear error naming the one that is missing.</summary>
    public static (string Plans, string Dataset) ModelFiles(string modelFolder)
    {
        string plansPath = Path.Combine(modelFolder, ResultLayout.PlansFile);
        string datasetPath = Path.Combine(modelFolder, DatasetJson.FileName);
        if (!File.Exists(plansPath)) throw new FileNotFoundException($"{plansPath} is missing (the trainer copies the plans into the model folder)", plansPath);
        if (!File.Exists(datasetPath)) throw new FileNotFoundException($"{datasetPath} is missing (the trainer copies dataset.json into the model folder)", datasetPath);
        return (plansPath, datasetPath);
    }

    /// <summary>
    /// Loads <c>fold_F/checkpoint_final</c> of every fold in <paramref name="modelFolder"/> with the folder's plans.json
    /// and dataset.json (the trainer copies both there): ours (<c>.ckpt</c>) or nnU-Net v2's (<c>.pth</c>, read safely,
    /// names mapped; see docs/inference.md), whichever the fold holds. The configuration is the folder name's
    /// (<c>TRAINER__PLANS__CONFIG</c>) or, for a folder named otherwise, the checkpoint's. A cascade stage loads its
    /// previous stage from the sibling folder <c>TRAINER__PLANS__PREVIOUS</c> with the same folds.
    /// </summary>
    public static PredictorModel Load(string modelFolder, IReadOnlyList<int> folds, Device device, ModelLoadOptions? options = null)
    {
        options ??= new ModelLoadOptions();
        if (!Directory.Exists(modelFolder)) throw new DirectoryNotFoundException($"model folder {modelFolder} does not exist (train the configuration first)");
        if (folds.Count == 0) throw new ArgumentException("no folds given");
        string folderName = Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(modelFolder)));
        bool named = ResultLayout.TryParseModelFolderName(folderName, out _, out _, out string folderConfiguration);
        var (plansPath, datasetPath) = ModelFiles(modelFolder);
        var plans = NnUnetPlans.Load(plansPath);
        var dataset = DatasetJson.Load(datasetPath);

        var loaded = new List<TrainedWeights>(folds.Count);
        var networks = new List<PlainConvUNet>(folds.Count);
        PredictorModel? previous = null;
        try
        {
            // a plans file of another network (ResEnc U-Net, ...) is named before any weight is read
            if (named) NnUnetCheckpoint.RequirePlainConvUNet(plans, folderConfiguration, plansPath);
            foreach (int fold in folds) loaded.Add(TrainedWeights.Load(CheckpointPath(modelFolder, fold, folderName, options.CheckpointName)));
            string configurationName = named ? folderConfiguration
                : loaded[0].Configuration ?? throw new InvalidDataException($"{loaded[0].Path}: the checkpoint names no configuration and {folderName} is not named TRAINER__PLANS__CONFIG");
            NnUnetCheckpoint.RequirePlainConvUNet(plans, configurationName, plansPath);
            var configuration = plans.GetConfiguration(configurationName);
            if (configuration.PreviousStage is { } previousName)
            {
                if (!named)
                    throw new ArgumentException($"{modelFolder}: a cascade stage is found beside its {previousName} model, so its folder must be named TRAINER__PLANS__{configurationName}");
                previous = Load(ResultLayout.SiblingModelFolder(modelFolder, previousName), folds, device, options);
            }
            int expectedChannels = dataset.NumChannels + (previous is null ? 0 : NextStagePredictions.ForegroundLabels(dataset).Length);

            int[]? mirrorAxes = null;
            foreach (var weights in loaded)
            {
                if (weights.Configuration is { } trained && trained != configurationName)
                    throw new InvalidDataException($"{weights.Path}: checkpoint of configuration '{trained}' in the folder of '{configurationName}'");
                if (mirrorAxes is not null && !mirrorAxes.AsSpan().SequenceEqual(weights.MirrorAxes))
                    throw new InvalidDataException($"{weights.Path}: mirror axes ({string.Join(", ", weights.MirrorAxes)}) differ from the other folds' ({string.Join(", ", mirrorAxes)})");
                mirrorAxes = weights.MirrorAxes;
                if (weights.InputChannels != expectedChannels)
                    throw new InvalidDataException($"{weights.Path}: the network takes {weights.InputChannels} input channel(s), {configurationName} of {datasetPath} gives {expectedChannels}");
                var network = new PlainConvUNet(weights.Architecture ?? configuration.Architecture.ArchKwargs, weights.InputChannels, weights.NumClasses, deepSupervision: false);
                networks.Add(network);
                weights.LoadInto(network);
                network.to(device);
                network.eval();
            }
            // nnU-Net's --disable_tta: no mirroring at all
            return new PredictorModel(modelFolder, configurationName, plans, configuration, dataset, networks, options.DisableTta ? [] : mirrorAxes!, device, previous, options.Memory);
        }
        catch
        {
            foreach (var n in networks) n.Dispose();
            previous?.Dispose();
            throw;
        }
        finally
        {
            foreach (var w in loaded) w.Dispose();
        }
    }

    /// <summary>
    /// <c>fold_F/NAME</c>: NAME as given when it has an extension (<c>checkpoint_final.pth</c>), else NAME.ckpt (ours)
    /// or NAME.pth (nnU-Net's), whichever exists.
    /// </summary>
    public static string CheckpointPath(string modelFolder, int fold, string folderName, string checkpointName)
    {
        string foldFolder = ResultLayout.FoldFolder(modelFolder, fold);
        if (Path.HasExtension(checkpointName))
        {
            string exact = Path.Combine(foldFolder, checkpointName);
            return File.Exists(exact) ? exact : throw new FileNotFoundException($"{exact} is missing: fold {fold} of {folderName} has no {checkpointName}", exact);
        }
        string ours = ResultLayout.Checkpoint(foldFolder, checkpointName);
        string theirs = Path.Combine(foldFolder, checkpointName + NnUnetCheckpoint.Extension);
        if (File.Exists(ours)) return ours;
        if (File.Exists(theirs)) return theirs;
        throw new FileNotFoundException($"{ours} is missing (nor is there {Path.GetFileName(theirs)}): fold {fold} of {folderName} has not finished training", ours);
    }

    /// <summary>
    /// The case's input as far as it can be prepared without the device: this configuration's preprocessing, or for a
    /// cascade stage the previous stage's (this stage's preprocessing needs the previous stage's prediction; the raw
    /// image is kept for it). Thread-safe: the prediction pipeline prepares several cases at once.
    /// </summary>
    public PreparedInput Prepare(string caseId, MedicalImage image)
    {
        ArgumentNullException.ThrowIfNull(image);
        if (PreviousStage is not null) return new PreparedInput(caseId, image, null, PreviousStage.Prepare(caseId, image));
        return new PreparedInput(caseId, null, _preprocessor.Run(caseId, image, null), null);
    }

    /// <summary>Logits (k, *preprocessed shape) of the folds' average for a raw image, and the case's properties.</summary>
    public (Tensor Logits, CaseProperties Properties) PredictLogits(string caseId, MedicalImage image, CancellationToken ct) =>
        PredictLogits(Prepare(caseId, image), ct);

    /// <summary>
    /// Logits of a prepared case (in the accumulator precision, on the device or, after a fallback, in host memory) and
    /// its properties. A cascade stage first predicts its previous stage and preprocesses the case with that segmentation.
    /// </summary>
    public (Tensor Logits, CaseProperties Properties) PredictLogits(PreparedInput prepared, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(prepared);
        string caseId = prepared.CaseId;
        MedicalImage? previousSegmentation = null;
        PreprocessedCase preprocessed;
        if (PreviousStage is not null)
        {
            using (var previousScope = torch.NewDisposeScope())
            {
                var (previousLogits, previousProperties) = PreviousStage.PredictLogits(prepared.Previous!, ct);
                previousSegmentation = PreviousStage.Exporter.Convert(previousLogits, previousProperties, withProbabilities: false, caseId).Segmentation;
            }
            preprocessed = _preprocessor.Run(caseId, prepared.Image!, previousSegmentation);
        }
        else preprocessed = prepared.Preprocessed!;
        var input = torch.tensor(preprocessed.Data, [preprocessed.Channels, .. preprocessed.Shape.Select(s => (long)s)]);
        if (previousSegmentation is not null)
        {
            // nnU-Net's convert_labelmap_to_one_hot over the foreground labels; -1 (outside the nonzero crop) is no label
            var labels = new byte[preprocessed.Seg!.Length];
            var seg = preprocessed.Seg.AsSpan();
            for (int i = 0; i < labels.Length; i++) labels[i] = seg[i] > 0 ? (byte)seg[i] : (byte)0;
            input = torch.cat([input, FoldValidator.OneHot(labels, preprocessed.Shape, _foregroundLabels)], 0);
        }
        return (_predictor.PredictLogits(input, ct), preprocessed.Properties);
    }

    public void Dispose()
    {
        foreach (var network in _networks) network.Dispose();
        PreviousStage?.Dispose();
    }
}

/// <summary>How <see cref="PredictorModel.Load"/> picks checkpoints and test-time augmentation.</summary>
public sealed record ModelLoadOptions
{
    /// <summary>nnU-Net's <c>-chk</c>: the checkpoint file in each fold (extension optional: .ckpt, else .pth).</summary>
    public string CheckpointName { get; init; } = ResultLayout.CheckpointFinal;
    /// <summary>nnU-Net's <c>--disable_tta</c>: predict without mirroring.</summary>
    public bool DisableTta { get; init; }
    /// <summary>Logit precision, device budget and export chunks (float16, no budget by default).</summary>
    public InferenceMemoryOptions Memory { get; init; } = InferenceMemoryOptions.Default;
}


/// <summary>
/// A case prepared for one configuration: its preprocessed input, or for a cascade stage the raw image and the previous
/// stage's prepared input.
/// </summary>
public sealed record PreparedInput(string CaseId, MedicalImage? Image, PreprocessedCase? Preprocessed, PreparedInput? Previous);
