using System.Globalization;

namespace NnUnet.Core.Datasets;

/// <summary>One case of a raw dataset: image file per channel (index = channel) and its label file (null for test cases).
/// Paths are where the files are expected; whether they exist is the verifier's business.</summary>
public sealed record RawCase(string Id, IReadOnlyList<string> ImageFiles, string? LabelFile);

/// <summary>
/// A raw nnU-Net v2 dataset folder: <c>dataset.json</c>, <c>imagesTr/CASE_XXXX{file_ending}</c>,
/// <c>labelsTr/CASE{file_ending}</c>, optional <c>imagesTs/</c>. Cases are the distinct <c>CASE</c> prefixes of the
/// image files (as nnU-Net's get_identifiers_from_splitted_dataset_folder), sorted ordinally (numpy's string order).
/// When dataset.json has the optional <c>dataset</c> key, its explicit file lists are used instead of imagesTr/labelsTr.
/// Hidden files (name starting with '.') are skipped: they are file-system debris (.DS_Store, ._x), never cases.
/// </summary>
public sealed class RawDataset
{
    private RawDataset(string folder, string name, DatasetJson json, IReadOnlyList<RawCase> training, IReadOnlyList<RawCase> test, bool usesExplicitList)
    {
        Folder = folder;
        Name = name;
        Json = json;
        TrainingCases = training;
        TestCases = test;
        UsesExplicitCaseList = usesExplicitList;
    }

    public string Folder { get; }
    /// <summary>Folder name, normally <c>DatasetXXX_Name</c>.</summary>
    public string Name { get; }
    public DatasetJson Json { get; }
    /// <summary>Training cases, sorted ordinally by id.</summary>
    public IReadOnlyList<RawCase> TrainingCases { get; }
    /// <summary>Cases of imagesTs (no labels), sorted ordinally by id; empty when the folder is absent.</summary>
    public IReadOnlyList<RawCase> TestCases { get; }
    /// <summary>True when the cases come from dataset.json's <c>dataset</c> key rather than imagesTr/labelsTr.</summary>
    public bool UsesExplicitCaseList { get; }

    public string ImagesTrFolder => Path.Combine(Folder, "imagesTr");
    public string LabelsTrFolder => Path.Combine(Folder, "labelsTr");
    public string ImagesTsFolder => Path.Combine(Folder, "imagesTs");
    public string DatasetJsonPath => Path.Combine(Folder, DatasetJson.FileName);

    /// <summary>Sorted training case ids.</summary>
    public IReadOnlyList<string> TrainingCaseIds
    {
        get
        {
            var ids = new string[TrainingCases.Count];
            for (int i = 0; i < ids.Length; i++) ids[i] = TrainingCases[i].Id;
            return ids;
        }
    }

    /// <summary>Opens the dataset of <paramref name="location"/>.</summary>
    public static RawDataset Open(DatasetLocation location) => Open(location.RawFolder, location.Name);

    /// <summary>Opens a dataset folder: parses dataset.json and lists the cases (no image is read).</summary>
    public static RawDataset Open(string folder, string? name = null)
    {
        folder = Path.TrimEndingDirectorySeparator(Path.GetFullPath(folder));
        if (!Directory.Exists(folder)) throw new DirectoryNotFoundException($"dataset folder {folder} does not exist");
        var json = DatasetJson.Load(Path.Combine(folder, DatasetJson.FileName));
        name ??= Path.GetFileName(folder);

        var explicitCases = json.ExplicitCases(folder);
        IReadOnlyList<RawCase> training;
        if (explicitCases is not null)
        {
            var list = new List<RawCase>(explicitCases.Count);
            foreach (var (id, entry) in explicitCases) list.Add(new RawCase(id, entry.Images, entry.Label));
            training = list;
        }
        else
        {
            string imagesTr = Path.Combine(folder, "imagesTr");
            if (!Directory.Exists(imagesTr)) throw new DirectoryNotFoundException($"{imagesTr} does not exist: a raw dataset needs imagesTr/ (and labelsTr/)");
            string labelsTr = Path.Combine(folder, "labelsTr");
            training = ListCases(imagesTr, json, labelsTr);
        }
        string imagesTs = Path.Combine(folder, "imagesTs");
        IReadOnlyList<RawCase> test = Directory.Exists(imagesTs) ? ListCases(imagesTs, json, labelsFolder: null) : [];
        return new RawDataset(folder, name, json, training, test, explicitCases is not null);
    }

    /// <summary>Expected image file of a case's channel: <c>{folder}/{caseId}_{channel:0000}{fileEnding}</c>.</summary>
    public static string ImageFileName(string caseId, int channel, string fileEnding) =>
        string.Create(CultureInfo.InvariantCulture, $"{caseId}_{channel:D4}{fileEnding}");

    /// <summary>
    /// Splits an image file name <c>CASE_XXXX{fileEnding}</c> into case id and channel; false for names that do not
    /// have that form.
    /// </summary>
    public static bool TryParseImageFileName(string fileName, string fileEnding, out string caseId, out int channel)
    {
        caseId = "";
        channel = -1;
        if (!fileName.EndsWith(fileEnding, StringComparison.Ordinal)) return false;
        int stemLength = fileName.Length - fileEnding.Length;
        if (stemLength < 6 || fileName[stemLength - 5] != '_') return false;
        int value = 0;
        for (int i = stemLength - 4; i < stemLength; i++)
        {
            char c = fileName[i];
            if (c < '0' || c > '9') return false;
            value = value * 10 + (c - '0');
        }
        caseId = fileName[..(stemLength - 5)];
        channel = value;
        return true;
    }

    /// <summary>Visible regular files of a folder, names only, sorted ordinally.</summary>
    public static List<string> VisibleFileNames(string folder)
    {
        var names = new List<string>();
        if (!Directory.Exists(folder)) return names;
        foreach (string path in Directory.EnumerateFiles(folder))
        {
            string name = Path.GetFileName(path);
            if (!name.StartsWith('.')) names.Add(name);
        }
        names.Sort(StringComparer.Ordinal);
        return names;
    }

    private static List<RawCase> ListCases(string imagesFolder, DatasetJson json, string? labelsFolder)
    {
        var ids = new SortedSet<string>(StringComparer.Ordinal);
        foreach (string name in VisibleFileNames(imagesFolder))
            if (TryParseImageFileName(name, json.FileEnding, out string caseId, out _)) ids.Add(caseId);
        var cases = new List<RawCase>(ids.Count);
        foreach (string id in ids)
        {
            var images = new string[json.NumChannels];
            for (int c = 0; c < images.Length; c++) images[c] = Path.Combine(imagesFolder, ImageFileName(id, c, json.FileEnding));
            string? label = labelsFolder is null ? null : Path.Combine(labelsFolder, id + json.FileEnding);
            cases.Add(new RawCase(id, images, label));
        }
        return cases;
    }
}
