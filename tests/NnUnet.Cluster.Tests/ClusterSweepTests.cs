using NnUnet.Cluster.Backends;
using NnUnet.Cluster.Sweeps;
using NnUnet.Core.Results;

namespace NnUnet.Cluster.Tests;

/// <summary>Coordinator + two worker ActorSystems on 127.0.0.1 with the simulated backend.</summary>
public class ClusterSweepTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(25);

    [Fact]
    public async Task WholeGrid_Completes_AndCascadeStartsOnlyAfterEveryLowresFold()
    {
        using var cluster = new LocalCluster();
        var definition = LocalCluster.Definition(["2d", "3d_fullres", "3d_lowres", "3d_cascade_fullres"], [0, 1, 2, 3, 4], 3);
        var coordinator = cluster.StartCoordinator(definition);
        var seed = LocalCluster.AddressOf(coordinator);
        var backend = cluster.Backend(TimeSpan.FromMilliseconds(15));
        cluster.StartWorker(seed, 1, backend);
        cluster.StartWorker(seed, 1, backend);

        var snapshot = await LocalCluster.WaitFinished(coordinator, Timeout);

        Assert.Equal(SweepStatus.Completed, snapshot.Status);
        Assert.Equal(21, snapshot.CompletedJobs);
        foreach (var job in snapshot.Jobs)
        {
            Assert.Equal(1, cluster.Log.CompletedRuns(job.JobId));
            if (job.Kind == JobKind.Train)
            {
                var fold = Path.Combine(cluster.ResultsRoot, "Dataset004_Hippocampus", $"nnUNetTrainer__nnUNetPlans__{job.Configuration}", $"fold_{job.Fold}");
                Assert.True(File.Exists(Path.Combine(fold, "validation", "summary.json")), fold);
                Assert.True(File.Exists(ResultLayout.Checkpoint(fold, ResultLayout.CheckpointFinal)), fold);
                Assert.Equal(job.TotalEpochs, job.Epoch);
                Assert.NotNull(job.BestEmaPseudoDice);
            }
        }
        // both workers did work, and the cascade ran strictly after the last low-res fold had completed
        Assert.Equal(2, snapshot.Workers.Length);
        Assert.Equal(2, snapshot.RecentEvents.Where(e => e.Kind == "assigned").Select(e => e.Text.Split(" -> ")[1].Split(' ')[0]).Distinct().Count());
        var events = snapshot.RecentEvents;
        int lastLowresDone = Array.FindLastIndex(events, e => e.Kind == "completed" && e.JobId!.StartsWith("3d_lowres/"));
        int firstCascadeStart = Array.FindIndex(events, e => e.Kind == "assigned" && e.JobId!.StartsWith("3d_cascade_fullres/"));
        Assert.True(lastLowresDone >= 0 && firstCascadeStart > lastLowresDone, $"cascade assigned at {firstCascadeStart}, last low-res done at {lastLowresDone}");
        // critical path first: the first two assignments were low-res folds
        var firstAssignments = events.Where(e => e.Kind == "assigned").Take(2).ToList();
        Assert.All(firstAssignments, e => Assert.StartsWith("3d_lowres/", e.JobId));
        int selectStart = Array.FindIndex(events, e => e.Kind == "assigned" && e.JobId == "select");
        Assert.True(selectStart > Array.FindLastIndex(events, e => e.Kind == "completed" && e.JobId != "select"));
    }

    [Fact]
    public async Task KilledWorker_ItsJobIsRequeuedAndResumedFromCheckpoint_EveryJobDoneOnce()
    {
        using var cluster = new LocalCluster();
        var definition = LocalCluster.Definition(["2d", "3d_fullres"], [0, 1], 10);
        var coordinator = cluster.StartCoordinator(definition);
        var seed = LocalCluster.AddressOf(coordinator);
        var victimReachedEpoch3 = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        var survivor = cluster.Backend(TimeSpan.FromMilliseconds(60));
        var victim = cluster.Backend(TimeSpan.FromMilliseconds(60), afterEpoch: (spec, epoch) =>
        {
            if (epoch == 3) victimReachedEpoch3.TrySetResult(spec.JobId);
        });
        cluster.StartWorker(seed, 1, survivor);
        var victimSystem = cluster.StartWorker(seed, 1, victim, LocalCluster.CrashableHocon);

        var killedJob = await victimReachedEpoch3.Task.WaitAsync(Timeout);
        await LocalCluster.Crash(victimSystem);

        var snapshot = await LocalCluster.WaitFinished(coordinator, Timeout);
        Assert.Equal(SweepStatus.Completed, snapshot.Status);
        foreach (var job in snapshot.Jobs) Assert.Equal(1, cluster.Log.CompletedRuns(job.JobId));
        var killed = snapshot.Jobs.Single(j => j.JobId == killedJob);
        Assert.True(killed.Attempt >= 2, $"{killedJob} attempt {killed.Attempt}");
        Assert.Equal(0, killed.Failures); // a lost node is not the job's fault
        Assert.Contains(snapshot.RecentEvents, e => e.Kind == "requeued" && e.JobId == killedJob);
        Assert.Single(snapshot.Workers); // the dead node's worker is gone
        var log = File.ReadAllText(Path.Combine(cluster.ResultsRoot, "Dataset004_Hippocampus",
            $"nnUNetTrainer__nnUNetPlans__{killed.Configuration}", $"fold_{killed.Fold}", ResultLayout.TrainingLogFile));
        Assert.Matches(@"continue from checkpoint at epoch [3-9]", log);
    }

    [Fact]
    public async Task RestartedCoordinator_RecoversFromSqliteJournal_WithoutRedoingCompletedJobs()
    {
        using var cluster = new LocalCluster();
        var definition = LocalCluster.Definition(["2d", "3d_fullres", "3d_lowres"], [0, 1], 5);
        var first = cluster.StartCoordinator(definition);
        var seed = LocalCluster.AddressOf(first);
        var backend = cluster.Backend(TimeSpan.FromMilliseconds(40));
        var worker1 = cluster.StartWorker(seed, 1, backend);
        cluster.StartWorker(seed, 1, backend);

        // let a few jobs complete, then stop the coordinator node (its singleton goes away with it)
        var before = await LocalCluster.WaitUntil(first, s => s.CompletedJobs >= 2, Timeout, "two jobs did not complete");
        await first.Terminate();
        Assert.True(File.Exists(cluster.Database));

        // a new coordinator node joins the workers' cluster and recovers the sweep from the same SQLite file
        var second = cluster.StartCoordinator(definition, null, LocalCluster.AddressOf(worker1));
        var snapshot = await LocalCluster.WaitFinished(second, Timeout);

        Assert.Equal(SweepStatus.Completed, snapshot.Status);
        var runs = string.Join("\n", cluster.Log.Runs.Select(r => $"{r.JobId} a{r.Attempt} start {r.StartEpoch} completed {r.Completed} cancelled {r.Cancelled}"));
        var history = string.Join("\n", snapshot.RecentEvents.Where(e => e.Kind != "progress").Select(e => e.Text));
        foreach (var job in snapshot.Jobs) Assert.True(cluster.Log.CompletedRuns(job.JobId) == 1, $"{job.JobId} completed {cluster.Log.CompletedRuns(job.JobId)} times\n{runs}\n--\n{history}");
        foreach (var done in before.Jobs.Where(j => j.Status == JobDisplayStatus.Completed))
            Assert.Equal(done.Attempt, snapshot.Jobs.Single(j => j.JobId == done.JobId).Attempt);
    }

    [Fact]
    public async Task FailingJob_FailsAfterMaxAttempts_WithItsLastError_TheRestCompletes()
    {
        using var cluster = new LocalCluster();
        var definition = LocalCluster.Definition(["2d"], [0, 1, 2], 3, maxAttempts: 2);
        var coordinator = cluster.StartCoordinator(definition);
        var backend = cluster.Backend(TimeSpan.FromMilliseconds(10),
            failAt: (spec, epoch) => spec.JobId == "2d/fold_1" && epoch == 1 ? $"simulated crash in attempt {spec.Attempt}" : null);
        cluster.StartWorker(LocalCluster.AddressOf(coordinator), 2, backend);

        var snapshot = await LocalCluster.WaitFinished(coordinator, Timeout);

        Assert.Equal(SweepStatus.FinishedWithFailures, snapshot.Status);
        var failed = snapshot.Jobs.Single(j => j.JobId == "2d/fold_1");
        Assert.Equal(JobDisplayStatus.Failed, failed.Status);
        Assert.Equal(2, failed.Failures);
        Assert.Contains("simulated crash in attempt 2", failed.LastError);
        Assert.Equal(JobDisplayStatus.Completed, snapshot.Jobs.Single(j => j.JobId == "2d/fold_0").Status);
        Assert.Equal(JobDisplayStatus.Completed, snapshot.Jobs.Single(j => j.JobId == "2d/fold_2").Status);
        Assert.Equal(JobDisplayStatus.Blocked, snapshot.Jobs.Single(j => j.JobId == "select").Status);
    }

    [Fact]
    public async Task SilentJob_IsHung_AfterTheStallTimeout_IsCancelledAndRequeued_ThenCompletes()
    {
        using var cluster = new LocalCluster();
        var definition = LocalCluster.Definition(["2d"], [0], 2);
        var coordinator = cluster.StartCoordinator(definition, "nnunet.cluster.stall-timeout = 1s");
        // attempt 1 hangs in its first epoch (its worker is alive, its progress does not move); later attempts are quick
        var backend = new SimulatedBackendOptions
        {
            EpochDuration = spec => spec.Attempt == 1 ? TimeSpan.FromMinutes(5) : TimeSpan.FromMilliseconds(10),
            Log = cluster.Log,
        };
        cluster.StartWorker(LocalCluster.AddressOf(coordinator), 1, backend);

        var snapshot = await LocalCluster.WaitFinished(coordinator, Timeout);

        Assert.Equal(SweepStatus.Completed, snapshot.Status);
        Assert.Contains(snapshot.RecentEvents, e => e.Kind == "requeued" && e.Text.Contains("hung: no progress on ") && e.Text.Contains("(stall-timeout 1 s); cancelled"));
        Assert.Contains(cluster.Log.Runs, r => r.JobId == "2d/fold_0" && r.Attempt == 1 && r.Cancelled);
        Assert.Equal(1, cluster.Log.CompletedRuns("2d/fold_0"));
    }
}
