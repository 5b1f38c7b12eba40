using NnUnet.Core.Planning;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace NnUnet.Training.Network;

/// <summary>
/// nnU-Net v2's <c>PlainConvUNet</c> (dynamic_network_architectures) built from a plan's <see cref="ArchitectureKwargs"/>:
/// encoder stages of n_conv x (Conv k, padding (k-1)/2, bias -> InstanceNorm(affine, eps 1e-5) -> LeakyReLU 0.01), the
/// first conv of a stage carrying the plan's stride; decoder stages of ConvTranspose (kernel = stride) -> concat skip ->
/// convs; a 1x1 segmentation head at every decoder level. Heads are always built (as nnU-Net does, so checkpoints load
/// either way); <see cref="DeepSupervision"/> only decides what <see cref="ForwardWithDeepSupervision"/> returns.
/// Weights are He-initialised (kaiming normal, a = 1e-2; biases 0) from Torch's global generator; with a seed, that
/// generator is seeded first, and the seeding and every draw of the construction happen under one process-wide lock.
/// Parameter names (state_dict keys) are stable: encoder.N.M.{conv,norm}, transpconvs.N, decoder.N.M.{conv,norm}, seg_layers.N.
/// </summary>
public sealed class PlainConvUNet : Module<Tensor, Tensor>
{
    private readonly ModuleList<Sequential> encoder;
    private readonly ModuleList<Module<Tensor, Tensor>> transpconvs;
    private readonly ModuleList<Sequential> decoder;
    private readonly ModuleList<Module<Tensor, Tensor>> seg_layers;

    public ArchitectureKwargs Architecture { get; }
    public int InputChannels { get; }
    public int NumClasses { get; }
    public int SpatialDims { get; }
    /// <summary>When true, <see cref="ForwardWithDeepSupervision"/> returns one output per decoder level (highest resolution first).</summary>
    public bool DeepSupervision { get; set; }

    // libtorch's default generator is one per process: a worker process runs one job per device at once, and two
    // networks built at the same moment would draw each other's numbers, so a seed would no longer fix the weights
    private static readonly Lock DefaultGenerator = new();

    /// <param name="seed">seeds Torch's global generator before the weights are drawn (the trainer's run seed); null: drawn from its current state.</param>
    public PlainConvUNet(ArchitectureKwargs arch, int inputChannels, int numClasses, bool deepSupervision, long? seed = null) : base(nameof(PlainConvUNet))
    {
        Validate(arch, inputChannels, numClasses);
        Architecture = arch;
        InputChannels = inputChannels;
        NumClasses = numClasses;
        SpatialDims = arch.SpatialDims;
        DeepSupervision = deepSupervision;
        double eps = ReadDouble(arch.NormOpKwargs, "eps", 1e-5);
        bool affine = ReadBool(arch.NormOpKwargs, "affine", true);
        double slope = ReadDouble(arch.NonlinKwargs, "negative_slope", 1e-2);

        // the layers' own default initialisation draws from the generator too
        lock (DefaultGenerator)
        {
            if (seed is { } runSeed) manual_seed(runSeed);
            encoder = new ModuleList<Sequential>();
            int previous = inputChannels;
            for (int s = 0; s < arch.NStages; s++)
            {
                encoder.Add(ConvStack(arch.NConvPerStage[s], previous, arch.FeaturesPerStage[s], arch.KernelSizes[s], arch.Strides[s], arch.ConvBias, eps, affine, slope));
                previous = arch.FeaturesPerStage[s];
            }

            transpconvs = new ModuleList<Module<Tensor, Tensor>>();
            decoder = new ModuleList<Sequential>();
            seg_layers = new ModuleList<Module<Tensor, Tensor>>();
            for (int d = 0; d < arch.NStages - 1; d++)
            {
                int below = arch.FeaturesPerStage[arch.NStages - 1 - d];
                int skip = arch.FeaturesPerStage[arch.NStages - 2 - d];
                int[] stride = arch.Strides[arch.NStages - 1 - d];
                transpconvs.Add(TransposedConv(below, skip, stride, arch.ConvBias));
                decoder.Add(ConvStack(arch.NConvPerStageDecoder[d], 2 * skip, skip, arch.KernelSizes[arch.NStages - 2 - d], Ones(SpatialDims), arch.ConvBias, eps, affine, slope));
                seg_layers.Add(Conv(skip, numClasses, Ones(SpatialDims), Ones(SpatialDims), bias: true));
            }
            RegisterComponents();
            InitialiseHe(this, 1e-2);
        }
    }

