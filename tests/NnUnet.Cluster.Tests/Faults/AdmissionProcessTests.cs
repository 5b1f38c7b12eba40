using System.Diagnostics;
using System.Text.Json;
using System.Text.RegularExpressions;
using NnUnet.Cluster.Hosting;

namespace NnUnet.Cluster.Tests.Faults;

/// <summary>
/// Admission by default, with real processes: a default coordinator creates the cluster credential in its
/// nnUNet_results; processes of another Unix user (<see cref="ProcessCluster.OutsiderName"/>) pointed at it are refused (the default one
/// cannot read the 0700 folder; one with a credential of its own and one over plain TCP are refused at the transport),
/// run no job and write nothing, and the sweep finishes with the legitimate worker, which found the credential with no
/// flag. The coordinator logs the refused address once (per minute), not per attempt. Each node on its own loopback
/// address (coordinator 127.0.0.2, worker 127.0.0.3, outsiders 127.0.0.6; their connections still leave from 127.0.0.1).
/// And <c>--insecure</c> works and warns.
/// </summary>
[Collection(ProcessTests.Collection)]
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class AdmissionProcessTests : IDisposable
{
    private readonly ProcessCluster _cluster = new() { CoordinatorHost = "127.0.0.2" };

    public void Dispose() => _cluster.Dispose();

    [Fact]
    public async Task Processes_of_another_user_are_refused_run_no_job_write_nothing_and_the_sweep_finishes()
    {
        var (uidText, gid) = ProcessCluster.OtherUser(ProcessCluster.OutsiderName);
        int uid = int.Parse(uidText, System.Globalization.CultureInfo.InvariantCulture);
        // a results file system every user may enter (as on a cluster); the credential folder in it is private
        File.SetUnixFileMode(_cluster.Root, (UnixFileMode)Convert.ToInt32("755", 8));
        Directory.CreateDirectory(_cluster.Results);
        var outsiderHome = Path.Combine(_cluster.Root, "outsider");
        var ownSecret = Path.Combine(outsiderHome, "secret");
        string[] outsiderResults = [Path.Combine(outsiderHome, "results-own-credential"), Path.Combine(outsiderHome, "results-plain-tcp")];
        foreach (var folder in outsiderResults) Directory.CreateDirectory(folder);
        ClusterCredential.LoadOrCreate(ownSecret).Dispose(); // a credential, but not the cluster's
        ProcessCluster.GiveTo(outsiderHome, uidText, gid);
        var environment = new Dictionary<string, string> { ["HOME"] = outsiderHome, ["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1" };

        var coordinator = _cluster.Coordinator("-c", "2d", "--folds", "0,1,2", "--epochs", "5", "--no-dashboard");
        var secretFolder = ClusterCredential.DefaultFolder(_cluster.Results);
        await Eventually.Until(() => coordinator.Text.Contains("coordinator of sweep", StringComparison.Ordinal), TimeSpan.FromSeconds(60),
            () => "the coordinator did not start:\n" + coordinator.Text);
        Assert.Contains($"cluster credential: {secretFolder} (created", coordinator.Text);

        // the outsiders come first: were they admitted, they would take the jobs
        var plain = _cluster.StartAsOutsider(environment, "worker", "--seed", _cluster.Seed, "--cpu", "1", "--config", _cluster.Hocon, "--simulate",
            "--sim-epoch-ms", "100", "--insecure", "--results", outsiderResults[1], "--host", "127.0.0.6");
        var ownCredential = _cluster.StartAsOutsider(environment, "worker", "--seed", _cluster.Seed, "--cpu", "1", "--config", _cluster.Hocon, "--simulate",
            "--sim-epoch-ms", "100", "--cluster-secret", ownSecret, "--results", outsiderResults[0], "--host", "127.0.0.6");
        var asDefault = _cluster.StartAsOutsider(environment, "worker", "--seed", _cluster.Seed, "--cpu", "1", "--config", _cluster.Hocon, "--simulate", "--host", "127.0.0.6");
        ProcessCluster.AssertExits(asDefault, 2, TimeSpan.FromSeconds(60), "the outsider's default worker");
        Assert.Contains($"error: cluster credential folder {secretFolder} is owned by user id 0, not by this user", asDefault.Text);

        await Task.Delay(TimeSpan.FromSeconds(10));
        var worker = _cluster.Worker(100, "--host", "127.0.0.3");
        ProcessCluster.AssertExits(coordinator, 0, TimeSpan.FromSeconds(120), "coordinator");
        ProcessCluster.AssertExits(worker, 0, TimeSpan.FromSeconds(30), "worker");

        using var grid = ProcessCluster.FinalGrid(coordinator);
        Assert.Equal("completed", grid.RootElement.GetProperty("status").GetString());
        _cluster.AssertEachFoldTrainedOnce(["2d/fold_0", "2d/fold_1", "2d/fold_2"]);
        foreach (var outsider in new[] { plain, ownCredential })
        {
            Assert.DoesNotContain("starting ", outsider.Text);
            Assert.DoesNotContain("registered with", outsider.Text);
        }
        foreach (var folder in outsiderResults)
            Assert.True(Directory.GetFileSystemEntries(folder, "*", SearchOption.AllDirectories).Length == 0,
                $"the outsider wrote into {folder}: {string.Join(", ", Directory.GetFileSystemEntries(folder, "*", SearchOption.AllDirectories))}");
        // nothing in the shared results is the outsider's
        foreach (var entry in Directory.GetFileSystemEntries(_cluster.Results, "*", SearchOption.AllDirectories))
            Assert.True(Owner(entry) != uid, $"{entry} belongs to the outsider");

        // refused at the transport, logged with the address once (per minute and host), not per attempt
        var log = coordinator.Text;
        var refusals = Regex.Matches(log, @"refused \[?[:\w.]*127\.0\.0\.1\]?:\d+: |Rejected incoming connection from \[\[?[:\w.]*127\.0\.0\.1");
        Assert.True(refusals.Count == 1, $"{refusals.Count} refusal lines in the coordinator's log (one per minute expected):\n{log}");
        Assert.DoesNotContain("TLS handshake failed", log);
        Assert.Contains("--insecure: this cluster runs over plain TCP", plain.Text);
    }

    [Fact]
    public async Task An_insecure_cluster_runs_over_plain_tcp_and_warns_on_stderr_and_in_the_dashboard()
    {
        int dashboardPort = ProcessCluster.FreePort();
        var coordinator = _cluster.Coordinator("-c", "2d", "--folds", "0,1", "--epochs", "4", "--insecure",
            "--dashboard", $"127.0.0.1:{dashboardPort}", "--linger", "30");
        var worker = _cluster.Worker(100, "--insecure");

        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{dashboardPort}/"), Timeout = TimeSpan.FromSeconds(5) };
        var body = await Eventually.Until(() => http.GetStringAsync("api/cluster")!, TimeSpan.FromSeconds(60),
            () => "the dashboard never answered:\n" + coordinator.Text, transient: e => e is HttpRequestException or TaskCanceledException);
        var cluster = JsonDocument.Parse(body).RootElement;
        Assert.True(cluster.GetProperty("insecure").GetBoolean());
        Assert.Equal("tcp", cluster.GetProperty("transport").GetString());
        Assert.Contains("plain TCP", cluster.GetProperty("warning").GetString());

        ProcessCluster.AssertExits(worker, 0, TimeSpan.FromSeconds(90), "worker");
        coordinator.Process.Kill(); // lingering for the dashboard
        Assert.Contains(ClusterAdmissionWarning, coordinator.Text);
        Assert.Contains(ClusterAdmissionWarning, worker.Text);
        Assert.Contains("worker node akka.tcp://", worker.Text); // plain TCP, not akka.ssl.tcp
        Assert.False(Directory.Exists(ClusterCredential.DefaultFolder(_cluster.Results)), "--insecure made a credential folder");
        Assert.True(File.Exists(Path.Combine(_cluster.FoldFolder("2d/fold_1"), "checkpoint_final.ckpt")));
    }

    private const string ClusterAdmissionWarning = "WARNING: --insecure: this cluster runs over plain TCP without admission";

    private static int Owner(string path)
    {
        var info = new ProcessStartInfo("stat", ["-c", "%u", path]) { RedirectStandardOutput = true, UseShellExecute = false };
        using var p = Process.Start(info)!;
        var text = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        return int.Parse(text.Trim(), System.Globalization.CultureInfo.InvariantCulture);
    }

}
