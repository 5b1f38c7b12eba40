using NnUnet.Core.Fingerprinting;

namespace NnUnet.Core.Planning;

/// <summary>
/// The few numpy reductions the planner depends on, with numpy's floating-point recipe, so that a value that lands on a
/// rounding boundary (a median shape of x.5, a spacing percentile) rounds the same way it does in nnU-Net.
/// </summary>
internal static class PlannerStatistics
{
    /// <summary><c>np.percentile(values, q)</c> (linear), via the project's numpy-exact percentile.</summary>
    public static double Percentile(ReadOnlySpan<double> values, double q)
    {
        if (values.Length == 0) throw new ArgumentException("percentile of an empty list");
        var sorted = values.ToArray();
        Array.Sort(sorted);
        return NumpyStatistics.PercentileOfSorted(sorted, q);
    }

    /// <summary><c>np.median(values)</c>: the middle element, or the mean of the two middle ones.</summary>
    public static double Median(ReadOnlySpan<double> values)
    {
        if (values.Length == 0) throw new ArgumentException("median of an empty list");
        var sorted = values.ToArray();
        Array.Sort(sorted);
        int half = sorted.Length / 2;
        return sorted.Length % 2 == 1 ? sorted[half] : (sorted[half - 1] + sorted[half]) / 2;
    }

    /// <summary>Per-axis median of a list of equally long vectors (<c>np.median(rows, axis=0)</c>).</summary>
    public static double[] MedianPerAxis(IReadOnlyList<double[]> rows) => ReducePerAxis(rows, static column => Median(column));

    /// <summary>Per-axis percentile of a list of equally long vectors (<c>np.percentile(rows, q, axis=0)</c>).</summary>
    public static double[] PercentilePerAxis(IReadOnlyList<double[]> rows, double q) => ReducePerAxis(rows, column => Percentile(column, q));

    /// <summary><c>np.prod</c> in float64, multiplied left to right.</summary>
    public static double Product(ReadOnlySpan<double> values)
    {
        double product = 1;
        foreach (double v in values) product *= v;
        return product;
    }

    public static double Product(ReadOnlySpan<int> values)
    {
        double product = 1;
        foreach (int v in values) product *= v;
        return product;
    }

    /// <summary>Python's <c>round()</c> on a float: to nearest, ties to even.</summary>
    public static int Round(double value)
    {
        double rounded = Math.Round(value, MidpointRounding.ToEven);
        if (rounded is > int.MaxValue or < int.MinValue) throw new OverflowException($"{value} does not fit an int");
        return (int)rounded;
    }

    private static double[] ReducePerAxis(IReadOnlyList<double[]> rows, Func<double[], double> reduce)
    {
        int axes = rows[0].Length;
        var result = new double[axes];
        var column = new double[rows.Count];
        for (int axis = 0; axis < axes; axis++)
        {
            for (int i = 0; i < rows.Count; i++) column[i] = rows[i][axis];
            result[axis] = reduce(column);
        }
        return result;
    }
}
