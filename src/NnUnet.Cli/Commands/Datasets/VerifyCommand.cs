using System.ComponentModel;
using System.Text.Json.Nodes;
using NnUnet.Core.Datasets;
using Spectre.Console;
using Spectre.Console.Cli;
using NnUnet.Core.IO;

namespace NnUnet.Cli.Commands.Datasets;

/// <summary><c>nnunet verify DATASET</c>: lists every problem of a raw dataset; writes nothing.</summary>
public sealed class VerifyCommand : Command<VerifyCommand.Settings>
{
    public sealed class Settings : ParallelDatasetSettings
    {
        [CommandOption("--strict")]
        [Description("treat warnings (origin/direction mismatches, legacy keys) as problems too")]
        public bool Strict { get; init; }
    }

    public override int Execute(CommandContext context, Settings settings, CancellationToken cancellationToken)
    {
        var console = CommandConsole.Create();
        var location = DatasetLocator.Locate(settings.Dataset, settings.Paths());
        var report = settings.Json
            ? DatasetVerifier.Verify(location.RawFolder, settings.Parallelism, null, cancellationToken)
            : RunWithProgress(console, location, settings, cancellationToken);
        bool failed = report.HasErrors || (settings.Strict && report.WarningCount > 0);

        if (settings.Json)
        {
            var problems = new JsonArray();
            foreach (var p in report.Problems)
                problems.Add(new JsonObject { ["severity"] = p.Severity == ProblemSeverity.Error ? "error" : "warning", ["case"] = p.CaseId, ["message"] = p.Message });
            var json = new JsonObject
            {
                ["dataset"] = location.Name, ["folder"] = report.DatasetFolder, ["training_cases"] = report.TrainingCases,
                ["errors"] = report.ErrorCount, ["warnings"] = report.WarningCount, ["ok"] = !failed, ["problems"] = problems,
            };
            JsonStdout.Writer.WriteLine(json.ToJsonString(IndentedJson.Options));
        }
        else
        {
            foreach (var p in report.Problems)
            {
                if (p.Severity == ProblemSeverity.Error) console.MarkupLineInterpolated($"[red]error[/]: {Describe(p)}");
                else console.MarkupLineInterpolated($"[yellow]warning[/]: {Describe(p)}");
            }
            if (failed)
                console.MarkupLineInterpolated($"[red]{location.Name}: {report.ErrorCount} error(s), {report.WarningCount} warning(s) in {report.TrainingCases} training cases[/]");
            else
                console.MarkupLineInterpolated($"[green]{location.Name}: {report.TrainingCases} training cases OK[/]{(report.WarningCount > 0 ? $" ({report.WarningCount} warning(s))" : "")}");
        }
        return failed ? NnUnetApp.ExitProblems : NnUnetApp.ExitOk;
    }

    private static string Describe(DatasetProblem p) => p.CaseId is null ? p.Message : $"case {p.CaseId}: {p.Message}";

    private static DatasetVerificationReport RunWithProgress(IAnsiConsole console, DatasetLocation location, Settings settings, CancellationToken cancellationToken)
    {
        int cases;
        try
        {
            cases = RawDataset.Open(location).TrainingCases.Count;
        }
        catch (Exception ex) when (ex is InvalidDataException or IOException)
        {
            cases = 0; // the verifier reports this problem itself
        }
        DatasetVerificationReport? report = null;
        console.Progress().AutoClear(true).Start(progress =>
        {
            var task = progress.AddTask($"verifying {location.Name}", maxValue: Math.Max(1, cases));
            report = DatasetVerifier.Verify(location.RawFolder, settings.Parallelism, () => task.Increment(1), cancellationToken);
        });
        return report!;
    }
}
