using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;
using NnUnet.Training.Torch;

namespace NnUnet.Training.Inference;

/// <summary>
/// nnU-Net's sliding-window prediction (<c>nnUNetPredictor.predict_sliding_window_return_logits</c>): the image is
/// padded (zeros, centred) to at least the patch, tiled with a step of half the patch, every tile is predicted (with
/// mirror test-time augmentation over every non-empty combination of the mirror axes, logits averaged; and, for an
/// ensemble of folds, averaged over the networks), weighted with a Gaussian importance map and accumulated; the sum
/// of weighted logits is divided by the sum of weights and the padding removed.
/// <para>A 2D patch on a 3D image (the <c>2d</c> configuration) predicts slice by slice along axis 0.</para>
/// <para>Memory, as nnU-Net: the logits accumulate in float16 by default (float32 with <see cref="LogitsPrecision.Float32"/>)
/// and live in host memory when they do not fit the device (a configured budget, or an out-of-memory error of the
/// device); the tiles alone then travel to the device.</para>
/// <para>Differences from nnU-Net, on purpose: in float16 the accumulator holds the running Gaussian-weighted mean of
/// the tiles' logits (updated in float32, rounded once per tile) instead of nnU-Net's float16 sum of logits x weight
/// divided at the end: the same value, but the sum's terms underflow float16 where a tile's weight is tiny (its
/// corners: 10 e^-24), which costs nnU-Net most digits at the volume's edges and corners; the weights stay float32
/// (4 bytes a voxel, against 2 per class for the logits). The importance map is float32 and the network output of a
/// tile float32 (no autocast). The ensemble average is taken per tile instead of per whole volume (the same value:
/// the weighting is linear).</para>
/// </summary>
public sealed class SlidingWindowPredictor
{
    public const double DefaultTileStep = 0.5;
    /// <summary>nnU-Net's Gaussian sigma as a fraction of the patch size.</summary>
    public const double GaussianSigmaScale = 1.0 / 8;
    /// <summary>nnU-Net scales the importance map to this maximum.</summary>
    public const double GaussianMaximum = 10;

    private readonly IReadOnlyList<torch.nn.Module> _networks;
    private readonly int[] _patchSize;
    private readonly int _numClasses;
    private readonly int[][] _mirrorCombinations;
    private readonly Device _device;
    private readonly double _tileStep;
    private readonly long _mirrorBatchVoxels;
    private readonly InferenceMemoryOptions _memory;

    /// <param name="networks">One network, or the networks of several folds whose logits are averaged. Each maps
    /// (b, c, *patch) to logits (b, k, *patch), or to deep-supervision outputs whose first entry is the full resolution.</param>
    /// <param name="patchSize">(z, y, x) or (y, x).</param>
    /// <param name="numClasses">k: output channels of the networks (labels, or regions).</param>
    /// <param name="mirrorAxes">Patch axes (0-based) to mirror for test-time augmentation; empty for none.</param>
    /// <param name="device">Where the networks run and, while they fit (<paramref name="memory"/>), the logits accumulate.</param>
    /// <param name="memory">Accumulator precision (default float16, as nnU-Net) and the device budget; null: the defaults.</param>
    public SlidingWindowPredictor(IReadOnlyList<torch.nn.Module> networks, int[] patchSize, int numClasses, int[] mirrorAxes,
        Device device, double tileStep = DefaultTileStep, long mirrorBatchVoxels = MirrorBatchVoxelLimit, InferenceMemoryOptions? memory = null)
    {
        ArgumentNullException.ThrowIfNull(networks);
        if (networks.Count == 0) throw new ArgumentException("at least one network is needed", nameof(networks));
        if (patchSize is null || patchSize.Length is not (2 or 3) || patchSize.Any(p => p < 1))
            throw new ArgumentException($"patch size must be 2 or 3 positive values, got ({string.Join(", ", patchSize ?? [])})", nameof(patchSize));
        if (numClasses < 1) throw new ArgumentException($"number of classes must be positive, got {numClasses}", nameof(numClasses));
        if (tileStep is <= 0 or > 1) throw new ArgumentException($"tile step must be in (0, 1], got {tileStep}", nameof(tileStep));
        foreach (int axis in mirrorAxes)
            if (axis < 0 || axis >= patchSize.Length)
                throw new ArgumentException($"mirror axis {axis} does not exist for a {patchSize.Length}D patch", nameof(mirrorAxes));
        _networks = networks;
        _patchSize = (int[])patchSize.Clone();
        _numClasses = numClasses;
        _mirrorCombinations = MirrorCombinations(mirrorAxes);
        _device = device;
        _tileStep = tileStep;
        _mirrorBatchVoxels = mirrorBatchVoxels;
        _memory = memory ?? InferenceMemoryOptions.Default;
    }

