using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using NnUnet.Cli.Backends;
using NnUnet.Cluster.Backends;
using NnUnet.Cluster.Hosting;
using NnUnet.Cluster.Sweeps;
using NnUnet.Core.Datasets;
using NnUnet.Core.Selection;
using NnUnet.Core.Fingerprinting;
using NnUnet.Core.Imaging;
using NnUnet.Core.Imaging.Nifti;
using NnUnet.Core.Planning;
using NnUnet.Core.Results;
using NnUnet.Training.Inference;
using NnUnet.Training.Network;
using NnUnet.Training.Trainer;
using TorchSharp;

// usage:
//   PredictBench cases WORK_DIR [CASES=20] [ROUNDS=2]
//       a 20-case CT-like test set through Predictor.PredictFolder on the CPU, sequential and pipelined alternately,
//       same model and inputs; prints the best cases/s of each and checks that both wrote the same bytes.
//   PredictBench large WORK_DIR half|float32 [Z=160] [Y=512] [X=512] [CLASSES=50]
//       one large volume with a many-class head, one case, sequential; prints the time, the peak resident memory
//       (VmHWM) and the float32 formula for the old whole-volume logits tensor.
//   PredictBench stage WORK_DIR [CASES=12] [WORKERS=1,4] [ROUNDS=2]
//       the sweep's predict stage (test-set shards + merge) of an embedded sweep with 1, then 4 CPU workers, alternately
//       for ROUNDS rounds (the first pays the JIT): best wall time from the first shard's start to the merge's end, ratio.
var invariant = CultureInfo.InvariantCulture;
string mode = args[0], work = args[1];
Directory.CreateDirectory(work);
if (mode == "cases") return Cases(work, Arg(2, 20), Arg(3, 2));
if (mode == "large") return Large(work, args[2], Arg(3, 160), Arg(4, 512), Arg(5, 512), Arg(6, 50));
if (mode == "stage") return await Stage(work, Arg(2, 12), args.Length > 3 ? args[3].Split(',').Select(w => int.Parse(w, invariant)).ToArray() : [1, 4], Arg(4, 2));
Console.Error.WriteLine($"unknown mode {mode}");
return 2;

int Arg(int i, int fallback) => args.Length > i ? int.Parse(args[i], invariant) : fallback;

// ------------------------------------------------------------------------------------------------------------------
int Cases(string work, int count, int rounds)
{
    const string dataset = "Dataset950_PredictBench";
    // a small network (2 stages, 4 and 8 features), patch 32x64x64, 3 classes, no mirroring: the machine has 2 shared
    // cores, and without TTA the device's share is the smallest, where overlapping the CPU stages matters most
    var paths = WriteModel(work, dataset, classes: 3, patch: [32, 64, 64], spacing: [2.5, 0.8, 0.8], features: [4, 8], mirror: []);
    string input = Path.Combine(work, "imagesTs");
    Directory.CreateDirectory(input);
    var rng = new Random(7);
    for (int i = 0; i < count; i++)
    {
        // CT-like, (z, y, x) = (24..32, 96..128, 96..128) at (3.0, 0.7, 0.7) mm: resampled on the way in and out
        int z = 24 + rng.Next(9), y = 96 + rng.Next(33), x = 96 + rng.Next(33);
        NiftiWriter.Write(Path.Combine(input, $"case_{i:000}_0000.nii.gz"), CtVolume(z, y, x, [0.7, 0.7, 3.0], seed: i));
    }
    var options = new PredictionOptions { Dataset = dataset, Configuration = "3d_fullres", Folds = [0], Device = "cpu", DisablePostprocessing = true };
    double bestSequential = double.MaxValue, bestPipelined = double.MaxValue;
    for (int round = 1; round <= rounds; round++)
    {
        foreach (bool pipelined in new[] { false, true })
        {
            string output = Path.Combine(work, pipelined ? "pipelined" : "sequential");
            if (Directory.Exists(output)) Directory.Delete(output, true);
            var sw = Stopwatch.StartNew();
            var run = Predictor.PredictFolder(paths, input, output, options with { Pipeline = pipelined ? PipelineOptions.Default : PipelineOptions.Sequential });
            double seconds = sw.Elapsed.TotalSeconds;
            if (run.Failed > 0) throw new InvalidOperationException(string.Join("; ", run.Cases.Where(c => !c.Succeeded).Select(c => $"{c.CaseId}: {c.Error}")));
            if (pipelined) bestPipelined = Math.Min(bestPipelined, seconds); else bestSequential = Math.Min(bestSequential, seconds);
            Console.WriteLine(FormattableString.Invariant($"round {round} {(pipelined ? "pipelined " : "sequential")} {count} cases {seconds:F2} s {count / seconds:F3} cases/s"));
        }
    }
    foreach (string file in Directory.GetFiles(Path.Combine(work, "sequential")))
        if (!File.ReadAllBytes(file).AsSpan().SequenceEqual(File.ReadAllBytes(Path.Combine(work, "pipelined", Path.GetFileName(file)))))
            throw new InvalidOperationException($"{Path.GetFileName(file)} differs between the sequential and the pipelined run");
    Console.WriteLine(FormattableString.Invariant(
        $"best sequential {count / bestSequential:F3} cases/s pipelined {count / bestPipelined:F3} cases/s ratio {bestSequential / bestPipelined:F2} identical outputs"));
    return 0;
}

