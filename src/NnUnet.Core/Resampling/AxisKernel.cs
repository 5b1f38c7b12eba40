namespace NnUnet.Core.Resampling;

/// <summary>
/// Interpolation taps for resampling one axis from <see cref="InputLength"/> to <see cref="OutputLength"/> samples the way
/// <c>scipy.ndimage.zoom(grid_mode=True, mode='nearest')</c> (what <c>skimage.transform.resize(mode='edge')</c> calls)
/// places them: output sample k reads input coordinate <c>(k + 0.5) * in/out - 0.5</c>.
/// <para>
/// Order 3 works on the B-spline coefficients of the line padded with <see cref="Padding"/> copies of its edge values on
/// each side (scipy pre-pads by 12 for mode 'nearest' before its spline filter), so <see cref="Start"/> indexes the padded
/// line. Orders 0 and 1 use the coordinate clamped to [0, n-1] (scipy's 'nearest' mapping); order 1 indexes a line with
/// one edge copy per side so its second tap never falls off the end.
/// </para>
/// </summary>
internal sealed class AxisKernel
{
    /// <summary>scipy pads this many edge copies per side before the spline prefilter for mode 'nearest'.</summary>
    public const int SplinePadding = 12;

    private AxisKernel(int inputLength, int outputLength, int order, int padding, int[] start, double[] weights)
    {
        InputLength = inputLength; OutputLength = outputLength; Order = order; Padding = padding;
        Start = start; Weights = weights;
    }

    public int InputLength { get; }
    public int OutputLength { get; }
    public int Order { get; }
    /// <summary>Number of taps per output sample.</summary>
    public int Taps => Order + 1;
    /// <summary>Edge copies on each side of the line the taps read (12 for order 3, 1 for order 1, 0 for order 0).</summary>
    public int Padding { get; }
    /// <summary>Length of the line the taps index: input plus padding on both sides.</summary>
    public int PaddedLength => InputLength + 2 * Padding;
    /// <summary>Per output sample: index of its first tap in the (padded) line.</summary>
    public int[] Start { get; }
    /// <summary>Per output sample: <see cref="Taps"/> weights, row-major.</summary>
    public double[] Weights { get; }

    /// <summary>Taps for <c>zoom(grid_mode=True)</c>: coordinate <c>(k + 0.5) * (in / out) - 0.5</c>.</summary>
    public static AxisKernel ForResize(int inputLength, int outputLength, int order)
    {
        if (inputLength < 1 || outputLength < 1)
            throw new ArgumentException($"axis lengths must be positive (input {inputLength}, output {outputLength})");
        double zoom = (double)inputLength / outputLength;
        var coordinates = new double[outputLength];
        for (int k = 0; k < outputLength; k++) coordinates[k] = (k + 0.5) * zoom - 0.5;
        return FromCoordinates(inputLength, coordinates, order);
    }

    /// <summary>
    /// Taps at arbitrary input coordinates along one axis (scipy <c>map_coordinates(mode='nearest')</c>). Coordinates are
    /// clamped to [0, n-1] as scipy's 'nearest' does for orders 0 and 1; for order 3 they are expected within half a
    /// sample of the line (as every resize coordinate is).
    /// </summary>
    public static AxisKernel FromCoordinates(int inputLength, ReadOnlySpan<double> coordinates, int order)
    {
        SplineMath.ValidateOrder(order);
        int taps = order + 1;
        // Order 3 reads scipy's 12-sample edge padding; order 1 reads one edge copy past each end so that the tap with
        // weight 0 at the last sample stays on the line (scipy mirrors it instead: same value times 0).
        int padding = order switch { 3 => SplinePadding, 1 => 1, _ => 0 };
        int paddedLength = inputLength + 2 * padding;
        var start = new int[coordinates.Length];
        var weights = new double[coordinates.Length * taps];
        for (int k = 0; k < coordinates.Length; k++)
        {
            double cc = coordinates[k];
            int offset = 0;
            // scipy shifts order-3 coordinates into the padded line in double arithmetic; orders 0/1 use the unpadded
            // coordinate, snapped to the line's ends ('nearest'), and the edge copy only shifts the index.
            if (order == 3) cc = Math.Clamp(cc + padding, 1.0, paddedLength - 3.0);
            else
            {
                if (cc < 0) cc = 0;
                else if (cc > inputLength - 1) cc = inputLength - 1;
                offset = padding;
            }
            start[k] = SplineMath.FirstTap(cc, order) + offset;
            SplineMath.Weights(cc, order, weights.AsSpan(k * taps, taps));
        }
        return new AxisKernel(inputLength, coordinates.Length, order, padding, start, weights);
    }

    /// <summary>Index into the unpadded line of padded position <paramref name="paddedIndex"/> (edge copies clamp).</summary>
    public int SourceIndex(int paddedIndex) => Math.Clamp(paddedIndex - Padding, 0, InputLength - 1);
}

