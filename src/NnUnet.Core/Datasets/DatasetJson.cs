using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using NnUnet.Core.IO;

namespace NnUnet.Core.Datasets;

/// <summary>One entry of dataset.json's <c>labels</c>: a plain label (one value) or a region (several values, region-based training).</summary>
public sealed record DatasetLabel(string Name, int[] Values)
{
    /// <summary>nnU-Net's rule: an entry is a region when it is a list with more than one value.</summary>
    public bool IsRegion => Values.Length > 1;
    /// <summary>A label or region that contains only background (value 0).</summary>
    public bool IsBackground
    {
        get
        {
            foreach (int v in Values) if (v != 0) return false;
            return true;
        }
    }
}

/// <summary>An explicit case of dataset.json's optional <c>dataset</c> key: image files per channel and the label file,
/// resolved to absolute paths.</summary>
public sealed record ExplicitCase(string[] Images, string Label);

/// <summary>
/// nnU-Net v2 <c>dataset.json</c>, parsed and validated. Required: <c>channel_names</c> (legacy <c>modality</c> accepted),
/// <c>labels</c> (name -> int, or name -> list of ints for regions; <c>background</c> must be 0; optional <c>ignore</c>
/// label, which must be the highest value), <c>numTraining</c>, <c>file_ending</c>; <c>regions_class_order</c> is required
/// when regions are used and must have one entry per foreground region. The label values (regions' members included,
/// ignore last) must be consecutive from 0, as nnU-Net's verify_dataset_integrity demands. Every violation is an
/// <see cref="InvalidDataException"/> naming the file and the field.
/// </summary>
public sealed class DatasetJson
{
    public const string FileName = "dataset.json";

    private DatasetJson(JsonObject document, string source)
    {
        Document = document;
        Source = source;
        (ChannelNames, UsesLegacyModalityKey) = ParseChannels(document, source);
        (Labels, IgnoreLabel) = ParseLabels(document, source);
        HasRegions = false;
        foreach (var label in Labels) HasRegions |= label.IsRegion;
        AllLabels = CollectAllLabels(Labels);
        RegionsClassOrder = ParseRegionsClassOrder(document, source, HasRegions, Labels);
        NumTraining = ParseNonNegativeInt(document, source, "numTraining");
        FileEnding = ParseString(document, source, "file_ending", required: true)!;
        OverwriteImageReaderWriter = ParseString(document, source, "overwrite_image_reader_writer", required: false);
        ValidateLabelValues(source, AllLabels, IgnoreLabel);
    }

    /// <summary>Where the document came from (a path, or "dataset.json"), used in every error message.</summary>
    public string Source { get; }
    /// <summary>The whole document, including keys this type does not interpret (name, description, licence...).</summary>
    public JsonObject Document { get; }
    /// <summary>Channel names by channel index (0..n-1).</summary>
    public IReadOnlyList<string> ChannelNames { get; }
    public int NumChannels => ChannelNames.Count;
    /// <summary>True when the file used the legacy key <c>modality</c> instead of <c>channel_names</c>.</summary>
    public bool UsesLegacyModalityKey { get; }
    /// <summary>Labels and regions in file order, background included, the ignore label excluded.</summary>
    public IReadOnlyList<DatasetLabel> Labels { get; }
    public int? IgnoreLabel { get; }
    public bool HasIgnoreLabel => IgnoreLabel.HasValue;
    public bool HasRegions { get; }
    /// <summary>Sorted distinct label values (regions' members included, ignore label excluded), as LabelManager.all_labels.</summary>
    public IReadOnlyList<int> AllLabels { get; }
    public int[]? RegionsClassOrder { get; }
    public int NumTraining { get; }
    public string FileEnding { get; }
    public string? OverwriteImageReaderWriter { get; }

    /// <summary>Label values a segmentation may contain: <see cref="AllLabels"/> plus the ignore label.</summary>
    public IReadOnlyList<int> AllowedSegmentationValues
    {
        get
        {
            var values = new List<int>(AllLabels);
            if (IgnoreLabel is int ignore) values.Add(ignore);
            return values;
        }
    }

    /// <summary>Foreground regions (entries that are not pure background) in file order; only meaningful with regions.</summary>
    public IReadOnlyList<DatasetLabel> ForegroundRegions
    {
        get
        {
            var regions = new List<DatasetLabel>();
            foreach (var label in Labels) if (!label.IsBackground) regions.Add(label);
            return regions;
        }
    }