    public SlidingWindowPredictor(torch.nn.Module network, int[] patchSize, int numClasses, int[] mirrorAxes, Device device,
        double tileStep = DefaultTileStep, InferenceMemoryOptions? memory = null)
        : this([network], patchSize, numClasses, mirrorAxes, device, tileStep, MirrorBatchVoxelLimit, memory) { }

    public InferenceMemoryOptions Memory => _memory;

    public IReadOnlyList<int> PatchSize => _patchSize;

    /// <summary>Number of forward passes per tile and network (1 + the mirror combinations).</summary>
    public int PassesPerTile => 1 + _mirrorCombinations.Length;

    /// <summary>
    /// Logits (k, *spatial) for <paramref name="image"/> (c, *spatial), where spatial has as many axes as the patch, or
    /// three with a 2D patch: in the accumulator precision (<see cref="InferenceMemoryOptions.Precision"/>), on the
    /// predictor's device, or in host memory when the padded volume's accumulators exceed the device budget or the device
    /// runs out of memory (<see cref="LastAccumulation"/> says which). An <see cref="InferenceMemoryException"/> with the
    /// numbers, before anything is allocated, when the host cannot hold them either.
    /// </summary>
    public Tensor PredictLogits(Tensor image, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(image);
        int patchDims = _patchSize.Length;
        int imageDims = (int)image.dim() - 1;
        bool sliceWise = patchDims == 2 && imageDims == 3;
        if (imageDims != patchDims && !sliceWise)
            throw new ArgumentException($"image (c, *spatial) of shape ({string.Join(", ", image.shape)}) does not fit a {patchDims}D patch", nameof(image));

        long[] spatial = image.shape[1..];
        int offset = sliceWise ? 1 : 0; // axes of spatial covered by the patch start here
        var padded = new long[spatial.Length];
        for (int a = 0; a < spatial.Length; a++) padded[a] = a < offset ? spatial[a] : Math.Max(spatial[a], _patchSize[a - offset]);

        // nnU-Net preallocates on the device and falls back to host memory when that fails; here a configured budget
        // decides up front (it can be tested on a CPU), and an out-of-memory error of the device still falls back
        long voxels = 1;
        foreach (long p in padded) voxels *= p;
        long element = _memory.Precision == LogitsPrecision.Half ? 2 : 4;
        long accumulatorBytes = (_numClasses * element + sizeof(float)) * voxels; // logits, float32 weights
        long inputBytes = image.shape[0] * voxels * sizeof(float);
        bool deviceIsHost = _device.type == DeviceType.CPU;
        string? reason = null;
        if (_memory.DeviceMemoryBudgetBytes is long budget && accumulatorBytes + inputBytes > budget)
            reason = $"logits, weights and input need {HostMemory.Format(accumulatorBytes + inputBytes)}, above the device budget of {HostMemory.Format(budget)}";
        if (reason is null)
        {
            if (deviceIsHost) EnsureHostMemory(padded, accumulatorBytes, inputBytes, null);
            try
            {
                var onDevice = Accumulate(image, padded, sliceWise, _device, cancellationToken);
                LastAccumulation = new LogitsAccumulation(false, _memory.Precision, accumulatorBytes, null);
                return onDevice;
            }
            catch (Exception ex) when (!deviceIsHost && IsOutOfMemory(ex))
            {
                reason = $"the device ran out of memory ({FirstLine(ex.Message)})";
            }
        }
        EnsureHostMemory(padded, accumulatorBytes, inputBytes, reason);
        var onHost = Accumulate(image, padded, sliceWise, CPU, cancellationToken);
        LastAccumulation = new LogitsAccumulation(true, _memory.Precision, accumulatorBytes, reason);
        return onHost;
    }

    /// <summary>Where the last <see cref="PredictLogits"/> accumulated (null before the first call).</summary>
    public LogitsAccumulation? LastAccumulation { get; private set; }

