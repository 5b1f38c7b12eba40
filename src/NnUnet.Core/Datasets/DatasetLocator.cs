using System.Globalization;
using System.Text.RegularExpressions;

namespace NnUnet.Core.Datasets;

/// <summary>A dataset found on disk: its folder name (<c>DatasetXXX_Name</c> normally), its numeric id when the name has one,
/// and its raw folder.</summary>
public sealed record DatasetLocation(string Name, int? Id, string RawFolder);

/// <summary>
/// Finds datasets the way nnU-Net's <c>maybe_convert_to_dataset_name</c> does: a numeric id ("4", "004") is looked up
/// as a <c>DatasetNNN_*</c> folder in nnUNet_raw, nnUNet_preprocessed and nnUNet_results (exactly one name must exist);
/// a full name ("Dataset004_Hippo") is taken as is; additionally a direct path to a dataset folder is accepted.
/// Unlike nnU-Net, ids are compared numerically, so id 4 never matches a folder "Dataset0045_X".
/// </summary>
public static partial class DatasetLocator
{
    [GeneratedRegex(@"^Dataset(\d{3,})_(.+)$", RegexOptions.CultureInvariant)]
    private static partial Regex DatasetNamePattern();

    /// <summary>Folder name of a dataset: <c>Dataset{id:000}_{name}</c>.</summary>
    public static string FormatName(int id, string shortName)
    {
        if (id < 0 || id > 9999) throw new ArgumentException($"dataset id must be in 0..9999, got {id}");
        if (string.IsNullOrWhiteSpace(shortName) || shortName.IndexOfAny(['/', '\\']) >= 0)
            throw new ArgumentException($"dataset name '{shortName}' is empty or contains a path separator");
        return string.Create(CultureInfo.InvariantCulture, $"Dataset{id:D3}_{shortName}");
    }

    /// <summary>Splits <c>DatasetNNN_Name</c> into id and short name; false for any other folder name.</summary>
    public static bool TryParseName(string folderName, out int id, out string shortName)
    {
        var match = DatasetNamePattern().Match(folderName);
        if (match.Success && int.TryParse(match.Groups[1].ValueSpan, NumberStyles.None, CultureInfo.InvariantCulture, out id))
        {
            shortName = match.Groups[2].Value;
            return true;
        }
        id = -1;
        shortName = "";
        return false;
    }

    /// <summary>
    /// Resolves the dataset's folder name without touching its raw data (a training node may only have
    /// nnUNet_preprocessed). Accepts an id, a full name or a path to a dataset folder (its last component is the name).
    /// </summary>
    public static string ResolveName(string nameOrIdOrPath, NnUnetPaths paths)
    {
        var kind = Classify(nameOrIdOrPath);
        return kind switch
        {
            ArgumentKind.Id => FindNameById(ParseId(nameOrIdOrPath), paths),
            ArgumentKind.Name => nameOrIdOrPath,
            _ => Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(nameOrIdOrPath))),
        };
    }

    /// <summary>Locates a raw dataset folder (it must exist and contain dataset.json).</summary>
    public static DatasetLocation Locate(string nameOrIdOrPath, NnUnetPaths paths)
    {
        if (string.IsNullOrWhiteSpace(nameOrIdOrPath)) throw new ArgumentException("no dataset given (expected an id, a DatasetXXX_Name or a folder)");
        string folder;
        string name;
        var kind = Classify(nameOrIdOrPath);
        if (kind == ArgumentKind.Path)
        {
            folder = Path.TrimEndingDirectorySeparator(Path.GetFullPath(nameOrIdOrPath));
            name = Path.GetFileName(folder);
            if (!Directory.Exists(folder)) throw new DirectoryNotFoundException($"dataset folder {folder} does not exist");
        }
        else
        {
            name = kind == ArgumentKind.Id ? FindNameById(ParseId(nameOrIdOrPath), paths) : nameOrIdOrPath;
            folder = Path.Combine(paths.RequireRaw(), name);
            if (!Directory.Exists(folder))
                throw new DirectoryNotFoundException($"dataset {name} has no raw folder: {folder} does not exist ({NnUnetPaths.RawVariable}={paths.Raw})");
        }
        if (!File.Exists(Path.Combine(folder, "dataset.json")))
            throw new FileNotFoundException($"{Path.Combine(folder, "dataset.json")} does not exist: {folder} is not an nnU-Net dataset folder");
        int? id = TryParseName(name, out int parsed, out _) ? parsed : null;
        return new DatasetLocation(name, id, folder);
    }

    private enum ArgumentKind { Id, Name, Path }

    private static ArgumentKind Classify(string argument)
    {
        if (argument.Length > 0 && IsAllDigits(argument)) return ArgumentKind.Id;
        if (Path.IsPathRooted(argument) || argument.StartsWith('.') || argument.IndexOfAny(['/', '\\']) >= 0) return ArgumentKind.Path;
        if (argument.StartsWith("Dataset", StringComparison.Ordinal)) return ArgumentKind.Name;
        if (Directory.Exists(argument)) return ArgumentKind.Path;
        throw new ArgumentException(
            $"'{argument}' is neither a dataset id (e.g. 4 or 004), a dataset name (DatasetXXX_Name) nor an existing folder");
    }

    private static bool IsAllDigits(string s)
    {
        foreach (char c in s) if (c < '0' || c > '9') return false;
        return true;
    }

    private static int ParseId(string digits) =>
        int.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out int id) && id <= 9999
            ? id
            : throw new ArgumentException($"dataset id '{digits}' is out of range 0..9999");

    private static string FindNameById(int id, NnUnetPaths paths)
    {
        var names = new SortedSet<string>(StringComparer.Ordinal);
        foreach (string? root in new[] { paths.Raw, paths.Preprocessed, paths.Results })
        {
            if (root is null || !Directory.Exists(root)) continue;
            foreach (string dir in Directory.EnumerateDirectories(root, "Dataset*"))
            {
                string folderName = Path.GetFileName(dir);
                if (TryParseName(folderName, out int found, out _) && found == id) names.Add(folderName);
            }
        }
        if (names.Count == 1) return names.Min!;
        string where = $"{NnUnetPaths.RawVariable}={paths.Raw ?? "(unset)"}, {NnUnetPaths.PreprocessedVariable}={paths.Preprocessed ?? "(unset)"}, {NnUnetPaths.ResultsVariable}={paths.Results ?? "(unset)"}";
        if (names.Count == 0)
            throw new DirectoryNotFoundException($"no dataset with id {id} (no folder Dataset{id:D3}_*) in {where}");
        throw new InvalidDataException($"more than one dataset name for id {id}: {string.Join(", ", names)} (looked in {where}); rename or remove all but one");
    }
}