// ------------------------------------------------------------------------------------------------------------------
int Large(string work, string precision, int z, int y, int x, int classes)
{
    string dataset = "Dataset951_LargeBench";
    // a small network (2 stages, 2 and 4 features), patch 64x128x128, no mirroring; the image already has the plans'
    // spacing and no zero voxels (nothing to crop or resample): the logits are (classes, z, y, x)
    var paths = WriteModel(work, dataset, classes, patch: [64, 128, 128], spacing: [1.0, 0.8, 0.8], features: [2, 4], mirror: []);
    string input = Path.Combine(work, "imagesTs-" + precision);
    Directory.CreateDirectory(input);
    NiftiWriter.Write(Path.Combine(input, "large_0000.nii.gz"), CtVolume(z, y, x, [0.8, 0.8, 1.0], seed: 1));
    GC.Collect();
    long before = PeakRss();
    var memory = new InferenceMemoryOptions { Precision = precision == "half" ? LogitsPrecision.Half : LogitsPrecision.Float32 };
    var sw = Stopwatch.StartNew();
    var run = Predictor.PredictFolder(paths, input, Path.Combine(work, "out-" + precision), new PredictionOptions
    {
        Dataset = dataset, Configuration = "3d_fullres", Folds = [0], Device = "cpu", DisablePostprocessing = true,
        Pipeline = PipelineOptions.Sequential, Memory = memory,
    });
    double seconds = sw.Elapsed.TotalSeconds;
    var result = run.Cases[0];
    long voxels = (long)z * y * x;
    long float32Formula = classes * voxels * sizeof(float);
    Console.WriteLine(FormattableString.Invariant(
        $"{precision} {classes} classes ({z}x{y}x{x}) seconds {seconds:F1} peak_rss_bytes {PeakRss()} rss_before_bytes {before} float32_logits_formula_bytes {float32Formula} ok {result.Succeeded}"));
    if (!result.Succeeded) Console.WriteLine($"error: {result.Error}");
    return 0;
}

