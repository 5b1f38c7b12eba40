using System.Diagnostics;
using System.Globalization;
using Akka.Actor;
using NnUnet.Cluster.Backends;
using NnUnet.Cluster.Hosting;
using NnUnet.Cluster.Messages;
using NnUnet.Cluster.Sweeps;
using NnUnet.Core.IO;
using NnUnet.Core.Results;

// Scheduler benchmarks with real actors and the simulated backend (see bench/README.md, section "scheduler").
//   makespan    20-job grid (4 configurations x 5 folds, cascade dependencies) + selection on 2..64 simulated GPUs,
//               for two profiles of job lengths (nnU-Net-like, skewed; PROFILE=one of them): measured makespan / lower
//               bound, lower bound = max(critical path, total work / GPUs); the same grid scheduled FIFO in grid order
//               (simulated, no actors) is the peer; the optimum by exhaustive branch and bound. A short warm-up sweep
//               first (JIT). GPUS=2,4 picks the GPU counts; TRACE=actors prints the actors' events.
//   makespan-sim the policy alone (no actors) on 2..64 GPUs vs the optimum: learning the durations from reported
//               epochs, knowing them from the start, critical path first alone. TRACE=sim / sim-known prints its choices.
//   throughput  10,000 one-epoch jobs over 256 workers on 4 ActorSystems (coordinator + 3 worker nodes, TCP); the
//               outputs-only run again over mutual TLS with the cluster credential (the default of the nnunet verbs).
//   throughput-tls  outputs-only dispatch, plain TCP, TLS, plain TCP again (brackets the noise of a shared machine);
//               JOBS=N (default 10,000).
//   recovery    time until a restarted coordinator answers, replaying a ~10,000-event SQLite journal.
var what = args.Length > 0 ? args[0] : "all";
var scratch = Directory.Exists("/dev/shm") ? "/dev/shm" : Path.GetTempPath();
var root = Path.Combine(scratch, $"nnunet-sched-bench-{Environment.ProcessId}");
Directory.CreateDirectory(root);
try
{
    if (what is "all" or "makespan")
    {
        await Makespan.WarmUp(root);
        foreach (var profile in Makespan.Profiles()) await profile.Run(root);
    }
    if (what is "all" or "makespan-sim")
        foreach (var profile in Makespan.Profiles()) profile.SimulatedOnly();
    if (what is "all" or "throughput")
    {
        int workersPerNode = args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 64, nodes = args.Length > 3 ? int.Parse(args[3], CultureInfo.InvariantCulture) : 4;
        // JIT and connection warm-up, not reported, so that both measured runs start equally warm
        await Throughput.Run(root, 1_000, workersPerNode, nodes, outputsOnly: false, report: false);
        foreach (var outputsOnly in new[] { false, true })
            await Throughput.Run(root, jobs: args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 10_000, workersPerNode, nodes, outputsOnly);
        await Throughput.Run(root, jobs: args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 10_000, workersPerNode, nodes, true,
            credential: Bench.Credential(root));
    }
    if (what == "throughput-tls")
    {
        int jobs = int.Parse(Environment.GetEnvironmentVariable("JOBS") ?? "10000", CultureInfo.InvariantCulture);
        await Throughput.Run(root, 1_000, 64, 4, outputsOnly: true, report: false);
        await Throughput.Run(root, 1_000, 64, 4, outputsOnly: true, report: false, credential: Bench.Credential(root));
        foreach (var tls in new[] { false, true, false })
            await Throughput.Run(root, jobs, 64, 4, outputsOnly: true, credential: tls ? Bench.Credential(root) : null);
    }
    if (what == "backend")
    {
        var opts = new SimulatedBackendOptions { EpochDuration = _ => TimeSpan.Zero };
        var backend = new SimulatedTrainingBackend(opts);
        var sw = Stopwatch.StartNew();
        for (int i = 0; i < 2000; i++)
            await backend.RunAsync(new JobSpec("s", $"2d/fold_{i}", 1, JobKind.Train, "D", "P", "T", "2d", i, 1, false, root, [], []), new NullSink(), default);
        Console.WriteLine($"backend alone: {Bench.F(sw.Elapsed.TotalMilliseconds / 2000, "F3")} ms per job");
        var state = new SweepState();
        var def = SweepDefinition.Create("D", "P", "T", ["2d"], Enumerable.Range(0, 10000), 1);
        state.Apply(new SweepDefined(def, DateTime.UtcNow));
        sw.Restart();
        for (int i = 0; i < 10000; i++)
        {
            foreach (var e in state.Decide(new AssignWork("w", "n", DateTime.UtcNow))) state.Apply(e);
            var job = state.JobOfWorker("w")!;
            foreach (var e in state.Decide(new RecordProgress(job.JobId, job.Attempt, new EpochMetrics(1, 1, 0, 0, 0, 0, 0.001), DateTime.UtcNow))) state.Apply(e);
            foreach (var e in state.Decide(new CompleteJob(job.JobId, job.Attempt, "s", new(), null, DateTime.UtcNow))) { state.Apply(e); SweepView.View(state, state.Job(job.JobId)); }
        }
        Console.WriteLine($"state alone: {Bench.F(sw.Elapsed.TotalMilliseconds / 10000, "F3")} ms per job");
    }
    // two persisted events per job (assigned, completed; a progress report of a job shorter than the persist interval is not persisted)
    if (what is "all" or "recovery") await Recovery.Run(root, jobs: 5_000);
}
finally
{
    Directory.Delete(root, true);
}

