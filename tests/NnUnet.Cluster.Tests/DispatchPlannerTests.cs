using NnUnet.Cluster.Sweeps;

namespace NnUnet.Cluster.Tests;

/// <summary>
/// The dispatch look-ahead, pure: on the bench's 20-job grid (known optimum by exhaustive search, bench/scheduler) it
/// reaches the optimum where critical path first alone does not, it keeps critical path first where that is as good,
/// and it is never worse than critical path first.
/// </summary>
public class DispatchPlannerTests
{
    private static readonly DateTime T0 = new(2026, 1, 1, 0, 0, 0, DateTimeKind.Utc);
    // seconds per epoch of the bench's grid (5 epochs): 2d 0.4 s, 3d_fullres 2.0 s, 3d_lowres 1.1 s, cascade 1.7 s per fold
    private static readonly Dictionary<string, double> EpochSeconds = new()
    {
        ["2d"] = 0.08, ["3d_fullres"] = 0.40, ["3d_lowres"] = 0.22, ["3d_cascade_fullres"] = 0.34,
    };
    private const double SelectSeconds = 0.1;

    /// <summary>Discrete-event run of the whole sweep through <see cref="SweepState"/>; the estimates are the true durations from the start.</summary>
    // nnU-Net-like: 2d epochs 0.8 x 3d_fullres (nnU-Net's expected epoch times), the other 3D configurations near it
    private static readonly Dictionary<string, double> NnUnetLikeEpochSeconds = new()
    {
        ["2d"] = 0.32, ["3d_fullres"] = 0.40, ["3d_lowres"] = 0.38, ["3d_cascade_fullres"] = 0.42,
    };

    private static (double makespan, List<string> order) Simulate(int gpus, int workersTold, Dictionary<string, double>? profile = null)
    {
        var epochSeconds = profile ?? EpochSeconds;
        var definition = SweepDefinition.Create("Dataset004_Hippocampus", "nnUNetPlans", "nnUNetTrainer", epochSeconds.Keys, [0, 1, 2, 3, 4], 5);
        var fresh = new SweepState();
        fresh.Apply(new SweepDefined(definition, T0));
        // measured epoch times, as if an earlier run had reported them
        var state = SweepState.FromSnapshot(fresh.ToSnapshot() with
        {
            Timings = epochSeconds.Select(e => new ConfigurationTiming(e.Key, e.Value * 10, 10)).ToArray(),
        });
        var running = new PriorityQueue<(string worker, JobRecord job), double>();
        var idle = new Queue<string>(Enumerable.Range(0, gpus).Select(i => $"g{i}"));
        var order = new List<string>();
        double now = 0;
        while (true)
        {
            while (idle.Count > 0)
            {
                var events = state.Decide(new AssignWork(idle.Peek(), "n", T0.AddSeconds(now), workersTold));
                if (events.Count == 0) break;
                foreach (var e in events) state.Apply(e);
                var job = state.JobOfWorker(idle.Dequeue())!;
                order.Add(job.JobId);
                running.Enqueue((job.WorkerId!, job), now + (job.Kind == JobKind.Train ? epochSeconds[job.Configuration!] * 5 : SelectSeconds));
            }
            if (!running.TryDequeue(out var done, out var end)) break;
            now = end;
            foreach (var e in state.Decide(new CompleteJob(done.job.JobId, done.job.Attempt, "s", new(), null, T0.AddSeconds(now)))) state.Apply(e);
            idle.Enqueue(done.worker);
        }
        Assert.True(state.AllCompleted);
        return (now, order);
    }

    [Fact]
    public void FourGpus_LookAheadReachesTheOptimum_CriticalPathFirstAloneDoesNot()
    {
        var (criticalPathOnly, cpOrder) = Simulate(4, workersTold: 0);
        var (planned, plannedOrder) = Simulate(4, workersTold: 4);
        Assert.Equal(6.8, criticalPathOnly, 6);
        Assert.Equal(6.7, planned, 6); // the optimum (exhaustive search in bench/scheduler: 6.70 s)
        Assert.Equal(Enumerable.Repeat("3d_lowres", 4), cpOrder.Take(4).Select(j => j.Split('/')[0]));
        // critical path first where it costs nothing (every low-res fold starts at once here too); later choices differ
        Assert.Equal(cpOrder.Take(4), plannedOrder.Take(4));
        Assert.NotEqual(cpOrder, plannedOrder);
    }

    [Theory]
    [InlineData(2, 13.1)]
    [InlineData(8, 3.8)]
    [InlineData(16, 2.9)]
    public void OtherGpuCounts_LookAheadIsOptimal(int gpus, double optimum)
    {
        Assert.Equal(optimum, Simulate(gpus, workersTold: gpus).makespan, 6);
        Assert.True(Simulate(gpus, workersTold: 0).makespan >= optimum - 1e-9);
    }

