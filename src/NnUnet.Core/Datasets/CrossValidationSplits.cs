using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using NnUnet.Core.IO;

namespace NnUnet.Core.Datasets;

/// <summary>One fold of <c>splits_final.json</c>: training and validation case ids.</summary>
public sealed record CrossValidationFold(
    [property: JsonPropertyName("train")] IReadOnlyList<string> Train,
    [property: JsonPropertyName("val")] IReadOnlyList<string> Val);

/// <summary>
/// nnU-Net's cross-validation splits (nnunetv2/utilities/crossval_split.py and nnUNetTrainer.do_split):
/// sklearn <c>KFold(n_splits, shuffle=True, random_state=seed)</c> over the ordinally sorted case ids, reproduced exactly
/// with <see cref="NumpyRandomState"/>; <c>splits_final.json</c> lives in <c>nnUNet_preprocessed/DatasetXXX/</c> and a file
/// that exists (e.g. written by the user) is used as is and never overwritten.
/// </summary>
public static class CrossValidationSplits
{
    public const int DefaultFolds = 5;
    public const long DefaultSeed = 12345;
    public const string FileName = "splits_final.json";

    /// <summary>
    /// KFold with shuffling: <c>RandomState(seed).shuffle(arange(n))</c>, the first <c>n % nFolds</c> folds get
    /// <c>n / nFolds + 1</c> cases, the others <c>n / nFolds</c>. Train and val lists are in ascending id order.
    /// The ids are sorted ordinally first (nnU-Net sorts them with numpy, which orders strings by code point).
    /// </summary>
    public static List<CrossValidationFold> Create(IReadOnlyList<string> caseIds, int nFolds = DefaultFolds, long seed = DefaultSeed)
    {
        if (nFolds < 2) throw new ArgumentException($"cross-validation needs at least 2 folds, got {nFolds}");
        string[] ids = SortedDistinct(caseIds);
        int n = ids.Length;
        if (n < nFolds) throw new ArgumentException($"cannot make {nFolds} folds from {n} cases: need at least one case per fold");

        var order = new int[n];
        for (int i = 0; i < n; i++) order[i] = i;
        new NumpyRandomState(seed).Shuffle(order.AsSpan());

        var isVal = new bool[n];
        var folds = new List<CrossValidationFold>(nFolds);
        int start = 0;
        for (int f = 0; f < nFolds; f++)
        {
            int size = n / nFolds + (f < n % nFolds ? 1 : 0);
            Array.Clear(isVal);
            for (int i = start; i < start + size; i++) isVal[order[i]] = true;
            start += size;
            var train = new List<string>(n - size);
            var val = new List<string>(size);
            for (int i = 0; i < n; i++) (isVal[i] ? val : train).Add(ids[i]);
            folds.Add(new CrossValidationFold(train, val));
        }
        return folds;
    }

    /// <summary>
    /// The fold a trainer uses. <paramref name="fold"/> below the number of splits: that split. Otherwise nnU-Net's
    /// random 80:20 split: <c>RandomState(12345 + fold).choice(n, int(n * 0.8), replace=False)</c> over the sorted ids;
    /// training ids in the drawn order (as nnU-Net), validation ids ascending.
    /// </summary>
    public static CrossValidationFold SelectFold(IReadOnlyList<CrossValidationFold> splits, int fold, IReadOnlyList<string> caseIds)
    {
        if (fold < 0) throw new ArgumentOutOfRangeException(nameof(fold), fold, "fold must not be negative");
        if (fold < splits.Count) return splits[fold];
        string[] ids = SortedDistinct(caseIds);
        int trainCount = (int)(ids.Length * 0.8);
        int[] trainIndices = new NumpyRandomState(DefaultSeed + fold).ChoiceWithoutReplacement(ids.Length, trainCount);
        var inTrain = new bool[ids.Length];
        var train = new List<string>(trainCount);
        foreach (int i in trainIndices)
        {
            inTrain[i] = true;
            train.Add(ids[i]);
        }
        var val = new List<string>(ids.Length - trainCount);
        for (int i = 0; i < ids.Length; i++) if (!inTrain[i]) val.Add(ids[i]);
        return new CrossValidationFold(train, val);
    }

    /// <summary>Fold "all": every case is trained and validated on.</summary>
    public static CrossValidationFold AllCasesFold(IReadOnlyList<string> caseIds)
    {
        string[] ids = SortedDistinct(caseIds);
        return new CrossValidationFold(ids, ids);
    }

