using System.Text.Json;
using NnUnet.Core.IO;

namespace NnUnet.Core.Preprocessing;

/// <summary>
/// The preprocessed folder of one configuration, <c>nnUNet_preprocessed/DatasetXXX/&lt;data_identifier&gt;/</c>:
/// per case <c>CASE.npy</c> (float32, (c, z, y, x)), <c>CASE_seg.npy</c> (int8, (1, z, y, x)) and <c>CASE.json</c>
/// (<see cref="CaseProperties"/>). Each file is written to a temporary name and renamed, the JSON last, so a case whose
/// JSON exists is complete (nnU-Net itself writes blosc2 .b2nd files + a pickle; we keep plain .npy, which numpy and
/// nnU-Net's older numpy loader read directly).
/// </summary>
public static class PreprocessedStore
{
    public const string DataSuffix = ".npy";
    public const string SegSuffix = "_seg.npy";
    public const string PropertiesSuffix = ".json";

    public static readonly JsonSerializerOptions JsonOptions = new() { WriteIndented = false };

    public static string DataPath(string folder, string caseId) => Path.Combine(folder, caseId + DataSuffix);
    public static string SegPath(string folder, string caseId) => Path.Combine(folder, caseId + SegSuffix);
    public static string PropertiesPath(string folder, string caseId) => Path.Combine(folder, caseId + PropertiesSuffix);

    /// <summary>Writes a case atomically (temp + rename per file, properties last).</summary>
    public static void Save(string folder, PreprocessedCase preprocessed)
    {
        Directory.CreateDirectory(folder);
        string id = preprocessed.CaseId;
        int[] shape = preprocessed.Shape;
        AtomicFile.Write(DataPath(folder, id), path =>
            NpyFile.Write<float>(path, preprocessed.Data, [preprocessed.Channels, shape[0], shape[1], shape[2]]));
        if (preprocessed.Seg is { } seg)
            AtomicFile.Write(SegPath(folder, id), path => NpyFile.Write<sbyte>(path, seg, [1, shape[0], shape[1], shape[2]]));
        else File.Delete(SegPath(folder, id));
        AtomicFile.Write(PropertiesPath(folder, id), path =>
            File.WriteAllBytes(path, JsonSerializer.SerializeToUtf8Bytes(preprocessed.Properties, JsonOptions)));
    }

    /// <summary>Case ids with both a properties file and a data file, sorted ordinally.</summary>
    public static IReadOnlyList<string> ListCases(string folder)
    {
        if (!Directory.Exists(folder)) throw new DirectoryNotFoundException($"preprocessed folder {folder} does not exist (run nnunet preprocess)");
        var ids = new List<string>();
        foreach (string file in Directory.EnumerateFiles(folder, "*" + PropertiesSuffix))
        {
            string id = Path.GetFileName(file)[..^PropertiesSuffix.Length];
            if (File.Exists(DataPath(folder, id))) ids.Add(id);
        }
        ids.Sort(StringComparer.Ordinal);
        return ids;
    }

    public static CaseProperties LoadProperties(string folder, string caseId)
    {
        string path = PropertiesPath(folder, caseId);
        if (!File.Exists(path)) throw new FileNotFoundException($"case {caseId}: {path} does not exist", path);
        try
        {
            return JsonSerializer.Deserialize<CaseProperties>(File.ReadAllBytes(path), JsonOptions)
                   ?? throw new InvalidDataException($"{path}: empty properties");
        }
        catch (JsonException ex)
        {
            throw new InvalidDataException($"{path}: not valid case properties ({ex.Message})", ex);
        }
    }

    /// <summary>Loads a case for training. The seg is null when the case was written without one.</summary>
    public static PreprocessedCase Load(string folder, string caseId)
    {
        var properties = LoadProperties(folder, caseId);
        string dataPath = DataPath(folder, caseId);
        var data = NpyFile.Read<float>(dataPath, out var shape);
        if (shape.Length != 4) throw new InvalidDataException($"{dataPath}: expected (c, z, y, x), got shape ({string.Join(", ", shape)})");
        int[] spatial = [shape[1], shape[2], shape[3]];
        sbyte[]? seg = null;
        string segPath = SegPath(folder, caseId);
        if (File.Exists(segPath))
        {
            seg = NpyFile.Read<sbyte>(segPath, out var segShape);
            if (segShape.Length != 4 || segShape[0] != 1 || !segShape.AsSpan(1).SequenceEqual(spatial))
                throw new InvalidDataException($"{segPath}: shape ({string.Join(", ", segShape)}) does not match data ({string.Join(", ", shape)})");
        }
        return new PreprocessedCase(caseId, data, shape[0], spatial, seg, properties);
    }

    /// <summary>
    /// Memory-maps a case's data (float32 (c, z, y, x)) and seg (int8 (1, z, y, x), null when absent) for reading patches
    /// without loading whole cases; dispose both when done.
    /// </summary>
    public static (MappedNpy Data, MappedNpy? Seg) OpenMapped(string folder, string caseId)
    {
        var data = NpyFile.OpenMapped(DataPath(folder, caseId));
        if (data.Header.DType != NpyDType.Float32 || data.Shape.Length != 4)
        {
            data.Dispose();
            throw new InvalidDataException($"{DataPath(folder, caseId)}: expected float32 (c, z, y, x)");
        }
        string segPath = SegPath(folder, caseId);
        if (!File.Exists(segPath)) return (data, null);
        var seg = NpyFile.OpenMapped(segPath);
        if (seg.Header.DType != NpyDType.Int8 || seg.Shape.Length != 4 || !seg.Shape.AsSpan(1).SequenceEqual(data.Shape.AsSpan(1)))
        {
            data.Dispose();
            seg.Dispose();
            throw new InvalidDataException($"{segPath}: expected int8 (1, z, y, x) matching the data");
        }
        return (data, seg);
    }

    /// <summary>
    /// True when the case's three files exist, the properties parse and the arrays' headers agree with each other and
    /// with <paramref name="expectedChannels"/> (reads headers only). Used to skip finished cases when resuming.
    /// </summary>
    public static bool IsComplete(string folder, string caseId, int expectedChannels)
    {
        try
        {
            LoadProperties(folder, caseId);
            var data = NpyFile.ReadHeader(DataPath(folder, caseId));
            var seg = NpyFile.ReadHeader(SegPath(folder, caseId));
            return data.DType == NpyDType.Float32 && data.Shape.Length == 4 && data.Shape[0] == expectedChannels &&
                   seg.DType == NpyDType.Int8 && seg.Shape.Length == 4 && seg.Shape[0] == 1 &&
                   seg.Shape.AsSpan(1).SequenceEqual(data.Shape.AsSpan(1)) &&
                   new FileInfo(DataPath(folder, caseId)).Length == data.DataOffset + data.Count * 4 &&
                   new FileInfo(SegPath(folder, caseId)).Length == seg.DataOffset + seg.Count;
        }
        catch (Exception ex) when (ex is IOException or InvalidDataException or UnauthorizedAccessException)
        {
            return false;
        }
    }
}