    /// <summary>Number of segmentation outputs: foreground regions with regions, else labels (background included).</summary>
    public int NumSegmentationHeads => HasRegions ? ForegroundRegions.Count : AllLabels.Count;

    /// <summary>Explicit case list from the optional <c>dataset</c> key, relative paths resolved against
    /// <paramref name="datasetFolder"/> (environment variables expanded, as nnU-Net); null when the key is absent.</summary>
    public IReadOnlyDictionary<string, ExplicitCase>? ExplicitCases(string datasetFolder)
    {
        if (!Document.TryGetPropertyValue("dataset", out var node) || node is null) return null;
        if (node is not JsonObject cases) throw Error(Source, "dataset", "must be an object {case: {\"images\": [...], \"label\": ...}}");
        var result = new SortedDictionary<string, ExplicitCase>(StringComparer.Ordinal);
        foreach (var (caseId, caseNode) in cases)
        {
            string field = $"dataset.{caseId}";
            // the id names output files (preprocessed/<id>.npz, predictions): it must be a plain file name
            if (!IsPlainFileName(caseId))
                throw Error(Source, field, "is not a valid case id: it must be a plain file name (no '/', '\\', '..' or empty), " +
                                           "because it names output files");
            if (caseNode is not JsonObject entry) throw Error(Source, field, "must be an object with \"images\" and \"label\"");
            if (entry["images"] is not JsonArray images || images.Count == 0) throw Error(Source, field + ".images", "must be a non-empty list of file paths");
            var imagePaths = new string[images.Count];
            for (int i = 0; i < images.Count; i++)
                imagePaths[i] = ResolveCasePath(datasetFolder, AsString(images[i], Source, $"{field}.images[{i}]"));
            string label = ResolveCasePath(datasetFolder, AsString(entry["label"], Source, field + ".label"));
            result[caseId] = new ExplicitCase(imagePaths, label);
        }
        return result;
    }