    /// <summary>
    /// Reads <c>splits_final.json</c> from <paramref name="preprocessedDatasetFolder"/> if it exists, else creates the
    /// default 5-fold split for <paramref name="caseIds"/> and writes it there. <paramref name="created"/> tells which.
    /// </summary>
    public static IReadOnlyList<CrossValidationFold> LoadOrCreate(string preprocessedDatasetFolder, IReadOnlyList<string> caseIds, out bool created)
    {
        string path = Path.Combine(preprocessedDatasetFolder, FileName);
        if (File.Exists(path))
        {
            created = false;
            return Load(path);
        }
        var splits = Create(caseIds);
        Directory.CreateDirectory(preprocessedDatasetFolder);
        created = TrySaveNew(path, splits);
        // Lost a race with another writer: use what is on disk, as every later reader will.
        return created ? splits : Load(path);
    }

    /// <summary>Reads and validates a splits file (a list of {"train": [...], "val": [...]}).</summary>
    public static List<CrossValidationFold> Load(string path)
    {
        JsonNode? root;
        try
        {
            root = JsonNode.Parse(File.ReadAllText(path));
        }
        catch (JsonException ex)
        {
            throw new InvalidDataException($"{path}: not valid JSON ({ex.Message})", ex);
        }
        if (root is not JsonArray folds || folds.Count == 0)
            throw new InvalidDataException($"{path}: must be a non-empty list of {{\"train\": [...], \"val\": [...]}}");
        var result = new List<CrossValidationFold>(folds.Count);
        for (int f = 0; f < folds.Count; f++)
        {
            if (folds[f] is not JsonObject entry) throw new InvalidDataException($"{path}: split {f} must be an object with \"train\" and \"val\"");
            result.Add(new CrossValidationFold(ReadIds(path, f, entry, "train"), ReadIds(path, f, entry, "val")));
        }
        return result;
    }

    /// <summary>Problems of a split against the dataset's cases: ids that are not cases, and cases in both train and val.</summary>
    public static List<string> FindProblems(IReadOnlyList<CrossValidationFold> splits, IReadOnlyList<string> caseIds)
    {
        var known = new HashSet<string>(caseIds, StringComparer.Ordinal);
        var problems = new List<string>();
        for (int f = 0; f < splits.Count; f++)
        {
            var train = new HashSet<string>(splits[f].Train, StringComparer.Ordinal);
            foreach (string id in splits[f].Train)
                if (!known.Contains(id)) problems.Add($"split {f}: training case '{id}' is not a case of the dataset");
            foreach (string id in splits[f].Val)
            {
                if (!known.Contains(id)) problems.Add($"split {f}: validation case '{id}' is not a case of the dataset");
                if (train.Contains(id)) problems.Add($"split {f}: case '{id}' is in both train and val");
            }
        }
        return problems;
    }

    /// <summary>Writes the splits in nnU-Net's format, atomically, unless the file exists (it is then left untouched and
    /// false is returned): an existing splits file is never overwritten.</summary>
    public static bool TrySaveNew(string path, IReadOnlyList<CrossValidationFold> splits)
    {
        if (File.Exists(path)) return false;
        var array = new JsonArray();
        foreach (var fold in splits)
        {
            var train = new JsonArray();
            foreach (string id in fold.Train) train.Add(id);
            var val = new JsonArray();
            foreach (string id in fold.Val) val.Add(id);
            array.Add(new JsonObject { ["train"] = train, ["val"] = val });
        }
        // A concurrent writer may have created it meanwhile: keep theirs.
        string text = array.ToJsonString(IndentedJson.Options) + "\n";
        return AtomicFile.TryCreate(path, temporary => File.WriteAllText(temporary, text, new UTF8Encoding(false)));
    }

    private static List<string> ReadIds(string path, int fold, JsonObject entry, string key)
    {
        if (entry[key] is not JsonArray list) throw new InvalidDataException($"{path}: split {fold} has no list \"{key}\"");
        var ids = new List<string>(list.Count);
        for (int i = 0; i < list.Count; i++)
        {
            if (list[i] is JsonValue v && v.GetValueKind() == JsonValueKind.String) ids.Add(v.GetValue<string>());
            else throw new InvalidDataException($"{path}: split {fold} \"{key}\"[{i}] must be a case id string");
        }
        return ids;
    }

    private static string[] SortedDistinct(IReadOnlyList<string> caseIds)
    {
        var ids = new string[caseIds.Count];
        for (int i = 0; i < ids.Length; i++) ids[i] = caseIds[i];
        Array.Sort(ids, StringComparer.Ordinal);
        for (int i = 1; i < ids.Length; i++)
            if (ids[i] == ids[i - 1]) throw new ArgumentException($"case id '{ids[i]}' appears twice");
        return ids;
    }
}