// ------------------------------------------------------------------------------------------------------------------
// The sweep's predict stage as a sweep runs it: an embedded node (coordinator + N CPU worker actors, SQLite journal),
// a sweep with --predict split into N shards, the real TorchTrainingBackend for the shards and the merge. The sweep's
// one training fold and its selection are stand-ins that finish at once (StageOnly), so that the stage starts on a
// model and best_configuration.json written here; the wall time counts from the first shard's start to the merge's end.
async Task<int> Stage(string work, int count, int[] workerCounts, int rounds)
{
    const string dataset = "Dataset951_StageBench";
    var paths = WriteModel(work, dataset, classes: 3, patch: [32, 64, 64], spacing: [2.5, 0.8, 0.8], features: [4, 8], mirror: []);
    string raw = Path.Combine(work, "raw");
    string imagesTs = Path.Combine(raw, dataset, "imagesTs");
    Directory.CreateDirectory(imagesTs);
    DatasetJson.Create(["CT"], [new DatasetLabel("background", [0]), new DatasetLabel("a", [1]), new DatasetLabel("b", [2])], 1, ".nii.gz")
        .Save(Path.Combine(raw, dataset, DatasetJson.FileName));
    paths = paths with { Raw = raw };
    var rng = new Random(7);
    for (int i = 0; i < count; i++)
    {
        int z = 20 + rng.Next(9), y = 80 + rng.Next(33), x = 80 + rng.Next(33);
        NiftiWriter.Write(Path.Combine(imagesTs, $"case_{i:000}_0000.nii.gz"), CtVolume(z, y, x, [0.7, 0.7, 3.0], seed: i));
    }
    string datasetFolder = ResultLayout.DatasetFolder(paths.Results!, dataset);
    string model = ResultLayout.ModelFolder(paths.Results!, dataset, "nnUNetTrainer", "nnUNetPlans", "3d_fullres");
    string noPostprocessing = Path.Combine(datasetFolder, "postprocessing.json");
    File.WriteAllText(noPostprocessing, """{"postprocessing_fns": [], "postprocessing_kwargs": []}""");
    var single = new SelectionCandidate(Path.GetFileName(model), "single", ["3d_fullres"], [model], model, 0.5);
    new BestConfiguration
    {
        Dataset = dataset, Trainer = "nnUNetTrainer", Plans = "nnUNetPlans", Folds = [0], Best = single, ForegroundMeanDiceAfterPostprocessing = 0.5,
        PostprocessingFile = noPostprocessing, PostprocessingSteps = [], Candidates = [single],
    }.Save(ResultLayout.BestConfigurationJson(datasetFolder));

    var seconds = new Dictionary<int, double>();
    string? firstOutput = null;
    int run = 0;
    for (int round = 1; round <= rounds; round++)
    foreach (int workers in workerCounts)
    {
        run++;
        string output = ResultLayout.TestPredictions(datasetFolder);
        if (Directory.Exists(output)) Directory.Delete(output, true);
        var definition = SweepDefinition.Create(dataset, "nnUNetPlans", "nnUNetTrainer", ["3d_fullres"], [0], 1, predictTest: true, predictShards: workers);
        string journal = Path.Combine(work, $"journal-{run}.db");
        var config = ClusterConfig.Build(new NodeOptions(NodeKind.Embedded, SqliteJournalPath: journal, ExtraHocon: "akka.loglevel = WARNING"));
        var system = NnUnetClusterHost.StartSystem(config);
        try
        {
            var finished = NnUnetClusterHost.WhenSweepFinishedLocally(system);
            NnUnetClusterHost.StartCoordinator(system, NnUnetClusterHost.CoordinatorSettingsFrom(system.Settings.Config, definition, paths.Results!, new StageOnlyStore()));
            NnUnetClusterHost.StartWorkers(system, Enumerable.Repeat("cpu", workers).ToArray(),
                device => new StageOnly(new TorchTrainingBackend(paths, device, new TorchBackendOptions())));
            var end = await finished;
            if (end.Status != SweepStatus.Completed) throw new InvalidOperationException($"the sweep ended {end.Status}");
            var view = await NnUnetClusterHost.GetViewAsync(system, TimeSpan.FromSeconds(30));
            var stage = view.Jobs.Where(j => j.Kind is JobKind.PredictShard or JobKind.Predict).ToList();
            double wall = (stage.Max(j => j.FinishedAt!.Value) - stage.Min(j => j.StartedAt!.Value)).TotalSeconds;
            seconds[workers] = Math.Min(wall, seconds.GetValueOrDefault(workers, double.MaxValue));
            Console.WriteLine(string.Create(invariant, $"round {round} workers {workers} shards {workers} cases {count} seconds {wall:F1} cases_per_second {count / wall:F3}"));
        }
        finally { await system.Terminate(); }
        // every run writes the same segmentations, whatever the split
        string kept = Path.Combine(work, $"predictions-{run}");
        Directory.Move(output, kept);
        if (firstOutput is null) firstOutput = kept;
        else
            foreach (string file in Directory.GetFiles(firstOutput, "*.nii.gz"))
                if (!File.ReadAllBytes(file).AsSpan().SequenceEqual(File.ReadAllBytes(Path.Combine(kept, Path.GetFileName(file)))))
                    throw new InvalidOperationException($"{Path.GetFileName(file)} differs between {workerCounts[0]} and {workers} workers");
    }
    if (workerCounts.Length >= 2)
        Console.WriteLine(string.Create(invariant,
            $"best of {rounds}: {workerCounts[0]} worker(s) {seconds[workerCounts[0]]:F1} s, {workerCounts[^1]} workers {seconds[workerCounts[^1]]:F1} s; ratio {seconds[workerCounts[0]] / seconds[workerCounts[^1]]:F2} (every run wrote the same files)"));
    return 0;
}

