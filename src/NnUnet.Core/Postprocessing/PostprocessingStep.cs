using NnUnet.Core.Evaluation;

namespace NnUnet.Core.Postprocessing;

/// <summary>
/// nnU-Net's only postprocessing operation, <c>remove_all_but_largest_component_from_segmentation</c>: the voxels of the
/// given labels or regions together form one mask; every component of that mask except the largest (all largest ones on
/// a tie) is set to background (0). Step 1 of the decision passes all foreground labels, step 2 one label or region.
/// </summary>
public sealed class PostprocessingStep
{
    public const string FunctionName = "remove_all_but_largest_component_from_segmentation";

    public PostprocessingStep(IReadOnlyList<LabelOrRegion> labelsOrRegions, bool writeAsList)
    {
        if (labelsOrRegions.Count == 0) throw new ArgumentException("a postprocessing step needs at least one label or region");
        LabelsOrRegions = labelsOrRegions;
        WriteAsList = writeAsList;
    }

    /// <summary>Keep only the largest component of all these labels together (step 1).</summary>
    public static PostprocessingStep AllForeground(IReadOnlyList<int> foregroundLabels)
    {
        var labels = new List<LabelOrRegion>();
        foreach (int l in foregroundLabels) labels.Add(LabelOrRegion.Label(l));
        return new PostprocessingStep(labels, writeAsList: true);
    }

    /// <summary>Keep only the largest component of one label or region (step 2).</summary>
    public static PostprocessingStep Single(LabelOrRegion labelOrRegion) => new([labelOrRegion], labelOrRegion.IsRegion);

    public IReadOnlyList<LabelOrRegion> LabelsOrRegions { get; }
    /// <summary>How nnU-Net writes the kwargs: a list for step 1 and regions, a plain int for a single label.</summary>
    public bool WriteAsList { get; }

    public string Description => LabelsOrRegions.Count == 1 ? $"keep largest component of {LabelsOrRegions[0].Key}"
        : $"keep largest component of all foreground ({string.Join(", ", LabelsOrRegions)})";

    /// <summary>Applies the step in place.</summary>
    public void ApplyTo(LabelVolume segmentation, Connectivity connectivity = Connectivity.Full)
    {
        int n = segmentation.Length;
        var labels = segmentation.Labels;
        int maxValue = 0;
        foreach (var r in LabelsOrRegions) maxValue = Math.Max(maxValue, r.MaxValue);
        var member = new bool[maxValue + 1];
        foreach (var r in LabelsOrRegions) foreach (int v in r.Values) member[v] = true;
        var mask = new byte[n];
        bool any = false;
        for (int i = 0; i < n; i++)
        {
            uint v = (uint)labels[i];
            if (v <= (uint)maxValue && member[v]) { mask[i] = 1; any = true; }
        }
        if (!any) return;
        var keep = new byte[n];
        ConnectedComponents.KeepLargest(mask, segmentation.SizeZ, segmentation.SizeY, segmentation.SizeX, connectivity, keep);
        for (int i = 0; i < n; i++)
            if (mask[i] != 0 && keep[i] == 0) labels[i] = 0;
    }

    /// <summary>nnU-Net's kwargs dict: <c>{"labels_or_regions": 1}</c> or <c>{"labels_or_regions": [1, 2]}</c>.</summary>
    internal Dictionary<string, object?> KwargsToPython()
    {
        object? value;
        if (!WriteAsList) value = LabelsOrRegions[0].Values[0];
        else if (LabelsOrRegions.Count == 1) value = ToList(LabelsOrRegions[0].Values);
        else
        {
            var list = new List<object?>();
            foreach (var r in LabelsOrRegions) list.Add(r.IsRegion ? ToList(r.Values) : r.Values[0]);
            value = list;
        }
        return new Dictionary<string, object?> { ["labels_or_regions"] = value };
    }

    private static List<object?> ToList(IReadOnlyList<int> values)
    {
        var list = new List<object?>(values.Count);
        foreach (int v in values) list.Add(v);
        return list;
    }

    /// <summary>Reads a kwargs dict back: an int is one label, a list of ints several labels (or one region), a list of
    /// lists several regions; whichever it is, the mask is the union of the values, so applying is the same.</summary>
    internal static PostprocessingStep FromKwargs(System.Text.Json.Nodes.JsonNode? node, string source)
    {
        var value = node?["labels_or_regions"];
        if (value is System.Text.Json.Nodes.JsonValue v && v.TryGetValue(out int label))
            return new PostprocessingStep([LabelOrRegion.Label(label)], writeAsList: false);
        if (value is System.Text.Json.Nodes.JsonArray array && array.Count > 0)
        {
            var items = new List<LabelOrRegion>();
            foreach (var item in array)
            {
                if (item is System.Text.Json.Nodes.JsonArray inner)
                {
                    items.Add(LabelOrRegion.Region(inner.Select(x => x!.GetValue<int>()).ToArray()));
                }
                else if (item is System.Text.Json.Nodes.JsonValue iv && iv.TryGetValue(out int l)) items.Add(LabelOrRegion.Label(l));
                else throw new InvalidDataException($"{source}: labels_or_regions entries must be ints or lists of ints");
            }
            return new PostprocessingStep(items, writeAsList: true);
        }
        throw new InvalidDataException($"{source}: postprocessing_kwargs entries need labels_or_regions (an int or a list)");
    }
}