sealed class InstantBackend : ITrainingBackend
{
    public string Name => "instant";
    public Task<JobOutcome> RunAsync(JobSpec spec, IJobProgressSink progress, CancellationToken ct)
    {
        progress.ReportEpoch(new EpochMetrics(1, 1, 0, 0, 0, 0, 0.001));
        return Task.FromResult(new JobOutcome("s", new()));
    }
}
/// <summary>
/// The least a job must do for the coordinator to accept it: one epoch reported, then the two outputs the completion
/// check looks for (validation/summary.json, checkpoint_final.ckpt; the selection's file), written atomically. Measures
/// dispatch without the simulated trainer's own files (checkpoint per epoch, training log, low-res predictions).
/// </summary>
sealed class OutputsOnlyBackend : ITrainingBackend
{
    public string Name => "outputs-only";
    public Task<JobOutcome> RunAsync(JobSpec spec, IJobProgressSink progress, CancellationToken ct)
    {
        progress.ReportEpoch(new EpochMetrics(1, 1, 0, 0, 0, 0, 0.001));
        var output = JobOutputs.OutputPath(spec);
        AtomicFile.WriteAllText(output, "{}");
        // what the completion check (CompletionMarkers) asks for besides the output: the final checkpoint, the best configuration
        if (spec.Kind == JobKind.Train) AtomicFile.WriteAllText(ResultLayout.Checkpoint(JobOutputs.FoldFolder(spec), ResultLayout.CheckpointFinal), "{}");
        if (spec.Kind == JobKind.Select) AtomicFile.WriteAllText(ResultLayout.BestConfigurationJson(Path.GetDirectoryName(output)!), "{}");
        return Task.FromResult(new JobOutcome(output, new()));
    }
}

sealed class NullStore : IResultStore
{
    public string? MissingOutputs(JobSpec spec) => null;
    public bool OutputsWrittenSince(JobSpec spec, DateTime sinceUtc) => false;
}
sealed class NullSink : IJobProgressSink { public void ReportEpoch(EpochMetrics epoch) { } }

static class Bench
{
    public const string Quiet = """
        akka.loglevel = ERROR
        akka.stdout-loglevel = ERROR
        nnunet.cluster.register-retry-interval = 500ms
        """;

    /// <summary>A cluster credential in the scratch folder (made once), for the runs over mutual TLS.</summary>
    public static string Credential(string root)
    {
        var folder = Path.Combine(root, ".nnunet-cluster");
        ClusterCredential.LoadOrCreate(folder).Dispose();
        return folder;
    }

    public static ActorSystem Coordinator(string db, string extra, string? credential = null) =>
        NnUnetClusterHost.StartSystem(ClusterConfig.Build(new NodeOptions(NodeKind.Embedded, CredentialFolder: credential,
            SqliteJournalPath: Environment.GetEnvironmentVariable("BENCH_INMEM") == "1" ? null : db, ExtraHocon: extra + "\n" + Quiet
            + (Environment.GetEnvironmentVariable("BENCH_INMEM") == "1" ? "\nakka.persistence.journal.plugin = akka.persistence.journal.inmem\nakka.persistence.snapshot-store.plugin = akka.persistence.snapshot-store.local\nakka.persistence.snapshot-store.local.dir = " + Path.Combine(Path.GetDirectoryName(db)!, "snap") : ""))));

