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
/// Files that make a prediction folder resumable and checkable across workers (distributed prediction, issue 16):
/// per case a <see cref="CaseReceipt"/>, per shard a <see cref="ShardMarker"/>, in <c>OUTPUT/.nnunet-prediction/</c>; the
/// folder's completion marker is the <see cref="PredictionManifest"/> (written last by the merge job).
/// Which case belongs to which shard: <see cref="InShard"/> over the input's cases in ordinal order, so every node
/// (and every re-run) splits the same input the same way.
/// </summary>
public static class PredictionRecords
{
    public const string FolderName = ".nnunet-prediction";

    private static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

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

    /// <summary>Null when shard <paramref name="shard"/> of <paramref name="shards"/> is complete: its marker, and a valid receipt for every case it lists; otherwise what is missing.</summary>
    public static string? ShardMissing(string outputFolder, int shard, int shards)
    {
        string path = ShardMarkerPath(outputFolder, shard, shards);
        if (!File.Exists(path)) return $"{path} does not exist";
        ShardMarker? marker;
        try { marker = JsonSerializer.Deserialize<ShardMarker>(File.ReadAllText(path), Json); }
        catch (JsonException e) { return $"{path} is not a shard marker: {e.Message}"; }
        if (marker is null) return $"{path} is empty";
        foreach (string caseId in marker.Cases)
            if (ValidReceipt(outputFolder, caseId, marker.ModelKey) is null)
                return $"case {caseId} of {path}: not written completely (no valid {ReceiptPath(outputFolder, caseId)})";
        return null;
    }
}
