using System.Reflection;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using NnUnet.Core.IO;

namespace NnUnet.Core.Reproducibility;

/// <summary>What ran a sweep or an attempt: product, runtime, Torch and the device.</summary>
/// <param name="ProductVersion">Informational version of the product without the commit (e.g. <c>1.0.0</c>).</param>
/// <param name="Commit">Git commit the product was built from (from the informational version's <c>+sha</c>); null when the build had none.</param>
/// <param name="DotNet">.NET runtime version.</param>
/// <param name="TorchSharp">TorchSharp assembly version; null on a node that does not load Torch (the simulated backend).</param>
/// <param name="LibTorch">libtorch version TorchSharp reports; null without Torch.</param>
/// <param name="Device">The device the jobs run on, by name (e.g. <c>cpu</c>, <c>cuda:0 (NVIDIA H100 80GB HBM3)</c>).</param>
/// <param name="Host">Machine name.</param>
/// <param name="Os">Operating system description.</param>
public sealed record RuntimeEnvironment(string ProductVersion, string? Commit, string DotNet, string? TorchSharp, string? LibTorch,
    string? Device, string Host, string Os)
{
    /// <summary>This process's product, runtime and machine; Torch versions and the device are filled by whoever knows them.</summary>
    public static RuntimeEnvironment Current(string? torchSharp = null, string? libTorch = null, string? device = null)
    {
        string informational = typeof(RuntimeEnvironment).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "unknown";
        int plus = informational.IndexOf('+', StringComparison.Ordinal);
        return new RuntimeEnvironment(plus < 0 ? informational : informational[..plus], plus < 0 ? null : informational[(plus + 1)..],
            Environment.Version.ToString(), torchSharp, libTorch, device, Environment.MachineName,
            System.Runtime.InteropServices.RuntimeInformation.OSDescription);
    }
}

/// <summary>The training budget every fold of a sweep gets.</summary>
public sealed record TrainingBudget(int Epochs, int ItersPerEpoch, int ValIters);

/// <summary>One start of <c>nnunet sweep</c> / <c>nnunet coordinator</c> for a sweep: when, where, with what, and which
/// inputs differed from the previous start (empty on the first).</summary>
public sealed record SweepRun(DateTime StartedAt, RuntimeEnvironment Environment, List<InputChange> ChangedInputs);

/// <summary>
/// <c>sweep_manifest.json</c>, written beside the sweep's journal before the sweep starts: what defines the sweep, the
/// seed of each fold, the digests of every input, and every (re)start. Together with the folds'
/// <c>fold_manifest.json</c> it says exactly what produced the results.
/// </summary>
public sealed record SweepManifest
{
    public const string FileName = "sweep_manifest.json";
    public const int CurrentFormat = 1;

    /// <summary>How both manifests are written: indented, snake_case keys.</summary>
    public static JsonSerializerOptions JsonOptions => ManifestJson.Options;

    public int Format { get; init; } = CurrentFormat;
    public required string SweepId { get; init; }
    public required string Dataset { get; init; }
    public required string Plans { get; init; }
    public required string Trainer { get; init; }
    public required string[] Configurations { get; init; }
    public required int[] Folds { get; init; }
    public required bool PredictTest { get; init; }
    public required TrainingBudget Budget { get; init; }
    /// <summary>Job id (<c>3d_fullres/fold_0</c>) to the seed its training starts from (<see cref="FoldSeed"/>; each
    /// attempt's seed is also in the fold's manifest).</summary>
    public required SortedDictionary<string, long> FoldSeeds { get; init; }
    /// <summary>The inputs as they were at the latest start.</summary>
    public required List<HashedFile> Inputs { get; init; }
    /// <summary>Why <see cref="Inputs"/> is empty when they could not be listed (e.g. the dataset is not planned yet).</summary>
    public string? InputsError { get; init; }
    public required List<SweepRun> Runs { get; init; }

    public void Save(string path) => ManifestJson.Save(path, this);

    public static SweepManifest Load(string path) => ManifestJson.Load<SweepManifest>(path);

