using System.Text.Json;

namespace NnUnet.Core.Results;

/// <summary>
/// When a job's results are complete, one definition per kind, used by everything that asks (the coordinator accepting
/// a completion, accepting an attempt that finished while nobody listened, redoing a job whose results are gone). Each
/// kind writes a last artifact, its <em>marker</em>, only after all its other outputs; the marker's write time is
/// the completion time.
/// <list type="bullet">
/// <item>training fold: <c>checkpoint_final</c> and <c>validation/summary.json</c> (the marker, written after the
/// validation), and for a stage with a next (cascade) stage, the next-stage file of every validation case the summary
/// lists;</item>
/// <item>selection: <c>best_configuration.json</c> and <c>inference_information.json</c> (the marker, written last);</item>
/// <item>prediction: <c>prediction_manifest.json</c> (the marker, written last), every file it lists with its size.</item>
/// </list>
/// Null means complete; otherwise the first missing thing, named.
/// </summary>
public static class CompletionMarkers
{
    public static string FoldMarker(string foldFolder) => ResultLayout.ValidationSummary(foldFolder);

    /// <param name="nextStageFolder"><c>MODEL/predicted_next_stage/NEXT</c> when the fold must export the next stage's inputs; else null.</param>
    public static string? FoldMissing(string foldFolder, string? nextStageFolder)
    {
        var final = ResultLayout.Checkpoint(foldFolder, ResultLayout.CheckpointFinal);
        var summary = FoldMarker(foldFolder);
        if (!File.Exists(final)) return $"{final} does not exist";
        if (!File.Exists(summary)) return $"{summary} does not exist";
        if (nextStageFolder is null) return null;
        foreach (var caseId in ValidatedCases(summary))
        {
            var file = ResultLayout.NextStageFile(nextStageFolder, caseId);
            if (!File.Exists(file)) return $"{file} does not exist (the next stage's input of validation case {caseId})";
        }
        return null;
    }

    public static string SelectionMarker(string datasetFolder) => ResultLayout.InferenceInformation(datasetFolder);

    public static string? SelectionMissing(string datasetFolder)
    {
        foreach (var path in new[] { ResultLayout.BestConfigurationJson(datasetFolder), SelectionMarker(datasetFolder) })
            if (!File.Exists(path)) return $"{path} does not exist";
        return null;
    }

    public static string PredictionMarker(string predictionFolder) => PredictionManifest.PathIn(predictionFolder);

    public static string? PredictionMissing(string predictionFolder) => PredictionManifest.Missing(predictionFolder);

    /// <summary>The case ids of a validation summary's <c>metric_per_case</c> (prediction file names without their ending).</summary>
    private static List<string> ValidatedCases(string summaryPath)
    {
        var cases = new List<string>();
        using var document = JsonDocument.Parse(File.ReadAllText(summaryPath), new JsonDocumentOptions { AllowTrailingCommas = true });
        if (!document.RootElement.TryGetProperty("metric_per_case", out var perCase) || perCase.ValueKind != JsonValueKind.Array) return cases;
        foreach (var entry in perCase.EnumerateArray())
            if (entry.TryGetProperty("prediction_file", out var file) && file.GetString() is { Length: > 0 } name)
                cases.Add(CaseIdOf(Path.GetFileName(name)));
        return cases;
    }

    private static string CaseIdOf(string fileName)
    {
        foreach (var ending in new[] { ".nii.gz", ".nii" })
            if (fileName.EndsWith(ending, StringComparison.Ordinal)) return fileName[..^ending.Length];
        return Path.GetFileNameWithoutExtension(fileName);
    }
}
