using System.Diagnostics;
using System.Globalization;
using NnUnet.Core.Preprocessing;
using NnUnet.Core.Resampling;

// usage: ResampleBench INPUT.npy OUTDIR REPEATS
// Resizes the (z, y, x) float32 volume to 1/1.5 and 1.5 times its shape with order 3 (skimage semantics), prints the
// best wall time of REPEATS runs per direction as "csharp <tag> <seconds>", writes the outputs for the comparison.
string input = args[0], outDir = args[1];
int repeats = args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 3;
var volume = NpyFile.Read<float>(input, out var shape);
foreach (var (tag, factor) in new[] { ("coarser", 1 / 1.5), ("finer", 1.5) })
{
    int[] newShape = [(int)Math.Round(shape[0] * factor), (int)Math.Round(shape[1] * factor), (int)Math.Round(shape[2] * factor)];
    float[]? result = null;
    double best = double.MaxValue;
    for (int r = 0; r < repeats; r++)
    {
        result = null;
        GC.Collect();
        var sw = Stopwatch.StartNew();
        result = SplineResize.Resize(volume, shape, newShape, 3);
        best = Math.Min(best, sw.Elapsed.TotalSeconds);
    }
    NpyFile.Write<float>(Path.Combine(outDir, $"csharp_{tag}.npy"), result!, newShape);
    Console.WriteLine($"csharp {tag} {best:F3} shape {string.Join("x", newShape)}");
}