    /// <summary>Logits at full resolution (the highest-resolution head), whatever <see cref="DeepSupervision"/> says.</summary>
    public override Tensor forward(Tensor input) => Run(input, allHeads: false)[0];

    /// <summary>
    /// Deep supervision on: logits of every decoder level, highest resolution first (n_stages - 1 tensors).
    /// Off: a single tensor, the full-resolution logits.
    /// </summary>
    public Tensor[] ForwardWithDeepSupervision(Tensor input) => Run(input, allHeads: DeepSupervision);

    private Tensor[] Run(Tensor input, bool allHeads)
    {
        int nStages = encoder.Count;
        var skips = new Tensor[nStages];
        var x = input;
        for (int s = 0; s < nStages; s++) { x = encoder[s].forward(x); skips[s] = x; }

        int nDecoder = nStages - 1;
        var outputs = new Tensor[allHeads ? nDecoder : 1];
        var lower = skips[nStages - 1];
        for (int d = 0; d < nDecoder; d++)
        {
            using var up = transpconvs[d].forward(lower);
            using var joined = torch.cat([up, skips[nStages - 2 - d]], 1);
            var current = decoder[d].forward(joined);
            if (allHeads) outputs[nDecoder - 1 - d] = seg_layers[d].forward(current);
            else if (d == nDecoder - 1) outputs[0] = seg_layers[d].forward(current);
            lower = current;
        }
        return outputs;
    }

    /// <summary>Number of trainable parameters (every seg head included, as nnU-Net counts them).</summary>
    public long ParameterCount()
    {
        long total = 0;
        foreach (var p in parameters()) total += p.numel();
        return total;
    }

    /// <summary>nnU-Net's InitWeights_He: kaiming normal (fan_in, leaky_relu with slope a) on every (transposed) conv weight, bias 0.</summary>
    public static void InitialiseHe(Module module, double negativeSlope)
    {
        using var noGrad = torch.no_grad();
        foreach (var (_, child) in module.named_modules())
        {
            Tensor? weight = null, bias = null;
            switch (child)
            {
                case Conv3d c: weight = c.weight; bias = c.bias; break;
                case Conv2d c: weight = c.weight; bias = c.bias; break;
                case ConvTranspose3d c: weight = c.weight; bias = c.bias; break;
                case ConvTranspose2d c: weight = c.weight; bias = c.bias; break;
            }
            if (weight is null) continue;
            init.kaiming_normal_(weight, a: negativeSlope);
            if (bias is not null) init.zeros_(bias);
        }
    }

    private Sequential ConvStack(int nConvs, int inChannels, int outChannels, int[] kernel, int[] firstStride, bool bias, double eps, bool affine, double slope)
    {
        var layers = new List<(string, Module<Tensor, Tensor>)>(nConvs);
        for (int i = 0; i < nConvs; i++)
        {
            var block = Sequential(
                ("conv", Conv(i == 0 ? inChannels : outChannels, outChannels, kernel, i == 0 ? firstStride : Ones(SpatialDims), bias)),
                ("norm", SpatialDims == 3
                    ? InstanceNorm3d(outChannels, eps, affine: affine, track_running_stats: false)
                    : (Module<Tensor, Tensor>)InstanceNorm2d(outChannels, eps, affine: affine, track_running_stats: false)),
                ("nonlin", LeakyReLU(slope, inplace: true)));
            layers.Add((i.ToString(System.Globalization.CultureInfo.InvariantCulture), block));
        }
        return Sequential(layers);
    }