    /// <summary>
    /// Records a start of the sweep in the manifest at <paramref name="path"/>: <paramref name="current"/> (whose
    /// <see cref="Runs"/> are ignored) replaces the recorded definition and inputs, and a run is appended with the inputs
    /// that changed since the previous start. A manifest of another sweep found there is kept, renamed to
    /// <c>sweep_manifest.OTHER-ID.json</c>. Returns the written manifest and the changes (empty on a first start).
    /// </summary>
    public static (SweepManifest Manifest, List<InputChange> Changes) RecordStart(string path, SweepManifest current, RuntimeEnvironment environment, DateTime now)
    {
        SweepManifest? previous = null;
        if (File.Exists(path))
        {
            previous = Load(path);
            if (previous.SweepId != current.SweepId)
            {
                File.Move(path, Path.Combine(Path.GetDirectoryName(Path.GetFullPath(path))!, $"sweep_manifest.{previous.SweepId}.json"), overwrite: true);
                previous = null;
            }
        }
        // inputs that could not be listed at one of the two starts are not compared: that would list every file as changed
        var changes = previous is null || previous.InputsError is not null || current.InputsError is not null
            ? [] : ManifestComparison.Compare(previous.Inputs, current.Inputs);
        var runs = previous?.Runs ?? [];
        runs.Add(new SweepRun(now, environment, changes));
        var manifest = current with { Runs = runs };
        manifest.Save(path);
        return (manifest, changes);
    }
}

/// <summary>One attempt at a fold: which worker ran it, from when to when, and how it ended
/// (<c>running</c> until then, <c>completed</c>, <c>failed</c>, <c>cancelled</c>).</summary>
public sealed record FoldAttempt(int Attempt, string Worker, string Node, string Device, long? Seed, bool ContinuedFromCheckpoint,
    DateTime StartedAt, DateTime? EndedAt, string Outcome, string? Error);

/// <summary>
/// <c>fold_manifest.json</c> in a fold's output folder, written by the worker that runs it: the sweep it belongs to, the
/// environment and budget, the digests of the inputs this fold reads, and every attempt.
/// </summary>
public sealed record FoldManifest
{
    public const string FileName = "fold_manifest.json";

    public int Format { get; init; } = SweepManifest.CurrentFormat;
    public required string SweepId { get; init; }
    public required string Dataset { get; init; }
    public required string Configuration { get; init; }
    public required int Fold { get; init; }
    public required TrainingBudget Budget { get; init; }
    /// <summary>The environment of the latest attempt (every attempt may run on another node).</summary>
    public required RuntimeEnvironment Environment { get; init; }
    public required List<HashedFile> Inputs { get; init; }
    /// <summary>Why <see cref="Inputs"/> is empty when the worker could not list or read them (e.g. no nnUNet_preprocessed on its node).</summary>
    public string? InputsError { get; init; }
    public required List<FoldAttempt> Attempts { get; init; }

    public void Save(string path) => ManifestJson.Save(path, this);

    public static FoldManifest Load(string path) => ManifestJson.Load<FoldManifest>(path);
}

/// <summary>The seed of a fold's training, derived from the sweep and the job so that a re-run of the same sweep trains
/// every fold from the same seed whatever node runs it (nnU-Net draws an unrecorded one).</summary>
public static class FoldSeed
{
    public static long For(string sweepId, string jobId)
    {
        var hash = SHA256.HashData(Encoding.UTF8.GetBytes(sweepId + "|" + jobId));
        return BitConverter.ToInt64(hash, 0) & long.MaxValue;
    }
}

internal static class ManifestJson
{
    public static readonly JsonSerializerOptions Options = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DictionaryKeyPolicy = null,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower) },
    };

    public static void Save<T>(string path, T value)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        AtomicFile.WriteAllText(path, JsonSerializer.Serialize(value, Options));
    }

    public static T Load<T>(string path)
    {
        try
        {
            return JsonSerializer.Deserialize<T>(File.ReadAllText(path), Options)
                   ?? throw new InvalidDataException($"{path}: empty manifest");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path}: not a valid {typeof(T).Name} ({e.Message})", e);
        }
    }
}
