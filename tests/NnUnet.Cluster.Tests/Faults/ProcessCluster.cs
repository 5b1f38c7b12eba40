using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace NnUnet.Cluster.Tests.Faults;

/// <summary>
/// Real `nnunet coordinator` / `nnunet worker` processes (the CLI built next to these tests) on 127.0.0.1 with the
/// simulated backend, a temp nnUNet_results, and helpers to kill them (SIGKILL) and read what they left on disk.
/// </summary>
public sealed class ProcessCluster : IDisposable
{
    public const string Dataset = "Dataset004_Hippocampus";
    public string Root { get; } = Directory.CreateTempSubdirectory("nnunet-faults-").FullName;
    public string Results => Path.Combine(Root, "results");
    public string Raw => Path.Combine(Root, "raw");
    public int Port { get; } = FreePort();
    /// <summary>The coordinator's address: another loopback address (127.0.0.2, ...) stands for a host of its own.</summary>
    public string CoordinatorHost { get; init; } = "127.0.0.1";
    public string Seed => $"akka.tcp://nnunet@{CoordinatorHost}:{Port}";
    public string Hocon { get; }
    private readonly List<Process> _processes = [];

    public ProcessCluster(string? extraHocon = null)
    {
        Hocon = Path.Combine(Root, "test.hocon");
        File.WriteAllText(Hocon, LocalCluster.TestHocon + "\nakka.loglevel = INFO\n" + (extraHocon ?? ""));
    }

    /// <summary>
    /// Hocon lines giving <paramref name="paths"/> their shipped values (cluster-config/base.hocon, read from there),
    /// over the tests' fast ones (<see cref="LocalCluster.TestHocon"/>).
    /// </summary>
    public static string Shipped(params string[] paths)
    {
        var shipped = Akka.Configuration.ConfigurationFactory.ParseString(File.ReadAllText(Path.Combine(Repository.Root, "cluster-config", "base.hocon")));
        return string.Join('\n', paths.Select(path => $"{path} = {shipped.GetString(path)}"));
    }

    /// <summary>
    /// Failure detection and downing as shipped: for tests that measure detection, or whose links are slow (the tests'
    /// fast detector allows a 1 s pause, which a lossy link with a 400 ms round trip exceeds now and then).
    /// </summary>
    public static string ShippedFailureDetection() => Shipped("akka.cluster.failure-detector.heartbeat-interval",
        "akka.cluster.failure-detector.acceptable-heartbeat-pause", "akka.cluster.failure-detector.threshold", "akka.cluster.split-brain-resolver.stable-after");

    public sealed record Running(Process Process, StringBuilder Output)
    {
        public string Text { get { lock (Output) return Output.ToString(); } }
        public void Sigkill() => Process.Kill(entireProcessTree: true); // SIGKILL: no leave, no checkpoint on the way out
    }

    public Running Coordinator(params string[] sweepArgs) =>
        Start(["coordinator", Dataset, .. sweepArgs, "--host", CoordinatorHost, "--port", Port.ToString(), "--config", Hocon, "--linger", "1", "--json", "--simulate"]);

    /// <summary>A second coordinator-role node (stand-by) on its own port that joins the first one; no dashboard.</summary>
    public Running StandbyCoordinator(int port, params string[] sweepArgs) =>
        Start(["coordinator", Dataset, .. sweepArgs, "--host", "127.0.0.1", "--port", port.ToString(), "--seed", Seed, "--config", Hocon,
            "--linger", "1", "--json", "--simulate", "--no-dashboard"]);

    public Running Worker(int epochMs, params string[] extra) =>
        Start(["worker", "--seed", Seed, "--cpu", "1", "--config", Hocon, "--simulate", "--sim-epoch-ms", epochMs.ToString(), .. extra]);

    public Running Start(params string[] args)
    {
        var output = new StringBuilder();
        return new Running(Launch(args, output, output), output);
    }

