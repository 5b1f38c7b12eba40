namespace NnUnet.Core.Evaluation;

/// <summary>A reference and a prediction held in memory, with the names summary.json records for them.</summary>
public sealed record LabeledCase(string ReferenceFile, string PredictionFile, LabelVolume Reference, LabelVolume Prediction);

/// <summary>
/// nnU-Net's evaluate_predictions: per case and label (or region) Dice, IoU, TP, FP, FN, TN, n_pred, n_ref, summarised
/// into <see cref="EvaluationSummary"/>. Cases are evaluated in parallel.
/// </summary>
public static class SegmentationEvaluator
{
    /// <summary>Metrics of one case keyed by label or region key, in <paramref name="labelsOrRegions"/> order.</summary>
    public static Dictionary<string, LabelMetrics> EvaluateCase(LabelVolume reference, LabelVolume prediction,
        IReadOnlyList<LabelOrRegion> labelsOrRegions, int? ignoreLabel, string caseName = "case")
    {
        if (!reference.SameShape(prediction))
            throw new InvalidDataException($"{caseName}: prediction shape ({string.Join(", ", prediction.Shape)}) differs from reference shape ({string.Join(", ", reference.Shape)})");
        var metrics = SegmentationMetrics.Compute(reference.Labels, prediction.Labels, labelsOrRegions, ignoreLabel);
        var result = new Dictionary<string, LabelMetrics>(labelsOrRegions.Count);
        for (int i = 0; i < metrics.Length; i++) result[labelsOrRegions[i].Key] = metrics[i];
        return result;
    }

    public static EvaluationSummary EvaluateCases(IReadOnlyList<LabeledCase> cases, IReadOnlyList<LabelOrRegion> labelsOrRegions,
        int? ignoreLabel, int degreeOfParallelism = 0)
    {
        return Evaluate(cases.Count, i => cases[i], labelsOrRegions, ignoreLabel, degreeOfParallelism);
    }

    /// <summary>
    /// Evaluates every <c>*fileEnding</c> file of <paramref name="predictionFolder"/> against the file of the same name in
    /// <paramref name="referenceFolder"/> (nnU-Net's compute_metrics_on_folder; predictions decide which cases count).
    /// A prediction without reference, or of another shape, is an <see cref="InvalidDataException"/> naming the case.
    /// </summary>
    public static EvaluationSummary EvaluateFolder(string referenceFolder, string predictionFolder,
        IReadOnlyList<LabelOrRegion> labelsOrRegions, int? ignoreLabel, string fileEnding, int degreeOfParallelism = 0)
    {
        var predictions = ListCases(predictionFolder, fileEnding);
        if (predictions.Count == 0) throw new InvalidDataException($"{predictionFolder}: no predictions (*{fileEnding}) to evaluate");
        var references = new string[predictions.Count];
        for (int i = 0; i < predictions.Count; i++)
        {
            references[i] = Path.Combine(Path.GetFullPath(referenceFolder), Path.GetFileName(predictions[i]));
            if (!File.Exists(references[i]))
                throw new InvalidDataException($"{predictions[i]}: no reference segmentation {references[i]}");
        }
        return Evaluate(predictions.Count, i => new LabeledCase(references[i], predictions[i],
            LabelFiles.Read(references[i]).Labels, LabelFiles.Read(predictions[i]).Labels), labelsOrRegions, ignoreLabel, degreeOfParallelism);
    }

    /// <summary>Evaluates and saves <c>summary.json</c> into <paramref name="predictionFolder"/>.</summary>
    public static EvaluationSummary EvaluateFolderAndSave(string referenceFolder, string predictionFolder,
        IReadOnlyList<LabelOrRegion> labelsOrRegions, int? ignoreLabel, string fileEnding, int degreeOfParallelism = 0)
    {
        var summary = EvaluateFolder(referenceFolder, predictionFolder, labelsOrRegions, ignoreLabel, fileEnding, degreeOfParallelism);
        summary.Save(Path.Combine(predictionFolder, EvaluationSummary.FileName));
        return summary;
    }

    /// <summary>Full paths of the files in <paramref name="folder"/> ending in <paramref name="fileEnding"/>, sorted
    /// ordinally (nnU-Net's subfiles order); hidden files are skipped.</summary>
    public static List<string> ListCases(string folder, string fileEnding)
    {
        if (!Directory.Exists(folder)) throw new DirectoryNotFoundException($"folder {folder} does not exist");
        var files = new List<string>();
        foreach (string file in Directory.EnumerateFiles(Path.GetFullPath(folder)))
        {
            string name = Path.GetFileName(file);
            if (name.StartsWith('.') || !name.EndsWith(fileEnding, StringComparison.Ordinal)) continue;
            files.Add(file);
        }
        files.Sort(StringComparer.Ordinal);
        return files;
    }

    internal static EvaluationSummary Evaluate(int count, Func<int, LabeledCase> load, IReadOnlyList<LabelOrRegion> labelsOrRegions,
        int? ignoreLabel, int degreeOfParallelism)
    {
        if (labelsOrRegions.Count == 0) throw new ArgumentException("no labels or regions to evaluate");
        var results = new CaseEvaluation[count];
        RunParallel(count, degreeOfParallelism, i =>
        {
            var c = load(i);
            var metrics = EvaluateCase(c.Reference, c.Prediction, labelsOrRegions, ignoreLabel, c.PredictionFile);
            results[i] = new CaseEvaluation(c.ReferenceFile, c.PredictionFile, metrics);
        });
        return EvaluationSummary.FromCases(results, labelsOrRegions);
    }

    /// <summary>Cases in flight when the caller says 0: one per core, at most 8 (nnU-Net's default_num_processes), since
    /// each large case holds several int arrays of its size.</summary>
    public static int DefaultDegreeOfParallelism => Math.Min(Environment.ProcessorCount, 8);

    /// <summary>Parallel.For over cases; the first failure is rethrown as is (not wrapped), so its message names the case.</summary>
    internal static void RunParallel(int count, int degreeOfParallelism, Action<int> body)
    {
        var options = new ParallelOptions { MaxDegreeOfParallelism = degreeOfParallelism > 0 ? degreeOfParallelism : DefaultDegreeOfParallelism };
        try
        {
            Parallel.For(0, count, options, body);
        }
        catch (AggregateException ex) when (ex.InnerExceptions.Count > 0)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(ex.InnerExceptions[0]).Throw();
        }
    }
}