    /// <summary>
    /// The sliding window proper: input and accumulators on <paramref name="resultsDevice"/>, each tile moved to the
    /// predictor's device for the networks and its weighted logits back. Returns (k, *spatial) in the accumulator
    /// precision on <paramref name="resultsDevice"/>: a view of the padded accumulator when the image was padded.
    /// </summary>
    private Tensor Accumulate(Tensor image, long[] padded, bool sliceWise, Device resultsDevice, CancellationToken cancellationToken)
    {
        foreach (var network in _networks) network.eval();
        using var noGrad = torch.no_grad();
        using var scope = torch.NewDisposeScope();

        int patchDims = _patchSize.Length;
        long[] spatial = image.shape[1..];
        int offset = sliceWise ? 1 : 0;
        // pad the patch axes to at least the patch, centred (acvl_utils pad_nd_image: floor half before)
        var padBefore = new long[spatial.Length];
        var pad = new long[2 * spatial.Length];
        bool needsPad = false;
        for (int a = 0; a < spatial.Length; a++)
        {
            long diff = padded[a] - spatial[a];
            padBefore[a] = diff / 2;
            int slot = 2 * (spatial.Length - 1 - a); // F.pad lists the last axis first
            pad[slot] = diff / 2;
            pad[slot + 1] = diff - diff / 2;
            needsPad |= diff > 0;
        }
        var input = image.to(ScalarType.Float32, resultsDevice);
        if (needsPad) input = F.pad(input, pad, PaddingModes.Constant, 0);

        var steps = new int[patchDims][];
        for (int a = 0; a < patchDims; a++) steps[a] = ComputeSteps((int)padded[a + offset], _patchSize[a], _tileStep);

        bool half = _memory.Precision == LogitsPrecision.Half;
        var dtype = half ? ScalarType.Float16 : ScalarType.Float32;
        var gaussian = GaussianImportanceMap(_patchSize, resultsDevice);
        var logits = torch.zeros([_numClasses, .. padded], dtype, resultsDevice);
        var weights = torch.zeros(padded, ScalarType.Float32, resultsDevice);
        bool moveTiles = resultsDevice.type != _device.type || resultsDevice.index != _device.index;

        long slices = sliceWise ? padded[0] : 1;
        for (long s = 0; s < slices; s++)
        {
            foreach (var position in Positions(steps))
            {
                cancellationToken.ThrowIfCancellationRequested();
                using var tileScope = torch.NewDisposeScope();
                var tileIn = input;
                var logitsView = logits;
                var weightsView = weights;
                if (sliceWise)
                {
                    tileIn = tileIn.select(1, s);
                    logitsView = logitsView.select(1, s);
                    weightsView = weightsView.select(0, s);
                }
                for (int a = 0; a < patchDims; a++)
                {
                    tileIn = tileIn.narrow(a + 1, position[a], _patchSize[a]);
                    logitsView = logitsView.narrow(a + 1, position[a], _patchSize[a]);
                    weightsView = weightsView.narrow(a, position[a], _patchSize[a]);
                }
                var tile = tileIn.unsqueeze(0).contiguous();
                if (moveTiles) tile = tile.to(_device);
                var prediction = PredictTile(tile);
                if (moveTiles) prediction = prediction.to(resultsDevice);
                weightsView.add_(gaussian);
                if (half)
                {
                    // running weighted mean: mean += (prediction - mean) * g / (sum of g so far), in float32, rounded
                    // once per tile. It stays on the logits' scale, where float16 has 11 significant bits everywhere;
                    // nnU-Net's float16 sum of logits * g loses them where g underflows (a tile's corners: 10 e^-24)
                    var mean = logitsView.to(ScalarType.Float32);
                    logitsView.copy_(mean.lerp_(prediction, gaussian.div(weightsView)));
                }
                else logitsView.add_(prediction.mul_(gaussian));
            }
        }
        if (!half) logits.div_(weights);
        else
        {
            // as nnU-Net: a logit beyond float16's range cannot be repaired later (channel by channel: no k-sized mask)
            for (long c = 0; c < _numClasses; c++)
                if (logits[c].isinf().any().item<bool>())
                    throw new InvalidDataException($"class channel {c} of the logits overflowed float16 (|logit| above 65504): predict with float32 accumulation");
        }
        // remove the padding (a view: no second copy of the accumulator)
        var result = logits;
        for (int a = 0; a < spatial.Length; a++)
            if (padded[a] != spatial[a]) result = result.narrow(a + 1, padBefore[a], spatial[a]);
        return result.MoveToOuterDisposeScope();
    }

