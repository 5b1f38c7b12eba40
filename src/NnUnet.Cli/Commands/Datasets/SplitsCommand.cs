using System.ComponentModel;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using NnUnet.Core.Datasets;
using Spectre.Console;
using Spectre.Console.Cli;
using NnUnet.Core.IO;

namespace NnUnet.Cli.Commands.Datasets;

/// <summary><c>nnunet splits DATASET</c>: creates (or checks) nnUNet_preprocessed/DatasetXXX/splits_final.json.</summary>
public sealed class SplitsCommand : Command<SplitsCommand.Settings>
{
    public sealed class Settings : DatasetSettings
    {
        [CommandOption("--fold <N>")]
        [Description("also print the cases of this fold (a fold beyond the file's splits is nnU-Net's seeded random 80:20 split)")]
        public int? Fold { get; init; }

        public override ValidationResult Validate() => Fold is < 0 ? ValidationResult.Error("--fold must not be negative") : base.Validate();
    }

    public override int Execute(CommandContext context, Settings settings, CancellationToken cancellationToken)
    {
        var console = CommandConsole.Create();
        var paths = settings.Paths();
        var location = DatasetLocator.Locate(settings.Dataset, paths);
        var caseIds = RawDataset.Open(location).TrainingCaseIds;
        string folder = paths.PreprocessedDatasetFolder(location.Name);
        var splits = CrossValidationSplits.LoadOrCreate(folder, caseIds, out bool created);
        string path = Path.Combine(folder, CrossValidationSplits.FileName);
        var problems = CrossValidationSplits.FindProblems(splits, caseIds);
        var fold = settings.Fold is int f ? CrossValidationSplits.SelectFold(splits, f, caseIds) : null;

        if (settings.Json)
        {
            var json = new JsonObject
            {
                ["file"] = path, ["created"] = created,
                ["splits"] = JsonSerializer.SerializeToNode(splits),
                ["problems"] = new JsonArray(problems.Select(p => (JsonNode?)p).ToArray()),
            };
            if (fold is not null) json["fold"] = JsonSerializer.SerializeToNode(fold);
            JsonStdout.Writer.WriteLine(json.ToJsonString(IndentedJson.Options));
        }
        else
        {
            console.MarkupLineInterpolated($"{(created ? "wrote" : "using existing")} {path}");
            var table = new Table().AddColumns("fold", "train", "val");
            for (int i = 0; i < splits.Count; i++) table.AddRow(i.ToString(CultureInfo.InvariantCulture), splits[i].Train.Count.ToString(CultureInfo.InvariantCulture), splits[i].Val.Count.ToString(CultureInfo.InvariantCulture));
            console.Write(table);
            if (fold is not null)
            {
                console.MarkupLineInterpolated($"fold {settings.Fold}{(settings.Fold >= splits.Count ? " (random 80:20, seed 12345 + fold)" : "")}:");
                console.MarkupLineInterpolated($"  train ({fold.Train.Count}): {string.Join(' ', fold.Train)}");
                console.MarkupLineInterpolated($"  val ({fold.Val.Count}): {string.Join(' ', fold.Val)}");
            }
            foreach (string p in problems) console.MarkupLineInterpolated($"[red]error[/]: {path}: {p}");
        }
        return problems.Count > 0 ? NnUnetApp.ExitProblems : NnUnetApp.ExitOk;
    }
}
