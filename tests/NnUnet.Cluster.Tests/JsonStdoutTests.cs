using System.Text.Json;
using NnUnet.Cluster.Tests.Faults;

namespace NnUnet.Cluster.Tests;

/// <summary>
/// With <c>--json</c> stdout holds the JSON document and nothing else (progress, log lines and Akka's console logger go to
/// stderr): every verb that takes <c>--json</c> runs as a real `nnunet` process on a tiny synthetic dataset and all of
/// its stdout must parse as one JSON document.
/// </summary>
[Collection(ProcessTests.Collection)]
public sealed class JsonStdoutTests : IDisposable
{
    private readonly ProcessCluster _cluster = new();

    public void Dispose() => _cluster.Dispose();

    private JsonDocument RunJson(TimeSpan timeout, params string[] args)
    {
        var run = _cluster.StartApart(args);
        return Finish(run, timeout, "nnunet " + string.Join(' ', args));
    }

    private static JsonDocument Finish(ProcessCluster.RunningApart run, TimeSpan timeout, string what)
    {
        Assert.True(run.Process.WaitForExit(timeout), $"{what} did not exit in {timeout.TotalSeconds} s:\n{run.Out}\n{run.Err}");
        run.Process.WaitForExit();
        Assert.True(run.Process.ExitCode == 0, $"{what} exited {run.Process.ExitCode}:\nstdout:\n{run.Out}\nstderr:\n{run.Err}");
        try { return JsonDocument.Parse(run.Out); }
        catch (JsonException ex) { throw new Xunit.Sdk.XunitException($"{what}: stdout is not one JSON document ({ex.Message}):\n{run.Out}"); }
    }

    [Fact]
    public async Task EveryVerbWithJson_WritesOnlyTheDocumentToStdout()
    {
        string dataset = _cluster.PrepareSyntheticDataset(992, "Json", cases: 6);
        var minute = TimeSpan.FromMinutes(1);
        string image = Directory.EnumerateFiles(Path.Combine(_cluster.Raw, dataset, "imagesTr")).First();
        using (var doc = RunJson(minute, "image", "info", image, "--json")) Assert.True(doc.RootElement.TryGetProperty("shape", out _) || doc.RootElement.EnumerateObject().Any());
        using (var doc = RunJson(minute, "verify", "992", "--json")) Assert.True(doc.RootElement.GetProperty("ok").GetBoolean());
        using (var doc = RunJson(minute, "fingerprint", "992", "--json")) Assert.Equal(6, doc.RootElement.GetProperty("spacings").GetArrayLength());
        using (var doc = RunJson(minute, "splits", "992", "--json")) Assert.Equal(JsonValueKind.Object, doc.RootElement.ValueKind);
        using (var doc = RunJson(minute, "plan", "992", "--json")) Assert.True(doc.RootElement.GetProperty("configurations").TryGetProperty("2d", out _));
        using (var doc = RunJson(minute, "preprocess", "992", "-c", "2d", "--json")) Assert.Equal(JsonValueKind.Object, doc.RootElement.ValueKind);
        using (var doc = RunJson(minute, "train", "992", "2d", "0", "--dry-run", "--json")) Assert.Equal("2d", doc.RootElement.GetProperty("configuration").GetString());
        // real training prints epoch lines and the validation's progress: all on stderr
        using (var doc = RunJson(TimeSpan.FromMinutes(4), "train", "992", "2d", "0", "--epochs", "1", "--iters-per-epoch", "1", "--val-iters", "1", "--json"))
            Assert.Equal(JsonValueKind.Object, doc.RootElement.ValueKind);
        using (var doc = RunJson(TimeSpan.FromMinutes(2), "find-best", "992", "-c", "2d", "--folds", "0", "--json"))
            Assert.Equal(JsonValueKind.Object, doc.RootElement.ValueKind);

        // the cluster verbs (simulated trainer) in their own results folder
        string simulated = Path.Combine(_cluster.Root, "simulated");
        using (var doc = RunJson(TimeSpan.FromMinutes(2), "sweep", "992", "-c", "2d", "--folds", "0,1", "--epochs", "2", "--simulate", "--sim-epoch-ms", "50",
                   "--workers", "1", "--results", simulated, "--config", _cluster.Hocon, "--no-dashboard", "--json"))
            Assert.Equal("completed", doc.RootElement.GetProperty("status").GetString());

        string coordinated = Path.Combine(_cluster.Root, "coordinated");
        var coordinator = _cluster.StartApart("coordinator", "992", "-c", "2d", "--folds", "0", "--epochs", "2", "--simulate", "--results", coordinated,
            "--host", "127.0.0.1", "--port", _cluster.Port.ToString(), "--config", _cluster.Hocon, "--linger", "1", "--no-dashboard", "--json");
        await Eventually.Until(() => coordinator.Err.Contains("start workers with") ? "" : null, TimeSpan.FromSeconds(60), () => "coordinator did not start:\n" + coordinator.Err);
        // the coordinator's credential is in its --results; the other verbs are pointed at it
        string secret = Path.Combine(coordinated, ".nnunet-cluster");
        // with the cluster's own configuration file, as its coordinator got it
        using (var doc = RunJson(TimeSpan.FromMinutes(1), "sweep-status", "--seed", _cluster.Seed, "--cluster-secret", secret, "--config", _cluster.Hocon, "--json"))
            Assert.Equal(1, doc.RootElement.GetProperty("jobs").EnumerateArray().Count(j => j.GetProperty("job_id").GetString()!.StartsWith("2d/", StringComparison.Ordinal)));
        // a configuration file that is not there: the file named, no stack trace
        var missing = Path.Combine(_cluster.Root, "no-such.hocon");
        var refused = _cluster.StartApart("sweep-status", "--seed", _cluster.Seed, "--cluster-secret", secret, "--config", missing, "--json");
        Assert.True(refused.Process.WaitForExit(TimeSpan.FromSeconds(60)), "sweep-status --config <missing> did not exit");
        refused.Process.WaitForExit();
        Assert.NotEqual(0, refused.Process.ExitCode);
        Assert.Contains(missing, refused.Err);
        Assert.DoesNotContain("   at ", refused.Err);
        var worker = _cluster.Worker(50, "--cluster-secret", secret);
        using (var doc = Finish(coordinator, TimeSpan.FromMinutes(2), "nnunet coordinator --json"))
            Assert.Equal("completed", doc.RootElement.GetProperty("status").GetString());
        Assert.True(worker.Process.WaitForExit(TimeSpan.FromSeconds(30)), "worker did not exit:\n" + worker.Text);
    }
}