    private void EnsureHostMemory(long[] padded, long accumulatorBytes, long inputBytes, string? reason)
    {
        long available = _memory.HostAvailable();
        if (accumulatorBytes + inputBytes <= available) return;
        throw new InferenceMemoryException(
            $"the sliding window needs {HostMemory.Format(accumulatorBytes)} for the logits and weights of {_numClasses} classes x "
            + $"({string.Join("x", padded)}) voxels in {(_memory.Precision == LogitsPrecision.Half ? "float16" : "float32")} plus "
            + $"{HostMemory.Format(inputBytes)} for the input, but only {HostMemory.Format(available)} of host memory is available"
            + (reason is null ? "" : $" (host fallback: {reason})"));
    }

    /// <summary>Torch reports allocation failures as exceptions whose message says "out of memory" (CUDA) or "not enough memory" (CPU).</summary>
    internal static bool IsOutOfMemory(Exception ex) =>
        ex is OutOfMemoryException
        || ex.Message.Contains("out of memory", StringComparison.OrdinalIgnoreCase)
        || ex.Message.Contains("not enough memory", StringComparison.OrdinalIgnoreCase);

    private static string FirstLine(string message)
    {
        int newline = message.IndexOf('\n');
        return newline < 0 ? message : message[..newline];
    }

    /// <summary>
    /// Input voxels (all channels) one forward pass may carry when the mirrored copies of a tile are stacked into one
    /// batch. Stacking is exact (instance norm is per sample) and runs the convolutions on larger matrices, which is
    /// faster on CPU and fills a GPU better for small patches; nnU-Net runs the mirrors one by one. The cap keeps the
    /// activations of large 3D patches at nnU-Net's batch-1 size: 2^20 voxels is 8 copies of a 32x64x64 patch.
    /// </summary>
    public const long MirrorBatchVoxelLimit = 1 << 20;

    /// <summary>Averaged logits (k, *patch) of all networks and mirror passes for one tile (1, c, *patch).</summary>
    private Tensor PredictTile(Tensor tile)
    {
        // variant 0 is the tile itself, then every mirror combination; flipping twice restores the orientation
        var flips = new long[PassesPerTile][];
        flips[0] = [];
        for (int m = 0; m < _mirrorCombinations.Length; m++)
        {
            flips[m + 1] = new long[_mirrorCombinations[m].Length];
            for (int i = 0; i < flips[m + 1].Length; i++) flips[m + 1][i] = _mirrorCombinations[m][i] + 2;
        }
        int perBatch = (int)Math.Clamp(_mirrorBatchVoxels / Math.Max(1, tile.numel()), 1, flips.Length);
        Tensor? sum = null;
        foreach (var network in _networks)
        {
            for (int first = 0; first < flips.Length; first += perBatch)
            {
                int count = Math.Min(perBatch, flips.Length - first);
                var variants = new Tensor[count];
                for (int v = 0; v < count; v++) variants[v] = flips[first + v].Length == 0 ? tile : tile.flip(flips[first + v]);
                var output = Forward(network, count == 1 ? variants[0] : torch.cat(variants, 0));
                for (int v = 0; v < count; v++)
                {
                    var one = output.narrow(0, v, 1);
                    if (flips[first + v].Length > 0) one = one.flip(flips[first + v]);
                    sum = sum is null ? one.clone() : sum.add_(one);
                }
            }
        }
        using var passes = TorchScalars.Of(_networks.Count * (double)PassesPerTile);
        var mean = sum!.div_(passes).squeeze(0);
        if (mean.shape[0] != _numClasses)
            throw new InvalidDataException($"the network returned {mean.shape[0]} output channels, {_numClasses} expected");
        return mean;
    }

    public static Tensor Forward(torch.nn.Module network, Tensor input) => network switch
    {
        torch.nn.Module<Tensor, Tensor> single => single.forward(input),
        torch.nn.Module<Tensor, Tensor[]> deep => deep.forward(input)[0],
        torch.nn.Module<Tensor, List<Tensor>> deep => deep.forward(input)[0],
        torch.nn.Module<Tensor, IList<Tensor>> deep => deep.forward(input)[0],
        torch.nn.Module<Tensor, IReadOnlyList<Tensor>> deep => deep.forward(input)[0],
        _ => throw new ArgumentException($"network {network.GetType().Name} must map a tensor to a tensor or to a list of deep-supervision tensors"),
    };