// ------------------------------------------------------------------------------------------------------------------
static long PeakRss()
{
    foreach (string line in File.ReadLines("/proc/self/status"))
        if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
            return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) * 1024;
    return -1;
}

// int16 CT-like volume (z, y, x): air -1000 HU, a body ellipse of soft tissue with a brighter organ, noise.
static MedicalImage CtVolume(int z, int y, int x, double[] spacingXyz, int seed)
{
    var voxels = new short[(long)z * y * x];
    Parallel.For(0, z, k =>
    {
        var local = new Random(seed * 1000 + k);
        for (int j = 0; j < y; j++)
        for (int i = 0; i < x; i++)
        {
            double dy = (j - y / 2.0) / (0.42 * y), dx = (i - x / 2.0) / (0.45 * x);
            double organ = Math.Pow((j - 0.4 * y) / (0.12 * y), 2) + Math.Pow((i - 0.6 * x) / (0.1 * x), 2) + Math.Pow((k - z / 2.0) / (0.3 * z), 2);
            double value = dy * dy + dx * dx <= 1 ? (organ <= 1 ? 120 : 40) : -1000;
            voxels[((long)k * y + j) * x + i] = (short)(value + 12 * (local.NextDouble() + local.NextDouble() - 1));
        }
    });
    return new MedicalImage(1, z, y, x, VoxelType.Int16, voxels, ImageGeometry.Identity(spacingXyz[0], spacingXyz[1], spacingXyz[2]));
}

