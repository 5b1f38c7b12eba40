using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using NnUnet.Core.IO;

namespace NnUnet.Core.Results;

/// <summary>
/// The settings a run trains a fold folder with: a sweep (<see cref="SweepId"/> set, with the whole grid) or one
/// <c>nnunet train</c> (<see cref="SweepId"/> null). Two runs whose settings differ must never write into one folder
/// unnoticed (<see cref="ResultsGuard"/>).
/// </summary>
public sealed record RunSettings
{
    /// <summary>The sweep's id; null for <c>nnunet train</c> by hand.</summary>
    [JsonPropertyName("sweep_id")] public string? SweepId { get; init; }
    [JsonPropertyName("dataset")] public required string Dataset { get; init; }
    [JsonPropertyName("trainer")] public required string Trainer { get; init; }
    [JsonPropertyName("plans")] public required string Plans { get; init; }
    /// <summary>Every configuration of the sweep (one for <c>nnunet train</c>).</summary>
    [JsonPropertyName("configurations")] public required string[] Configurations { get; init; }
    /// <summary>Every fold of the sweep (one for <c>nnunet train</c>; -1 = fold "all").</summary>
    [JsonPropertyName("folds")] public required int[] Folds { get; init; }
    [JsonPropertyName("epochs")] public required int Epochs { get; init; }
    [JsonPropertyName("iters_per_epoch")] public required int ItersPerEpoch { get; init; }
    [JsonPropertyName("val_iters")] public required int ValIters { get; init; }
    [JsonPropertyName("predict")] public bool Predict { get; init; }
    /// <summary>SHA-256 of the plans file the run started with; null when there was none to read (simulated sweeps).</summary>
    [JsonPropertyName("plans_sha256")] public string? PlansSha256 { get; init; }

    [JsonIgnore] public bool IsSweep => SweepId is not null;

    /// <summary>"sweep Dataset990_Demo-1a2b3c4d5e6f" or "nnunet train".</summary>
    public string Describe() => SweepId is { } id ? $"sweep {id}" : "nnunet train (outside any sweep)";

    /// <summary>"2d, 3d_fullres x folds 0,1,2,3,4, 1000 epochs x 250 iterations (50 validation)".</summary>
    public string DescribeBudget() =>
        $"{string.Join(", ", Configurations)} x fold{(Folds.Length > 1 ? "s" : "")} {string.Join(",", Folds.Select(FoldName))}, " +
        $"{Epochs} epoch{(Epochs == 1 ? "" : "s")} x {ItersPerEpoch} iterations ({ValIters} validation)";

    public static string FoldName(int fold) => fold < 0 ? "all" : fold.ToString(CultureInfo.InvariantCulture);

    /// <summary>SHA-256 (hex) of a plans file, or null when it does not exist.</summary>
    public static string? HashPlans(string plansPath) =>
        File.Exists(plansPath) ? Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(plansPath))) : null;
}

/// <summary>
/// <c>fold_F/owner.json</c>: which run wrote a fold folder and with which settings, so a later run with other
/// settings is stopped before it overwrites the results (nnU-Net has no such record; a fold folder without it was
/// written by an older version or by hand and counts as "unknown owner"). <see cref="AdoptedFrom"/> is the previous
/// owner when a sweep took over finished folds with <c>--continue-training</c>.
/// </summary>
public sealed record FoldOwner
{
    public const string FileName = "owner.json";

    [JsonPropertyName("settings")] public required RunSettings Settings { get; init; }
    [JsonPropertyName("host")] public required string Host { get; init; }
    [JsonPropertyName("pid")] public int Pid { get; init; }
    [JsonPropertyName("claimed_at")] public DateTime ClaimedAtUtc { get; init; }
    [JsonPropertyName("adopted_from")] public FoldOwner? AdoptedFrom { get; init; }


    public static FoldOwner ForThisProcess(RunSettings settings, FoldOwner? adoptedFrom = null) => new()
    {
        Settings = settings, Host = Environment.MachineName, Pid = Environment.ProcessId, ClaimedAtUtc = DateTime.UtcNow, AdoptedFrom = adoptedFrom,
    };

    public static string PathIn(string foldFolder) => Path.Combine(foldFolder, FileName);

    /// <summary>
    /// Whether a training of this fold must continue from its checkpoint even on its first attempt: a sweep that took
    /// the fold over with <c>--continue-training</c> extends the previous training instead of starting anew.
    /// </summary>
    public static bool WasAdopted(string foldFolder) => TryLoad(foldFolder)?.AdoptedFrom is not null;

    /// <summary>The record of a fold folder; null when it has none. A damaged record is an error naming the file.</summary>
    public static FoldOwner? TryLoad(string foldFolder)
    {
        var path = PathIn(foldFolder);
        if (!File.Exists(path)) return null;
        try
        {
            return JsonSerializer.Deserialize<FoldOwner>(File.ReadAllText(path), IndentedJson.Options)
                   ?? throw new InvalidDataException($"{path}: empty owner record");
        }
        catch (JsonException ex)
        {
            throw new InvalidDataException($"{path}: damaged owner record ({ex.Message}); move it away if the fold's results are yours", ex);
        }
    }

    public void Save(string foldFolder)
    {
        Directory.CreateDirectory(foldFolder);
        AtomicFile.WriteAllText(PathIn(foldFolder), JsonSerializer.Serialize(this, IndentedJson.Options));
    }
}
