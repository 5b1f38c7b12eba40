using NnUnet.Core.Datasets;

namespace NnUnet.Core.Preprocessing;

/// <summary>
/// Foreground voxel locations sampled for oversampling during training, as nnU-Net v2's
/// <c>DefaultPreprocessor._sample_foreground_locations</c>: for each class (a label, or a region = several labels), all of
/// its voxels listed label by label (in the order the class names them), each label's voxels in C order; then
/// <c>max(min(10000, n), ceil(n * 0.01))</c> of them drawn without replacement with one <c>RandomState(1234)</c> shared by
/// the classes in turn. A class with no voxel gets an empty list and draws nothing.
/// </summary>
public static class ClassLocations
{
    public const int Seed = 1234;
    public const int MinNumSamples = 10000;
    public const double MinPercentCoverage = 0.01;

    /// <summary>One class to sample: the dictionary key it is stored under and the label values it covers.</summary>
    public sealed record SampledClass(int Key, int[] Labels);

    /// <summary>
    /// The classes nnU-Net samples for a dataset: every foreground label (key = label); with regions every foreground
    /// region (key = its 0-based index among the foreground regions, since the contract's keys are integers); with an
    /// ignore label additionally the union of -1 and all labels under key -1 (nnU-Net's <c>(-1, *all_labels)</c>).
    /// </summary>
    public static IReadOnlyList<SampledClass> ClassesFor(DatasetJson datasetJson)
    {
        var classes = new List<SampledClass>();
        if (datasetJson.HasRegions)
        {
            var regions = datasetJson.ForegroundRegions;
            for (int i = 0; i < regions.Count; i++) classes.Add(new SampledClass(i, regions[i].Values));
        }
        else
        {
            foreach (int label in datasetJson.AllLabels)
                if (label != 0) classes.Add(new SampledClass(label, [label]));
        }
        if (datasetJson.HasIgnoreLabel)
        {
            var all = new int[datasetJson.AllLabels.Count + 1];
            all[0] = -1;
            for (int i = 0; i < datasetJson.AllLabels.Count; i++) all[i + 1] = datasetJson.AllLabels[i];
            classes.Add(new SampledClass(-1, all));
        }
        return classes;
    }

    /// <summary>Samples locations (z, y, x) of each class in a (z, y, x) segmentation.</summary>
    public static Dictionary<int, int[][]> Sample(ReadOnlySpan<sbyte> seg, int[] shape, IReadOnlyList<SampledClass> classes, int seed = Seed)
    {
        if ((long)shape[0] * shape[1] * shape[2] != seg.Length)
            throw new ArgumentException($"segmentation has {seg.Length} voxels, shape ({string.Join(", ", shape)}) needs {(long)shape[0] * shape[1] * shape[2]}");
        // voxel indices per label value (C order), only for labels some class asks for
        var wanted = new bool[256];
        foreach (var c in classes)
            foreach (int label in c.Labels)
                if (label is >= sbyte.MinValue and <= sbyte.MaxValue) wanted[label + 128] = true;
        var counts = new int[256];
        foreach (sbyte s in seg) counts[s + 128]++;
        var voxels = new int[256][];
        for (int v = 0; v < 256; v++) if (wanted[v] && counts[v] > 0) voxels[v] = new int[counts[v]];
        var filled = new int[256];
        for (int i = 0; i < seg.Length; i++)
        {
            int v = seg[i] + 128;
            if (voxels[v] is { } list) list[filled[v]++] = i;
        }

        var random = new NumpyRandomState(seed);
        var result = new Dictionary<int, int[][]>();
        int planeSize = shape[1] * shape[2];
        foreach (var c in classes)
        {
            long total = 0;
            foreach (int label in c.Labels)
                if (label is >= sbyte.MinValue and <= sbyte.MaxValue && voxels[label + 128] is { } list) total += list.Length;
            if (total == 0)
            {
                result[c.Key] = [];
                continue;
            }
            int target = (int)Math.Min(MinNumSamples, total);
            target = (int)Math.Max(target, (long)Math.Ceiling(total * MinPercentCoverage));
            int[] offsets = random.ChoiceWithoutReplacement(checked((int)total), target);
            var picked = new int[target][];
            for (int k = 0; k < target; k++)
            {
                int flat = VoxelAt(c.Labels, voxels, offsets[k]);
                int z = flat / planeSize, rest = flat % planeSize;
                picked[k] = [z, rest / shape[2], rest % shape[2]];
            }
            result[c.Key] = picked;
        }
        return result;
    }

    /// <summary>The voxel at <paramref name="offset"/> of the class's voxels laid out label after label.</summary>
    private static int VoxelAt(int[] labels, int[]?[] voxels, int offset)
    {
        foreach (int label in labels)
        {
            if (label is < sbyte.MinValue or > sbyte.MaxValue || voxels[label + 128] is not { } list) continue;
            if (offset < list.Length) return list[offset];
            offset -= list.Length;
        }
        throw new InvalidOperationException("offset beyond the class's voxels");
    }
}