    public static ActorSystem Worker(Address seed, string? credential = null) =>
        NnUnetClusterHost.StartSystem(ClusterConfig.Build(new NodeOptions(NodeKind.Worker, Seeds: [seed.ToString()], ExtraHocon: Quiet, CredentialFolder: credential)));

    public static async Task<SweepView> WaitFinished(ActorSystem system, Task<SweepFinished> finished, TimeSpan timeout)
    {
        await finished.WaitAsync(timeout);
        return await NnUnetClusterHost.GetViewAsync(system, TimeSpan.FromSeconds(30));
    }

    /// <summary>Throws unless the sweep completed, naming the first failed jobs and their errors.</summary>
    public static void EnsureCompleted(SweepView view, string what)
    {
        if (view.Status == SweepStatus.Completed) return;
        var failed = view.Jobs.Where(j => j.Status is JobDisplayStatus.Failed or JobDisplayStatus.Blocked).Take(3).Select(j => $"{j.JobId}: {j.LastError}");
        throw new InvalidOperationException($"{what} ended {view.Status}; {view.FailedJobs} failed, e.g. {string.Join("; ", failed)}");
    }

    public static async Task Stop(params ActorSystem[] systems)
    {
        foreach (var s in systems.Reverse()) await s.Terminate();
    }

    public static string F(double v, string format = "F2") => v.ToString(format, CultureInfo.InvariantCulture);
}

/// <summary>The makespan benchmarks of one profile of job lengths (seconds per epoch of each configuration).</summary>
sealed class Makespan(string profileName, IReadOnlyDictionary<string, double> epochSecondsByConfiguration)
{
    IReadOnlyDictionary<string, double> EpochSeconds { get; } = epochSecondsByConfiguration;
    const int Epochs = 5;
    const double SelectSeconds = 0.1;

    /// <summary>
    /// nnU-Net-like: 2d epochs take 0.8 x a 3d_fullres epoch (nnU-Net's documentation/expected_epoch_times.md: 0.77-0.91
    /// on Heart, Liver, Prostate across 7 GPUs); 3d_lowres and the cascade are planned to the same VRAM budget with the
    /// same network (the cascade adds one-hot input channels), so within 5 % of 3d_fullres. Skewed: far from the
    /// scheduler's priors (2d 0.2 x, low-res 0.55 x 3d_fullres), a test of how fast the estimates learn. Neither equals
    /// the priors, so both make the scheduler learn from measured epochs. PROFILE=name (or "2d=0.3,3d_fullres=...")
    /// runs one.
    /// </summary>
    public static IEnumerable<Makespan> Profiles()
    {
        var known = new Dictionary<string, Dictionary<string, double>>
        {
            ["nnunet-like"] = new() { ["2d"] = 0.32, ["3d_fullres"] = 0.40, ["3d_lowres"] = 0.38, ["3d_cascade_fullres"] = 0.42 },
            ["skewed"] = new() { ["2d"] = 0.08, ["3d_fullres"] = 0.40, ["3d_lowres"] = 0.22, ["3d_cascade_fullres"] = 0.34 },
        };
        var chosen = Environment.GetEnvironmentVariable("PROFILE");
        if (string.IsNullOrEmpty(chosen)) return known.Select(k => new Makespan(k.Key, k.Value));
        if (known.TryGetValue(chosen, out var one)) return [new Makespan(chosen, one)];
        return [new Makespan("custom", chosen.Split(',').Select(kv => kv.Split('=')).ToDictionary(kv => kv[0], kv => double.Parse(kv[1], CultureInfo.InvariantCulture)))];
    }

    /// <summary>One short sweep first, not reported: JIT of the coordinator, planner, journal and backend, as a real coordinator has long been warm by its second job.</summary>
    public static async Task WarmUp(string root)
    {
        var profile = new Makespan("warm-up", new Dictionary<string, double> { ["2d"] = 0.002, ["3d_fullres"] = 0.004, ["3d_lowres"] = 0.003, ["3d_cascade_fullres"] = 0.004 });
        await profile.RunOnce(Path.Combine(root, "warm-up"), 4);
    }

