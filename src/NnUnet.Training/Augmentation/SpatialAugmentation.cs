using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;
using NnUnet.Training.Torch;

namespace NnUnet.Training.Augmentation;

/// <summary>
/// Rotation and scaling of one sample (batchgeneratorsv2 <c>SpatialTransform</c> with nnU-Net's settings: no elastic
/// deformation, centre of the input, image bilinear with zero padding, segmentation per label bilinear then argmax with
/// -1 outside the input). Runs as <c>affine_grid</c> + <c>grid_sample</c> on the tensors' device. A sample drawn without
/// rotation and scaling is centre-cropped without interpolation, as nnU-Net does.
/// </summary>
public static class SpatialAugmentation
{
    /// <summary>nnU-Net enlarges the loaded patch for the smallest scale of get_patch_size (0.85), independent of the scale draw range.</summary>
    private const double PatchSizeScaleLow = 0.85;

    /// <summary>
    /// nnU-Net's <c>get_patch_size</c>:
    /// the patch extent after rotating the patch's size vector by the largest angle of each axis (capped at 90 deg)
    /// alone, the component-wise maximum, divided by 0.85 and truncated. For dummy 2D the first axis keeps the final size.
    /// </summary>
    public static int[] InitialPatchSize(int[] finalPatch, Range1D rotation, bool dummyTwoD)
    {
        double angle = Math.Min(Math.Max(Math.Abs(rotation.Low), Math.Abs(rotation.High)), Math.PI / 2);
        int n = finalPatch.Length;
        var extent = new double[n];
        for (int i = 0; i < n; i++) extent[i] = finalPatch[i];
        double c = Math.Cos(angle), s = Math.Sin(angle);
        if (n == 3)
        {
            double[] p = [finalPatch[0], finalPatch[1], finalPatch[2]];
            // row vector p times the rotation matrix about each axis (batchgenerators' rotate_coords_3d)
            double[][] rotations =
            [
                [1, 0, 0, 0, c, -s, 0, s, c],
                [c, 0, s, 0, 1, 0, -s, 0, c],
                [c, -s, 0, s, c, 0, 0, 0, 1],
            ];
            foreach (var m in rotations)
                for (int j = 0; j < 3; j++)
                    extent[j] = Math.Max(extent[j], Math.Abs(p[0] * m[j] + p[1] * m[3 + j] + p[2] * m[6 + j]));
        }
        else if (n == 2)
        {
            double p0 = finalPatch[0], p1 = finalPatch[1];
            extent[0] = Math.Max(extent[0], Math.Abs(p0 * c + p1 * s));
            extent[1] = Math.Max(extent[1], Math.Abs(-p0 * s + p1 * c));
        }
        else throw new ArgumentException($"patch size must have 2 or 3 axes, got {n}", nameof(finalPatch));
        var result = new int[n];
        for (int i = 0; i < n; i++) result[i] = (int)(extent[i] / PatchSizeScaleLow);
        if (dummyTwoD && n == 3) result[0] = finalPatch[0];
        return result;
    }

