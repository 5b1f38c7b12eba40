using NnUnet.Core.Datasets;
using NnUnet.Core.Evaluation;
using NnUnet.Core.Results;

namespace NnUnet.Core.Ensembling;

/// <summary>
/// Ensembles of saved probabilities on disk (nnU-Net's ensemble_folders and ensemble_crossvalidations). Every case's
/// <c>CASE.npz</c> files are averaged and written as <c>CASE{file_ending}</c>. The output takes the geometry of the first
/// member's <c>CASE{file_ending}</c> next to its npz (nnU-Net reads it from the properties pkl instead, which we do not
/// write; the prediction file holds the same geometry) and is stored as uint8, or uint16 from label 255 up, as nnU-Net's
/// writer does. Cases run in parallel.
/// </summary>
public static class FolderEnsembler
{
    /// <summary>Ensembles the predictions of several folders (each holding CASE.npz and CASE{file_ending} for the same
    /// cases) into <paramref name="outputFolder"/>. Returns the case ids written.</summary>
    public static IReadOnlyList<string> EnsembleFolders(IReadOnlyList<string> inputFolders, string outputFolder, DatasetJson dataset,
        bool saveProbabilities = false, int degreeOfParallelism = 0)
    {
        if (inputFolders.Count == 0) throw new ArgumentException("no folders to ensemble");
        var perFolder = new List<Dictionary<string, string>>();
        foreach (string folder in inputFolders)
        {
            var files = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (string npz in SegmentationEvaluator.ListCases(folder, ".npz")) files[Path.GetFileNameWithoutExtension(npz)] = npz;
            perFolder.Add(files);
        }
        var cases = CheckSameCases(inputFolders, perFolder);
        Run(cases, perFolder, outputFolder, dataset, saveProbabilities, degreeOfParallelism);
        return cases;
    }

    /// <summary>
    /// Ensembles the cross-validation of trained models: for each model its folds' <c>fold_F/validation/CASE.npz</c>
    /// (each case in exactly one fold), every model must cover the same cases. Copies plans.json and dataset.json of the
    /// first model into the output, as nnU-Net does.
    /// </summary>
    public static IReadOnlyList<string> EnsembleCrossValidation(IReadOnlyList<string> modelFolders, string outputFolder,
        IReadOnlyList<int> folds, DatasetJson dataset, int degreeOfParallelism = 0)
    {
        if (modelFolders.Count == 0) throw new ArgumentException("no models to ensemble");
        var perModel = new List<Dictionary<string, string>>();
        foreach (string model in modelFolders)
        {
            var files = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (int fold in folds)
            {
                string validation = ResultLayout.ValidationFolder(ResultLayout.FoldFolder(model, fold));
                if (!Directory.Exists(validation))
                    throw new InvalidDataException($"{model}: fold {fold} has no validation folder ({validation}); train and validate every requested fold");
                var npz = SegmentationEvaluator.ListCases(validation, ".npz");
                if (npz.Count == 0)
                    throw new InvalidDataException($"{validation}: no .npz probabilities; ensembling needs the validation probabilities saved");
                foreach (string file in npz)
                {
                    string caseId = Path.GetFileNameWithoutExtension(file);
                    if (files.TryGetValue(caseId, out var other))
                        throw new InvalidDataException($"{model}: case {caseId} is in more than one fold ({other} and {file})");
                    files[caseId] = file;
                }
            }
            perModel.Add(files);
        }
        var cases = CheckSameCases(modelFolders, perModel);
        Run(cases, perModel, outputFolder, dataset, saveProbabilities: false, degreeOfParallelism);
        foreach (string name in new[] { ResultLayout.PlansFile, DatasetJson.FileName })
        {
            string source = Path.Combine(modelFolders[0], name);
            if (File.Exists(source)) File.Copy(source, Path.Combine(outputFolder, name), overwrite: true);
        }
        return cases;
    }

    private static List<string> CheckSameCases(IReadOnlyList<string> sources, List<Dictionary<string, string>> perSource)
    {
        var all = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var files in perSource) all.UnionWith(files.Keys);
        for (int s = 0; s < perSource.Count; s++)
        {
            var missing = all.Where(c => !perSource[s].ContainsKey(c)).ToList();
            if (missing.Count > 0)
                throw new InvalidDataException($"{sources[s]}: no probabilities for {missing.Count} case(s) the other members have: {string.Join(", ", missing.Take(10))}{(missing.Count > 10 ? ", ..." : "")}");
        }
        return all.ToList();
    }

    private static void Run(List<string> cases, List<Dictionary<string, string>> perMember, string outputFolder, DatasetJson dataset,
        bool saveProbabilities, int degreeOfParallelism)
    {
        Directory.CreateDirectory(outputFolder);
        var heads = SegmentationHeads.ForDataset(dataset);
        SegmentationEvaluator.RunParallel(cases.Count, degreeOfParallelism, i =>
        {
            string caseId = cases[i];
            var members = new List<ProbabilityMap>(perMember.Count);
            foreach (var files in perMember) members.Add(ProbabilityMap.Load(files[caseId]));
            var average = ProbabilityEnsembler.Average(members, caseId);
            var segmentation = ProbabilityEnsembler.ToSegmentation(average, heads);
            string firstNpz = perMember[0][caseId];
            string geometrySource = Path.Combine(Path.GetDirectoryName(firstNpz)!, caseId + dataset.FileEnding);
            if (!File.Exists(geometrySource))
                throw new InvalidDataException($"{caseId}: {geometrySource} is missing; its geometry is needed to write the ensembled segmentation");
            var reference = LabelFiles.Read(geometrySource);
            if (!reference.Labels.SameShape(segmentation))
                throw new InvalidDataException($"{caseId}: probabilities in {firstNpz} have shape ({string.Join(", ", segmentation.Shape)}), the prediction {geometrySource} ({string.Join(", ", reference.Labels.Shape)})");
            LabelFiles.Write(Path.Combine(outputFolder, caseId + dataset.FileEnding),
                new LabelFile(segmentation, LabelFiles.SegmentationTypeFor(segmentation), reference.Geometry));
            if (saveProbabilities) average.Save(Path.Combine(outputFolder, caseId + ".npz"));
        });
    }
}