    /// <summary>
    /// A worker process of another Unix user (<see cref="OtherUser"/>), as on a node whose results mount this cluster's
    /// user cannot write: it reads the configuration, but every folder it must create under nnUNet_results is refused.
    /// </summary>
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    public Running WorkerAsOtherUser(int epochMs, params string[] extra)
    {
        var (uid, gid) = OtherUser();
        // the temp root is the test user's alone (0700): the other user must reach the configuration in it (and write
        // the results, when they are shared with it)
        var shared = SharedWithOtherUser ? UnixFileMode.GroupWrite | UnixFileMode.OtherWrite : UnixFileMode.None;
        File.SetUnixFileMode(Root, File.GetUnixFileMode(Root) | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute | shared);
        // a member of the cluster: it gets its own copy of the coordinator's credential (as an administrator would hand
        // it to a second account), private to it, once the coordinator has made it
        var credential = NnUnet.Cluster.Hosting.ClusterCredential.DefaultFolder(Results);
        Eventually.Until(() => NnUnet.Cluster.Hosting.ClusterCredential.Exists(credential), TimeSpan.FromSeconds(60),
            () => $"the coordinator made no cluster credential in {credential}").GetAwaiter().GetResult();
        var copy = Path.Combine(Root, "credential-" + OtherUserName);
        Directory.CreateDirectory(copy, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        File.Copy(NnUnet.Cluster.Hosting.ClusterCredential.CertificatePath(credential), NnUnet.Cluster.Hosting.ClusterCredential.CertificatePath(copy));
        GiveTo(copy, uid, gid);
        var output = new StringBuilder();
        return new Running(Launch(["worker", "--seed", Seed, "--cpu", "1", "--config", Hocon, "--simulate", "--sim-epoch-ms", epochMs.ToString(),
                "--cluster-secret", copy, .. extra],
            output, output, ["setpriv", "--reuid", uid, "--regid", gid, "--clear-groups", "--"]), output);
    }

    public const string OtherUserName = "nnunet-broken";

    /// <summary>The uid and gid of <paramref name="name"/> (default <see cref="OtherUserName"/>), a system user created when absent (the tests run as root, as CI does).</summary>
    public static (string Uid, string Gid) OtherUser(string name = OtherUserName)
    {
        Assert.True(Environment.UserName == "root" || Environment.GetEnvironmentVariable("USER") == "root",
            "this test runs a worker as another Unix user (setpriv) and needs root, as the CI runs the tests");
        if (Id("-u") is null)
        {
            using var useradd = Process.Start(new ProcessStartInfo("useradd", ["--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name])
                { RedirectStandardError = true })!;
            useradd.WaitForExit();
            Assert.True(useradd.ExitCode is 0 or 9, $"useradd {name}: {useradd.StandardError.ReadToEnd()}"); // 9: created meanwhile
        }
        return (Id("-u") ?? throw new InvalidOperationException($"no user {name}"), Id("-g")!);

        string? Id(string what)
        {
            using var id = Process.Start(new ProcessStartInfo("id", [what, name]) { RedirectStandardOutput = true, RedirectStandardError = true })!;
            string text = id.StandardOutput.ReadToEnd().Trim();
            id.WaitForExit();
            return id.ExitCode == 0 ? text : null;
        }
    }

    /// <summary>An nnunet process of <see cref="OutsiderName"/>, a user who is not meant to join, with <paramref name="environment"/> over this cluster's.</summary>
    public Running StartAsOutsider(IReadOnlyDictionary<string, string> environment, params string[] args)
    {
        var (uid, gid) = OtherUser(OutsiderName);
        var output = new StringBuilder();
        return new Running(Launch(args, output, output, ["setpriv", "--reuid", uid, "--regid", gid, "--clear-groups", "--"], environment), output);
    }

    /// <summary>Another Unix user who holds no credential of the cluster (a rogue process on a shared machine).</summary>
    public const string OutsiderName = "nnunet-outsider";

    /// <summary>Makes <paramref name="path"/> (recursively) the other user's, as an administrator would hand it over.</summary>
    public static void GiveTo(string path, string uid, string gid)
    {
        using var chown = Process.Start(new ProcessStartInfo("chown", ["-R", $"{uid}:{gid}", path]) { RedirectStandardError = true })!;
        string error = chown.StandardError.ReadToEnd();
        chown.WaitForExit();
        Assert.True(chown.ExitCode == 0, $"chown -R {uid}:{gid} {path}: {error}");
    }

    /// <summary>A process whose stdout and stderr are kept apart (to check what stdout alone holds).</summary>
    public sealed record RunningApart(Process Process, StringBuilder Stdout, StringBuilder Stderr)
    {
        public string Out { get { lock (Stdout) return Stdout.ToString(); } }
        public string Err { get { lock (Stderr) return Stderr.ToString(); } }
    }

    public RunningApart StartApart(params string[] args)
    {
        StringBuilder stdout = new(), stderr = new();
        return new RunningApart(Launch(args, stdout, stderr), stdout, stderr);
    }

    /// <summary>
    /// Every process creates its files and folders with umask 0, so that a process of another Unix user (a node of the
    /// same cluster under another account, see <see cref="WorkerAsOtherUser"/>) can write into what the others created.
    /// </summary>
    public bool SharedWithOtherUser { get; init; }

    private Process Launch(string[] args, StringBuilder stdout, StringBuilder stderr, string[]? runAs = null,
        IReadOnlyDictionary<string, string>? environment = null)
    {
        string[] command = [.. runAs ?? [], .. SharedWithOtherUser ? ["sh", "-c", "umask 0; exec \"$0\" \"$@\""] : Array.Empty<string>(), "dotnet"];
        var info = new ProcessStartInfo(command[0]) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in command[1..]) info.ArgumentList.Add(a);
        if (runAs is not null) info.Environment["HOME"] = Path.GetTempPath(); // the other user has no home of its own
        info.ArgumentList.Add(Repository.CliDll());
        foreach (var a in args) info.ArgumentList.Add(a);
        info.Environment["nnUNet_results"] = Results;
        info.Environment["nnUNet_preprocessed"] = Path.Combine(Root, "preprocessed");
        info.Environment["nnUNet_raw"] = Raw;
        foreach (var (key, value) in environment ?? new Dictionary<string, string>()) info.Environment[key] = value;
        var process = new Process { StartInfo = info };
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (stdout) stdout.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (stderr) stderr.AppendLine(e.Data); };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        _processes.Add(process);
        return process;
    }

    /// <summary>
    /// A tiny synthetic dataset (organ + lesion, 8x24x24) through the real CLI: written to nnUNet_raw, fingerprinted,
    /// planned, preprocessed for 2d and 3d_fullres. Returns the dataset's name (DatasetNNN_Name).
    /// </summary>
    public string PrepareSyntheticDataset(int id, string name, int cases)
    {
        var location = NnUnet.Core.Demo.SyntheticDataset.Write(Raw, id, name,
            new NnUnet.Core.Demo.SyntheticDatasetOptions(TrainingCases: cases, TestCases: 0, Shape: [8, 24, 24]));
        string idText = id.ToString(System.Globalization.CultureInfo.InvariantCulture);
        Run("fingerprint", idText);
        Run("plan", idText);
        Run("preprocess", idText, "-c", "2d", "3d_fullres");
        return location.Name;
    }

    /// <summary>Runs one nnunet verb to completion (set-up steps of a test).</summary>
    public void Run(params string[] args) => AssertExits(Start(args), 0, TimeSpan.FromMinutes(3), "nnunet " + string.Join(' ', args));

    public string FoldFolder(string jobId, string dataset = Dataset) =>
        Path.Combine(Results, dataset, $"nnUNetTrainer__nnUNetPlans__{jobId.Split('/')[0]}", jobId.Split('/')[1]);

    public string TrainingLog(string jobId, string dataset = Dataset) => Path.Combine(FoldFolder(jobId, dataset), "training_log.txt");

    public string ReadLog(string jobId, string dataset = Dataset) =>
        File.Exists(TrainingLog(jobId, dataset)) ? File.ReadAllText(TrainingLog(jobId, dataset)) : "";

    /// <summary>
    /// The same <c>nnunet coordinator</c> command again (after a crash): waits until every worker has registered with
    /// the new process, and records how long that took from the command's start (<see cref="ReliabilityMeasurements"/>)
    /// under <paramref name="conditions"/>.
    /// </summary>
    public async Task<Running> RestartCoordinator(string[] sweepArgs, IReadOnlyList<Running> workers, TimeSpan timeout, string conditions)
    {
        var registrationsBefore = workers.Select(w => Regex.Count(w.Text, "registered with")).ToArray();
        var restart = Stopwatch.StartNew();
        var coordinator = Coordinator(sweepArgs);
        await Eventually.Until(() => workers.Select((w, i) => Regex.Count(w.Text, "registered with") > registrationsBefore[i]).All(b => b), timeout,
            () => "the workers did not re-register:\n" + coordinator.Text + "\n" + string.Join("\n", workers.Select(w => w.Text)));
        ReliabilityMeasurements.Record("coordinator restart -> every worker re-registered", restart.Elapsed, conditions);
        return coordinator;
    }

    /// <summary>The epoch numbers in a fold's training log, in order.</summary>
    public int[] Epochs(string jobId) =>
        Regex.Matches(ReadLog(jobId), @"^epoch (\d+):", RegexOptions.Multiline).Select(m => int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture)).ToArray();

