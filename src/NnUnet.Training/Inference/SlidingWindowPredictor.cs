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
/// <para>Differences from nnU-Net, on purpose: the importance map is float32 (nnU-Net: float16 on the GPU) and the
/// ensemble average is taken per tile instead of per whole volume (the same value: the weighting is linear).</para>
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

    /// <param name="networks">One network, or the networks of several folds whose logits are averaged. Each maps
    /// (b, c, *patch) to logits (b, k, *patch), or to deep-supervision outputs whose first entry is the full resolution.</param>
    /// <param name="patchSize">(z, y, x) or (y, x).</param>
    /// <param name="numClasses">k: output channels of the networks (labels, or regions).</param>
    /// <param name="mirrorAxes">Patch axes (0-based) to mirror for test-time augmentation; empty for none.</param>
    /// <param name="device">Where the networks run and the logits accumulate.</param>
    public SlidingWindowPredictor(IReadOnlyList<torch.nn.Module> networks, int[] patchSize, int numClasses, int[] mirrorAxes,
        Device device, double tileStep = DefaultTileStep, long mirrorBatchVoxels = MirrorBatchVoxelLimit)
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
    }

    public SlidingWindowPredictor(torch.nn.Module network, int[] patchSize, int numClasses, int[] mirrorAxes, Device device,
        double tileStep = DefaultTileStep)
        : this([network], patchSize, numClasses, mirrorAxes, device, tileStep) { }

    public IReadOnlyList<int> PatchSize => _patchSize;

    /// <summary>Number of forward passes per tile and network (1 + the mirror combinations).</summary>
    public int PassesPerTile => 1 + _mirrorCombinations.Length;

    /// <summary>
    /// Logits (k, *spatial) float32 on the predictor's device for <paramref name="image"/> (c, *spatial), where spatial
    /// has as many axes as the patch, or three with a 2D patch.
    /// </summary>
    public Tensor PredictLogits(Tensor image, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(image);
        int patchDims = _patchSize.Length;
        int imageDims = (int)image.dim() - 1;
        bool sliceWise = patchDims == 2 && imageDims == 3;
        if (imageDims != patchDims && !sliceWise)
            throw new ArgumentException($"image (c, *spatial) of shape ({string.Join(", ", image.shape)}) does not fit a {patchDims}D patch", nameof(image));

        foreach (var network in _networks) network.eval();
        using var noGrad = torch.no_grad();
        using var scope = torch.NewDisposeScope();

        long[] spatial = image.shape[1..];
        int offset = sliceWise ? 1 : 0; // axes of spatial covered by the patch start here
        // pad the patch axes to at least the patch, centred (acvl_utils pad_nd_image: floor half before)
        var padBefore = new long[spatial.Length];
        var padded = new long[spatial.Length];
        var pad = new long[2 * spatial.Length];
        bool needsPad = false;
        for (int a = 0; a < spatial.Length; a++)
        {
            long target = a < offset ? spatial[a] : Math.Max(spatial[a], _patchSize[a - offset]);
            long diff = target - spatial[a];
            padBefore[a] = diff / 2;
            padded[a] = target;
            int slot = 2 * (spatial.Length - 1 - a); // F.pad lists the last axis first
            pad[slot] = diff / 2;
            pad[slot + 1] = diff - diff / 2;
            needsPad |= diff > 0;
        }
        var input = image.to(ScalarType.Float32, _device);
        if (needsPad) input = F.pad(input, pad, PaddingModes.Constant, 0);

        var steps = new int[patchDims][];
        for (int a = 0; a < patchDims; a++) steps[a] = ComputeSteps((int)padded[a + offset], _patchSize[a], _tileStep);

        var gaussian = GaussianImportanceMap(_patchSize, _device);
        var logits = torch.zeros([_numClasses, .. padded], ScalarType.Float32, _device);
        var weights = torch.zeros(padded, ScalarType.Float32, _device);

        long slices = sliceWise ? padded[0] : 1;
        var start = new int[patchDims];
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
                var prediction = PredictTile(tileIn.unsqueeze(0).contiguous());
                logitsView.add_(prediction.mul_(gaussian));
                weightsView.add_(gaussian);
            }
        }
        logits.div_(weights);
        // remove the padding
        var result = logits;
        for (int a = 0; a < spatial.Length; a++)
            if (padded[a] != spatial[a]) result = result.narrow(a + 1, padBefore[a], spatial[a]);
        return result.contiguous().MoveToOuterDisposeScope();
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