/// <summary>The B-spline arithmetic of scipy.ndimage (weights, poles, boundary initialisation).</summary>
internal static class SplineMath
{
    /// <summary>Pole of the cubic B-spline prefilter, sqrt(3) - 2.</summary>
    public const double CubicPole = -0.267949192431122706472553658494127633;

    /// <summary>Beyond this many terms the causal initialisation sum adds less than 1e-20 of the line's magnitude.</summary>
    private static readonly int InitTerms = (int)Math.Ceiling(Math.Log(1e-20) / Math.Log(-CubicPole)) + 1;

    public static void ValidateOrder(int order)
    {
        if (order is not (0 or 1 or 3))
            throw new ArgumentException($"spline order {order} is not supported (use 0, 1 or 3)", nameof(order));
    }

    public static int FirstTap(double cc, int order) =>
        (order & 1) == 1 ? (int)Math.Floor(cc) - order / 2 : (int)Math.Floor(cc + 0.5) - order / 2;

    /// <summary>Interpolation weights for coordinate <paramref name="cc"/>, written in scipy's arithmetic order.</summary>
    public static void Weights(double cc, int order, Span<double> w)
    {
        double x = cc - Math.Floor((order & 1) == 1 ? cc : cc + 0.5);
        switch (order)
        {
            case 0:
                w[0] = 1.0;
                return;
            case 1:
                w[0] = 1.0 - x;
                break;
            case 3:
                double y = x, z = 1.0 - x;
                w[1] = (y * y * (y - 2.0) * 3.0 + 4.0) / 6.0;
                w[2] = (z * z * (z - 2.0) * 3.0 + 4.0) / 6.0;
                w[0] = z * z * z / 6.0;
                break;
        }
        // the weights sum to one; the last takes the remainder as scipy does
        double last = 1.0;
        for (int i = 0; i < order; i++) last -= w[i];
        w[order] = last;
    }

    /// <summary>Gain of the cubic prefilter, (1 - z)(1 - 1/z) = 6.</summary>
    public static double CubicGain => (1.0 - CubicPole) * (1.0 - 1.0 / CubicPole);

    /// <summary>
    /// In-place cubic B-spline prefilter of one line (scipy <c>spline_filter1d</c>, mode 'nearest', whose boundary
    /// initialisation is the 'reflect' one). Expects the gain already applied.
    /// </summary>
    public static void PrefilterLine(Span<double> c)
    {
        int n = c.Length;
        if (n < 2) return;
        const double z = CubicPole;
        double zn = Math.Pow(z, n);
        double c0 = c[0];
        double sum = c[0] + zn * c[n - 1];
        double zi = z;
        int terms = Math.Min(n, InitTerms);
        for (int i = 1; i < terms; i++)
        {
            sum += zi * (c[i] + zn * c[n - 1 - i]);
            zi *= z;
        }
        c[0] = sum * (z / (1 - zn * zn)) + c0;
        for (int i = 1; i < n; i++) c[i] += z * c[i - 1];
        c[n - 1] *= z / (z - 1);
        for (int i = n - 2; i >= 0; i--) c[i] = z * (c[i + 1] - c[i]);
    }

    /// <summary>
    /// The same prefilter applied to <paramref name="rows"/> lines stored as rows of a (rows x width) plane, every column
    /// an independent line: the recursion runs over rows, vectorised across the width.
    /// </summary>
    public static void PrefilterRows(Span<double> plane, int rows, int width)
    {
        if (rows < 2) return;
        const double z = CubicPole;
        double zn = Math.Pow(z, rows);
        int terms = Math.Min(rows, InitTerms);
        // causal initialisation of row 0, per column
        var first = plane[..width];
        Span<double> sum = width <= 1024 ? stackalloc double[width] : new double[width];
        var last = plane.Slice((rows - 1) * width, width);
        for (int x = 0; x < width; x++) sum[x] = first[x] + zn * last[x];
        double zi = z;
        for (int i = 1; i < terms; i++)
        {
            var a = plane.Slice(i * width, width);
            var b = plane.Slice((rows - 1 - i) * width, width);
            VectorOps.AccumulateInit(sum, a, b, zi, zn);
            zi *= z;
        }
        double scale = z / (1 - zn * zn);
        for (int x = 0; x < width; x++) first[x] = sum[x] * scale + first[x];
        for (int r = 1; r < rows; r++)
            VectorOps.AddScaled(plane.Slice(r * width, width), plane.Slice((r - 1) * width, width), z);
        VectorOps.Scale(plane.Slice((rows - 1) * width, width), z / (z - 1));
        for (int r = rows - 2; r >= 0; r--)
            VectorOps.ScaledDifference(plane.Slice(r * width, width), plane.Slice((r + 1) * width, width), z);
    }
}
