using NnUnet.Core.Datasets;
using NnUnet.Core.Evaluation;

namespace NnUnet.Core.Ensembling;

/// <summary>Class probabilities of one case: float32 (classes, z, y, x), x fastest (nnU-Net's npz layout).</summary>
public sealed class ProbabilityMap
{
    public ProbabilityMap(int classes, int sizeZ, int sizeY, int sizeX, float[] values)
    {
        if (classes < 1 || sizeZ < 1 || sizeY < 1 || sizeX < 1)
            throw new ArgumentException($"probability map dimensions must be positive, got ({classes}, {sizeZ}, {sizeY}, {sizeX})");
        if (values.LongLength != (long)classes * sizeZ * sizeY * sizeX)
            throw new ArgumentException($"probability array holds {values.LongLength} values, shape ({classes}, {sizeZ}, {sizeY}, {sizeX}) needs {(long)classes * sizeZ * sizeY * sizeX}");
        Classes = classes; SizeZ = sizeZ; SizeY = sizeY; SizeX = sizeX; Values = values;
    }

    public int Classes { get; }
    public int SizeZ { get; }
    public int SizeY { get; }
    public int SizeX { get; }
    public float[] Values { get; }
    public int VoxelsPerClass => SizeZ * SizeY * SizeX;
    public int[] Shape => [Classes, SizeZ, SizeY, SizeX];

    public const string NpzKey = "probabilities";

    /// <summary>Reads <c>CASE.npz</c> (key <c>probabilities</c>, 4D; a 3D array is taken as (classes, y, x) of a 2D case).</summary>
    public static ProbabilityMap Load(string npzPath)
    {
        var values = NpzFile.ReadFloat32(npzPath, NpzKey, out var shape);
        return shape.Length switch
        {
            4 => new ProbabilityMap(shape[0], shape[1], shape[2], shape[3], values),
            3 => new ProbabilityMap(shape[0], 1, shape[1], shape[2], values),
            _ => throw new InvalidDataException($"{npzPath}: probabilities must be (classes, z, y, x), got shape ({string.Join(", ", shape)})"),
        };
    }

    public void Save(string npzPath) => NpzFile.Write<float>(npzPath, NpzKey, Values, Shape);
}

/// <summary>How probabilities become labels (nnU-Net's LabelManager.convert_probabilities_to_segmentation).</summary>
public sealed class SegmentationHeads
{
    private SegmentationHeads(int[]? regionsClassOrder) { RegionsClassOrder = regionsClassOrder; }

    /// <summary>Null: softmax over labels, argmax (first maximum on ties, as numpy). Otherwise one sigmoid channel per
    /// region: voxels with p &gt; 0.5 are painted with the region's entry, channels in order (later ones win).</summary>
    public int[]? RegionsClassOrder { get; }

    public static SegmentationHeads Softmax { get; } = new(null);
    public static SegmentationHeads Regions(int[] regionsClassOrder) => new((int[])regionsClassOrder.Clone());

    public static SegmentationHeads ForDataset(DatasetJson dataset) =>
        dataset.HasRegions ? Regions(dataset.RegionsClassOrder ?? throw new InvalidDataException($"{dataset.Source}: regions need regions_class_order")) : Softmax;
}

/// <summary>
/// Ensembling as nnU-Net's ensemble.py: probabilities of the members are summed in float32 in member order and divided by
/// the member count, then turned into labels.
/// </summary>
public static class ProbabilityEnsembler
{
    public static ProbabilityMap Average(IReadOnlyList<ProbabilityMap> members, string caseName = "case")
    {
        if (members.Count == 0) throw new ArgumentException("at least one probability map is needed to ensemble");
        var first = members[0];
        var sum = (float[])first.Values.Clone();
        for (int m = 1; m < members.Count; m++)
        {
            var other = members[m];
            if (other.Classes != first.Classes || other.SizeZ != first.SizeZ || other.SizeY != first.SizeY || other.SizeX != first.SizeX)
                throw new InvalidDataException($"{caseName}: ensemble member {m} has probabilities of shape ({string.Join(", ", other.Shape)}), member 0 ({string.Join(", ", first.Shape)})");
            Accumulate(sum, other.Values);
        }
        float count = members.Count;
        var span = sum.AsSpan();
        for (int i = 0; i < span.Length; i++) span[i] /= count;
        return new ProbabilityMap(first.Classes, first.SizeZ, first.SizeY, first.SizeX, sum);
    }

    private static void Accumulate(Span<float> sum, ReadOnlySpan<float> add)
    {
        for (int i = 0; i < sum.Length; i++) sum[i] += add[i];
    }

    public static LabelVolume ToSegmentation(ProbabilityMap probabilities, SegmentationHeads heads)
    {
        int n = probabilities.VoxelsPerClass;
        var labels = new int[n];
        var values = probabilities.Values;
        if (heads.RegionsClassOrder is { } order)
        {
            if (order.Length != probabilities.Classes)
                throw new InvalidDataException($"{probabilities.Classes} probability channels but {order.Length} regions in regions_class_order");
            for (int c = 0; c < order.Length; c++)
            {
                var channel = values.AsSpan(c * n, n);
                int paint = order[c];
                for (int i = 0; i < n; i++) if (channel[i] > 0.5f) labels[i] = paint;
            }
        }
        else
        {
            var best = values.AsSpan(0, n).ToArray();
            for (int c = 1; c < probabilities.Classes; c++)
            {
                var channel = values.AsSpan(c * n, n);
                for (int i = 0; i < n; i++)
                    if (channel[i] > best[i]) { best[i] = channel[i]; labels[i] = c; }
            }
        }
        return new LabelVolume(probabilities.SizeZ, probabilities.SizeY, probabilities.SizeX, labels);
    }
}