    /// <summary>
    /// The linear map from output-patch voxel offsets (from the patch centre) to input voxel offsets, in array axis
    /// order: batchgeneratorsv2's <c>Rz(a2) Ry(a1) Rx(a0) S</c> in 3D, <c>R(a) S</c> in 2D.
    /// </summary>
    public static double[,] AffineMatrix(ReadOnlySpan<double> angles, double scale)
    {
        if (angles.Length == 2 || angles.Length == 1)
        {
            double a = angles[^1], c = Math.Cos(a), s = Math.Sin(a);
            return new[,] { { c * scale, -s * scale }, { s * scale, c * scale } };
        }
        if (angles.Length != 3) throw new ArgumentException("angles must hold 1, 2 or 3 values", nameof(angles));
        double cx = Math.Cos(angles[0]), sx = Math.Sin(angles[0]);
        double cy = Math.Cos(angles[1]), sy = Math.Sin(angles[1]);
        double cz = Math.Cos(angles[2]), sz = Math.Sin(angles[2]);
        double[,] rx = { { 1, 0, 0 }, { 0, cx, -sx }, { 0, sx, cx } };
        double[,] ry = { { cy, 0, sy }, { 0, 1, 0 }, { -sy, 0, cy } };
        double[,] rz = { { cz, -sz, 0 }, { sz, cz, 0 }, { 0, 0, 1 } };
        var m = Multiply(Multiply(rz, ry), rx);
        for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) m[i, j] *= scale;
        return m;
    }

    private static double[,] Multiply(double[,] a, double[,] b)
    {
        int n = a.GetLength(0);
        var r = new double[n, n];
        for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++)
        {
            double sum = 0;
            for (int k = 0; k < n; k++) sum += a[i, k] * b[k, j];
            r[i, j] = sum;
        }
        return r;
    }

    /// <summary>
    /// The <c>grid_sample</c> grid (1, *outShape, dims) in x-first order, align_corners=false, that maps each output voxel
    /// centre through <paramref name="affine"/> about the centres of the output and input.
    /// </summary>
    public static Tensor Grid(double[,] affine, ReadOnlySpan<long> inShape, ReadOnlySpan<long> outShape, Device device)
    {
        int d = inShape.Length;
        // normalised output coordinate u_out = offset_out / (s/2); normalised input u_in = offset_in / (S/2)
        // => u_in = diag(2/S) A diag(s/2) u_out; then reversed axis order for grid_sample (x first).
        var theta = new float[d * (d + 1)];
        for (int r = 0; r < d; r++)
        for (int c = 0; c < d; c++)
        {
            int ar = d - 1 - r, ac = d - 1 - c;
            theta[r * (d + 1) + c] = (float)(2.0 / inShape[ar] * affine[ar, ac] * (outShape[ac] / 2.0));
        }
        using var thetaTensor = torch.tensor(theta, [1, d, d + 1], device: device);
        var size = new long[d + 2];
        size[0] = 1; size[1] = 1;
        outShape.CopyTo(size.AsSpan(2));
        return F.affine_grid(thetaTensor, size, align_corners: false);
    }

    /// <summary>Samples (C, *in) image channels on <paramref name="grid"/>: bilinear, zeros outside.</summary>
    public static Tensor SampleImage(Tensor image, Tensor grid)
    {
        using var batched = image.unsqueeze(0);
        using var sampled = F.grid_sample(batched, grid, GridSampleMode.Bilinear, GridSamplePaddingMode.Zeros, align_corners: false);
        return sampled.squeeze(0);
    }

    /// <summary>
    /// Samples (C, *in) label maps on <paramref name="grid"/>: each label present is interpolated as a one-hot mask and
    /// the largest wins (the lowest label on ties); voxels whose sampling point lies outside the input get
    /// <paramref name="outsideValue"/>. Keeps the input's dtype.
    /// </summary>
    public static Tensor SampleSegmentation(Tensor seg, Tensor grid, double outsideValue)
    {
        using var scope = torch.NewDisposeScope();
        var labels = PresentLabelCandidates(seg);
        long nLabels = labels.shape[0];
        long channels = seg.shape[0];
        var inShape = seg.shape[1..];
        var labelView = new long[seg.dim() + 1];
        Array.Fill(labelView, 1L);
        labelView[0] = nLabels;
        var oneHot = seg.unsqueeze(0).eq(labels.view(labelView)).to(ScalarType.Float32);
        var stacked = oneHot.reshape([1, nLabels * channels, .. inShape]);
        var sampled = F.grid_sample(stacked, grid, GridSampleMode.Bilinear, GridSamplePaddingMode.Zeros, align_corners: false);
        var outShape = sampled.shape[2..];
        var winner = sampled.reshape([nLabels, channels, .. outShape]).argmax(0);
        var result = labels.index_select(0, winner.flatten()).reshape([channels, .. outShape]);
        var outside = OutsideMask(grid, inShape);
        using var fill = TorchScalars.Of(outsideValue);
        result.masked_fill_(outside.unsqueeze(0), fill);
        return result.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Sorted label values to interpolate: the whole range min..max when it is short (nnU-Net's labels are consecutive;
    /// a value that does not occur gives an all-zero channel, which never wins inside the input), which avoids a sort
    /// of the whole volume; otherwise the distinct values.
    /// </summary>
    private static Tensor PresentLabelCandidates(Tensor seg)
    {
        var (min, max) = seg.aminmax();
        long low = min.to(ScalarType.Int64).item<long>(), high = max.to(ScalarType.Int64).item<long>();
        if (high - low < 64)
        {
            using var start = TorchScalars.Of(low);
            using var stop = TorchScalars.Of(high + 1);
            return torch.arange(start, stop, seg.dtype, seg.device);
        }
        var (distinct, _, _) = seg.unique(sorted: true);
        return distinct;
    }

    /// <summary>Output voxels (shape *out) whose sampling point lies beyond the outermost input voxel centres.</summary>
    private static Tensor OutsideMask(Tensor grid, long[] inShape)
    {
        int d = inShape.Length;
        Tensor? outside = null;
        for (int k = 0; k < d; k++)
        {
            long size = inShape[d - 1 - k]; // grid component k is array axis d-1-k
            double bound = 1 - 1.0 / size;
            var component = grid.select(-1, k).squeeze(0);
            using var below = TorchScalars.Of(-bound - 1e-6);
            using var above = TorchScalars.Of(bound + 1e-6);
            var here = component.lt(below).logical_or_(component.gt(above));
            outside = outside is null ? here : outside.logical_or_(here);
        }
        return outside!;
    }

    /// <summary>
    /// Centre crop (batchgeneratorsv2 <c>crop_tensor</c> about floor(S/2)) of (C, *in) to <paramref name="outShape"/>,
    /// padding with <paramref name="padValue"/> where the crop leaves the input.
    /// </summary>
    public static Tensor CenterCrop(Tensor x, ReadOnlySpan<long> outShape, double padValue)
    {
        int d = outShape.Length;
        var result = x.alias();
        var pad = new long[2 * d];
        bool needsPad = false;
        for (int a = 0; a < d; a++)
        {
            long size = x.shape[a + 1];
            long start = size / 2 - outShape[a] / 2;
            long end = start + outShape[a];
            long from = Math.Max(0, start), to = Math.Min(size, end);
            var narrowed = result.narrow(a + 1, from, Math.Max(0, to - from));
            result.Dispose();
            result = narrowed;
            // F.pad lists the last axis first
            pad[2 * (d - 1 - a)] = from - start;
            pad[2 * (d - 1 - a) + 1] = end - to;
            needsPad |= from != start || to != end;
        }
        if (!needsPad) return result;
        var padded = F.pad(result, pad, PaddingModes.Constant, padValue);
        result.Dispose();
        return padded;
    }
}
