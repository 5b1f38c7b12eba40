using NnUnet.Core.Datasets;
using NnUnet.Core.Preprocessing;
using NnUnet.Core.IO;
using NnUnet.Core.Results;

namespace NnUnet.Training.Inference;

/// <summary>
/// The low-resolution stage's predictions for the cascade (nnU-Net's <c>predicted_next_stage/NEXT_CONFIG/CASE</c>):
/// one uint8 label map per case, (1, z, y, x) in the next configuration's preprocessed (transposed) array, stored as
/// <c>CASE.npy</c> (nnU-Net stores the same array as blosc2/npz). The low-res folds' validation writes them
/// (<see cref="FolderFor"/> of the fold folder), the cascade's trainer and validation read them
/// (<see cref="FolderForModel"/> of the previous stage's model folder): both name the same folder.
/// </summary>
public static class NextStagePredictions
{
    /// <summary><c>TRAINER__PLANS__CONFIG/predicted_next_stage/NEXT_CONFIG</c> for a fold folder <c>TRAINER__PLANS__CONFIG/fold_F</c>.</summary>
    public static string FolderFor(string foldDirectory, string nextConfiguration) =>
        FolderForModel(Path.GetDirectoryName(Path.GetFullPath(foldDirectory).TrimEnd(Path.DirectorySeparatorChar))!, nextConfiguration);

    /// <summary><c>TRAINER__PLANS__PREVIOUS/predicted_next_stage/NEXT_CONFIG</c> for the previous stage's model folder
    /// (nnU-Net's <c>folder_with_segs_from_previous_stage</c>).</summary>
    public static string FolderForModel(string previousStageModelFolder, string nextConfiguration) =>
        ResultLayout.NextStageFolder(previousStageModelFolder, nextConfiguration);

    public static string PathFor(string folder, string caseId) => ResultLayout.NextStageFile(folder, caseId);

    /// <summary>nnU-Net's <c>label_manager.foreground_labels</c>: every label value except background (0) and the ignore
    /// label; the cascade gets one one-hot input channel per value, in this order.</summary>
    public static int[] ForegroundLabels(DatasetJson dataset)
    {
        ArgumentNullException.ThrowIfNull(dataset);
        var labels = new List<int>();
        foreach (int label in dataset.AllLabels)
            if (label != 0 && label != dataset.IgnoreLabel) labels.Add(label);
        return labels.ToArray();
    }

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

    /// <summary>
    /// Refuses to start a cascade run unless every case in <paramref name="caseIds"/> has its previous-stage prediction
    /// in <paramref name="folder"/> with the shape of its preprocessed data in <paramref name="preprocessedFolder"/>
    /// (headers only). The message names the first missing files, the folder and what to run.
    /// </summary>
    public static void RequireAll(string folder, string preprocessedFolder, IReadOnlyList<string> caseIds, string previousStage, string datasetName)
    {
        var missing = new List<string>();
        foreach (string caseId in caseIds)
        {
            string path = PathFor(folder, caseId);
            if (!File.Exists(path)) { missing.Add(caseId); continue; }
            var header = NpyFile.ReadHeader(path);
            var data = NpyFile.ReadHeader(PreprocessedStore.DataPath(preprocessedFolder, caseId));
            if (header.DType != NpyDType.UInt8 || header.Shape.Length != 4 || header.Shape[0] != 1 || data.Shape.Length != 4 ||
                !header.Shape.AsSpan(1).SequenceEqual(data.Shape.AsSpan(1)))
                throw new InvalidDataException($"case {caseId}: the previous stage's prediction {path} is {header.DType} ({string.Join(", ", header.Shape)}), " +
                    $"expected uint8 (1, {string.Join(", ", data.Shape.AsSpan(1).ToArray())}) like its preprocessed data; re-run the validation of the {previousStage} fold " +
                    $"that holds this case (nnunet train {datasetName} {previousStage} FOLD --validation-only)");
        }
        if (missing.Count == 0) return;
        string shown = string.Join(", ", missing.Take(5).Select(id => id + ".npy")) + (missing.Count > 5 ? $" and {missing.Count - 5} more" : "");
        throw new FileNotFoundException(
            $"cascade: {missing.Count} of {caseIds.Count} cases have no {previousStage} prediction in {folder} (missing {shown}). " +
            $"Train and validate all {previousStage} folds first (nnunet train {datasetName} {previousStage} FOLD for every fold 0-4; " +
            "their validation exports the predictions of their validation cases, together every training case, " +
            $"once the cascade's data in {preprocessedFolder} is preprocessed; --validation-only re-exports a trained fold)",
            PathFor(folder, missing[0]));
    }
}