// nnUNet_results/DATASET/nnUNetTrainer__nnUNetPlans__3d_fullres with plans, dataset.json and a random fold_0 checkpoint.
static NnUnetPaths WriteModel(string work, string dataset, int classes, int[] patch, double[] spacing, int[] features, int[] mirror)
{
    string results = Path.Combine(work, "results");
    string folder = ResultLayout.ModelFolder(results, dataset, "nnUNetTrainer", "nnUNetPlans", "3d_fullres");
    Directory.CreateDirectory(folder);
    int stages = features.Length;
    var kwargs = new ArchitectureKwargs
    {
        NStages = stages, FeaturesPerStage = features, ConvOp = "torch.nn.modules.conv.Conv3d",
        KernelSizes = Enumerable.Repeat(new[] { 3, 3, 3 }, stages).ToArray(),
        Strides = Enumerable.Range(0, stages).Select(s => s == 0 ? new[] { 1, 1, 1 } : new[] { 2, 2, 2 }).ToArray(),
        NConvPerStage = Enumerable.Repeat(2, stages).ToArray(), NConvPerStageDecoder = Enumerable.Repeat(2, stages - 1).ToArray(),
    };
    var configuration = new PlansConfiguration
    {
        DataIdentifier = "nnUNetPlans_3d_fullres", BatchSize = 2, PatchSize = patch, MedianImageSizeInVoxels = patch.Select(p => (double)p).ToArray(),
        Spacing = spacing, NormalizationSchemes = ["CTNormalization"], UseMaskForNorm = [false], BatchDice = false,
        Architecture = new ArchitectureSpec { ArchKwargs = kwargs },
    };
    var plans = new NnUnetPlans
    {
        DatasetName = dataset, OriginalMedianSpacingAfterTransp = spacing, OriginalMedianShapeAfterTransp = patch,
        TransposeForward = [0, 1, 2], TransposeBackward = [0, 1, 2],
        Configurations = new() { ["3d_fullres"] = JsonSerializer.SerializeToNode(configuration, NnUnetPlans.JsonOptions)!.AsObject() },
        ForegroundIntensityPropertiesPerChannel = new() { ["0"] = new IntensityProperties(60, 55, 80, -1000, 1500, 400, -150) },
    };
    File.WriteAllText(Path.Combine(folder, "plans.json"), plans.ToJson());
    var labels = Enumerable.Range(0, classes).Select(c => new DatasetLabel(c == 0 ? "background" : $"structure_{c}", [c])).ToList();
    DatasetJson.Create(["CT"], labels, 1, ".nii.gz").Save(Path.Combine(folder, DatasetJson.FileName));
    torch.manual_seed(11);
    using var network = new PlainConvUNet(kwargs, 1, classes, deepSupervision: true);
    var metadata = new CheckpointMetadata
    {
        TrainerName = "nnUNetTrainer", PlansName = "nnUNetPlans", DatasetName = dataset, Configuration = "3d_fullres", Fold = "0",
        Architecture = kwargs, InputChannels = 1, NumClasses = classes, PatchSize = patch, MirrorAxes = mirror,
        MaxEpochs = 1, ItersPerEpoch = 1, ValIters = 1, Seed = 0, Epoch = 1, Curves = new TrainingCurves(),
    };
    Checkpoint.Save(ResultLayout.Checkpoint(ResultLayout.FoldFolder(folder, 0), ResultLayout.CheckpointFinal), metadata, network.state_dict(), []);
    return new NnUnetPaths(null, null, results);
}

/// <summary>The bench's sweep runs only its predict stage for real: its training fold and selection are done already (a model and best_configuration.json written by the bench).</summary>
sealed class StageOnly(ITrainingBackend real) : ITrainingBackend
{
    public string Name => real.Name;

    public Task<JobOutcome> RunAsync(JobSpec spec, IJobProgressSink progress, CancellationToken cancellationToken) =>
        spec.Kind is JobKind.Predict or JobKind.PredictShard ? real.RunAsync(spec, progress, cancellationToken)
            : Task.FromResult(new JobOutcome("stand-in", new Dictionary<string, double>()));
}

/// <summary>The storage check of the bench: the stand-in stages have no files; the predict stage is checked as always.</summary>
sealed class StageOnlyStore : IResultStore
{
    private readonly FileResultStore _files = new();

    public string? MissingOutputs(JobSpec spec) => spec.Kind is JobKind.Predict or JobKind.PredictShard ? _files.MissingOutputs(spec) : null;

    public bool OutputsWrittenSince(JobSpec spec, DateTime sinceUtc) => _files.OutputsWrittenSince(spec, sinceUtc);
}
