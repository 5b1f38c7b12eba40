namespace NnUnet.Core.Evaluation;

/// <summary>nnU-Net's per case, per label (or region) numbers. Dice and IoU are NaN when reference and prediction are
/// both empty (tp + fp + fn = 0); a prediction on an empty reference gives 0.</summary>
public readonly record struct LabelMetrics(long TP, long FP, long FN, long TN)
{
    public double Dice => TP + FP + FN == 0 ? double.NaN : 2.0 * TP / (2.0 * TP + FP + FN);
    public double IoU => TP + FP + FN == 0 ? double.NaN : (double)TP / (TP + FP + FN);
    public long NPred => TP + FP;
    public long NRef => TP + FN;
}

/// <summary>
/// Counts, in one pass over reference and prediction, how often each (reference value, prediction value) pair occurs
/// (a confusion table over label values); every label's or region's TP/FP/FN/TN then comes from the table, so the
/// volumes are read once however many labels there are. Voxels whose reference is the ignore label are left out.
/// </summary>
public static class SegmentationMetrics
{
    private const int ParallelChunk = 1 << 21;

    /// <summary>Metrics for each of <paramref name="labelsOrRegions"/>, in that order.</summary>
    public static LabelMetrics[] Compute(ReadOnlySpan<int> reference, ReadOnlySpan<int> prediction,
        IReadOnlyList<LabelOrRegion> labelsOrRegions, int? ignoreLabel)
    {
        if (reference.Length != prediction.Length)
            throw new ArgumentException($"reference has {reference.Length} voxels, prediction {prediction.Length}");
        int maxValue = ignoreLabel ?? 0;
        foreach (var r in labelsOrRegions) maxValue = Math.Max(maxValue, r.MaxValue);
        int width = maxValue + 2; // values 0..maxValue, plus one bucket for every other value
        var table = new long[width * width];
        CountPairs(reference, prediction, maxValue, table);
        return FromTable(table, width, labelsOrRegions, ignoreLabel);
    }

    /// <summary>Same as <see cref="Compute(ReadOnlySpan{int}, ReadOnlySpan{int}, IReadOnlyList{LabelOrRegion}, int?)"/>;
    /// large volumes are counted in parallel chunks.</summary>
    public static LabelMetrics[] Compute(int[] reference, int[] prediction, IReadOnlyList<LabelOrRegion> labelsOrRegions, int? ignoreLabel)
    {
        if (reference.Length != prediction.Length)
            throw new ArgumentException($"reference has {reference.Length} voxels, prediction {prediction.Length}");
        if (reference.Length < 2 * ParallelChunk) return Compute(reference.AsSpan(), prediction.AsSpan(), labelsOrRegions, ignoreLabel);
        int maxValue = ignoreLabel ?? 0;
        foreach (var r in labelsOrRegions) maxValue = Math.Max(maxValue, r.MaxValue);
        int width = maxValue + 2;
        int chunks = (reference.Length + ParallelChunk - 1) / ParallelChunk;
        var total = new long[width * width];
        var gate = new object();
        Parallel.For(0, chunks, () => new long[width * width], (chunk, _, local) =>
        {
            int start = chunk * ParallelChunk;
            int length = Math.Min(ParallelChunk, reference.Length - start);
            CountPairs(reference.AsSpan(start, length), prediction.AsSpan(start, length), maxValue, local);
            return local;
        }, local =>
        {
            lock (gate) for (int i = 0; i < total.Length; i++) total[i] += local[i];
        });
        return FromTable(total, width, labelsOrRegions, ignoreLabel);
    }

    private static void CountPairs(ReadOnlySpan<int> reference, ReadOnlySpan<int> prediction, int maxValue, Span<long> table)
    {
        int width = maxValue + 2;
        uint other = (uint)maxValue + 1;
        for (int i = 0; i < reference.Length; i++)
        {
            uint r = (uint)reference[i];
            uint p = (uint)prediction[i];
            if (r > other) r = other; // negative values wrap to large uints and land in the "other" bucket too
            if (p > other) p = other;
            table[(int)(r * (uint)width + p)]++;
        }
    }

    private static LabelMetrics[] FromTable(long[] table, int width, IReadOnlyList<LabelOrRegion> labelsOrRegions, int? ignoreLabel)
    {
        var result = new LabelMetrics[labelsOrRegions.Count];
        Span<bool> inRegion = stackalloc bool[width];
        for (int k = 0; k < labelsOrRegions.Count; k++)
        {
            inRegion.Clear();
            foreach (int v in labelsOrRegions[k].Values) inRegion[v] = true;
            long tp = 0, fp = 0, fn = 0, tn = 0;
            for (int r = 0; r < width; r++)
            {
                if (ignoreLabel == r) continue;
                for (int p = 0; p < width; p++)
                {
                    long n = table[r * width + p];
                    if (n == 0) continue;
                    if (inRegion[r]) { if (inRegion[p]) tp += n; else fn += n; }
                    else { if (inRegion[p]) fp += n; else tn += n; }
                }
            }
            result[k] = new LabelMetrics(tp, fp, fn, tn);
        }
        return result;
    }
}
