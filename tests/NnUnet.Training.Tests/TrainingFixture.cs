using System.Text.Json;
using NnUnet.Core.Datasets;
using NnUnet.Core.Fingerprinting;
using NnUnet.Core.Planning;
using NnUnet.Core.Preprocessing;
using NnUnet.Training.Trainer;

namespace NnUnet.Training.Tests;

/// <summary>A throw-away nnUNet_preprocessed / nnUNet_results tree with synthetic cases and a small plan.</summary>
internal sealed class TrainingFixture : IDisposable
{
    public const string DatasetName = "Dataset999_Synthetic";
    public string Root { get; }
    public string Preprocessed => Path.Combine(Root, "preprocessed");
    public string Results => Path.Combine(Root, "results");

    public TrainingFixture()
    {
        Root = Path.Combine(Path.GetTempPath(), "nnunet-training-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Root);
    }

    /// <summary>Writes plans (one configuration), dataset.json and the cases.</summary>
    public void Write(string configuration, ArchitectureKwargs arch, int[] patch, int batchSize, IReadOnlyList<PreprocessedCase> cases, bool batchDice = false)
    {
        string datasetFolder = Path.Combine(Preprocessed, DatasetName);
        string identifier = "nnUNetPlans_" + configuration;
        var config = new PlansConfiguration
        {
            DataIdentifier = identifier, BatchSize = batchSize, PatchSize = patch,
            MedianImageSizeInVoxels = cases[0].Shape.Select(v => (double)v).ToArray(), Spacing = [3, 1, 1],
            NormalizationSchemes = ["ZScoreNormalization"], UseMaskForNorm = [false],
            Architecture = new ArchitectureSpec { ArchKwargs = arch }, BatchDice = batchDice,
        };
        var plans = new NnUnetPlans
        {
            DatasetName = DatasetName, OriginalMedianSpacingAfterTransp = [3, 1, 1], OriginalMedianShapeAfterTransp = cases[0].Shape,
            TransposeForward = [0, 1, 2], TransposeBackward = [0, 1, 2],
            Configurations = new() { [configuration] = JsonSerializer.SerializeToNode(config, NnUnetPlans.JsonOptions)!.AsObject() },
            ForegroundIntensityPropertiesPerChannel = new() { ["0"] = new IntensityProperties(1, 1, 1, -3, 5, 4, -2) },
        };
        Directory.CreateDirectory(datasetFolder);
        File.WriteAllText(Path.Combine(datasetFolder, "nnUNetPlans.json"), plans.ToJson());
        DatasetJson.Create(["MR"], [new DatasetLabel("background", [0]), new DatasetLabel("a", [1]), new DatasetLabel("b", [2])], cases.Count, ".nii.gz")
            .Save(Path.Combine(datasetFolder, DatasetJson.FileName));
        string data = Path.Combine(datasetFolder, identifier);
        Directory.CreateDirectory(data);
        foreach (var c in cases) PreprocessedStore.Save(data, c);
    }

    public TrainingJob Job(string configuration, int epochs, int iters, int valIters, long seed = 42, int fold = 0) => new()
    {
        PreprocessedRoot = Preprocessed, ResultsRoot = Results, DatasetName = DatasetName, Configuration = configuration, Fold = fold,
        Epochs = epochs, ItersPerEpoch = iters, ValIters = valIters, Device = "cpu", Seed = seed, LoaderQueueCapacity = 2,
    };

    public void Dispose()
    {
        try { Directory.Delete(Root, recursive: true); } catch (IOException) { }
    }
}

/// <summary>Collects progress events; optionally cancels at a given point.</summary>
internal sealed class RecordingSink(CancellationTokenSource? cancel = null, int cancelAfterEpoch = -1, (int epoch, int iteration)? cancelAtIteration = null) : ITrainingProgressSink
{
    public List<EpochProgress> Epochs { get; } = [];
    public List<string> Messages { get; } = [];

    public void OnEpochCompleted(EpochProgress progress)
    {
        Epochs.Add(progress);
        if (progress.Epoch == cancelAfterEpoch) cancel?.Cancel();
    }

    public void OnMessage(string line) => Messages.Add(line);

    public void OnIteration(int epoch, int iteration, int iterationsPerEpoch)
    {
        if (cancelAtIteration is { } at && at.epoch == epoch && at.iteration == iteration) cancel?.Cancel();
    }
}
