using System.Diagnostics;
using System.Globalization;
using NnUnet.Core.Planning;
using NnUnet.Training.Loss;
using NnUnet.Training.Network;
using NnUnet.Training.Optim;
using static TorchSharp.torch;

// forward + backward + clip + SGD step of PlainConvUNet with Dice+CE deep supervision, exactly as the trainer does,
// on random data: args = stages baseFeatures batch pz py px warmup steps threads
var a = args.Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToArray();
int stages = a[0], baseFeatures = a[1], batch = a[2], warmup = a[6], steps = a[7], threads = a[8];
int[] patch = [a[3], a[4], a[5]];
set_num_threads(threads);
var features = new int[stages];
var kernels = new int[stages][];
var strides = new int[stages][];
for (int s = 0; s < stages; s++)
{
    features[s] = Math.Min(320, baseFeatures << s);
    kernels[s] = [3, 3, 3];
    strides[s] = s == 0 ? [1, 1, 1] : [2, 2, 2];
}
var arch = new ArchitectureKwargs
{
    NStages = stages, FeaturesPerStage = features, ConvOp = "torch.nn.modules.conv.Conv3d", KernelSizes = kernels, Strides = strides,
    NConvPerStage = Enumerable.Repeat(2, stages).ToArray(), NConvPerStageDecoder = Enumerable.Repeat(2, stages - 1).ToArray(),
};
manual_seed(0);
using var network = new PlainConvUNet(arch, 1, 3, deepSupervision: true);
network.train();
var parameters = network.parameters().ToArray();
using var optimizer = new NesterovSgd(parameters);
var loss = new DeepSupervisionLoss(new DiceCeLoss(batchDice: false), stages - 1);
using var data = randn(new long[] { batch, 1, patch[0], patch[1], patch[2] });
using var target = randint(0, 3, new long[] { batch, 1, patch[0], patch[1], patch[2] });
var times = new List<double>();
for (int i = 0; i < warmup + steps; i++)
{
    var watch = Stopwatch.StartNew();
    using (var scope = NewDisposeScope())
    {
        optimizer.ZeroGrad();
        var outputs = network.ForwardWithDeepSupervision(data);
        var value = loss.Compute(outputs, target);
        value.backward();
        nn.utils.clip_grad_norm_(parameters, 12);
        optimizer.Step();
        value.item<float>();
    }
    if (i >= warmup) times.Add(watch.Elapsed.TotalSeconds);
}
times.Sort();
Console.WriteLine($"torchsharp median_step_s {times[times.Count / 2].ToString("F4", CultureInfo.InvariantCulture)} params {network.ParameterCount()}");

// The data side of the same step: what ONE loader thread produces per second (patch sampling with foreground
// oversampling from in-memory cases + nnU-Net's full augmentation at this patch, torch on 1 thread, as the loader's
// workers run), against what the training step consumes (batch / step time). Printed for run.sh to divide.
if (Environment.GetEnvironmentVariable("AUGMENT") != "0")
{
    set_num_threads(1);
    var geometry = NnUnet.Training.Data.PatchGeometry.For(patch);
    var cases = SyntheticCases(6, geometry.InitialPatchSize.Select(s => s + s / 2).ToArray());
    var sampler = new NnUnet.Training.Data.PatchSampler(new NnUnet.Training.Data.InMemoryCaseSource(cases), geometry.FinalPatchSize,
        geometry.InitialPatchSize, batch);
    var augmenter = new NnUnet.Training.Augmentation.NnUnetAugmenter(NnUnet.Training.Augmentation.AugmentationOptions.ForPatch(patch));
    await using var loader = new NnUnet.Training.Data.BatchLoader(sampler, augmenter, seed: 1, stream: 0, first: 0, count: 0, queueCapacity: 1,
        CPU, CancellationToken.None);
    var batchTimes = new List<double>();
    for (int i = 0; i < warmup + steps * 2; i++)
    {
        var watch = Stopwatch.StartNew();
        using (var made = loader.Make(i)) { }
        if (i >= warmup) batchTimes.Add(watch.Elapsed.TotalSeconds);
    }
    // throughput is about the mean: the expensive transforms (rotation, scaling, blur, low resolution) hit some batches only
    double batchSeconds = batchTimes.Average();
    double stepSeconds = times[times.Count / 2];
    Console.Error.WriteLine(
        $"augment mean_batch_s {batchSeconds.ToString("F4", CultureInfo.InvariantCulture)}: one loader thread {(batch / batchSeconds).ToString("F2", CultureInfo.InvariantCulture)} samples/s, " +
        $"the step consumes {(batch / stepSeconds).ToString("F2", CultureInfo.InvariantCulture)} samples/s: ratio {(stepSeconds / batchSeconds).ToString("F2", CultureInfo.InvariantCulture)} (target >= 1.5)");
}

// cases larger than the loaded patch: noise with an ellipsoid of each of two classes, class locations for oversampling
static List<NnUnet.Core.Preprocessing.PreprocessedCase> SyntheticCases(int count, int[] shape)
{
    var random = new Random(3);
    var result = new List<NnUnet.Core.Preprocessing.PreprocessedCase>();
    int voxels = shape[0] * shape[1] * shape[2];
    for (int n = 0; n < count; n++)
    {
        var data = new float[voxels];
        var seg = new sbyte[voxels];
        var locations = new Dictionary<int, List<int[]>> { [1] = [], [2] = [] };
        for (int z = 0, i = 0; z < shape[0]; z++)
        for (int y = 0; y < shape[1]; y++)
        for (int x = 0; x < shape[2]; x++, i++)
        {
            data[i] = (float)(random.NextDouble() - 0.5);
            double q1 = Math.Pow((z - shape[0] * 0.4) / (shape[0] * 0.25), 2) + Math.Pow((y - shape[1] * 0.4) / (shape[1] * 0.25), 2) + Math.Pow((x - shape[2] * 0.5) / (shape[2] * 0.3), 2);
            double q2 = Math.Pow((z - shape[0] * 0.6) / (shape[0] * 0.1), 2) + Math.Pow((y - shape[1] * 0.7) / (shape[1] * 0.1), 2) + Math.Pow((x - shape[2] * 0.5) / (shape[2] * 0.1), 2);
            int label = q2 <= 1 ? 2 : q1 <= 1 ? 1 : 0;
            if (label == 0) continue;
            seg[i] = (sbyte)label;
            data[i] += label;
            if (locations[label].Count < 1000 && random.Next(4) == 0) locations[label].Add([z, y, x]);
        }
        var properties = new NnUnet.Core.Preprocessing.CaseProperties
        {
            Geometry = new NnUnet.Core.Imaging.ImageGeometry([1, 1, 1], [0, 0, 0], [1, 0, 0, 0, 1, 0, 0, 0, 1]),
            Spacing = [1, 1, 1],
            ShapeBeforeCropping = (int[])shape.Clone(),
            BboxUsedForCropping = [[0, shape[0]], [0, shape[1]], [0, shape[2]]],
            ShapeAfterCroppingAndBeforeResampling = (int[])shape.Clone(),
            ClassLocations = locations.ToDictionary(kv => kv.Key, kv => kv.Value.ToArray()),
        };
        result.Add(new NnUnet.Core.Preprocessing.PreprocessedCase($"case_{n}", data, 1, (int[])shape.Clone(), seg, properties));
    }
    return result;
}
