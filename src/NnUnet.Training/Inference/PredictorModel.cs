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
        List<PlainConvUNet> networks, int[] mirrorAxes, Device device, PredictorModel? previousStage)
    {
        Folder = folder;
        ConfigurationName = configurationName;
        Plans = plans;
        Configuration = configuration;
        Dataset = dataset;
        _networks = networks;
        PreviousStage = previousStage;
        Exporter = new PredictionExporter(plans, configuration, dataset);
        _predictor = new SlidingWindowPredictor(networks.Cast<nn.Module>().ToList(), configuration.PatchSize, Exporter.NumOutputChannels, mirrorAxes, device);
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
        string plansPath = Path.Combine(modelFolder, ResultLayout.PlansFile);
        string datasetPath = Path.Combine(modelFolder, DatasetJson.FileName);
        if (!File.Exists(plansPath)) throw new FileNotFoundException($"{plansPath} is missing (the trainer copies the plans into the model folder)", plansPath);
        if (!File.Exists(datasetPath)) throw new FileNotFoundException($"{datasetPath} is missing (the trainer copies dataset.json into the model folder)", datasetPath);
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
            return new PredictorModel(modelFolder, configurationName, plans, configuration, dataset, networks, options.DisableTta ? [] : mirrorAxes!, device, previous);
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

    /// <summary>Logits (k, *preprocessed shape) of the folds' average for a raw image, and the case's properties.</summary>
    public (Tensor Logits, CaseProperties Properties) PredictLogits(string caseId, MedicalImage image, CancellationToken ct)
    {
        MedicalImage? previousSegmentation = null;
        if (PreviousStage is not null)
        {
            using var previousScope = torch.NewDisposeScope();
            var (previousLogits, previousProperties) = PreviousStage.PredictLogits(caseId, image, ct);
            previousSegmentation = PreviousStage.Exporter.Convert(previousLogits, previousProperties, withProbabilities: false, caseId).Segmentation;
        }
        var preprocessed = _preprocessor.Run(caseId, image, previousSegmentation);
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
}
