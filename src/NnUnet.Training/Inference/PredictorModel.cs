using NnUnet.Core.Datasets;
using NnUnet.Core.Imaging;
using NnUnet.Core.Planning;
using NnUnet.Core.Preprocessing;
using NnUnet.Training.Network;
using NnUnet.Training.Trainer;
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
    /// Loads <c>fold_F/checkpoint_final.ckpt</c> of every fold in <paramref name="modelFolder"/> with the folder's
    /// plans.json and dataset.json (the trainer copies both there); a cascade stage loads its previous stage from the
    /// sibling folder <c>TRAINER__PLANS__PREVIOUS</c> with the same folds.
    /// </summary>
    public static PredictorModel Load(string modelFolder, IReadOnlyList<int> folds, Device device)
    {
        if (!Directory.Exists(modelFolder)) throw new DirectoryNotFoundException($"model folder {modelFolder} does not exist (train the configuration first)");
        if (folds.Count == 0) throw new ArgumentException("no folds given");
        string folderName = Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(modelFolder)));
        if (!ResultLayout.TryParseModelFolderName(folderName, out _, out _, out string configurationName))
            throw new ArgumentException($"{modelFolder}: a model folder is named TRAINER__PLANS__CONFIG");
        string plansPath = Path.Combine(modelFolder, ResultLayout.PlansFile);
        string datasetPath = Path.Combine(modelFolder, DatasetJson.FileName);
        if (!File.Exists(plansPath)) throw new FileNotFoundException($"{plansPath} is missing (the trainer copies the plans into the model folder)", plansPath);
        if (!File.Exists(datasetPath)) throw new FileNotFoundException($"{datasetPath} is missing (the trainer copies dataset.json into the model folder)", datasetPath);
        var plans = NnUnetPlans.Load(plansPath);
        var dataset = DatasetJson.Load(datasetPath);
        var configuration = plans.GetConfiguration(configurationName);

        PredictorModel? previous = null;
        if (configuration.PreviousStage is { } previousName)
        {
            previous = Load(ResultLayout.SiblingModelFolder(modelFolder, previousName), folds, device);
        }

        var networks = new List<PlainConvUNet>(folds.Count);
        int[]? mirrorAxes = null;
        try
        {
            foreach (int fold in folds)
            {
                string path = ResultLayout.Checkpoint(ResultLayout.FoldFolder(modelFolder, fold), ResultLayout.CheckpointFinal);
                if (!File.Exists(path)) throw new FileNotFoundException($"{path} is missing: fold {fold} of {folderName} has not finished training", path);
                using var checkpoint = Checkpoint.Load(path);
                var meta = checkpoint.Metadata;
                if (meta.Configuration != configurationName)
                    throw new InvalidDataException($"{path}: checkpoint of configuration '{meta.Configuration}' in the folder of '{configurationName}'");
                if (mirrorAxes is not null && !mirrorAxes.AsSpan().SequenceEqual(meta.MirrorAxes))
                    throw new InvalidDataException($"{path}: mirror axes ({string.Join(", ", meta.MirrorAxes)}) differ from the other folds' ({string.Join(", ", mirrorAxes)})");
                mirrorAxes = meta.MirrorAxes;
                var network = new PlainConvUNet(meta.Architecture, meta.InputChannels, meta.NumClasses, deepSupervision: false);
                networks.Add(network);
                checkpoint.LoadWeightsInto(network);
                network.to(device);
                network.eval();
            }
            return new PredictorModel(modelFolder, configurationName, plans, configuration, dataset, networks, mirrorAxes!, device, previous);
        }
        catch
        {
            foreach (var n in networks) n.Dispose();
            previous?.Dispose();
            throw;
        }
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
