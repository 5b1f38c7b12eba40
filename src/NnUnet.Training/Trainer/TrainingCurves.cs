using System.Text.Json.Serialization;

namespace NnUnet.Training.Trainer;

/// <summary>nnU-Net's logger: one value per finished epoch.</summary>
public sealed class TrainingCurves
{
    [JsonPropertyName("train_losses")] public List<double> TrainLosses { get; init; } = [];
    [JsonPropertyName("val_losses")] public List<double> ValLosses { get; init; } = [];
    /// <summary>Online pseudo-Dice per foreground class (NaN where the class was neither predicted nor present).</summary>
    [JsonPropertyName("dice_per_class_or_region")] public List<double[]> DicePerClass { get; init; } = [];
    [JsonPropertyName("mean_fg_dice")] public List<double> MeanForegroundDice { get; init; } = [];
    [JsonPropertyName("ema_fg_dice")] public List<double> EmaForegroundDice { get; init; } = [];
    [JsonPropertyName("lrs")] public List<double> LearningRates { get; init; } = [];
    [JsonPropertyName("epoch_seconds")] public List<double> EpochSeconds { get; init; } = [];

    public int Count => TrainLosses.Count;

    /// <summary>EMA of the mean foreground pseudo-Dice: the first value as is, then 0.9 ema + 0.1 new (nnU-Net).</summary>
    public static double NextEma(IReadOnlyList<double> ema, double value) => ema.Count == 0 ? value : 0.9 * ema[^1] + 0.1 * value;
}
