namespace NnUnet.Core.Fingerprinting;

/// <summary>
/// numpy's <c>mean</c>, <c>std</c> and linear <c>percentile</c>, reproduced to the bit for float32 and float64 arrays:
/// sums are numpy's pairwise summation (8-way unrolled blocks of up to 128 values) over 8192-value chunks of the ufunc
/// buffer, in the data type; divisions as numpy does; percentiles interpolate as numpy's <c>_lerp</c> (a + (b - a) t, or
/// b - (b - a)(1 - t) when t &gt;= 0.5, with b - a rounded to the data type) between order statistics found by selection
/// (no full sort of 1e8 samples). This keeps fingerprints identical to nnU-Net's for the same samples.
/// </summary>
public static class NumpyStatistics
{
    private const int PairwiseBlock = 128;

    /// <summary>numpy's ufunc buffer: a reduction over a long array is summed pairwise in chunks of this many values.</summary>
    private const int BufferSize = 8192;

    /// <summary>numpy <c>add.reduce</c> of a float64 array: pairwise sums of 8192-value chunks, added in order.</summary>
    public static double Sum(ReadOnlySpan<double> values)
    {
        double total = 0;
        for (int start = 0; start < values.Length; start += BufferSize)
            total += Pairwise(values.Slice(start, Math.Min(BufferSize, values.Length - start)));
        return total;
    }

    /// <summary>numpy <c>mean</c> and <c>std</c> (ddof 0) of float32 data: float32 arithmetic as numpy, results widened.
    /// Delegates to the preprocessing's implementation of numpy's float32 reductions.</summary>
    public static (double Mean, double Std) MeanStd(ReadOnlySpan<float> values)
    {
        var (mean, std) = Preprocessing.NumpyFloat32.MeanStd(values);
        return (mean, std);
    }

    /// <summary>numpy <c>mean</c> and <c>std</c> (ddof 0) of float64 data.</summary>
    public static (double Mean, double Std) MeanStd(ReadOnlySpan<double> values)
    {
        double mean = Sum(values) / values.Length;
        var squares = GC.AllocateUninitializedArray<double>(values.Length);
        for (int i = 0; i < values.Length; i++)
        {
            double d = values[i] - mean;
            squares[i] = d * d;
        }
        return (mean, Math.Sqrt(Sum(squares) / values.Length));
    }