    public async Task Run(string root)
    {
        var definition = Definition();
        Console.WriteLine($"makespan, profile {profileName} (seconds per epoch: {string.Join(", ", EpochSeconds.Select(e => $"{e.Key} {Bench.F(e.Value)}"))}): " +
                          $"20 training jobs + selection, total work {Bench.F(Work)} s, critical path {Bench.F(CriticalPath)} s");
        Console.WriteLine("| GPUs | lower bound s | optimum s | optimum / bound | makespan s (actors) | makespan / bound | makespan / optimum | our policy, simulated / optimum | critical path first only, simulated / optimum | FIFO (grid order) / optimum |");
        Console.WriteLine("|---|---|---|---|---|---|---|---|---|---|");
        int run = 0;
        foreach (var gpus in (Environment.GetEnvironmentVariable("GPUS") ?? "2,4,8,16,64").Split(',').Select(int.Parse))
        {
            // a folder per run: the same GPU count twice must not resume the finished sweep of the first run
            double makespan = await RunOnce(Path.Combine(root, $"makespan-{profileName}-{run++}-{gpus}"), gpus);
            double bound = Bound(gpus);
            double fifo = Fifo(gpus);
            double exact = Policy(definition, gpus, gpus);
            double criticalPathOnly = Policy(definition, gpus, 0);
            double optimum = Optimum(gpus);
            if (optimum < bound - 1e-9 || optimum > exact + 1e-9 || optimum > criticalPathOnly + 1e-9 || optimum > fifo + 1e-9)
                throw new InvalidOperationException($"optimum {optimum} on {gpus} GPUs is not between the bound {bound} and the simulated schedules");
            Console.WriteLine($"| {gpus} | {Bench.F(bound)} | {Bench.F(optimum)} | {Bench.F(optimum / bound, "F3")} | {Bench.F(makespan)} | {Bench.F(makespan / bound, "F3")} | " +
                              $"{Bench.F(makespan / optimum, "F3")} | {Bench.F(exact / optimum, "F3")} | {Bench.F(criticalPathOnly / optimum, "F3")} | {Bench.F(fifo / optimum, "F3")} |");
        }
    }

    SweepDefinition Definition() => SweepDefinition.Create("Dataset999_Bench", "nnUNetPlans", "nnUNetTrainer", EpochSeconds.Keys, [0, 1, 2, 3, 4], Epochs);
    double Work => EpochSeconds.Values.Sum() * 5 * Epochs + SelectSeconds;
    double CriticalPath => (EpochSeconds["3d_lowres"] + EpochSeconds["3d_cascade_fullres"]) * Epochs + SelectSeconds;
    double Bound(int gpus) => Math.Max(CriticalPath, Work / gpus);

    /// <summary>The sweep with real actors (coordinator singleton, SQLite journal, one worker actor per simulated GPU): seconds from the first assignment to the end.</summary>
    async Task<double> RunOnce(string dir, int gpus)
    {
        var system = Bench.Coordinator(Path.Combine(dir, "sweeps.db"), "");
        var finished = NnUnetClusterHost.WhenSweepFinishedLocally(system);
        var firstAssignment = new TaskCompletionSource<long>();
        system.EventStream.Subscribe(system.ActorOf(Props.Create(() => new FirstAssignment(firstAssignment))), typeof(SweepChanged));
        if (Environment.GetEnvironmentVariable("TRACE") == "actors") system.EventStream.Subscribe(system.ActorOf(Props.Create(() => new TraceAll())), typeof(SweepChanged));
        var options = new SimulatedBackendOptions
        {
            EpochDuration = spec => TimeSpan.FromSeconds(spec.Kind == JobKind.Train ? EpochSeconds[spec.Configuration!] : SelectSeconds),
        };
        NnUnetClusterHost.StartCoordinator(system, NnUnetClusterHost.CoordinatorSettingsFrom(system.Settings.Config, Definition(), dir));
        NnUnetClusterHost.StartWorkers(system, Enumerable.Range(0, gpus).Select(i => $"sim{i}").ToArray(), d => new SimulatedTrainingBackend(options, d));
        var snapshot = await Bench.WaitFinished(system, finished, TimeSpan.FromMinutes(2));
        long end = Stopwatch.GetTimestamp();
        double makespan = Stopwatch.GetElapsedTime(await firstAssignment.Task.WaitAsync(TimeSpan.FromSeconds(5)), end).TotalSeconds;
        await Bench.Stop(system);
        Bench.EnsureCompleted(snapshot, $"sweep on {gpus} GPUs");
        return makespan;
    }