    [Fact]
    public void NeverWorseThanCriticalPathFirst_OnRandomGroups()
    {
        var rng = new Random(7);
        for (int round = 0; round < 200; round++)
        {
            int groupCount = rng.Next(2, 5), workers = rng.Next(2, 5);
            var groups = new DispatchPlanner.Group[groupCount];
            for (int g = 0; g < groupCount; g++)
            {
                var durations = Enumerable.Range(0, rng.Next(1, 5)).Select(_ => Math.Round(0.1 + rng.NextDouble() * 3, 2)).OrderDescending().ToArray();
                int[] deps = g > 0 && rng.Next(3) == 0 ? [rng.Next(g)] : [];
                groups[g] = new DispatchPlanner.Group(durations, deps, 0, 0);
            }
            var candidates = Enumerable.Range(0, groupCount).Where(g => groups[g].DependsOn.Length == 0).ToList();
            var free = new double[workers];
            for (int k = 1; k < workers; k++) free[k] = rng.Next(2) == 0 ? 0 : Math.Round(rng.NextDouble() * 2, 2);
            int chosen = DispatchPlanner.Choose(groups, free, candidates, 100_000, out double planned);
            Assert.Contains(chosen, candidates);
            double greedy = GreedyListSchedule(groups, free, candidates);
            Assert.True(planned <= greedy + 1e-9, $"round {round}: planned {planned} > critical path first {greedy}");
            double work = free.Sum() + groups.Sum(g => g.Durations.Sum());
            Assert.True(planned >= work / workers - 1e-9 && planned >= groups.Max(g => g.Durations.Max()) - 1e-9);
        }
    }

    [Fact]
    public void TwelveGpus_AWorkerWaitsForTheCascade_InsteadOfStarting2dWhenTheFirstLowResFoldEnds()
    {
        // optimum = critical path: low-res fold 1.9 s, cascade fold 2.1 s, selection 0.1 s
        var (planned, order) = Simulate(12, workersTold: 12, NnUnetLikeEpochSeconds);
        Assert.Equal(4.1, planned, 6);
        // critical path first hands the first freed worker a 2d fold; the fifth cascade fold then waits for a worker
        Assert.True(Simulate(12, workersTold: 0, NnUnetLikeEpochSeconds).makespan > 4.1 + 1e-6);
        // every cascade fold is assigned before the last 2d fold
        Assert.True(order.LastIndexOf(order.Last(j => j.StartsWith("3d_cascade_fullres/"))) < order.FindLastIndex(j => j.StartsWith("2d/")));
    }

    [Fact]
    public void Waiting_EndsWhenTheAwaitedJobIsLate()
    {
        // 12 GPUs, nnU-Net-like lengths: find the first moment the scheduler keeps a worker idle although a job is ready
        var definition = SweepDefinition.Create("Dataset004_Hippocampus", "nnUNetPlans", "nnUNetTrainer", NnUnetLikeEpochSeconds.Keys, [0, 1, 2, 3, 4], 5);
        var fresh = new SweepState();
        fresh.Apply(new SweepDefined(definition, T0));
        var state = SweepState.FromSnapshot(fresh.ToSnapshot() with
        {
            Timings = NnUnetLikeEpochSeconds.Select(e => new ConfigurationTiming(e.Key, e.Value * 10, 10)).ToArray(),
        });
        void Apply(IEnumerable<ISweepEvent> events) { foreach (var e in events) state.Apply(e); }
        var running = new PriorityQueue<(string worker, JobRecord job), double>();
        var idle = new Queue<string>(Enumerable.Range(0, 12).Select(i => $"g{i}"));
        double now = 0;
        while (true)
        {
            var events = state.Decide(new AssignWork(idle.Peek(), "n", T0.AddSeconds(now), 12));
            if (events.Count == 0) break;
            Apply(events);
            var job = state.JobOfWorker(idle.Dequeue())!;
            running.Enqueue((job.WorkerId!, job), now + NnUnetLikeEpochSeconds[job.Configuration!] * 5);
            while (idle.Count == 0)
            {
                running.TryDequeue(out var done, out now);
                Apply(state.Decide(new CompleteJob(done.job.JobId, done.job.Attempt, "s", new(), null, T0.AddSeconds(now))));
                idle.Enqueue(done.worker);
            }
        }
        Assert.NotNull(state.NextJob(T0.AddSeconds(now))); // a job is ready: the worker waits on purpose
        // a minute later the other jobs have reported an epoch (alive, four fifths left); the awaited low-res folds
        // have not: late by a minute, they are expected to need about as long again, and the worker gets the ready job
        var later = T0.AddSeconds(now + 60);
        foreach (var job in state.RunningJobs.ToList())
            if (job.Configuration != SweepDefinition.Lowres)
                Apply(state.Decide(new RecordProgress(job.JobId, job.Attempt, new EpochMetrics(1, 5, 0, 0, 0, 0, NnUnetLikeEpochSeconds[job.Configuration!]), later)));
        Assert.Contains(state.RunningJobs, j => j.Configuration == SweepDefinition.Lowres);
        var assigned = state.Decide(new AssignWork(idle.Peek(), "n", later, 12));
        Assert.Single(assigned.OfType<JobAssigned>());
    }

