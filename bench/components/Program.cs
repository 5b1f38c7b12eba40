using System.Diagnostics;
using System.Globalization;
using NnUnet.Core.Postprocessing;
using NnUnet.Core.Preprocessing;

// usage: ComponentsBench WORKDIR REPEATS NAME...
// For each NAME reads WORKDIR/NAME.mask.npy (uint8, (z, y, x)), WORKDIR/NAME.scipy.npy (scipy's int32 labels) and
// WORKDIR/NAME.scipy_seconds; labels the mask REPEATS times with full connectivity, checks the labels equal scipy's
// voxel for voxel, and prints the best time and the ratio.
string work = args[0];
int repeats = int.Parse(args[1], CultureInfo.InvariantCulture);
int failures = 0;
Console.WriteLine($"{"volume",-22} {"components",10} {"scipy s",9} {"C# s",9} {"C# vs scipy",12}  equal");
foreach (string name in args.Skip(2))
{
    var mask = NpyFile.Read<byte>(Path.Combine(work, name + ".mask.npy"), out var shape);
    var expected = NpyFile.Read<int>(Path.Combine(work, name + ".scipy.npy"), out _);
    double scipySeconds = double.Parse(File.ReadAllText(Path.Combine(work, name + ".scipy_seconds")), CultureInfo.InvariantCulture);
    var labels = new int[mask.Length];
    double best = double.MaxValue;
    int count = 0;
    for (int r = 0; r < repeats; r++)
    {
        GC.Collect();
        var sw = Stopwatch.StartNew();
        count = ConnectedComponents.Label(mask, shape[0], shape[1], shape[2], Connectivity.Full, labels);
        best = Math.Min(best, sw.Elapsed.TotalSeconds);
    }
    bool equal = labels.AsSpan().SequenceEqual(expected);
    if (!equal) failures++;
    Console.WriteLine($"{name,-22} {count,10} {scipySeconds,9:F3} {best,9:F3} {scipySeconds / best,11:F1}x  {(equal ? "yes" : "NO")}");
}
return failures == 0 ? 0 : 1;