    /// <summary>The scheduling policy alone (no actors) vs the optimum: learning the durations, knowing them, critical path first alone; the look-ahead's cost.</summary>
    public void SimulatedOnly()
    {
        var definition = Definition();
        Console.WriteLine($"makespan-sim, profile {profileName}:");
        foreach (var gpus in new[] { 2, 3, 4, 5, 6, 8, 12, 16, 64 })
        {
            var clock = Stopwatch.StartNew();
            double planned = Policy(definition, gpus, gpus);
            double ms = clock.Elapsed.TotalMilliseconds;
            double optimum = Optimum(gpus), criticalPathOnly = Policy(definition, gpus, 0);
            double known = Policy(definition, gpus, gpus, knownDurations: true);
            double bound = Bound(gpus);
            Console.WriteLine($"{gpus} GPUs: optimum {Bench.F(optimum / bound, "F3")} x bound; our policy {Bench.F(planned / bound, "F3")} x bound = {Bench.F(planned / optimum, "F3")} x optimum " +
                              $"(durations known from the start: {Bench.F(known / optimum, "F3")}; critical path first alone: {Bench.F(criticalPathOnly / optimum, "F3")}); look-ahead cost {Bench.F(ms, "F0")} ms for the whole sweep");
        }
    }

    /// <summary>
    /// Our scheduling policy without actors or timing noise: the same <see cref="SweepState"/> driven by a discrete-event
    /// simulation that knows what the coordinator knows: every epoch is reported when it ends (so the estimates learn
    /// from running jobs, as in the real run), a job's end frees its worker.
    /// </summary>
    /// <param name="plannedWorkers">worker count given to the scheduler (0: no look-ahead, critical path first only).</param>
    double Policy(SweepDefinition definition, int gpus, int plannedWorkers, bool knownDurations = false)
    {
        var state = new SweepState();
        var t0 = new DateTime(2026, 1, 1, 0, 0, 0, DateTimeKind.Utc);
        state.Apply(new SweepDefined(definition, t0));
        if (knownDurations)
            state = SweepState.FromSnapshot(state.ToSnapshot() with
            {
                Timings = EpochSeconds.Select(e => new ConfigurationTiming(e.Key, e.Value * 10, 10)).ToArray(),
            });
        // (worker, job, epoch that ends then); the selection is one "epoch"
        var epochEnds = new PriorityQueue<(string worker, JobRecord job, int epoch), double>();
        var idle = new Queue<string>(Enumerable.Range(0, gpus).Select(i => $"g{i}"));
        double now = 0;
        bool trace = Environment.GetEnvironmentVariable("TRACE") == (knownDurations ? "sim-known" : "sim") && plannedWorkers > 0;
        void Do(SweepCommand c) { foreach (var e in state.Decide(c)) state.Apply(e); }
        while (true)
        {
            while (idle.Count > 0)
            {
                // no job: nothing ready, or the scheduler keeps the worker for a job about to become ready
                var assigned = state.Decide(new AssignWork(idle.Peek(), "n", t0.AddSeconds(now), plannedWorkers));
                if (assigned.Count == 0) break;
                foreach (var e in assigned) state.Apply(e);
                var worker = idle.Dequeue();
                var job = state.JobOfWorker(worker)!;
                if (trace) Console.WriteLine($"SIM {now:F2} {job.JobId} -> {worker}");
                epochEnds.Enqueue((worker, job, 1), now + (job.Kind == JobKind.Train ? EpochSeconds[job.Configuration!] : SelectSeconds));
            }
            if (!epochEnds.TryDequeue(out var done, out var end)) break;
            now = end;
            var (doneWorker, doneJob, epoch) = done;
            if (doneJob.Kind == JobKind.Train)
            {
                double epochSeconds = EpochSeconds[doneJob.Configuration!];
                Do(new RecordProgress(doneJob.JobId, doneJob.Attempt, new EpochMetrics(epoch, Epochs, 0, 0, 0, 0, epochSeconds), t0.AddSeconds(now)));
                if (epoch < Epochs)
                {
                    epochEnds.Enqueue((doneWorker, doneJob, epoch + 1), now + epochSeconds);
                    continue;
                }
            }
            Do(new CompleteJob(doneJob.JobId, doneJob.Attempt, "s", new(), null, t0.AddSeconds(now)));
            idle.Enqueue(doneWorker);
        }
        if (!state.AllCompleted) throw new InvalidOperationException("simulated sweep did not complete");
        return now;
    }

