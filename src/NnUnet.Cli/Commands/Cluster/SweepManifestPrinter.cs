using System.Globalization;
using System.Text.Json;
using NnUnet.Cluster.Backends;
using NnUnet.Core.Datasets;
using NnUnet.Core.Reproducibility;
using Spectre.Console;

namespace NnUnet.Cli.Commands.Cluster;

/// <summary><c>nnunet sweep-status --manifest</c>: the sweep manifest and the manifests of its folds.</summary>
internal static class SweepManifestPrinter
{
    public static int Print(string target, bool json)
    {
        string path = Locate(target);
        var sweep = SweepManifest.Load(path);
        string resultsRoot = ResultsRootOf(path, sweep);
        var folds = new List<FoldManifest>();
        foreach (string configuration in sweep.Configurations)
            foreach (int fold in sweep.Folds)
            {
                string foldManifest = Path.Combine(ResultLayout.FoldFolder(resultsRoot, sweep.Dataset, sweep.Trainer, sweep.Plans, configuration, fold), FoldManifest.FileName);
                if (File.Exists(foldManifest)) folds.Add(FoldManifest.Load(foldManifest));
            }

        if (json)
        {
            Console.Out.WriteLine(JsonSerializer.Serialize(new { sweep, folds }, SweepManifest.JsonOptions));
            return NnUnetApp.ExitOk;
        }

        AnsiConsole.MarkupLine($"[bold]{Markup.Escape(sweep.SweepId)}[/] ({Markup.Escape(path)})");
        AnsiConsole.MarkupLine(Markup.Escape($"{sweep.Dataset}, {sweep.Plans}, {sweep.Trainer}: {string.Join(", ", sweep.Configurations)} x folds {string.Join(",", sweep.Folds)}" +
                                             $"{(sweep.PredictTest ? ", test-set prediction" : "")}; budget {sweep.Budget.Epochs} epochs x {sweep.Budget.ItersPerEpoch} iterations (validation {sweep.Budget.ValIters})"));
        long bytes = 0;
        foreach (var file in sweep.Inputs) bytes += file.Bytes;
        AnsiConsole.MarkupLine(Markup.Escape(sweep.InputsError is { } error
            ? $"inputs: not recorded ({error})"
            : $"inputs: {sweep.Inputs.Count} files, {bytes / 1e6:F1} MB, SHA-256 each (--json lists them)"));

        var runs = new Table().Title("starts").AddColumns("started (UTC)", "product", "commit", ".NET", "TorchSharp", "libtorch", "device", "host", "inputs changed");
        foreach (var run in sweep.Runs)
        {
            var e = run.Environment;
            runs.AddRow(Markup.Escape(Format(run.StartedAt)), Markup.Escape(e.ProductVersion), Markup.Escape(Short(e.Commit)), Markup.Escape(e.DotNet),
                Markup.Escape(e.TorchSharp ?? "-"), Markup.Escape(e.LibTorch ?? "-"), Markup.Escape(e.Device ?? "-"), Markup.Escape(e.Host),
                Markup.Escape(run.ChangedInputs.Count == 0 ? "none" : string.Join("; ", run.ChangedInputs.Take(3)) + (run.ChangedInputs.Count > 3 ? $"; +{run.ChangedInputs.Count - 3}" : "")));
        }
        AnsiConsole.Write(runs);

        var table = new Table().Title("folds").AddColumns("job", "seed", "inputs", "attempt", "worker", "device", "started (UTC)", "ended (UTC)", "outcome");
        foreach (var (jobId, seed) in sweep.FoldSeeds)
        {
            var fold = folds.FirstOrDefault(f => $"{f.Configuration}/fold_{f.Fold}" == jobId);
            if (fold is null || fold.Attempts.Count == 0)
            {
                table.AddRow(Markup.Escape(jobId), seed.ToString(CultureInfo.InvariantCulture), "", "", "", "", "", "", "not started");
                continue;
            }
            foreach (var a in fold.Attempts)
                table.AddRow(Markup.Escape(jobId), (a.Seed ?? seed).ToString(CultureInfo.InvariantCulture),
                    fold.InputsError is null ? fold.Inputs.Count.ToString(CultureInfo.InvariantCulture) : "-", a.Attempt.ToString(CultureInfo.InvariantCulture),
                    Markup.Escape(a.Worker), Markup.Escape(a.Device), Markup.Escape(Format(a.StartedAt)), Markup.Escape(a.EndedAt is { } end ? Format(end) : ""),
                    Markup.Escape(a.Outcome + (a.Error is { } err ? ": " + err : "")));
        }
        AnsiConsole.Write(table);
        return NnUnetApp.ExitOk;
    }

    /// <summary>A manifest file, a folder holding one, or a dataset (its results folder, where the default journal lives).</summary>
    private static string Locate(string target)
    {
        if (File.Exists(target)) return Path.GetFullPath(target);
        if (Directory.Exists(target) && File.Exists(Path.Combine(target, SweepManifest.FileName))) return Path.GetFullPath(Path.Combine(target, SweepManifest.FileName));
        var paths = NnUnetPaths.FromEnvironment();
        string dataset = DatasetLocator.ResolveName(target, paths);
        string path = Path.Combine(paths.ResultsDatasetFolder(dataset), SweepManifest.FileName);
        if (!File.Exists(path)) throw new FileNotFoundException($"{path} does not exist: no sweep of {dataset} has started with this version (or its journal lives elsewhere: pass the manifest's path)", path);
        return path;
    }

    /// <summary>The results root: the manifest sits in nnUNet_results/DATASET/ by default; else the environment's.</summary>
    private static string ResultsRootOf(string manifestPath, SweepManifest sweep)
    {
        string folder = Path.GetDirectoryName(Path.GetFullPath(manifestPath))!;
        if (Path.GetFileName(folder) == sweep.Dataset) return Path.GetDirectoryName(folder)!;
        return NnUnetPaths.FromEnvironment().RequireResults();
    }

    private static string Format(DateTime time) => time.ToUniversalTime().ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture);

    private static string Short(string? commit) => commit is null ? "-" : commit[..Math.Min(12, commit.Length)];
}
