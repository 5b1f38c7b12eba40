using System.Text.Json;
using System.Text.Json.Serialization;
using NnUnet.Core.IO;

namespace NnUnet.Core.Results;

/// <summary>
/// nnU-Net's logger: one value per finished epoch. Kept in every checkpoint (nnU-Net's <c>logging</c>) and, after
/// every epoch, in the fold's <c>progress.json</c> next to <c>progress.png</c>, which is where the dashboard reads the
/// curves of a job it did not watch from the start (a restarted coordinator, a job run before the dashboard).
/// </summary>
public sealed class TrainingCurves
{
    public const string FileName = "progress.json";

    private static readonly JsonSerializerOptions JsonOptions = new()
    {
        WriteIndented = false,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals, // NaN pseudo-Dice of an absent class
    };

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

    /// <summary>Writes <c>FOLD_FOLDER/progress.json</c> atomically.</summary>
    public void Save(string foldFolder) =>
        AtomicFile.WriteAllText(Path.Combine(foldFolder, FileName), JsonSerializer.Serialize(this, JsonOptions));

    /// <summary>The curves in <c>FOLD_FOLDER/progress.json</c>; null when there is none yet or it cannot be read.</summary>
    public static TrainingCurves? TryLoad(string foldFolder)
    {
        string path = Path.Combine(foldFolder, FileName);
        try
        {
            var curves = File.Exists(path) ? JsonSerializer.Deserialize<TrainingCurves>(File.ReadAllText(path), JsonOptions) : null;
            // every list has one value per epoch; a file that disagrees with itself is not used
            return curves is not null && curves.ValLosses.Count == curves.Count && curves.MeanForegroundDice.Count == curves.Count &&
                   curves.EmaForegroundDice.Count == curves.Count && curves.LearningRates.Count == curves.Count &&
                   curves.EpochSeconds.Count == curves.Count ? curves : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or JsonException) { return null; }
    }
}