    /// <summary>Peer: list scheduling in grid order (what a plain job queue does), simulated exactly (no actor overhead).</summary>
    double Fifo(int gpus)
    {
        var jobs = new List<(string config, double seconds)>();
        foreach (var config in EpochSeconds.Keys.OrderBy(c => Array.IndexOf(SweepDefinition.CanonicalConfigurations, c)))
            for (int f = 0; f < 5; f++) jobs.Add((config, EpochSeconds[config] * Epochs));
        var free = new double[gpus];
        double lowresDone = 0, allDone = 0;
        var lowresEnds = new List<double>();
        foreach (var (config, seconds) in jobs)
        {
            int g = Array.IndexOf(free, free.Min());
            double start = free[g];
            if (config == "3d_cascade_fullres") start = Math.Max(start, lowresDone);
            free[g] = start + seconds;
            if (config == "3d_lowres") { lowresEnds.Add(free[g]); lowresDone = lowresEnds.Max(); }
            allDone = Math.Max(allDone, free[g]);
        }
        return allDone + SelectSeconds;
    }

    /// <summary>
    /// The optimal makespan of the grid on <c>gpus</c> identical GPUs, by exhaustive branch and bound, written apart from
    /// the scheduler (it shares no code with DispatchPlanner) so that it can judge it. Jobs of a configuration are
    /// interchangeable, so a state is: the GPUs' free times, the jobs left per configuration, and when the last low-res
    /// fold ends. At the earliest free GPU the search starts a job of any configuration that may start, or leaves the GPU
    /// idle until the next moment something changes; every schedule can be shifted left into one of these, so the
    /// search covers an optimal one. Times in integer milliseconds (exact).
    /// </summary>
    double Optimum(int gpus)
    {
        string[] configs = ["2d", "3d_fullres", "3d_lowres", "3d_cascade_fullres"];
        var ms = configs.Select(c => (int)Math.Round(EpochSeconds[c] * Epochs * 1000)).ToArray();
        const int lowres = 2, cascade = 3;
        int best = int.MaxValue;
        var seen = new HashSet<string>();
        void Search(int[] free, int[] left, int lowresEnd)
        {
            int t = free[0], work = 0, sum = 0;
            for (int c = 0; c < 4; c++) work += left[c] * ms[c];
            foreach (var f in free) sum += f;
            int bound = Math.Max(free[^1], (sum + work + gpus - 1) / gpus);
            if (left[lowres] > 0) bound = Math.Max(bound, t + ms[lowres] + (left[cascade] > 0 ? ms[cascade] : 0));
            else if (left[cascade] > 0) bound = Math.Max(bound, Math.Max(t, lowresEnd) + ms[cascade]);
            if (bound >= best) return;
            if (work == 0) { best = free[^1]; return; }
            if (!seen.Add(string.Join(",", free) + "|" + string.Join(",", left) + "|" + (left[cascade] > 0 ? lowresEnd : 0))) return;
            for (int c = 0; c < 4; c++)
            {
                if (left[c] == 0 || (c == cascade && (left[lowres] > 0 || lowresEnd > t))) continue;
                var f = (int[])free.Clone();
                f[0] = t + ms[c];
                Array.Sort(f);
                var l = (int[])left.Clone();
                l[c]--;
                Search(f, l, c == lowres ? Math.Max(lowresEnd, t + ms[c]) : lowresEnd);
            }
            int wake = int.MaxValue;
            foreach (var x in free) if (x > t) { wake = x; break; }
            if (lowresEnd > t) wake = Math.Min(wake, lowresEnd);
            if (wake == int.MaxValue) return;
            var idle = (int[])free.Clone();
            idle[0] = wake;
            Array.Sort(idle);
            Search(idle, left, lowresEnd);
        }
        Search(new int[gpus], [5, 5, 5, 5], 0);
        return best / 1000.0 + SelectSeconds; // the selection runs alone after every training job
    }

