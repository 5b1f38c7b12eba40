using System.Text.Json.Nodes;

namespace NnUnet.Core.Evaluation;

/// <summary>Metrics of one case: per label or region key ("1", "(1, 2)"), in evaluation order.</summary>
public sealed record CaseEvaluation(string ReferenceFile, string PredictionFile, IReadOnlyDictionary<string, LabelMetrics> Metrics);

/// <summary>Averages of the eight metrics (counts become means, so all are doubles).</summary>
public readonly record struct MetricMeans(double Dice, double IoU, double FP, double TP, double FN, double TN, double NPred, double NRef)
{
    internal static readonly string[] Names = ["Dice", "IoU", "FP", "TP", "FN", "TN", "n_pred", "n_ref"];

    internal double this[int index] => index switch
    {
        0 => Dice, 1 => IoU, 2 => FP, 3 => TP, 4 => FN, 5 => TN, 6 => NPred, 7 => NRef,
        _ => throw new ArgumentOutOfRangeException(nameof(index)),
    };

    internal static MetricMeans FromArray(ReadOnlySpan<double> v) => new(v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]);

    internal static void Values(in LabelMetrics m, Span<double> v)
    {
        v[0] = m.Dice; v[1] = m.IoU; v[2] = m.FP; v[3] = m.TP; v[4] = m.FN; v[5] = m.TN; v[6] = m.NPred; v[7] = m.NRef;
    }
}

/// <summary>
/// nnU-Net's <c>summary.json</c>: <c>metric_per_case</c>, <c>mean</c> (per label: nanmean over cases) and
/// <c>foreground_mean</c> (per metric: plain mean of the label means, label 0 left out, so one NaN label mean makes it
/// NaN, as numpy's mean). Saved with sorted keys and Python float formatting, byte for byte as nnU-Net writes it.
/// </summary>
public sealed class EvaluationSummary
{
    public const string FileName = "summary.json";

    public EvaluationSummary(IReadOnlyList<CaseEvaluation> metricPerCase, IReadOnlyDictionary<string, MetricMeans> mean, MetricMeans foregroundMean)
    {
        MetricPerCase = metricPerCase; Mean = mean; ForegroundMean = foregroundMean;
    }

    public IReadOnlyList<CaseEvaluation> MetricPerCase { get; }
    /// <summary>Label or region key -> means over cases.</summary>
    public IReadOnlyDictionary<string, MetricMeans> Mean { get; }
    public MetricMeans ForegroundMean { get; }

    /// <summary>Builds the means from per-case metrics the way compute_metrics_on_folder does.</summary>
    public static EvaluationSummary FromCases(IReadOnlyList<CaseEvaluation> cases, IReadOnlyList<LabelOrRegion> labelsOrRegions)
    {
        if (cases.Count == 0) throw new ArgumentException("no cases to summarise");
        var mean = new Dictionary<string, MetricMeans>();
        Span<double> sums = stackalloc double[8];
        Span<int> counts = stackalloc int[8];
        Span<double> values = stackalloc double[8];
        foreach (var label in labelsOrRegions)
        {
            sums.Clear(); counts.Clear();
            foreach (var c in cases)
            {
                if (!c.Metrics.TryGetValue(label.Key, out var m))
                    throw new ArgumentException($"case {c.PredictionFile} has no metrics for {label.Key}");
                MetricMeans.Values(m, values);
                for (int i = 0; i < 8; i++)
                    if (!double.IsNaN(values[i])) { sums[i] += values[i]; counts[i]++; }
            }
            for (int i = 0; i < 8; i++) values[i] = counts[i] == 0 ? double.NaN : sums[i] / counts[i];
            mean[label.Key] = MetricMeans.FromArray(values);
        }
        sums.Clear();
        int foreground = 0;
        foreach (var label in labelsOrRegions)
        {
            if (label.IsBackgroundLabel) continue;
            foreground++;
            var m = mean[label.Key];
            for (int i = 0; i < 8; i++) sums[i] += m[i];
        }
        for (int i = 0; i < 8; i++) values[i] = foreground == 0 ? double.NaN : sums[i] / foreground;
        return new EvaluationSummary(cases, mean, MetricMeans.FromArray(values));
    }

    /// <summary>Mean Dice of one label or region key.</summary>
    public double MeanDice(string key) =>
        Mean.TryGetValue(key, out var m) ? m.Dice : throw new KeyNotFoundException($"summary has no label or region '{key}'");

