using System.Diagnostics;
using System.Globalization;
using NnUnet.Core.Planning;
using NnUnet.Training.Loss;
using NnUnet.Training.Network;
using NnUnet.Training.Optim;
using TorchSharp;
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
