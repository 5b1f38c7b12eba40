using NnUnet.Core.Preprocessing;
using NnUnet.Core.IO;

namespace NnUnet.Training.Inference;

/// <summary>
/// The low-resolution stage's predictions for the cascade (nnU-Net's <c>predicted_next_stage/NEXT_CONFIG/CASE</c>):
/// one uint8 label map per case, (1, z, y, x) in the next configuration's preprocessed (transposed) array, stored as
/// <c>CASE.npy</c> (nnU-Net stores the same array as blosc2/npz).
/// </summary>
public static class NextStagePredictions
{
    public const string FolderName = "predicted_next_stage";

    /// <summary><c>TRAINER__PLANS__CONFIG/predicted_next_stage/NEXT_CONFIG</c> for a fold folder <c>TRAINER__PLANS__CONFIG/fold_F</c>.</summary>
    public static string FolderFor(string foldDirectory, string nextConfiguration) =>
        Path.Combine(Path.GetDirectoryName(Path.GetFullPath(foldDirectory).TrimEnd(Path.DirectorySeparatorChar))!, FolderName, nextConfiguration);

    public static string PathFor(string folder, string caseId) => Path.Combine(folder, caseId + ".npy");

    public static void Save(string folder, string caseId, ReadOnlySpan<byte> labels, int[] shape)
    {
        Directory.CreateDirectory(folder);
        var copy = labels.ToArray();
        AtomicFile.Write(PathFor(folder, caseId), path => NpyFile.Write<byte>(path, copy, [1, shape[0], shape[1], shape[2]]));
    }

    /// <summary>Loads a case's previous-stage label map; a missing file names the case and the folder.</summary>
    public static byte[] Load(string folder, string caseId, out int[] shape)
    {
        string path = PathFor(folder, caseId);
        if (!File.Exists(path))
            throw new FileNotFoundException($"case {caseId}: the previous stage's prediction {path} is missing (validate every 3d_lowres fold first)", path);
        var labels = NpyFile.Read<byte>(path, out var fileShape);
        if (fileShape.Length != 4 || fileShape[0] != 1)
            throw new InvalidDataException($"{path}: expected (1, z, y, x), got ({string.Join(", ", fileShape)})");
        shape = [fileShape[1], fileShape[2], fileShape[3]];
        return labels;
    }
}
