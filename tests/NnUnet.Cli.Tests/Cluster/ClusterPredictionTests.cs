using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.RegularExpressions;
using NnUnet.Core.Imaging;
using NnUnet.Core.Imaging.Nifti;
using NnUnet.Core.Datasets;
using NnUnet.Core.Results;
using NnUnet.Training.Inference;

namespace NnUnet.Cli.Tests.Cluster;

/// <summary>
/// Distributed prediction with real processes (issue 16): `nnunet coordinator --stay` (its own sweep simulated and done
/// first), `nnunet worker --stay` processes running the real TorchSharp predictor on CPU, and `nnunet predict --cluster`
/// sending a prediction of a tiny trained model (<see cref="PredictionFixture"/>) to them. Outputs are compared file by
/// file with a local prediction; kills and Ctrl-C are checked on disk (write times and inodes of the cases).
/// </summary>
public sealed class ClusterPredictionTests : IDisposable
{
    private const string Hocon = """
        akka.loglevel = INFO
        akka.cluster.failure-detector.heartbeat-interval = 200ms
        akka.cluster.failure-detector.acceptable-heartbeat-pause = 1s
        akka.cluster.split-brain-resolver.stable-after = 1s
        akka.cluster.gossip-interval = 200ms
        akka.cluster.leader-actions-interval = 200ms
        akka.cluster.unreachable-nodes-reaper-interval = 200ms
        akka.cluster.periodic-tasks-initial-delay = 100ms
        akka.cluster.singleton-proxy.singleton-identification-interval = 200ms
        nnunet.cluster.register-retry-interval = 300ms
        nnunet.cluster.report-resend-interval = 1s
        nnunet.cluster.lease-check-interval = 200ms
        nnunet.cluster.stop-timeout = 5s
        nnunet.cluster.adoption-grace = 2s
        nnunet.cluster.liveness-interval = 500ms
        """;

    private readonly PredictionFixture _fx = new("cluster-predict-");
    private readonly List<(Process Process, StringBuilder Output)> _processes = [];
    private readonly int _port = FreePort();
    private string Seed => $"akka.tcp://nnunet@127.0.0.1:{_port}";
    private string HoconFile => Path.Combine(_fx.Root, "test.hocon");
    private readonly string _model;

    public ClusterPredictionTests()
    {
        File.WriteAllText(HoconFile, Hocon);
        _model = _fx.WriteModel("3d_fullres", 0);
    }

    public void Dispose()
    {
        foreach (var (p, _) in _processes)
        {
            try { if (!p.HasExited) p.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
            p.Dispose();
        }
        _fx.Dispose();
    }

    private (Process Process, StringBuilder Output) Start(params string[] args)
    {
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        info.ArgumentList.Add(Repository.CliDll());
        foreach (var a in args) info.ArgumentList.Add(a);
        info.Environment["nnUNet_results"] = Path.Combine(_fx.Root, "sweep-results");
        info.Environment["nnUNet_raw"] = Path.Combine(_fx.Root, "raw");
        info.Environment["nnUNet_preprocessed"] = Path.Combine(_fx.Root, "preprocessed");
        var output = new StringBuilder();
        var process = new Process { StartInfo = info };
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.AppendLine(e.Data); };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        _processes.Add((process, output));
        return (process, output);
    }

    private static string Text(StringBuilder output) { lock (output) return output.ToString(); }

    private static void AssertExits((Process Process, StringBuilder Output) p, int code, TimeSpan timeout, string who)
    {
        Assert.True(p.Process.WaitForExit(timeout), $"{who} did not exit in {timeout.TotalSeconds} s:\n{Text(p.Output)}");
        p.Process.WaitForExit();
        Assert.True(code == p.Process.ExitCode, $"{who} exited {p.Process.ExitCode}, expected {code}:\n{Text(p.Output)}");
    }

    /// <summary>A coordinator that stays after its (simulated, one-fold) sweep finished, and that sweep run to its end by a simulated worker.</summary>
    private (Process Process, StringBuilder Output) CoordinatorWithFinishedSweep()
    {
        var coordinator = Start("coordinator", "Dataset004_Hippocampus", "-c", "2d", "--folds", "0", "--epochs", "1", "--simulate", "--sim-epoch-ms", "50",
            "--stay", "--no-dashboard", "--host", "127.0.0.1", "--port", _port.ToString(), "--config", HoconFile);
        var simulated = Start("worker", "--seed", Seed, "--cpu", "1", "--config", HoconFile, "--simulate", "--sim-epoch-ms", "50");
        AssertExits(simulated, 0, TimeSpan.FromMinutes(2), "simulated worker");
        Assert.False(coordinator.Process.HasExited, "the coordinator with --stay exited after its sweep:\n" + Text(coordinator.Output));
        return coordinator;
    }

    private (Process Process, StringBuilder Output) Worker(int actors) =>
        Start("worker", "--seed", Seed, "--cpu", actors.ToString(), "--config", HoconFile, "--stay");

