using System.Text.Json.Nodes;
using NnUnet.Core.Datasets;
using NnUnet.Core.IO;
using NnUnet.Training.Trainer;

namespace NnUnet.Training.Interop;

/// <summary>
/// <c>nnunet export-nnunet</c>: our trained-model folder as nnU-Net v2's (<c>plans.json</c>, <c>dataset.json</c>,
/// <c>dataset_fingerprint.json</c> copied; per fold <c>fold_N/checkpoint_final.pth</c> written by
/// <see cref="NnUnetCheckpoint.Write"/>), loadable by <c>nnUNetv2_predict_from_modelfolder</c>.
/// </summary>
public static class NnUnetExport
{
    public sealed record ExportedFold(int Fold, string Checkpoint);

    public static IReadOnlyList<ExportedFold> ExportModelFolder(string modelFolder, string outputFolder, string checkpointName = "checkpoint_final")
    {
        if (!Directory.Exists(modelFolder)) throw new DirectoryNotFoundException($"model folder {modelFolder} does not exist");
        if (Path.GetFullPath(modelFolder).TrimEnd(Path.DirectorySeparatorChar) == Path.GetFullPath(outputFolder).TrimEnd(Path.DirectorySeparatorChar))
            throw new ArgumentException("the output folder must differ from the model folder");
        string plansPath = Path.Combine(modelFolder, "plans.json");
        string datasetPath = Path.Combine(modelFolder, DatasetJson.FileName);
        foreach (string required in (string[])[plansPath, datasetPath])
            if (!File.Exists(required)) throw new FileNotFoundException($"{required} is missing (the trainer copies it into the model folder)", required);
        var plans = JsonNode.Parse(File.ReadAllText(plansPath)) ?? throw new InvalidDataException($"{plansPath}: empty");
        var dataset = JsonNode.Parse(File.ReadAllText(datasetPath)) ?? throw new InvalidDataException($"{datasetPath}: empty");

        var folds = new List<(int Fold, string Source)>();
        foreach (string dir in Directory.EnumerateDirectories(modelFolder, "fold_*"))
        {
            string source = Path.Combine(dir, checkpointName + Checkpoint.Extension);
            if (int.TryParse(Path.GetFileName(dir)["fold_".Length..], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int fold) && File.Exists(source))
                folds.Add((fold, source));
        }
        if (folds.Count == 0) throw new FileNotFoundException($"{modelFolder}: no fold_N/{checkpointName}{Checkpoint.Extension} to export (train a fold first)");
        folds.Sort((a, b) => a.Fold.CompareTo(b.Fold));

        Directory.CreateDirectory(outputFolder);
        foreach (string name in (string[])["plans.json", DatasetJson.FileName, "dataset_fingerprint.json"])
        {
            string source = Path.Combine(modelFolder, name);
            if (File.Exists(source)) AtomicFile.Copy(source, Path.Combine(outputFolder, name));
        }
        var exported = new List<ExportedFold>(folds.Count);
        foreach (var (fold, source) in folds)
        {
            string target = Path.Combine(outputFolder, $"fold_{fold}", checkpointName + NnUnetCheckpoint.Extension);
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            using var checkpoint = Checkpoint.Load(source);
            NnUnetCheckpoint.Write(target, checkpoint, plans, dataset);
            exported.Add(new ExportedFold(fold, target));
        }
        return exported;
    }
}
