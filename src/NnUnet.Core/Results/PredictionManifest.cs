using System.Text.Json;
using System.Text.Json.Serialization;
using NnUnet.Core.IO;

namespace NnUnet.Core.Results;

/// <summary>One predicted case of a <see cref="PredictionManifest"/>: its output file (name in the folder) and size.</summary>
public sealed record PredictedCaseFile(
    [property: JsonPropertyName("case")] string CaseId,
    [property: JsonPropertyName("file")] string FileName,
    [property: JsonPropertyName("bytes")] long Bytes);

/// <summary>
/// <c>prediction_manifest.json</c> (ours): the completion marker of a prediction folder, written last, after every case's
/// output, listing each case of the input with its output file and size. A folder without it, or whose files do not
/// match it, holds a prediction that did not finish (killed half-way) and is never taken for a complete one.
/// </summary>
public sealed record PredictionManifest(
    [property: JsonPropertyName("input_folder")] string InputFolder,
    [property: JsonPropertyName("cases")] IReadOnlyList<PredictedCaseFile> Cases,
    [property: JsonPropertyName("written_at_utc")] DateTime WrittenAtUtc,
    [property: JsonPropertyName("model_key")] string? ModelKey = null)
{
    public const string FileName = "prediction_manifest.json";


    public static string PathIn(string predictionFolder) => Path.Combine(predictionFolder, FileName);

    /// <summary>
    /// Writes the manifest of <paramref name="predictionFolder"/> (atomically, fenced like every job output) after every
    /// case's output is there: <paramref name="outputs"/> maps each input case to its output file. Throws, naming the
    /// case, when an output is missing: a prediction with a missing case is not complete.
    /// </summary>
    /// <param name="modelKey">what wrote the cases (see <c>Predictor.ModelKey</c>; distributed prediction), or null.</param>
    public static PredictionManifest Write(string predictionFolder, string inputFolder, IEnumerable<(string CaseId, string OutputFile)> outputs,
        string? modelKey = null)
    {
        var cases = new List<PredictedCaseFile>();
        foreach (var (caseId, output) in outputs)
        {
            var file = new FileInfo(output);
            if (!file.Exists) throw new FileNotFoundException($"case {caseId}: its prediction {output} does not exist; {FileName} not written", output);
            if (!string.Equals(Path.GetFullPath(file.DirectoryName!), Path.GetFullPath(predictionFolder).TrimEnd(Path.DirectorySeparatorChar), StringComparison.Ordinal))
                throw new ArgumentException($"case {caseId}: {output} is not in the prediction folder {predictionFolder}");
            cases.Add(new PredictedCaseFile(caseId, file.Name, file.Length));
        }
        cases.Sort((a, b) => string.CompareOrdinal(a.CaseId, b.CaseId));
        var manifest = new PredictionManifest(Path.GetFullPath(inputFolder), cases, DateTime.UtcNow, modelKey);
        AtomicFile.WriteAllText(PathIn(predictionFolder), JsonSerializer.Serialize(manifest, IndentedJson.Options));
        return manifest;
    }

    /// <summary>
    /// Removes the folder's manifest before a prediction writes its first case (a fenced write, as the files it
    /// guards): a re-run killed half-way must not look complete through its predecessor's manifest.
    /// </summary>
    public static void Invalidate(string predictionFolder)
    {
        WriteFence.CheckCurrent();
        if (Directory.Exists(predictionFolder)) File.Delete(PathIn(predictionFolder));
    }

    public static PredictionManifest Read(string predictionFolder) =>
        JsonSerializer.Deserialize<PredictionManifest>(File.ReadAllText(PathIn(predictionFolder)), IndentedJson.Options)
        ?? throw new InvalidDataException($"{PathIn(predictionFolder)} is empty");

    /// <summary>Null when the folder holds a complete prediction; otherwise what is missing or differs (first problem).</summary>
    public static string? Missing(string predictionFolder)
    {
        string path = PathIn(predictionFolder);
        if (!File.Exists(path)) return $"{path} does not exist (the prediction did not finish)";
        PredictionManifest? manifest;
        try { manifest = JsonSerializer.Deserialize<PredictionManifest>(File.ReadAllText(path), IndentedJson.Options); }
        catch (JsonException e) { return $"{path} is not a prediction manifest: {e.Message}"; }
        if (manifest?.Cases is not { Count: > 0 } cases) return $"{path} lists no predicted case";
        foreach (var c in cases)
        {
            var file = new FileInfo(Path.Combine(predictionFolder, c.FileName));
            if (!file.Exists) return $"case {c.CaseId}: {file.FullName} does not exist ({path} lists it)";
            if (file.Length != c.Bytes) return $"case {c.CaseId}: {file.FullName} has {file.Length} bytes, {path} says {c.Bytes}";
        }
        return null;
    }
}