    /// <summary>
    /// The end of a coordinator restart: the restarted coordinator and the workers exit 0, the sweep completed, and
    /// every fold kept its first attempt (attempt 1, no re-queue, no "continue from checkpoint", every epoch 1..
    /// <paramref name="epochs"/> once and in order, trained once), each worker having re-attached to its running attempt.
    /// </summary>
    public void AssertFoldsKeptTheirFirstAttempt(Running coordinator, IReadOnlyList<Running> workers, string[] trainJobs, int epochs)
    {
        AssertExits(coordinator, 0, TimeSpan.FromMinutes(3), "restarted coordinator");
        foreach (var w in workers) AssertExits(w, 0, TimeSpan.FromSeconds(60), "worker");
        using var grid = FinalGrid(coordinator);
        Assert.Equal("completed", grid.RootElement.GetProperty("status").GetString());
        foreach (var jobId in trainJobs)
        {
            var job = grid.RootElement.GetProperty("jobs").EnumerateArray().Single(j => j.GetProperty("job_id").GetString() == jobId);
            Assert.True((1, 0) == (job.GetProperty("attempt").GetInt32(), job.GetProperty("requeues").GetInt32()),
                $"{jobId} moved: attempt {job.GetProperty("attempt").GetInt32()}, requeues {job.GetProperty("requeues").GetInt32()}\n{coordinator.Text}\n{string.Join("\n", workers.Select(w => w.Text))}");
            var log = ReadLog(jobId);
            Assert.DoesNotContain("continue from checkpoint", log);
            Assert.DoesNotContain("attempt 2", log);
            Assert.Equal(Enumerable.Range(1, epochs), Epochs(jobId)); // the epoch counter never went back
        }
        AssertEachFoldTrainedOnce(trainJobs);
        Assert.All(workers, w => Assert.Matches(@"re-attached to \S+ attempt 1", w.Text));
    }

