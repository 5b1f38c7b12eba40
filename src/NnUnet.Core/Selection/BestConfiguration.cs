using System.Text.Json.Nodes;
using NnUnet.Core.Evaluation;

namespace NnUnet.Core.Selection;

/// <summary>One candidate of the selection: a single configuration or a pair ensemble, with its cross-validation score.</summary>
/// <param name="Name">nnU-Net's identifier: <c>TRAINER__PLANS__CONFIG</c> or <c>ensemble___M1___M2___0_1_2_3_4</c>.</param>
/// <param name="Kind">"single" or "ensemble".</param>
/// <param name="SourceFolder">Folder holding the merged or ensembled predictions and their summary.json.</param>
/// <param name="ForegroundMeanDice">foreground_mean Dice of that summary.json.</param>
public sealed record SelectionCandidate(string Name, string Kind, IReadOnlyList<string> Configurations, IReadOnlyList<string> ModelFolders,
    string SourceFolder, double ForegroundMeanDice);

/// <summary>
/// What <see cref="BestConfigurationFinder"/> chose, as written to <c>best_configuration.json</c> in
/// <c>nnUNet_results/DatasetXXX/</c>: the winning model or ensemble, its folds, the postprocessing to apply and every
/// candidate with its score. <c>nnunet predict --best</c> reads it.
/// </summary>
public sealed record BestConfiguration
{
    public const string FileName = "best_configuration.json";

    public required string Dataset { get; init; }
    public required string Trainer { get; init; }
    public required string Plans { get; init; }
    public required IReadOnlyList<int> Folds { get; init; }
    /// <summary>The winner (one of <see cref="Candidates"/>).</summary>
    public required SelectionCandidate Best { get; init; }
    public bool IsEnsemble => Best.Kind == "ensemble";
    /// <summary>foreground_mean Dice of the winner after postprocessing.</summary>
    public required double ForegroundMeanDiceAfterPostprocessing { get; init; }
    /// <summary>The winner's postprocessing.json (steps in postprocessing_fns / postprocessing_kwargs).</summary>
    public required string PostprocessingFile { get; init; }
    /// <summary>Accepted postprocessing steps in words, in order; apply them with PostprocessingPlan.Load(PostprocessingFile).</summary>
    public required IReadOnlyList<string> PostprocessingSteps { get; init; }
    public required IReadOnlyList<SelectionCandidate> Candidates { get; init; }

    public void Save(string path)
    {
        var candidates = new List<object?>();
        foreach (var c in Candidates) candidates.Add(CandidateToPython(c));
        var document = new Dictionary<string, object?>
        {
            ["dataset"] = Dataset,
            ["trainer"] = Trainer,
            ["plans"] = Plans,
            ["folds"] = Folds.Select(f => (object?)f).ToList(),
            ["kind"] = Best.Kind,
            ["configurations"] = Best.Configurations.Select(c => (object?)c).ToList(),
            ["model_folders"] = Best.ModelFolders.Select(c => (object?)c).ToList(),
            ["name"] = Best.Name,
            ["source_folder"] = Best.SourceFolder,
            ["foreground_mean_dice"] = Best.ForegroundMeanDice,
            ["foreground_mean_dice_postprocessed"] = ForegroundMeanDiceAfterPostprocessing,
            ["postprocessing_file"] = PostprocessingFile,
            ["postprocessing_steps"] = PostprocessingSteps.Select(s => (object?)s).ToList(),
            ["candidates"] = candidates,
        };
        PythonJson.Save(document, path, sortKeys: false);
    }

    private static Dictionary<string, object?> CandidateToPython(SelectionCandidate c) => new()
    {
        ["name"] = c.Name,
        ["kind"] = c.Kind,
        ["configurations"] = c.Configurations.Select(x => (object?)x).ToList(),
        ["model_folders"] = c.ModelFolders.Select(x => (object?)x).ToList(),
        ["source_folder"] = c.SourceFolder,
        ["foreground_mean_dice"] = c.ForegroundMeanDice,
    };

    public static BestConfiguration Load(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path} does not exist (run nnunet find-best first)", path);
        if (PythonJson.Parse(File.ReadAllText(path), path) is not JsonObject root) throw new InvalidDataException($"{path}: must be a JSON object");
        string Str(JsonNode? node, string field) => node?.GetValue<string>() ?? throw new InvalidDataException($"{path}: {field} missing");
        List<string> Strings(JsonNode? node, string field) =>
            (node as JsonArray ?? throw new InvalidDataException($"{path}: {field} must be a list")).Select(x => x!.GetValue<string>()).ToList();
        SelectionCandidate Candidate(JsonNode? node, string field) => node is JsonObject o
            ? new SelectionCandidate(Str(o["name"], field + ".name"), Str(o["kind"], field + ".kind"), Strings(o["configurations"], field + ".configurations"),
                Strings(o["model_folders"], field + ".model_folders"), Str(o["source_folder"], field + ".source_folder"),
                PythonJson.ToDouble(o["foreground_mean_dice"], path, field + ".foreground_mean_dice"))
            : throw new InvalidDataException($"{path}: {field} must be an object");
        var candidates = new List<SelectionCandidate>();
        if (root["candidates"] is not JsonArray list) throw new InvalidDataException($"{path}: candidates must be a list");
        for (int i = 0; i < list.Count; i++) candidates.Add(Candidate(list[i], $"candidates[{i}]"));
        string name = Str(root["name"], "name");
        var best = candidates.FirstOrDefault(c => c.Name == name) ?? throw new InvalidDataException($"{path}: the chosen '{name}' is not among the candidates");
        return new BestConfiguration
        {
            Dataset = Str(root["dataset"], "dataset"),
            Trainer = Str(root["trainer"], "trainer"),
            Plans = Str(root["plans"], "plans"),
            Folds = (root["folds"] as JsonArray ?? throw new InvalidDataException($"{path}: folds must be a list")).Select(x => x!.GetValue<int>()).ToList(),
            Best = best,
            ForegroundMeanDiceAfterPostprocessing = PythonJson.ToDouble(root["foreground_mean_dice_postprocessed"], path, "foreground_mean_dice_postprocessed"),
            PostprocessingFile = Str(root["postprocessing_file"], "postprocessing_file"),
            PostprocessingSteps = Strings(root["postprocessing_steps"], "postprocessing_steps"),
            Candidates = candidates,
        };
    }
}