    /// <summary>
    /// nnU-Net's <c>compute_steps_for_sliding_window</c> on one axis: n = ceil((S - P) / (step * P)) + 1 tiles at
    /// round(i * (S - P) / (n - 1)) (round half to even, as numpy).
    /// </summary>
    public static int[] ComputeSteps(int imageSize, int patchSize, double tileStep = DefaultTileStep)
    {
        if (imageSize < patchSize) throw new ArgumentException($"image size {imageSize} is smaller than the patch {patchSize}; pad first");
        double target = patchSize * tileStep;
        int n = (int)Math.Ceiling((imageSize - patchSize) / target) + 1;
        var steps = new int[n];
        if (n == 1) return steps;
        double actual = (imageSize - patchSize) / (double)(n - 1);
        for (int i = 0; i < n; i++) steps[i] = (int)Math.Round(actual * i, MidpointRounding.ToEven);
        return steps;
    }

    private static IEnumerable<int[]> Positions(int[][] steps)
    {
        var index = new int[steps.Length];
        var position = new int[steps.Length];
        while (true)
        {
            for (int a = 0; a < steps.Length; a++) position[a] = steps[a][index[a]];
            yield return position;
            int axis = steps.Length - 1;
            while (axis >= 0 && ++index[axis] == steps[axis].Length) index[axis--] = 0;
            if (axis < 0) yield break;
        }
    }

    /// <summary>Every non-empty combination of <paramref name="axes"/>, by size then order (itertools.combinations).</summary>
    public static int[][] MirrorCombinations(int[] axes)
    {
        var result = new List<int[]>();
        for (int size = 1; size <= axes.Length; size++) Combine(axes, size, 0, new List<int>(), result);
        return result.ToArray();
    }

    private static void Combine(int[] axes, int size, int from, List<int> current, List<int[]> result)
    {
        if (current.Count == size) { result.Add(current.ToArray()); return; }
        for (int i = from; i < axes.Length; i++)
        {
            current.Add(axes[i]);
            Combine(axes, size, i + 1, current, result);
            current.RemoveAt(current.Count - 1);
        }
    }

    /// <summary>
    /// nnU-Net's <c>compute_gaussian</c>: an impulse at P//2 filtered with a Gaussian of sigma P/8 per axis (scipy
    /// <c>gaussian_filter</c>, truncated at 4 sigma, zero outside), scaled to a maximum of 10; zeros are replaced by the
    /// smallest non-zero value so that no voxel gets weight 0.
    /// </summary>
    public static Tensor GaussianImportanceMap(IReadOnlyList<int> patchSize, Device? device = null,
        double sigmaScale = GaussianSigmaScale, double maximum = GaussianMaximum)
    {
        using var scope = torch.NewDisposeScope();
        int d = patchSize.Count;
        Tensor? map = null;
        for (int a = 0; a < d; a++)
        {
            int size = patchSize[a], centre = size / 2;
            double sigma = size * sigmaScale;
            int radius = (int)(4 * sigma + 0.5);
            var profile = new double[size];
            for (int i = 0; i < size; i++)
            {
                int x = i - centre;
                profile[i] = Math.Abs(x) <= radius ? Math.Exp(-0.5 * x * x / (sigma * sigma)) : 0;
            }
            var shape = new long[d];
            Array.Fill(shape, 1L);
            shape[a] = size;
            var axisTensor = torch.tensor(profile, shape, device: device);
            map = map is null ? axisTensor : map.mul(axisTensor);
        }
        // each profile peaks at 1 at the centre, so the product's maximum is 1
        using (var peak = TorchScalars.Of(maximum)) map = map!.mul(peak).to(ScalarType.Float32);
        var isZero = map.eq(TorchScalars.Zero);
        if (isZero.any().item<bool>())
        {
            using var infinity = TorchScalars.Of(double.PositiveInfinity);
            var smallest = map.masked_fill(isZero, infinity).min();
            map = map.where(isZero.logical_not(), smallest);
        }
        return map.contiguous().MoveToOuterDisposeScope();
    }
}