    /// <summary>The coordinator's final grid (printed with --json after the sweep).</summary>
    public static JsonDocument FinalGrid(Running coordinator)
    {
        var output = coordinator.Text;
        int start = output.IndexOf("{\n", StringComparison.Ordinal);
        if (start < 0) throw new InvalidDataException("the coordinator printed no JSON grid:\n" + output);
        return JsonDocument.Parse(output[start..]);
    }

    /// <summary>Waits for the process to exit with the code; fails with its output otherwise.</summary>
    public static void AssertExits(Running r, int code, TimeSpan timeout, string who)
    {
        Assert.True(r.Process.WaitForExit(timeout), $"{who} did not exit in {timeout.TotalSeconds} s:\n{r.Text}");
        r.Process.WaitForExit(); // drain the output readers
        Assert.True(code == r.Process.ExitCode, $"{who} exited {r.Process.ExitCode}, expected {code}:\n{r.Text}");
    }

    /// <summary>
    /// Every training fold's log shows one "training done" (its result was produced once) and at most one fresh start
    /// at epoch 0 (a fold that had a checkpoint never restarts from scratch).
    /// </summary>
    public void AssertEachFoldTrainedOnce(IEnumerable<string> trainJobIds)
    {
        foreach (var job in trainJobIds)
        {
            var log = ReadLog(job);
            Assert.True(1 == Regex.Count(log, "training done"), $"{job}: 'training done' {Regex.Count(log, "training done")} times:\n{log}");
            Assert.True(1 == Regex.Count(log, "start at epoch 0"), $"{job} started from epoch 0 {Regex.Count(log, "start at epoch 0")} times:\n{log}");
            Assert.True(File.Exists(Path.Combine(FoldFolder(job), "checkpoint_final.ckpt")), job);
            Assert.True(File.Exists(Path.Combine(FoldFolder(job), "validation", "summary.json")), job);
        }
    }

    /// <summary>
    /// A free port below the kernel's ephemeral range. A port the kernel handed out for bind(0) and that was released
    /// again can be handed to the next bind(0) (a worker's own remoting port) before its owner binds it: CI once saw a
    /// worker take the coordinator's port and form a cluster with itself.
    /// </summary>
    public static int FreePort()
    {
        int ephemeralLow = EphemeralRangeStart();
        int low = Math.Max(1024, ephemeralLow - 12000);
        for (int tries = 0; tries < 200; tries++)
        {
            int port = Random.Shared.Next(low, ephemeralLow);
            lock (HandedOut) if (!HandedOut.Add(port)) continue;
            try
            {
                using var listener = new TcpListener(IPAddress.Loopback, port);
                listener.Start();
                return port;
            }
            catch (SocketException) { }
        }
        throw new InvalidOperationException($"no free port in {low}..{ephemeralLow - 1} after 200 tries");
    }

    private static readonly HashSet<int> HandedOut = [];

    private static int EphemeralRangeStart()
    {
        const string range = "/proc/sys/net/ipv4/ip_local_port_range";
        return File.Exists(range) && int.TryParse(File.ReadAllText(range).Split((char[])['\t', ' '], StringSplitOptions.RemoveEmptyEntries)[0], out int start)
            && start > 2048 ? start : 32768;
    }

    public void Dispose()
    {
        foreach (var p in _processes)
        {
            try { if (!p.HasExited) p.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
            p.Dispose();
        }
        try { Directory.Delete(Root, true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