    private static double Pairwise(ReadOnlySpan<double> values)
    {
        if (values.Length < 8)
        {
            double sum = 0;
            foreach (double v in values) sum += v;
            return sum;
        }
        if (values.Length <= PairwiseBlock)
        {
            double r0 = values[0], r1 = values[1], r2 = values[2], r3 = values[3], r4 = values[4], r5 = values[5], r6 = values[6], r7 = values[7];
            int i;
            int unrolled = values.Length - values.Length % 8;
            for (i = 8; i < unrolled; i += 8)
            {
                r0 += values[i]; r1 += values[i + 1]; r2 += values[i + 2]; r3 += values[i + 3];
                r4 += values[i + 4]; r5 += values[i + 5]; r6 += values[i + 6]; r7 += values[i + 7];
            }
            double result = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7));
            for (; i < values.Length; i++) result += values[i];
            return result;
        }
        int half = values.Length / 2;
        half -= half % 8;
        return Pairwise(values[..half]) + Pairwise(values[half..]);
    }

    /// <summary>numpy <c>percentile(values, q)</c> with the default linear method, on data already sorted ascending.</summary>
    public static double PercentileOfSorted(ReadOnlySpan<float> sorted, double q)
    {
        (int previous, int next, double gamma) = Neighbours(sorted.Length, q);
        return Lerp(sorted[previous], sorted[next], gamma);
    }

    /// <summary>numpy <c>percentile(values, q)</c> with the default linear method, on float64 data sorted ascending.</summary>
    public static double PercentileOfSorted(ReadOnlySpan<double> sorted, double q)
    {
        (int previous, int next, double gamma) = Neighbours(sorted.Length, q);
        return Lerp(sorted[previous], sorted[next], gamma);
    }

    /// <summary>
    /// numpy <c>percentile(values, qs)</c> (linear) for several q at once without sorting: the needed order statistics
    /// are found by selection (as numpy's partition), which reorders <paramref name="values"/>. Results in the order of
    /// <paramref name="qs"/>.
    /// </summary>
    public static double[] Percentiles(Span<float> values, ReadOnlySpan<double> qs)
    {
        var results = new double[qs.Length];
        var ranks = new (int Previous, int Next, double Gamma)[qs.Length];
        var needed = new List<int>(2 * qs.Length);
        for (int i = 0; i < qs.Length; i++)
        {
            ranks[i] = Neighbours(values.Length, qs[i]);
            needed.Add(ranks[i].Previous);
            needed.Add(ranks[i].Next);
        }
        SelectRanks(values, 0, values.Length - 1, DistinctSorted(needed));
        for (int i = 0; i < qs.Length; i++) results[i] = Lerp(values[ranks[i].Previous], values[ranks[i].Next], ranks[i].Gamma);
        return results;
    }

    /// <summary>Same as <see cref="Percentiles(Span{float}, ReadOnlySpan{double})"/> for float64 data.</summary>
    public static double[] Percentiles(Span<double> values, ReadOnlySpan<double> qs)
    {
        var results = new double[qs.Length];
        var ranks = new (int Previous, int Next, double Gamma)[qs.Length];
        var needed = new List<int>(2 * qs.Length);
        for (int i = 0; i < qs.Length; i++)
        {
            ranks[i] = Neighbours(values.Length, qs[i]);
            needed.Add(ranks[i].Previous);
            needed.Add(ranks[i].Next);
        }
        SelectRanks(values, 0, values.Length - 1, DistinctSorted(needed));
        for (int i = 0; i < qs.Length; i++) results[i] = Lerp(values[ranks[i].Previous], values[ranks[i].Next], ranks[i].Gamma);
        return results;
    }

    // numpy's _lerp: the difference is rounded to the data type, the interpolation is done in float64.
    private static double Lerp(float a, float b, double gamma)
    {
        float difference = b - a;
        return gamma >= 0.5 ? b - difference * (1 - gamma) : a + difference * gamma;
    }

    private static double Lerp(double a, double b, double gamma)
    {
        double difference = b - a;
        return gamma >= 0.5 ? b - difference * (1 - gamma) : a + difference * gamma;
    }

    private static int[] DistinctSorted(List<int> ranks)
    {
        ranks.Sort();
        var distinct = new List<int>(ranks.Count);
        foreach (int r in ranks) if (distinct.Count == 0 || distinct[^1] != r) distinct.Add(r);
        return [.. distinct];
    }

    /// <summary>
    /// Puts the order statistics <paramref name="ranks"/> (sorted, distinct, within [left, right]) in place: the middle
    /// rank is selected first, then the ranks on each side within their own part, so several percentiles cost little more
    /// than one selection. A rank at either end of its part is a min/max scan (the upper neighbour of a rank always is).
    /// </summary>
    private static void SelectRanks<T>(Span<T> values, int left, int right, ReadOnlySpan<int> ranks) where T : System.Numerics.INumber<T>
    {
        if (ranks.IsEmpty) return;
        int middle = ranks.Length / 2;
        int k = ranks[middle];
        if (k == left) MoveExtremeTo(values, left, right, left, minimum: true);
        else if (k == right) MoveExtremeTo(values, left, right, right, minimum: false);
        else Select(values, left, right, k);
        SelectRanks(values, left, k - 1, ranks[..middle]);
        SelectRanks(values, k + 1, right, ranks[(middle + 1)..]);
    }

    private static void MoveExtremeTo<T>(Span<T> values, int left, int right, int target, bool minimum) where T : System.Numerics.INumber<T>
    {
        int best = left;
        for (int i = left + 1; i <= right; i++)
            if (minimum ? values[i] < values[best] : values[i] > values[best]) best = i;
        (values[target], values[best]) = (values[best], values[target]);
    }

    /// <summary>
    /// Places the k-th smallest element of <c>values[left..right]</c> at index k, smaller-or-equal ones before it and
    /// greater-or-equal ones after it (quickselect, median-of-three pivots; falls back to sorting the range if the
    /// partitioning degenerates). Values must not be NaN.
    /// </summary>
    private static void Select<T>(Span<T> values, int left, int right, int k) where T : System.Numerics.INumber<T>
    {
        int budget = 2 * (64 - System.Numerics.BitOperations.LeadingZeroCount((ulong)(right - left + 1))) + 8;
        while (right > left)
        {
            if (--budget < 0 || right - left < 16)
            {
                values[left..(right + 1)].Sort();
                return;
            }
            int mid = left + (right - left) / 2;
            if (values[mid] < values[left]) (values[mid], values[left]) = (values[left], values[mid]);
            if (values[right] < values[left]) (values[right], values[left]) = (values[left], values[right]);
            if (values[right] < values[mid]) (values[right], values[mid]) = (values[mid], values[right]);
            T pivot = values[mid];
            int i = left, j = right;
            while (i <= j)
            {
                while (values[i] < pivot) i++;
                while (pivot < values[j]) j--;
                if (i <= j)
                {
                    (values[i], values[j]) = (values[j], values[i]);
                    i++;
                    j--;
                }
            }
            // Now values[left..j] <= pivot <= values[i..right], and values[j+1..i-1] == pivot.
            if (k <= j) right = j;
            else if (k >= i) left = i;
            else return;
        }
    }

    private static (int Previous, int Next, double Gamma) Neighbours(int count, double q)
    {
        if (count == 0) throw new ArgumentException("percentile of an empty array");
        if (q < 0 || q > 100 || double.IsNaN(q)) throw new ArgumentOutOfRangeException(nameof(q), q, "percentile must be in [0, 100]");
        double virtualIndex = (count - 1) * (q / 100);
        double previous = Math.Floor(virtualIndex);
        if (virtualIndex >= count - 1) return (count - 1, count - 1, virtualIndex + 1); // numpy takes the last value
        return ((int)previous, (int)previous + 1, virtualIndex - previous);
    }
}