    [Fact]
    public void Waits_WhenADependencyAboutToEndDeservesTheWorker_NeverWhenNothingRuns()
    {
        // 2d (1.6 s) is the only ready job; the low-res group ends at 0.1 and releases three cascade folds (2.1 s);
        // workers free at 0 (asking), 0.1, 0.1 and 1.0. Starting 2d now: the third cascade fold starts at 1.0, end 3.1.
        // Waiting until 0.1: three cascade folds at once, 2d on the worker free at 1.0, end 2.6.
        var groups = new[]
        {
            new DispatchPlanner.Group([1.6], [], 0, 0),
            new DispatchPlanner.Group([], [], 0.1, 2.1),
            new DispatchPlanner.Group([2.1, 2.1, 2.1], [1], 0, 0),
        };
        Assert.Equal(DispatchPlanner.Wait, DispatchPlanner.Choose(groups, [0, 0.1, 0.1, 1.0], [0], 10_000, out double planned));
        Assert.Equal(2.6, planned, 9);
        // nothing runs, nothing to wait for: the ready job starts
        var idle = new[] { new DispatchPlanner.Group([1.6], [], 0, 0), new DispatchPlanner.Group([1.0], [0], 0, 0) };
        Assert.Equal(0, DispatchPlanner.Choose(idle, [0, 0], [0], 10_000, out _));
    }

    [Fact]
    public void TimesEqualButForTheLastBits_AreOneMoment_AndDoNotHideTheBetterSchedule()
    {
        // groups: 0 = 2d (5 x 1.6), 1 = 3d_fullres (3 x 2.0 pending, two running until 2.0), 2 = 3d_lowres (last fold
        // running until 1.9), 3 = cascade (5 x 2.1 after the low-res group), 4 = selection (after all)
        var groups = new[]
        {
            new DispatchPlanner.Group([1.6, 1.6, 1.6, 1.6, 1.6], [], 0, 0.095),
            new DispatchPlanner.Group([2.0, 2.0, 2.0], [], 2.0, 0.095),
            new DispatchPlanner.Group([], [], 1.9000000000000008, 0),
            new DispatchPlanner.Group([2.1, 2.1, 2.1, 2.1, 2.1], [2], 0, 0.095),
            new DispatchPlanner.Group([0.095], [0, 1, 2, 3], 0, 0),
        };
        // 3d_fullres now: at 1.9 a cascade, at 2.0 three more, at 4.0 the last, then 3d_fullres x2 and 2d: ends 7.7 + 0.1
        DispatchPlanner.Choose(groups, [2.0, 2.0, 1.9000000000000008, 0], [1], 100_000, out double planned);
        Assert.True(planned <= 7.8 + 1e-9, $"planned {planned}");
    }

    [Fact]
    public void Ties_KeepTheCriticalPathFirstChoice()
    {
        // two workers, two equal independent groups: any order is as good, so the first candidate (critical path first) stays
        var groups = new[] { new DispatchPlanner.Group([1.0], [], 0, 0), new DispatchPlanner.Group([1.0], [], 0, 0) };
        Assert.Equal(1, DispatchPlanner.Choose(groups, [0, 0], [1, 0], 1000, out double makespan));
        Assert.Equal(1.0, makespan, 9);
    }

    /// <summary>Critical path first list scheduling (tails are 0 here, so: longest first, then group order), written apart from the planner.</summary>
    private static double GreedyListSchedule(DispatchPlanner.Group[] groups, double[] workerFree, List<int> rootCandidates)
    {
        var next = new int[groups.Length];
        var end = new double[groups.Length];
        var free = (double[])workerFree.Clone();
        bool first = true;
        while (true)
        {
            Array.Sort(free);
            double t = free[0];
            int pick = -1;
            for (int g = 0; g < groups.Length; g++)
            {
                if (next[g] >= groups[g].Durations.Length) continue;
                if (groups[g].DependsOn.Any(h => next[h] < groups[h].Durations.Length || end[h] > t)) continue;
                if (pick < 0 || groups[g].Durations[next[g]] > groups[pick].Durations[next[pick]]) pick = g;
            }
            if (first) { pick = rootCandidates[0]; first = false; }
            if (pick < 0)
            {
                if (Enumerable.Range(0, groups.Length).All(i => next[i] >= groups[i].Durations.Length)) break;
                var waits = end.Where(e => e > t).Concat(free.Where(f => f > t)).ToArray();
                if (waits.Length == 0) break;
                free[0] = waits.Min();
                continue;
            }
            free[0] = t + groups[pick].Durations[next[pick]++];
            end[pick] = Math.Max(end[pick], free[0]);
        }
        return end.Max();
    }
}