    /// <summary>TRACE=actors: every event but progress, with milliseconds since the coordinator started.</summary>
    public sealed class TraceAll : ReceiveActor
    {
        public TraceAll()
        {
            var t0 = Stopwatch.GetTimestamp();
            Receive<SweepChanged>(c =>
            {
                if (c.Event.Kind == "progress") return;
                Console.WriteLine($"TRACE {Stopwatch.GetElapsedTime(t0).TotalMilliseconds,8:F1} {c.Event.Kind} {c.Event.Text}");
            });
        }
    }

    /// <summary>Notes the time of the first assignment, then leaves the event stream (it would cost the coordinator's node one message per event).</summary>
    public sealed class FirstAssignment : ReceiveActor
    {
        public FirstAssignment(TaskCompletionSource<long> first)
        {
            Receive<SweepChanged>(c =>
            {
                if (c.Event.Kind != "assigned") return;
                first.TrySetResult(Stopwatch.GetTimestamp());
                Context.System.EventStream.Unsubscribe(Self);
                Context.Stop(Self);
            });
        }
    }
}

static class Throughput
{
    /// <param name="credential">the cluster credential's folder: the nodes talk mutual TLS (the verbs' default); null: plain TCP.</param>
    public static async Task Run(string root, int jobs, int workersPerNode, int nodes, bool outputsOnly, bool report = true, string? credential = null)
    {
        // a folder per run: the same sweep twice must not resume the finished one
        var dir = Path.Combine(root, $"throughput-{jobs}-{(outputsOnly ? "outputs-only" : "simulated")}-{(credential is null ? "tcp" : "tls")}-{Guid.NewGuid():N}");
        var definition = SweepDefinition.Create("Dataset999_Bench", "nnUNetPlans", "nnUNetTrainer", ["2d"], Enumerable.Range(0, jobs), 1);
        var coordinator = Bench.Coordinator(Path.Combine(dir, "sweeps.db"), "nnunet.cluster.snapshot-every = 100000", credential);
        var seed = Akka.Cluster.Cluster.Get(coordinator).SelfAddress;
        var workers = Enumerable.Range(1, nodes - 1).Select(_ => Bench.Worker(seed, credential)).ToArray();
        var options = new SimulatedBackendOptions { EpochDuration = _ => TimeSpan.Zero };
        TrainingBackendFactory backends = Environment.GetEnvironmentVariable("BENCH_NULL") == "1"
            ? _ => new InstantBackend()
            : outputsOnly ? _ => new OutputsOnlyBackend() : d => new SimulatedTrainingBackend(options, d);
        // wait until every node is up, so that all workers compete from the start
        while (Akka.Cluster.Cluster.Get(coordinator).State.Members.Count(m => m.Status == Akka.Cluster.MemberStatus.Up) < nodes) await Task.Delay(50);
        var finished = NnUnetClusterHost.WhenSweepFinishedLocally(coordinator);
        var firstAssignment = new TaskCompletionSource<long>();
        coordinator.EventStream.Subscribe(coordinator.ActorOf(Props.Create(() => new Makespan.FirstAssignment(firstAssignment))), typeof(SweepChanged));
        var clock = Stopwatch.StartNew();
        var cpuAtStart = Process.GetCurrentProcess().TotalProcessorTime;
        NnUnetClusterHost.StartCoordinator(coordinator, NnUnetClusterHost.CoordinatorSettingsFrom(coordinator.Settings.Config, definition, dir,
            Environment.GetEnvironmentVariable("BENCH_NULL") == "1" ? new NullStore() : null));
        foreach (var node in workers.Prepend(coordinator))
            NnUnetClusterHost.StartWorkers(node, Enumerable.Range(0, workersPerNode).Select(i => $"sim{i}").ToArray(), backends);
        var snapshot = await Bench.WaitFinished(coordinator, finished, TimeSpan.FromMinutes(5));
        double seconds = clock.Elapsed.TotalSeconds;
        // CPU time of the whole process (4 ActorSystems, 256 workers, backend, journal) per job: on a shared machine
        // this says more than the wall clock, which depends on what else runs
        double cpuPerJobMs = (Process.GetCurrentProcess().TotalProcessorTime - cpuAtStart).TotalMilliseconds / (jobs + 1);
        double dispatchSeconds = Stopwatch.GetElapsedTime(await firstAssignment.Task).TotalSeconds - (clock.Elapsed.TotalSeconds - seconds);
        await Bench.Stop([coordinator, .. workers]);
        Bench.EnsureCompleted(snapshot, "throughput sweep");
        int assignments = jobs + 1;
        if (!report) return;
        var backendName = outputsOnly ? "outputs-only backend (2 files per job)" : "simulated trainer (5 files and 4 log appends per job)";
        Console.WriteLine($"throughput, {backendName}: {assignments} jobs (1 epoch, no sleep, real files on {root}) over {workersPerNode * nodes} workers on {nodes} ActorSystems " +
                          $"({(credential is null ? "plain TCP" : "mutual TLS, pinned cluster credential")}, MessagePack, SQLite journal): {Bench.F(dispatchSeconds)} s from first assignment to sweep end = " +
                          $"{Bench.F(assignments / dispatchSeconds, "F0")} assignments/s (each: assign, start, progress, completion check, complete); " +
                          $"{Bench.F(seconds)} s including coordinator start-up and worker registration; " +
                          $"CPU time {Bench.F(cpuPerJobMs, "F3")} ms per job (whole process, start-up included) = at most " +
                          $"{Bench.F(Environment.ProcessorCount * 1000 / cpuPerJobMs, "F0")} jobs/s on {Environment.ProcessorCount} idle cores");
    }
}

