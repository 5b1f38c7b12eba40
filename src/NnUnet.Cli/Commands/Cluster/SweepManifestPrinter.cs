using System.Globalization;
using System.Text.Json;
using NnUnet.Core.Datasets;
using NnUnet.Core.Reproducibility;
using NnUnet.Core.Results;

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

        Console.Out.WriteLine($"{sweep.SweepId} ({path})");
        Console.Out.WriteLine($"{sweep.Dataset}, {sweep.Plans}, {sweep.Trainer}: {string.Join(", ", sweep.Configurations)} x folds {string.Join(",", sweep.Folds)}" +
                              $"{(sweep.PredictTest ? ", test-set prediction" : "")}; budget {sweep.Budget.Epochs} epochs x {sweep.Budget.ItersPerEpoch} iterations (validation {sweep.Budget.ValIters})");
        long bytes = 0;
        foreach (var file in sweep.Inputs) bytes += file.Bytes;
        Console.Out.WriteLine(sweep.InputsError is { } error
            ? $"inputs: not recorded ({error})"
            : $"inputs: {sweep.Inputs.Count} files, {(bytes / 1e6).ToString("F1", CultureInfo.InvariantCulture)} MB, SHA-256 each (--json lists them)");

        // plain lines rather than tables: ids, hashes and times stay whole in a narrow or redirected console
        var output = Console.Out;
        output.WriteLine("starts:");
        foreach (var run in sweep.Runs)
        {
            var e = run.Environment;
            output.WriteLine($"  {Format(run.StartedAt)} on {e.Host}: product {e.ProductVersion} (commit {e.Commit ?? "unknown"}), .NET {e.DotNet}, " +
                             $"TorchSharp {e.TorchSharp ?? "-"}, libtorch {e.LibTorch ?? "-"}, device {e.Device ?? "-"}; " +
                             (run.ChangedInputs.Count == 0 ? "inputs unchanged" : $"{run.ChangedInputs.Count} input(s) changed:"));
            foreach (var change in run.ChangedInputs) output.WriteLine("    " + change);
        }
        output.WriteLine("folds:");
        foreach (var (jobId, seed) in sweep.FoldSeeds)
        {
            var fold = folds.FirstOrDefault(f => $"{f.Configuration}/fold_{f.Fold}" == jobId);
            if (fold is null || fold.Attempts.Count == 0)
            {
                output.WriteLine($"  {jobId}: seed {seed}, not started");
                continue;
            }
            output.WriteLine($"  {jobId}: seed {seed}, " + (fold.InputsError is { } inputsError ? $"inputs not recorded ({inputsError})" : $"{fold.Inputs.Count} inputs") +
                             $", {fold.Environment.Device ?? "-"} (TorchSharp {fold.Environment.TorchSharp ?? "-"}, libtorch {fold.Environment.LibTorch ?? "-"})");
            foreach (var a in fold.Attempts)
                output.WriteLine($"    attempt {a.Attempt} on {a.Worker} ({a.Device}{(a.Seed is { } s ? $", seed {s}" : "")}{(a.ContinuedFromCheckpoint ? ", from checkpoint" : "")}): " +
                                 $"{Format(a.StartedAt)} -> {(a.EndedAt is { } end ? Format(end) : "...")} {a.Outcome}{(a.Error is { } err ? ": " + err : "")}");
        }
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

}