    private (Process Process, StringBuilder Output) Client(string output, int shards) =>
        Start("predict", "-i", _fx.Input, "-o", output, "-m", _model, "-f", "0", "--cluster", Seed, "--shards", shards.ToString());

    /// <summary>A raw case big enough (12 x 24 x 20) that a shard of them takes seconds on a CPU worker, so that a kill lands inside one.</summary>
    private void WriteLargeInput(string caseId, int seed)
    {
        const int sz = 12, sy = 24, sx = 20;
        var rng = new Random(seed);
        var values = new float[sz * sy * sx];
        for (int i = 0; i < values.Length; i++) values[i] = 10f + (float)rng.NextDouble() * 90f;
        var image = MedicalImage.FromFloat(values, 1, sz, sy, sx, new ImageGeometry([0.9, 1.1, 1.7], [0, 0, 0], [1, 0, 0, 0, 1, 0, 0, 0, 1]));
        NiftiWriter.Write(Path.Combine(_fx.Input, RawDataset.ImageFileName(caseId, 0, ".nii.gz")), image);
    }

    /// <summary>The single-worker output: the same predictor on one CPU, locally.</summary>
    private string Reference()
    {
        string reference = Path.Combine(_fx.Root, "reference-" + Guid.NewGuid().ToString("N"));
        var run = Predictor.PredictFolder(_fx.Paths, _fx.Input, reference, new PredictionOptions { ModelFolder = _model, Folds = [0], Device = "cpu" });
        Assert.Equal(0, run.Failed);
        return reference;
    }

    private static void AssertSameSegmentations(string expected, string actual)
    {
        var names = Directory.GetFiles(expected, "*.nii.gz").Select(f => Path.GetFileName(f)!).Order(StringComparer.Ordinal).ToArray();
        Assert.NotEmpty(names);
        Assert.Equal(names, Directory.GetFiles(actual, "*.nii.gz").Select(f => Path.GetFileName(f)!).Order(StringComparer.Ordinal));
        foreach (var name in names)
            Assert.True(File.ReadAllBytes(Path.Combine(expected, name)).AsSpan().SequenceEqual(File.ReadAllBytes(Path.Combine(actual, name))),
                $"{name} differs from the single-worker output");
    }

    /// <summary>Each complete case (with its receipt) and its file's identity: inode and write time.</summary>
    private static Dictionary<string, (long Inode, DateTime Written)> CompleteCases(string output)
    {
        var cases = new Dictionary<string, (long, DateTime)>(StringComparer.Ordinal);
        string folder = Path.Combine(output, PredictionRecords.FolderName, "cases");
        if (!Directory.Exists(folder)) return cases;
        foreach (var receipt in Directory.GetFiles(folder, "*.json"))
        {
            string caseId = Path.GetFileNameWithoutExtension(receipt);
            string file = Path.Combine(output, caseId + ".nii.gz");
            if (File.Exists(file)) cases[caseId] = (Inode(file), File.GetLastWriteTimeUtc(file));
        }
        return cases;
    }

    private static long Inode(string path)
    {
        var stat = Process.Start(new ProcessStartInfo("stat", ["-c", "%i", path]) { RedirectStandardOutput = true })!;
        string text = stat.StandardOutput.ReadToEnd();
        stat.WaitForExit();
        return long.Parse(text.Trim(), System.Globalization.CultureInfo.InvariantCulture);
    }

    private static void AssertUnchanged(Dictionary<string, (long Inode, DateTime Written)> before, string output)
    {
        foreach (var (caseId, identity) in before)
        {
            string file = Path.Combine(output, caseId + ".nii.gz");
            Assert.True(identity == (Inode(file), File.GetLastWriteTimeUtc(file)), $"{caseId} was written again although it was complete");
        }
    }

