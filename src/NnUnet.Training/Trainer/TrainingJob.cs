using NnUnet.Core.Results;

namespace NnUnet.Training.Trainer;

/// <summary>One fold of one configuration to train (what <c>nnunet train</c> and the cluster worker hand to <see cref="NnUnetTrainer"/>).</summary>
public sealed record TrainingJob
{
    public string? RawRoot { get; init; }
    public required string PreprocessedRoot { get; init; }
    public required string ResultsRoot { get; init; }
    /// <summary>Full dataset folder name, e.g. <c>Dataset004_Hippocampus</c>.</summary>
    public required string DatasetName { get; init; }
    public required string Configuration { get; init; }
    /// <summary>Fold index, or <see cref="AllFolds"/> to train and validate on every case (nnU-Net's fold "all").</summary>
    public required int Fold { get; init; }
    public string PlansName { get; init; } = "nnUNetPlans";
    public int Epochs { get; init; } = 1000;
    public int ItersPerEpoch { get; init; } = 250;
    public int ValIters { get; init; } = 50;
    /// <summary>"auto", "cpu", "cuda" or "cuda:N".</summary>
    public string Device { get; init; } = "auto";
    /// <summary>Seed of weights init and batch sampling; null draws one (recorded in the checkpoint, so resuming stays exact).</summary>
    public long? Seed { get; init; }
    public bool ContinueTraining { get; init; }
    public bool ValidationOnly { get; init; }
    /// <summary>nnU-Net's <c>-pretrained_weights</c>: a checkpoint (ours or nnU-Net's .pth) whose weights, all but the segmentation heads, start a new run.</summary>
    public string? PretrainedWeights { get; init; }
    /// <summary>Batches prepared ahead of the training step.</summary>
    public int LoaderQueueCapacity { get; init; } = 4;

    public const int AllFolds = ResultLayout.AllFolds;
    public const string TrainerName = "nnUNetTrainer";

    /// <summary>Trainer name in the results folder name (<c>TRAINER__PLANS__CONFIG</c>): nnUNetTrainer, or a variant name that keeps results apart (<c>--results-suffix</c>).</summary>
    public string Trainer { get; init; } = TrainerName;

    public string FoldName => ResultLayout.FoldName(Fold);

    /// <summary><c>RESULTS/DATASET/TRAINER__PLANS__CONFIG</c>, as nnU-Net.</summary>
    public string TrainerOutputFolder => ResultLayout.ModelFolder(ResultsRoot, DatasetName, Trainer, PlansName, Configuration);

    /// <summary><c>.../fold_F</c>.</summary>
    public string FoldOutputFolder => ResultLayout.FoldFolder(TrainerOutputFolder, Fold);

    public void Validate()
    {
        if (Epochs < 1) throw new ArgumentException($"--epochs must be >= 1, got {Epochs}");
        if (ItersPerEpoch < 1) throw new ArgumentException($"--iters-per-epoch must be >= 1, got {ItersPerEpoch}");
        if (ValIters < 1) throw new ArgumentException($"--val-iters must be >= 1, got {ValIters}");
        if (Fold < AllFolds) throw new ArgumentException($"fold must be >= 0 or 'all', got {Fold}");
        if (ContinueTraining && ValidationOnly) throw new ArgumentException("--continue and --validation-only exclude each other");
    }
}

public enum TrainingStatus { Completed, Cancelled, ValidatedOnly }

/// <summary>What a run ended with.</summary>
public sealed record TrainingOutcome(
    TrainingStatus Status,
    string OutputFolder,
    int EpochsCompleted,
    double? BestEmaPseudoDice,
    double? LastEmaPseudoDice,
    string? FinalCheckpoint,
    bool Validated);

/// <summary>Per-epoch progress, forwarded by the cluster worker (also the heartbeat).</summary>
public sealed record EpochProgress(
    int Epoch,
    int TotalEpochs,
    double TrainLoss,
    double ValLoss,
    double[] PseudoDicePerClass,
    double MeanForegroundPseudoDice,
    double EmaPseudoDice,
    bool NewBest,
    double LearningRate,
    double EpochSeconds,
    TimeSpan EstimatedTimeLeft);

/// <summary>Receives training progress. Called on the training thread: implementations must return quickly.</summary>
public interface ITrainingProgressSink
{
    void OnEpochCompleted(EpochProgress progress);
    /// <summary>A log line (also written to training_log.txt).</summary>
    void OnMessage(string line);
    /// <summary>After every training iteration (for progress bars); optional.</summary>
    void OnIteration(int epoch, int iteration, int iterationsPerEpoch) { }
}

/// <summary>A sink that drops everything.</summary>
public sealed class NullProgressSink : ITrainingProgressSink
{
    public static readonly NullProgressSink Instance = new();
    public void OnEpochCompleted(EpochProgress progress) { }
    public void OnMessage(string line) { }
}
