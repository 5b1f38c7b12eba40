using System.Globalization;
using System.Text;
using NnUnet.Core.Datasets;

namespace NnUnet.Core.Evaluation;

/// <summary>
/// What a metric is computed for: one label value, or a region (a set of label values evaluated as one mask, nnU-Net's
/// region-based training). <see cref="Key"/> is the name nnU-Net writes in summary.json: <c>str(label)</c>, e.g. "1",
/// or <c>str(tuple)</c>, e.g. "(1, 2)" and "(3,)".
/// </summary>
public sealed class LabelOrRegion : IEquatable<LabelOrRegion>
{
    private LabelOrRegion(int[] values, bool isRegion)
    {
        if (values.Length == 0) throw new ArgumentException("a region needs at least one label value");
        foreach (int v in values)
            if (v < 0) throw new ArgumentException($"label values must be non-negative, got {v}");
        Values = values;
        IsRegion = isRegion;
        Key = isRegion ? PythonTuple(values) : values[0].ToString(CultureInfo.InvariantCulture);
    }

    /// <summary>The label values that form the mask.</summary>
    public IReadOnlyList<int> Values { get; }
    public bool IsRegion { get; }
    public string Key { get; }
    /// <summary>True for label 0 (nnU-Net leaves key 0 out of <c>foreground_mean</c>).</summary>
    public bool IsBackgroundLabel => !IsRegion && Values[0] == 0;

    public static LabelOrRegion Label(int value) => new([value], false);
    public static LabelOrRegion Region(params int[] values) => new((int[])values.Clone(), true);

    public static IReadOnlyList<LabelOrRegion> Labels(params int[] values)
    {
        var result = new LabelOrRegion[values.Length];
        for (int i = 0; i < values.Length; i++) result[i] = Label(values[i]);
        return result;
    }

    /// <summary>What nnU-Net evaluates for a dataset: its foreground regions when it uses regions, else its foreground labels
    /// (LabelManager.foreground_regions / foreground_labels; the ignore label is never among them).</summary>
    public static IReadOnlyList<LabelOrRegion> ForDataset(DatasetJson dataset)
    {
        var result = new List<LabelOrRegion>();
        if (dataset.HasRegions)
        {
            // as nnU-Net's LabelManager: an entry written as a list is a tuple (key "(3,)" even with one value), a plain
            // number stays an int (key "3")
            var labelsNode = dataset.Document["labels"] as System.Text.Json.Nodes.JsonObject;
            foreach (var region in dataset.ForegroundRegions)
            {
                bool writtenAsList = labelsNode?[region.Name] is System.Text.Json.Nodes.JsonArray;
                result.Add(writtenAsList || region.Values.Length > 1 ? Region(region.Values) : Label(region.Values[0]));
            }
        }
        else
        {
            foreach (int label in dataset.AllLabels) if (label != 0) result.Add(Label(label));
        }
        return result;
    }

    /// <summary>Parses a summary.json key back ("1", "(1, 2)", "(3,)").</summary>
    public static LabelOrRegion FromKey(string key)
    {
        if (int.TryParse(key, NumberStyles.Integer, CultureInfo.InvariantCulture, out int label)) return Label(label);
        string inner = key.Trim().TrimStart('(').TrimEnd(')');
        var values = new List<int>();
        foreach (string part in inner.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (!int.TryParse(part, NumberStyles.Integer, CultureInfo.InvariantCulture, out int v))
                throw new InvalidDataException($"'{key}' is neither a label nor a region key");
            values.Add(v);
        }
        if (values.Count == 0) throw new InvalidDataException($"'{key}' is neither a label nor a region key");
        return new LabelOrRegion(values.ToArray(), true);
    }

    public bool Contains(int value)
    {
        foreach (int v in Values) if (v == value) return true;
        return false;
    }

    public int MaxValue
    {
        get
        {
            int max = 0;
            foreach (int v in Values) max = Math.Max(max, v);
            return max;
        }
    }

    private static string PythonTuple(int[] values)
    {
        var sb = new StringBuilder("(");
        for (int i = 0; i < values.Length; i++)
        {
            if (i > 0) sb.Append(", ");
            sb.Append(values[i].ToString(CultureInfo.InvariantCulture));
        }
        if (values.Length == 1) sb.Append(',');
        return sb.Append(')').ToString();
    }

    public bool Equals(LabelOrRegion? other) => other is not null && other.Key == Key;
    public override bool Equals(object? obj) => Equals(obj as LabelOrRegion);
    public override int GetHashCode() => Key.GetHashCode(StringComparison.Ordinal);
    public override string ToString() => Key;
}