    [Fact]
    public async Task TwelveCasesOverThreeWorkers_EqualTheSingleWorkerOutput_AndCtrlCThenTheSameCommandResumesFromTheWrittenCases()
    {
        for (int i = 1; i <= 12; i++) _fx.WriteInput($"case_{i:00}", i);
        var coordinator = CoordinatorWithFinishedSweep();
        var workers = Worker(3);
        string output = Path.Combine(_fx.Root, "out");
        var client = Client(output, shards: 3);
        AssertExits(client, 0, TimeSpan.FromMinutes(3), "predict --cluster");
        string text = Text(client.Output);
        Assert.Contains("submitted as 3 shard(s) and a merge job", text);
        Assert.Contains("12 cases written to", text);
        AssertSameSegmentations(Reference(), output);
        var manifest = PredictionManifest.Read(output);
        Assert.Equal(12, manifest.Cases.Count);
        for (int k = 0; k < 3; k++) Assert.True(File.Exists(PredictionRecords.ShardMarkerPath(output, k, 3)), $"shard {k}'s marker");
        // three worker actors each ran a shard (the worker ids differ by their #n suffix)
        var starts = Regex.Matches(Text(workers.Output), @"worker (\S+): starting (predict-\w+/shard_\d) attempt 1").Select(m => (m.Groups[1].Value, m.Groups[2].Value)).ToList();
        Assert.True(3 == starts.Select(s => s.Item2).Distinct().Count(), Text(workers.Output));
        Assert.Equal(3, starts.Select(s => s.Item1).Distinct().Count());

        // Ctrl-C of a second, slower submission once some cases are written; the same command again resumes
        foreach (var f in Directory.GetFiles(_fx.Input)) File.Delete(f);
        for (int i = 1; i <= 9; i++) WriteLargeInput($"big_{i}", i);
        string slow = Path.Combine(_fx.Root, "slow");
        var first = Client(slow, shards: 1);
        await Eventually.Until(() => CompleteCases(slow).Count >= 2, TimeSpan.FromMinutes(2),
            () => "no case written:\n" + Text(first.Output) + Text(workers.Output));
        Process.Start("kill", ["-INT", first.Process.Id.ToString()])!.WaitForExit();
        AssertExits(first, 130, TimeSpan.FromSeconds(30), "predict --cluster after Ctrl-C");
        Assert.True(Text(first.Output).Contains("are cancelled; the cases written stay"), Text(first.Output));
        await Eventually.Until(() => Text(workers.Output).Contains("cancelling predict-"), TimeSpan.FromSeconds(30),
            () => "the worker was not told to cancel:\n" + Text(first.Output) + "\nCOORDINATOR\n" + Text(coordinator.Output));
        await Task.Delay(1000); // the cancelled shard stops between cases
        var before = CompleteCases(slow);
        Assert.InRange(before.Count, 2, 8);                     // stopped in the middle
        Assert.False(File.Exists(PredictionManifest.PathIn(slow)));

        var again = Client(slow, shards: 1);
        AssertExits(again, 0, TimeSpan.FromMinutes(3), "predict --cluster, run again");
        Assert.Contains("retried", Text(again.Output));
        Assert.Equal(9, CompleteCases(slow).Count);
        AssertUnchanged(before, slow);
        AssertSameSegmentations(Reference(), slow);
        Assert.False(coordinator.Process.HasExited);
    }

    [Fact]
    public async Task AWorkerKilledMidShard_LosesNothing_ItsShardRunsAgainElsewhere_WithoutRedoingItsFinishedCases()
    {
        for (int i = 1; i <= 8; i++) WriteLargeInput($"big_{i}", i);
        CoordinatorWithFinishedSweep();
        var victim = Worker(1);
        await Eventually.Until(() => Text(victim.Output).Contains(" registered with "), TimeSpan.FromMinutes(1),
            () => "the victim never registered:\n" + Text(victim.Output));
        string output = Path.Combine(_fx.Root, "out");
        var client = Client(output, shards: 2);
        // the victim alone takes a shard; the survivor joins once the victim has written some of its cases
        var job = await Eventually.Until(() => Regex.Match(Text(victim.Output), @"starting (predict-\w+/shard_\d) attempt 1") is { Success: true } m ? m.Groups[1].Value : null,
            TimeSpan.FromMinutes(1), () => "the victim never started a shard:\n" + Text(victim.Output) + Text(client.Output));
        await Eventually.Until(() => CompleteCases(output).Count >= 2, TimeSpan.FromMinutes(2),
            () => "the victim wrote no case:\n" + Text(victim.Output));
        victim.Process.Kill(entireProcessTree: true); // SIGKILL mid-shard
        Assert.True(victim.Process.WaitForExit(TimeSpan.FromSeconds(10)));
        var before = CompleteCases(output);
        Assert.InRange(before.Count, 2, 3);                      // of its 4 cases
        var survivor = Worker(1);

        AssertExits(client, 0, TimeSpan.FromMinutes(4), "predict --cluster");
        Assert.Contains($"starting {job} attempt 2", Text(survivor.Output));
        AssertUnchanged(before, output);                         // finished cases are not redone
        Assert.Equal(8, PredictionManifest.Read(output).Cases.Count);
        // the receipts say which attempt wrote each case: the kept ones attempt 1, the rest of the shard attempt 2
        foreach (var caseId in before.Keys)
            Assert.Contains($"{job} attempt 1", File.ReadAllText(PredictionRecords.ReceiptPath(output, caseId)));
        AssertSameSegmentations(Reference(), output);
    }

    private static int FreePort()
    {
        for (int tries = 0; tries < 200; tries++)
        {
            int port = Random.Shared.Next(20000, 30000);
            try
            {
                using var listener = new TcpListener(IPAddress.Loopback, port);
                listener.Start();
                return port;
            }
            catch (SocketException) { }
        }
        throw new InvalidOperationException("no free port");
    }
}