    private Module<Tensor, Tensor> Conv(int inChannels, int outChannels, int[] kernel, int[] stride, bool bias)
    {
        if (SpatialDims == 3)
            return Conv3d(inChannels, outChannels, (kernel[0], kernel[1], kernel[2]), stride: (stride[0], stride[1], stride[2]),
                padding: ((kernel[0] - 1) / 2, (kernel[1] - 1) / 2, (kernel[2] - 1) / 2), bias: bias);
        return Conv2d(inChannels, outChannels, (kernel[0], kernel[1]), stride: (stride[0], stride[1]),
            padding: ((kernel[0] - 1) / 2, (kernel[1] - 1) / 2), bias: bias);
    }

    private Module<Tensor, Tensor> TransposedConv(int inChannels, int outChannels, int[] stride, bool bias) => SpatialDims == 3
        ? ConvTranspose3d(inChannels, outChannels, (stride[0], stride[1], stride[2]), stride: (stride[0], stride[1], stride[2]), bias: bias)
        : ConvTranspose2d(inChannels, outChannels, (stride[0], stride[1]), stride: (stride[0], stride[1]), bias: bias);

    private static int[] Ones(int n) { var a = new int[n]; Array.Fill(a, 1); return a; }

    private static double ReadDouble(Dictionary<string, System.Text.Json.Nodes.JsonNode?>? kwargs, string key, double fallback) =>
        kwargs is not null && kwargs.TryGetValue(key, out var node) && node is not null ? node.GetValue<double>() : fallback;

    private static bool ReadBool(Dictionary<string, System.Text.Json.Nodes.JsonNode?>? kwargs, string key, bool fallback) =>
        kwargs is not null && kwargs.TryGetValue(key, out var node) && node is not null ? node.GetValue<bool>() : fallback;

    private static void Validate(ArchitectureKwargs arch, int inputChannels, int numClasses)
    {
        if (arch.NStages < 2) throw new ArgumentException($"architecture: n_stages must be >= 2, got {arch.NStages}");
        if (inputChannels < 1) throw new ArgumentException($"architecture: input channels must be >= 1, got {inputChannels}");
        if (numClasses < 2) throw new ArgumentException($"architecture: need at least 2 classes (background + 1), got {numClasses}");
        int dims = arch.SpatialDims;
        void Check(string name, int count) { if (count != arch.NStages) throw new ArgumentException($"architecture: {name} has {count} entries, n_stages is {arch.NStages}"); }
        Check("features_per_stage", arch.FeaturesPerStage.Length);
        Check("kernel_sizes", arch.KernelSizes.Length);
        Check("strides", arch.Strides.Length);
        Check("n_conv_per_stage", arch.NConvPerStage.Length);
        if (arch.NConvPerStageDecoder.Length != arch.NStages - 1)
            throw new ArgumentException($"architecture: n_conv_per_stage_decoder has {arch.NConvPerStageDecoder.Length} entries, expected n_stages - 1 = {arch.NStages - 1}");
        for (int s = 0; s < arch.NStages; s++)
        {
            if (arch.KernelSizes[s].Length != dims || arch.Strides[s].Length != dims)
                throw new ArgumentException($"architecture: stage {s} kernel/stride must have {dims} entries for {arch.ConvOp}");
            foreach (int k in arch.KernelSizes[s]) if (k < 1 || k % 2 == 0) throw new ArgumentException($"architecture: stage {s} kernel size {k} must be odd and >= 1");
            foreach (int st in arch.Strides[s]) if (st < 1) throw new ArgumentException($"architecture: stage {s} stride {st} must be >= 1");
        }
    }
}