static class Recovery
{
    public static async Task Run(string root, int jobs)
    {
        var dir = Path.Combine(root, "recovery");
        var db = Path.Combine(dir, "sweeps.db");
        var definition = SweepDefinition.Create("Dataset999_Bench", "nnUNetPlans", "nnUNetTrainer", ["2d"], Enumerable.Range(0, jobs), 1);
        var options = new SimulatedBackendOptions { EpochDuration = _ => TimeSpan.Zero };
        foreach (var snapshots in new[] { false, true })
        {
            var extra = snapshots ? "nnunet.cluster.snapshot-every = 500" : "nnunet.cluster.snapshot-every = 1000000";
            if (Directory.Exists(dir)) Directory.Delete(dir, true);
            var first = Bench.Coordinator(db, extra);
            var finished = NnUnetClusterHost.WhenSweepFinishedLocally(first);
            NnUnetClusterHost.StartCoordinator(first, NnUnetClusterHost.CoordinatorSettingsFrom(first.Settings.Config, definition, dir));
            NnUnetClusterHost.StartWorkers(first, Enumerable.Range(0, 32).Select(i => $"sim{i}").ToArray(), d => new SimulatedTrainingBackend(options, d));
            await Bench.WaitFinished(first, finished, TimeSpan.FromMinutes(5));
            await Task.Delay(1000); // let the last asynchronous journal writes land
            await Bench.Stop(first);
            long events = CountEvents(db);

            var second = Bench.Coordinator(db, extra);
            // the node is up and the journal connection warm before the clock starts: we time the replay, not start-up
            while (Akka.Cluster.Cluster.Get(second).State.Members.Count == 0) await Task.Delay(20);
            var clock = Stopwatch.StartNew();
            NnUnetClusterHost.StartCoordinator(second, NnUnetClusterHost.CoordinatorSettingsFrom(second.Settings.Config, definition, dir));
            var snapshot = await NnUnetClusterHost.GetViewAsync(second, TimeSpan.FromSeconds(60));
            double seconds = clock.Elapsed.TotalSeconds;
            await Bench.Stop(second);
            Bench.EnsureCompleted(snapshot, "recovered sweep");
            Console.WriteLine($"recovery: journal of {events} events{(snapshots ? " with a snapshot every 500" : ", no snapshot")}: " +
                              $"{Bench.F(seconds)} s from coordinator start to its first answer (all {snapshot.CompletedJobs} jobs completed)");
        }
    }

    static long CountEvents(string db)
    {
        using var connection = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={db}");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT COUNT(*) FROM journal";
        return (long)command.ExecuteScalar()!;
    }
}
