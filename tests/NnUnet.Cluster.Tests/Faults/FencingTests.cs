using System.Text.Json;
using System.Text.RegularExpressions;
using NnUnet.Cluster.Backends;
using NnUnet.Cluster.Sweeps;
using NnUnet.Core.IO;
using NnUnet.Core.Results;

namespace NnUnet.Cluster.Tests.Faults;

/// <summary>
/// Fencing with real files and the simulated trainer, run as a worker runs a job (<see cref="FencedAttempt"/>): a stale
/// attempt (its worker given up for lost, its cancel never delivered: a removed node, a partition, a late StartJob)
/// wakes up after a newer attempt of the same fold started, and must stop itself at its next write instead of
/// replacing the newer attempt's files.
/// </summary>
public sealed class FencingTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("nnunet-fence-").FullName;
    public void Dispose() => Directory.Delete(_root, true);

    private sealed class NoProgress : IJobProgressSink
    {
        public void ReportEpoch(EpochMetrics epoch) { }
    }

    private JobSpec Spec(int attempt) =>
        new("sweep-fence", "2d/fold_0", attempt, JobKind.Train, "Dataset004_Hippocampus", "nnUNetPlans", "nnUNetTrainer", "2d", 0,
            Epochs: 6, ContinueFromCheckpoint: attempt > 1, _root, [], []);

    private static JsonElement ReadJson(string path)
    {
        using var document = JsonDocument.Parse(File.ReadAllText(path));
        return document.RootElement.Clone();
    }

    [Fact]
    public async Task AStaleAttemptResumingAfterANewerAttemptStarted_StopsItself_AndTheNewerCheckpointRemains()
    {
        var stale = Spec(1);
        var fold = JobOutputs.FoldFolder(stale);
        var latest = ResultLayout.Checkpoint(fold, ResultLayout.CheckpointLatest);
        using var staleStalled = new ManualResetEventSlim();
        using var staleGoesOn = new ManualResetEventSlim();
        using var newerAtEpoch3 = new ManualResetEventSlim();
        using var newerGoesOn = new ManualResetEventSlim();
        var log = new SimulatedRunLog();

        // attempt 1 stalls in its write of epoch 2's checkpoint (a hung NFS write, a paused process) with nobody to cancel it
        var staleBackend = new SimulatedTrainingBackend(new SimulatedBackendOptions
        {
            EpochDuration = _ => TimeSpan.FromMilliseconds(20), Log = log,
            StallInCheckpointWrite = (_, epoch) =>
            {
                if (epoch != 2) return TimeSpan.Zero;
                staleStalled.Set();
                Assert.True(staleGoesOn.Wait(TimeSpan.FromSeconds(30)));
                return TimeSpan.FromMilliseconds(50); // and between its complete temp file and the rename
            },
        });
        var staleRun = Task.Run(() => FencedAttempt.RunAsync(stale, "node1/gpu0", () => staleBackend.RunAsync(stale, new NoProgress(), CancellationToken.None)));
        Assert.True(staleStalled.Wait(TimeSpan.FromSeconds(30)), "attempt 1 never reached epoch 2");
        Assert.Equal(1, ReadJson(latest).GetProperty("epoch").GetInt32());

        // attempt 2 on another worker continues from attempt 1's checkpoint and gets to epoch 3
        var newer = Spec(2);
        var newerBackend = new SimulatedTrainingBackend(new SimulatedBackendOptions
        {
            EpochDuration = _ => TimeSpan.FromMilliseconds(20), Log = log,
            AfterEpoch = (_, epoch) =>
            {
                if (epoch != 3) return;
                newerAtEpoch3.Set();
                Assert.True(newerGoesOn.Wait(TimeSpan.FromSeconds(30)));
            },
        });
        var newerRun = Task.Run(() => FencedAttempt.RunAsync(newer, "node2/gpu0", () => newerBackend.RunAsync(newer, new NoProgress(), CancellationToken.None)));
        Assert.True(newerAtEpoch3.Wait(TimeSpan.FromSeconds(30)), "attempt 2 never reached epoch 3");
        var newerCheckpoint = File.ReadAllText(latest);

        // attempt 1 wakes up and resumes writing: it stops itself at the rename, the newer checkpoint stays
        staleGoesOn.Set();
        var superseded = await Assert.ThrowsAsync<AttemptSupersededException>(() => staleRun);
        Assert.Contains("sweep-fence attempt 1 on node1/gpu0 was superseded by attempt 2 on node2/gpu0", superseded.Message);
        Assert.Equal(newerCheckpoint, File.ReadAllText(latest));
        Assert.Equal((3, 2), (ReadJson(latest).GetProperty("epoch").GetInt32(), ReadJson(latest).GetProperty("attempt").GetInt32()));
        Assert.Empty(Directory.GetFiles(fold, ".checkpoint_latest.ckpt.tmp-*")); // its complete temp file was dropped, not renamed

        newerGoesOn.Set();
        var outcome = await newerRun;
        Assert.Equal(ResultLayout.ValidationSummary(fold), outcome.SummaryPath);
        Assert.Null(JobOutputs.MissingOutputs(newer));
        Assert.Equal((6, 2), (ReadJson(latest).GetProperty("epoch").GetInt32(), ReadJson(latest).GetProperty("attempt").GetInt32()));
        Assert.Equal(2, ReadJson(ResultLayout.Checkpoint(fold, ResultLayout.CheckpointFinal)).GetProperty("attempt").GetInt32());
        Assert.Equal(new FenceToken("sweep-fence", 2, "node2/gpu0", default), WriteFence.Read(JobOutputs.FencePath(newer))! with { TakenAtUtc = default });

        // the training log: attempt 1's lines end where attempt 2 began (epoch 1); after that only attempt 2's epochs 2..6
        var lines = File.ReadAllLines(ResultLayout.TrainingLog(fold));
        int newerBegins = Array.FindIndex(lines, l => l.Contains("attempt 2: continue from checkpoint at epoch 1"));
        Assert.True(newerBegins > 0, string.Join("\n", lines));
        Assert.Equal(["epoch 1"], lines[..newerBegins].Where(l => l.StartsWith("epoch ")).Select(l => l[..l.IndexOf(':')]));
        Assert.DoesNotContain(lines[newerBegins..], l => Regex.IsMatch(l, @"\battempt 1\b"));
        Assert.Equal(Enumerable.Range(2, 5).Select(e => $"epoch {e}"), lines[newerBegins..].Where(l => l.StartsWith("epoch ")).Select(l => l[..l.IndexOf(':')]));
        Assert.Contains(lines, l => l.Contains("attempt 2: training done"));
        var runs = log.Runs;
        Assert.Single(runs, r => r is { Attempt: 1, Cancelled: true, Completed: false });
        Assert.Single(runs, r => r is { Attempt: 2, Completed: true });
    }

    [Fact]
    public async Task ALowerAttempt_NeverTakesTheFenceBack_ItStopsBeforeWritingAnything()
    {
        var newer = Spec(3);
        WriteFence.Take(JobOutputs.FencePath(newer), new FenceToken(newer.SweepId, 3, "node2/gpu0", DateTime.UtcNow));
        var backend = new SimulatedTrainingBackend(new SimulatedBackendOptions { EpochDuration = _ => TimeSpan.Zero });
        var late = Spec(2); // its StartJob came after attempt 3 had started

        var superseded = await Assert.ThrowsAsync<AttemptSupersededException>(() =>
            FencedAttempt.RunAsync(late, "node1/gpu0", () => backend.RunAsync(late, new NoProgress(), CancellationToken.None)));
        Assert.Equal((2, 3), (superseded.Own.Attempt, superseded.Newer.Attempt));
        Assert.Equal(3, WriteFence.Read(JobOutputs.FencePath(newer))!.Attempt);
        Assert.Equal([WriteFence.FileName], Directory.GetFiles(JobOutputs.FoldFolder(newer)).Select(Path.GetFileName));
    }
}
