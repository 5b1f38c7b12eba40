using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using NnUnet.Core.IO;

namespace NnUnet.Core.Results;

/// <summary>One file a predicted case wrote, as it was right after the write (size and time tell a later rewrite apart).</summary>
public sealed record PredictedFile(string Name, long Size, DateTime LastWriteUtc);

/// <summary>
/// Written (atomically) after a case's files were renamed into place: the case is complete for the model
/// <see cref="ModelKey"/> while every file listed is still there with its size and write time. A crash between the
/// output's rename and the receipt's only costs that case again; a half-written output never has a receipt.
/// </summary>
public sealed record CaseReceipt(string CaseId, string ModelKey, PredictedFile[] Files, DateTime WrittenAt, string? Worker);

/// <summary>What one shard job predicted (its completion marker; the coordinator checks it exists).</summary>
public sealed record ShardMarker(int Shard, int Shards, string ModelKey, string[] Cases, DateTime CompletedAt, string? Worker);

/// <summary>
/// The single definition of "prediction complete": written last, by the merge job (or the local predictor asked
/// for it), after every case of the input folder was checked to have a valid receipt.
/// </summary>
public sealed record PredictionManifest(string ModelKey, string Model, string InputFolder, string[] Cases,
    Dictionary<string, PredictedFile[]> Files, DateTime CompletedAt);

/// <summary>
/// Files that make a prediction folder resumable and checkable across workers (distributed prediction, issue 16):
/// per case a <see cref="CaseReceipt"/>, per shard a <see cref="ShardMarker"/>, and the <see cref="PredictionManifest"/>.
/// All live beside the segmentations: <c>OUTPUT/.nnunet-prediction/</c> and <c>OUTPUT/prediction_manifest.json</c>.
/// Which case belongs to which shard: <see cref="InShard"/> over the input's cases in ordinal order, so every node
/// (and every re-run) splits the same input the same way.
/// </summary>
public static class PredictionRecords
{
    public const string FolderName = ".nnunet-prediction";
    public const string ManifestFileName = "prediction_manifest.json";

    private static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    public static string Manifest(string outputFolder) => Path.Combine(outputFolder, ManifestFileName);

    public static string ShardMarkerPath(string outputFolder, int shard, int shards) =>
        Path.Combine(outputFolder, FolderName, string.Create(CultureInfo.InvariantCulture, $"shard_{shard}_of_{shards}.json"));

    public static string ReceiptPath(string outputFolder, string caseId) => Path.Combine(outputFolder, FolderName, "cases", caseId + ".json");

    /// <summary>Case number <paramref name="caseIndex"/> (ordinal order of the input's cases) belongs to shard <paramref name="shard"/> of <paramref name="shards"/>.</summary>
    public static bool InShard(int caseIndex, int shard, int shards) => caseIndex % shards == shard;

    /// <summary>The files' size and time now, for a receipt or the manifest.</summary>
    public static PredictedFile[] Describe(IEnumerable<string> files)
    {
        var described = new List<PredictedFile>();
        foreach (string file in files)
        {
            var info = new FileInfo(file);
            described.Add(new PredictedFile(info.Name, info.Length, info.LastWriteTimeUtc));
        }
        return described.ToArray();
    }

    public static void WriteReceipt(string outputFolder, CaseReceipt receipt)
    {
        string path = ReceiptPath(outputFolder, receipt.CaseId);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        AtomicFile.WriteAllText(path, JsonSerializer.Serialize(receipt, Json));
    }

    /// <summary>
    /// The case's receipt when it says the case is complete for <paramref name="modelKey"/> (every file there, same
    /// size and time); null otherwise (never written, another model, a file missing or rewritten since, unreadable).
    /// </summary>
    public static CaseReceipt? ValidReceipt(string outputFolder, string caseId, string modelKey)
    {
        string path = ReceiptPath(outputFolder, caseId);
        if (!File.Exists(path)) return null;
        CaseReceipt? receipt;
        try { receipt = JsonSerializer.Deserialize<CaseReceipt>(File.ReadAllText(path), Json); }
        catch (JsonException) { return null; }
        if (receipt is null || receipt.ModelKey != modelKey || receipt.CaseId != caseId || receipt.Files.Length == 0) return null;
        foreach (var file in receipt.Files)
        {
            var info = new FileInfo(Path.Combine(outputFolder, file.Name));
            if (!info.Exists || info.Length != file.Size || info.LastWriteTimeUtc != file.LastWriteUtc) return null;
        }
        return receipt;
    }

    public static void WriteShardMarker(string outputFolder, ShardMarker marker)
    {
        string path = ShardMarkerPath(outputFolder, marker.Shard, marker.Shards);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        AtomicFile.WriteAllText(path, JsonSerializer.Serialize(marker, Json));
    }

    public static void WriteManifest(string outputFolder, PredictionManifest manifest) =>
        AtomicFile.WriteAllText(Manifest(outputFolder), JsonSerializer.Serialize(manifest, Json));

    public static PredictionManifest ReadManifest(string outputFolder) =>
        JsonSerializer.Deserialize<PredictionManifest>(File.ReadAllText(Manifest(outputFolder)), Json)
        ?? throw new InvalidDataException($"{Manifest(outputFolder)} is empty");

    /// <summary>
    /// Removes the manifest before a prediction into the folder starts (it is written again last): a folder whose
    /// manifest exists is complete, so a run that has not finished must not leave an older one standing.
    /// </summary>
    public static void RemoveManifest(string outputFolder)
    {
        string path = Manifest(outputFolder);
        if (File.Exists(path)) File.Delete(path);
    }
}
