using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace NnUnet.Cluster.Tests;

/// <summary>
/// Real `nnunet` processes (the CLI built next to these tests): one coordinator and two workers on 127.0.0.1, like
/// scripts/launch-local-cluster.sh. One worker is killed with SIGKILL in the middle of a fold; the fold resumes from
/// its checkpoint on the other worker and the sweep finishes: once with the simulated backend (fast, exact epochs), once
/// with real TorchSharp training of a tiny synthetic dataset (2 configurations x 2 folds).
/// </summary>
[Collection(ProcessTests.Collection)]
public sealed class MultiProcessTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("nnunet-mp-").FullName;
    private readonly List<Process> _processes = [];

    public void Dispose()
    {
        foreach (var p in _processes)
        {
            try { if (!p.HasExited) p.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
            p.Dispose();
        }
        try { Directory.Delete(_root, true); } catch (IOException) { }
    }

    private static string CliDll()
    {
        var config = typeof(MultiProcessTests).Assembly.Location.Contains("/Release/") ? "Release" : "Debug";
        var repo = Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, "../../../../.."));
        var dll = Path.Combine(repo, "src", "NnUnet.Cli", "bin", config, "net10.0", "nnunet.dll");
        if (!File.Exists(dll)) throw new FileNotFoundException($"{dll} does not exist: build src/NnUnet.Cli ({config}) first");
        return dll;
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private sealed record Running(Process Process, StringBuilder Output);

    /// <summary>Runs one nnunet verb to completion (set-up steps of a test).</summary>
    private void Run(params string[] args)
    {
        var step = Start(args);
        Assert.True(step.Process.WaitForExit(TimeSpan.FromMinutes(3)), $"nnunet {string.Join(' ', args)} did not finish:\n" + Text(step));
        Assert.True(step.Process.ExitCode == 0, $"nnunet {string.Join(' ', args)} failed ({step.Process.ExitCode}):\n" + Text(step));
    }

    private Running Start(params string[] args)
    {
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        info.ArgumentList.Add(CliDll());
        foreach (var a in args) info.ArgumentList.Add(a);
        info.Environment["nnUNet_results"] = Path.Combine(_root, "results");
        info.Environment["nnUNet_preprocessed"] = Path.Combine(_root, "preprocessed");
        info.Environment["nnUNet_raw"] = Path.Combine(_root, "raw");
        var output = new StringBuilder();
        var process = new Process { StartInfo = info };
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.AppendLine(e.Data); };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        _processes.Add(process);
        return new Running(process, output);
    }

    private static string Text(Running r) { lock (r.Output) return r.Output.ToString(); }

    private static async Task<T> Eventually<T>(Func<T?> probe, TimeSpan timeout, string what) where T : class
    {
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline)
        {
            if (probe() is { } value) return value;
            await Task.Delay(100);
        }
        throw new TimeoutException(what);
    }

    [Fact]
    public async Task SigkilledWorkerProcess_FoldResumesFromCheckpoint_SweepFinishes()
    {
        var port = FreePort();
        var seed = $"akka.tcp://nnunet@127.0.0.1:{port}";
        var hocon = Path.Combine(_root, "test.hocon");
        File.WriteAllText(hocon, LocalCluster.TestHocon + "\nakka.loglevel = INFO\n");
        var coordinator = Start("coordinator", "Dataset004_Hippocampus", "-c", "2d,3d_fullres", "--folds", "0,1", "--epochs", "8",
            "--host", "127.0.0.1", "--port", port.ToString(), "--config", hocon, "--linger", "1", "--json", "--simulate");
        string[] workerArgs = ["worker", "--seed", seed, "--cpu", "1", "--config", hocon, "--simulate", "--sim-epoch-ms", "150"];
        // The victim alone, so that it gets a job however slowly processes start; the survivor joins after the kill and
        // does the rest (so no timing decides who runs what).
        var victim = Start(workerArgs);
        var job = await Eventually(() => Regex.Match(Text(victim), @"starting (\S+) attempt 1") is { Success: true } m ? m.Groups[1].Value : null,
            TimeSpan.FromSeconds(60), "the victim worker never started a job:\n" + Text(victim));

        // SIGKILL once the victim's fold has checkpointed epoch 3
        var config = job.Split('/')[0];
        var fold = job.Split('/')[1];
        var foldDir = Path.Combine(_root, "results", "Dataset004_Hippocampus", $"nnUNetTrainer__nnUNetPlans__{config}", fold);
        var log = Path.Combine(foldDir, "training_log.txt");
        await Eventually(() => File.Exists(log) && File.ReadAllText(log).Contains("epoch 3:") ? "" : null, TimeSpan.FromSeconds(20), $"{job} did not reach epoch 3");
        victim.Process.Kill(entireProcessTree: true); // SIGKILL: no leave, no checkpoint on the way out
        var survivor = Start(workerArgs);

        Assert.True(coordinator.Process.WaitForExit(TimeSpan.FromSeconds(60)), "coordinator did not finish:\n" + Text(coordinator));
        Assert.Equal(0, coordinator.Process.ExitCode);
        Assert.True(survivor.Process.WaitForExit(TimeSpan.FromSeconds(20)), "survivor did not exit after the sweep:\n" + Text(survivor));
        Assert.Equal(0, survivor.Process.ExitCode);

        var output = Text(coordinator);
        using var json = JsonDocument.Parse(output[output.IndexOf("{\n", StringComparison.Ordinal)..]);
        Assert.Equal("completed", json.RootElement.GetProperty("status").GetString());
        var killed = json.RootElement.GetProperty("jobs").EnumerateArray().Single(j => j.GetProperty("job_id").GetString() == job);
        Assert.True(killed.GetProperty("attempt").GetInt32() >= 2);
        Assert.Matches(@"continue from checkpoint at epoch [3-7]", File.ReadAllText(log));
        Assert.True(File.Exists(Path.Combine(foldDir, "checkpoint_final.ckpt")));
    }

    [Fact]
    public async Task RealTraining_SigkilledWorkerProcess_FoldResumesFromCheckpoint_SweepFinishes()
    {
        // A tiny real dataset through the real pipeline: 10 cases, planned and preprocessed by the CLI.
        NnUnet.Core.Demo.SyntheticDataset.Write(Path.Combine(_root, "raw"), 991, "Tiny",
            new NnUnet.Core.Demo.SyntheticDatasetOptions(TrainingCases: 10, TestCases: 0, Shape: [8, 24, 24]));
        Run("fingerprint", "991");
        Run("plan", "991");
        Run("preprocess", "991", "-c", "2d", "3d_fullres");

        var port = FreePort();
        var seed = $"akka.tcp://nnunet@127.0.0.1:{port}";
        var hocon = Path.Combine(_root, "test.hocon");
        File.WriteAllText(hocon, LocalCluster.TestHocon + "\nakka.loglevel = INFO\n");
        var coordinator = Start("coordinator", "991", "-c", "2d,3d_fullres", "--folds", "0,1", "--epochs", "6",
            "--host", "127.0.0.1", "--port", port.ToString(), "--config", hocon, "--linger", "1", "--json");
        string[] workerArgs = ["worker", "--seed", seed, "--cpu", "1", "--config", hocon, "--iters-per-epoch", "3", "--val-iters", "2"];
        var victim = Start(workerArgs);
        var job = await Eventually(() => Regex.Match(Text(victim), @"starting (\S+) attempt 1") is { Success: true } m ? m.Groups[1].Value : null,
            TimeSpan.FromSeconds(90), "the victim worker never started a job:\n" + Text(victim));
        var foldDir = Path.Combine(_root, "results", "Dataset991_Tiny", $"nnUNetTrainer__nnUNetPlans__{job.Split('/')[0]}", job.Split('/')[1]);
        var log = Path.Combine(foldDir, "training_log.txt");
        // SIGKILL once two epochs have ended; the second checkpoint may still be in flight, so the resume is from epoch 1 or 2.
        await Eventually(() => File.Exists(log) && Regex.Matches(File.ReadAllText(log), "Epoch time").Count >= 2 ? "" : null,
            TimeSpan.FromSeconds(120), $"{job} did not finish two epochs");
        victim.Process.Kill(entireProcessTree: true);
        var survivor = Start(workerArgs); // joins after the kill and does the rest

        Assert.True(coordinator.Process.WaitForExit(TimeSpan.FromMinutes(6)), "coordinator did not finish:\n" + Text(coordinator));
        Assert.True(coordinator.Process.ExitCode == 0, "coordinator failed:\n" + Text(coordinator));
        Assert.True(survivor.Process.WaitForExit(TimeSpan.FromSeconds(30)), "survivor did not exit after the sweep:\n" + Text(survivor));

        var output = Text(coordinator);
        using var json = JsonDocument.Parse(output[output.IndexOf("{\n", StringComparison.Ordinal)..]);
        Assert.Equal("completed", json.RootElement.GetProperty("status").GetString());
        var killed = json.RootElement.GetProperty("jobs").EnumerateArray().Single(j => j.GetProperty("job_id").GetString() == job);
        Assert.True(killed.GetProperty("attempt").GetInt32() >= 2);
        var text = File.ReadAllText(log);
        Assert.True(Regex.IsMatch(text, @"continuing from epoch [1-5]"), "the fold did not resume from its checkpoint:\n" + text); // not from epoch 0
        Assert.True(File.Exists(Path.Combine(foldDir, "checkpoint_final.ckpt")));
        Assert.True(File.Exists(Path.Combine(foldDir, "validation", "summary.json")));
    }
}