    public static DatasetJson Load(string path)
    {
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new FileNotFoundException($"{path} does not exist", path, ex);
        }
        return Parse(text, path);
    }

    /// <summary>Parses and validates; <paramref name="source"/> names the file in error messages.</summary>
    public static DatasetJson Parse(string json, string source = FileName)
    {
        JsonNode? node;
        try
        {
            node = JsonNode.Parse(json, documentOptions: new JsonDocumentOptions { AllowTrailingCommas = true, CommentHandling = JsonCommentHandling.Skip });
        }
        catch (JsonException ex)
        {
            throw new InvalidDataException($"{source}: not valid JSON ({ex.Message})", ex);
        }
        if (node is not JsonObject obj) throw new InvalidDataException($"{source}: the top level must be a JSON object");
        return new DatasetJson(obj, source);
    }

    /// <summary>
    /// Builds a v2 dataset.json (what nnU-Net's generate_dataset_json writes) and validates it.
    /// <paramref name="labels"/> keeps its order; <paramref name="extra"/> keys are appended as given.
    /// </summary>
    public static DatasetJson Create(IReadOnlyList<string> channelNames, IReadOnlyList<DatasetLabel> labels, int numTraining,
        string fileEnding, int[]? regionsClassOrder = null, IEnumerable<KeyValuePair<string, JsonNode?>>? extra = null)
    {
        var channels = new JsonObject();
        for (int c = 0; c < channelNames.Count; c++) channels[c.ToString(CultureInfo.InvariantCulture)] = channelNames[c];
        var labelObject = new JsonObject();
        foreach (var label in labels)
        {
            if (label.Values.Length == 1) labelObject[label.Name] = label.Values[0];
            else
            {
                var list = new JsonArray();
                foreach (int v in label.Values) list.Add(v);
                labelObject[label.Name] = list;
            }
        }
        var document = new JsonObject
        {
            ["channel_names"] = channels,
            ["labels"] = labelObject,
            ["numTraining"] = numTraining,
            ["file_ending"] = fileEnding,
        };
        if (regionsClassOrder is not null)
        {
            var order = new JsonArray();
            foreach (int v in regionsClassOrder) order.Add(v);
            document["regions_class_order"] = order;
        }
        if (extra is not null)
            foreach (var (key, value) in extra) document[key] = value?.DeepClone();
        // Re-parse the text so every value is backed the same way as in a loaded file.
        return Parse(document.ToJsonString(), FileName);
    }

    /// <summary>The document as indented JSON (key order kept).</summary>
    public string ToJsonString() => Document.ToJsonString(IndentedJson.Options);

    /// <summary>Writes the document atomically (temp file + rename).</summary>
    public void Save(string path)
    {
        AtomicFile.WriteAllText(path, ToJsonString() + "\n");
    }

    private static InvalidDataException Error(string source, string field, string problem) =>
        new($"{source}: field '{field}' {problem}");

    private static bool IsPlainFileName(string id) =>
        id.Length > 0 && id != "." && id != ".." && id.IndexOfAny(['/', '\\', '\0']) < 0 && id.IndexOfAny(Path.GetInvalidFileNameChars()) < 0;

    private static string ResolveCasePath(string datasetFolder, string path)
    {
        string expanded = Environment.ExpandEnvironmentVariables(path);
        return Path.IsPathRooted(expanded) ? expanded : Path.GetFullPath(Path.Combine(datasetFolder, expanded));
    }

    private static string AsString(JsonNode? node, string source, string field) =>
        node is JsonValue value && value.GetValueKind() == JsonValueKind.String
            ? value.GetValue<string>()
            : throw Error(source, field, $"must be a string, got {Describe(node)}");

    private static string Describe(JsonNode? node) => node switch
    {
        null => "null",
        JsonObject => "an object",
        JsonArray => "a list",
        JsonValue v => v.GetValueKind() switch
        {
            JsonValueKind.String => $"the string \"{v.GetValue<string>()}\"",
            JsonValueKind.Number => $"the number {v.ToJsonString()}",
            JsonValueKind.True or JsonValueKind.False => $"the boolean {v.ToJsonString()}",
            _ => v.ToJsonString(),
        },
        _ => node.ToJsonString(),
    };

    /// <summary>An integral JSON number (5 or 5.0) as int; anything else is an error naming the field.</summary>
    private static int AsInt(JsonNode? node, string source, string field)
    {
        if (node is JsonValue value && value.GetValueKind() == JsonValueKind.Number)
        {
            var element = value.GetValue<JsonElement>();
            if (element.TryGetInt32(out int i)) return i;
            if (element.TryGetDouble(out double d) && d == Math.Floor(d) && d >= int.MinValue && d <= int.MaxValue) return (int)d;
        }
        throw Error(source, field, $"must be an integer, got {Describe(node)}");
    }

    private static (IReadOnlyList<string>, bool) ParseChannels(JsonObject document, string source)
    {
        bool legacy = false;
        string key = "channel_names";
        if (!document.TryGetPropertyValue(key, out var node) || node is null)
        {
            if (document.TryGetPropertyValue("modality", out node) && node is not null)
            {
                key = "modality";
                legacy = true;
            }
            else throw Error(source, "channel_names", "is missing (e.g. \"channel_names\": {\"0\": \"CT\"}; legacy \"modality\" is accepted too)");
        }
        if (node is not JsonObject channels || channels.Count == 0)
            throw Error(source, key, $"must be a non-empty object {{\"0\": \"CT\", ...}}, got {Describe(node)}");
        var names = new string?[channels.Count];
        foreach (var (index, nameNode) in channels)
        {
            if (!int.TryParse(index, NumberStyles.None, CultureInfo.InvariantCulture, out int c) || c >= names.Length)
                throw Error(source, key, $"has key \"{index}\": keys must be the channel indices 0..{names.Length - 1}");
            if (names[c] is not null) throw Error(source, key, $"declares channel {c} twice");
            names[c] = AsString(nameNode, source, $"{key}.{index}");
        }
        var result = new string[names.Length];
        for (int c = 0; c < names.Length; c++) result[c] = names[c]!;
        return (result, legacy);
    }

    private static (IReadOnlyList<DatasetLabel>, int?) ParseLabels(JsonObject document, string source)
    {
        if (!document.TryGetPropertyValue("labels", out var node) || node is null)
            throw Error(source, "labels", "is missing (e.g. \"labels\": {\"background\": 0, \"liver\": 1})");
        if (node is not JsonObject labels || labels.Count == 0)
            throw Error(source, "labels", $"must be a non-empty object {{\"background\": 0, ...}}, got {Describe(node)}");
        var result = new List<DatasetLabel>(labels.Count);
        int? ignore = null;
        bool msdStyle = true;
        foreach (var (name, valueNode) in labels)
        {
            msdStyle &= int.TryParse(name, NumberStyles.None, CultureInfo.InvariantCulture, out _) &&
                        valueNode is JsonValue v && v.GetValueKind() == JsonValueKind.String;
        }
        if (msdStyle)
            throw Error(source, "labels", "maps numbers to names (the MSD / nnU-Net v1 format); v2 maps names to values " +
                                          "({\"background\": 0, ...}): convert the dataset with `nnunet convert-msd`");
        foreach (var (name, valueNode) in labels)
        {
            string field = $"labels.{name}";
            if (name == "ignore")
            {
                if (valueNode is JsonArray) throw Error(source, field, "must be a single integer, not a list (the ignore label cannot be a region)");
                ignore = AsInt(valueNode, source, field);
                continue;
            }
            int[] values;
            if (valueNode is JsonArray list)
            {
                if (list.Count == 0) throw Error(source, field, "is an empty list");
                values = new int[list.Count];
                for (int i = 0; i < list.Count; i++) values[i] = AsInt(list[i], source, $"{field}[{i}]");
            }
            else if (valueNode is JsonValue v && v.GetValueKind() == JsonValueKind.Number) values = [AsInt(valueNode, source, field)];
            else throw Error(source, field, $"must be an integer or a list of integers, got {Describe(valueNode)}");
            foreach (int value in values)
                if (value < 0) throw Error(source, field, $"has the negative value {value}");
            result.Add(new DatasetLabel(name, values));
        }
        var background = result.Find(l => l.Name == "background")
                         ?? throw Error(source, "labels.background", "is missing: nnU-Net needs \"background\": 0");
        if (background.Values.Length != 1 || background.Values[0] != 0)
            throw Error(source, "labels.background", $"must be 0, got {(background.Values.Length == 1 ? background.Values[0] : "a list")}");
        return (result, ignore);
    }

    private static IReadOnlyList<int> CollectAllLabels(IReadOnlyList<DatasetLabel> labels)
    {
        var set = new SortedSet<int>();
        foreach (var label in labels) foreach (int v in label.Values) set.Add(v);
        return [.. set];
    }

    private static int[]? ParseRegionsClassOrder(JsonObject document, string source, bool hasRegions, IReadOnlyList<DatasetLabel> labels)
    {
        document.TryGetPropertyValue("regions_class_order", out var node);
        if (node is null)
        {
            if (hasRegions)
                throw Error(source, "regions_class_order", "is missing: it is required when labels define regions (lists of values)");
            return null;
        }
        if (node is not JsonArray list) throw Error(source, "regions_class_order", $"must be a list of integers, got {Describe(node)}");
        var order = new int[list.Count];
        for (int i = 0; i < list.Count; i++) order[i] = AsInt(list[i], source, $"regions_class_order[{i}]");
        if (hasRegions)
        {
            int regions = 0;
            foreach (var label in labels) if (!label.IsBackground) regions++;
            if (order.Length != regions)
                throw Error(source, "regions_class_order", $"has {order.Length} entries but labels define {regions} foreground regions (one entry per region)");
        }
        return order;
    }

    private static int ParseNonNegativeInt(JsonObject document, string source, string key)
    {
        if (!document.TryGetPropertyValue(key, out var node) || node is null) throw Error(source, key, "is missing");
        int value = AsInt(node, source, key);
        if (value < 0) throw Error(source, key, $"must not be negative, got {value}");
        return value;
    }

    private static string? ParseString(JsonObject document, string source, string key, bool required)
    {
        if (!document.TryGetPropertyValue(key, out var node) || node is null)
            return required ? throw Error(source, key, "is missing (e.g. \".nii.gz\")") : null;
        string value = AsString(node, source, key);
        if (required && value.Length == 0) throw Error(source, key, "must not be empty");
        return value;
    }

    private static void ValidateLabelValues(string source, IReadOnlyList<int> allLabels, int? ignore)
    {
        for (int i = 0; i < allLabels.Count; i++)
            if (allLabels[i] != i)
                throw Error(source, "labels", $"values must be consecutive from 0 (0, 1, 2, ...): value {allLabels[i]} found where {i} was expected");
        if (ignore is int ignoreValue && ignoreValue != allLabels.Count)
            throw Error(source, "labels.ignore", $"must be the highest label value, {allLabels.Count} here, got {ignoreValue}");
    }
}