    public void Save(string path) => PythonJson.Save(ToPython(), path);

    public string ToJson() => PythonJson.Serialize(ToPython());

    internal Dictionary<string, object?> ToPython() => new()
    {
        ["metric_per_case"] = CasesToPython(),
        ["mean"] = MeansToPython(Mean),
        ["foreground_mean"] = MeansToPython(ForegroundMean),
    };

    internal static Dictionary<string, object?> MeansToPython(IReadOnlyDictionary<string, MetricMeans> means)
    {
        var result = new Dictionary<string, object?>();
        foreach (var (key, m) in means) result[key] = MeansToPython(m);
        return result;
    }

    internal static Dictionary<string, object?> MeansToPython(MetricMeans m)
    {
        var result = new Dictionary<string, object?>();
        for (int i = 0; i < 8; i++) result[MetricMeans.Names[i]] = m[i];
        return result;
    }

    private List<object?> CasesToPython()
    {
        var list = new List<object?>(MetricPerCase.Count);
        foreach (var c in MetricPerCase)
        {
            var metrics = new Dictionary<string, object?>();
            foreach (var (key, m) in c.Metrics)
            {
                metrics[key] = new Dictionary<string, object?>
                {
                    ["Dice"] = m.Dice, ["IoU"] = m.IoU, ["FP"] = m.FP, ["TP"] = m.TP, ["FN"] = m.FN, ["TN"] = m.TN,
                    ["n_pred"] = m.NPred, ["n_ref"] = m.NRef,
                };
            }
            list.Add(new Dictionary<string, object?>
            {
                ["reference_file"] = c.ReferenceFile, ["prediction_file"] = c.PredictionFile, ["metrics"] = metrics,
            });
        }
        return list;
    }

    public static EvaluationSummary Load(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path} does not exist", path);
        return Parse(File.ReadAllText(path), path);
    }

    public static EvaluationSummary Parse(string json, string source)
    {
        if (PythonJson.Parse(json, source) is not JsonObject root) throw new InvalidDataException($"{source}: a summary must be a JSON object");
        var cases = new List<CaseEvaluation>();
        if (root["metric_per_case"] is not JsonArray perCase) throw new InvalidDataException($"{source}: metric_per_case missing or not a list");
        foreach (var item in perCase)
        {
            if (item is not JsonObject entry || entry["metrics"] is not JsonObject metrics)
                throw new InvalidDataException($"{source}: metric_per_case entries must be objects with metrics");
            var byLabel = new Dictionary<string, LabelMetrics>();
            foreach (var (key, node) in metrics)
            {
                if (node is not JsonObject m) throw new InvalidDataException($"{source}: metrics.{key} must be an object");
                byLabel[key] = new LabelMetrics(ReadCount(m, "TP", source), ReadCount(m, "FP", source), ReadCount(m, "FN", source), ReadCount(m, "TN", source));
            }
            cases.Add(new CaseEvaluation(entry["reference_file"]?.GetValue<string>() ?? "", entry["prediction_file"]?.GetValue<string>() ?? "", byLabel));
        }
        var mean = new Dictionary<string, MetricMeans>();
        if (root["mean"] is not JsonObject meanNode) throw new InvalidDataException($"{source}: mean missing");
        foreach (var (key, node) in meanNode) mean[key] = ReadMeans(node, source, "mean." + key);
        var foregroundMean = ReadMeans(root["foreground_mean"], source, "foreground_mean");
        return new EvaluationSummary(cases, mean, foregroundMean);
    }

    private static long ReadCount(JsonObject m, string name, string source)
    {
        double v = PythonJson.ToDouble(m[name], source, name);
        if (v < 0 || v != Math.Floor(v)) throw new InvalidDataException($"{source}: {name} must be a non-negative integer, got {v}");
        return (long)v;
    }

    private static MetricMeans ReadMeans(JsonNode? node, string source, string field)
    {
        if (node is not JsonObject o) throw new InvalidDataException($"{source}: {field} must be an object");
        Span<double> v = stackalloc double[8];
        for (int i = 0; i < 8; i++) v[i] = PythonJson.ToDouble(o[MetricMeans.Names[i]], source, field + "." + MetricMeans.Names[i]);
        return MetricMeans.FromArray(v);
    }
}
