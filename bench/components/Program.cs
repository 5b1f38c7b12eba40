using System.Diagnostics;
using System.Globalization;
using NnUnet.Core.Postprocessing;
using NnUnet.Core.Preprocessing;

// usage: ComponentsBench WORKDIR REPEATS SCIPY_SCRIPT NAME...
// For each NAME (WORKDIR/NAME.mask.npy, uint8 (z, y, x)): REPEATS rounds, each timing one scipy.ndimage.label call (in a
// python process, timed inside python) and then one ConnectedComponents.Label call, interleaved so that both see the
// same machine load; prints the best time of each and the ratio, and checks our labels equal scipy's voxel for voxel.
string work = args[0];
int repeats = int.Parse(args[1], CultureInfo.InvariantCulture);
string scipyScript = args[2];
int failures = 0;
Console.WriteLine($"{"volume",-14} {"foreground",10} {"components",10} {"scipy s",9} {"C# s",9} {"C# vs scipy",12}  equal");
foreach (string name in args.Skip(3))
{
    string maskPath = Path.Combine(work, name + ".mask.npy");
    string scipyLabels = Path.Combine(work, name + ".scipy.npy");
    var mask = NpyFile.Read<byte>(maskPath, out var shape);
    var labels = new int[mask.Length];
    double bestCs = double.MaxValue, bestScipy = double.MaxValue;
    int count = 0;
    for (int r = 0; r < repeats; r++)
    {
        bestScipy = Math.Min(bestScipy, RunScipy(scipyScript, maskPath, r == 0 ? scipyLabels : null));
        GC.Collect();
        var sw = Stopwatch.StartNew();
        count = ConnectedComponents.Label(mask, shape[0], shape[1], shape[2], Connectivity.Full, labels);
        bestCs = Math.Min(bestCs, sw.Elapsed.TotalSeconds);
    }
    var expected = NpyFile.Read<int>(scipyLabels, out _);
    bool equal = labels.AsSpan().SequenceEqual(expected);
    if (!equal) failures++;
    long foreground = 0;
    foreach (byte b in mask) foreground += b;
    Console.WriteLine($"{name,-14} {(double)foreground / mask.Length,10:P0} {count,10} {bestScipy,9:F3} {bestCs,9:F3} {bestScipy / bestCs,11:F1}x  {(equal ? "yes" : "NO")}");
}
return failures == 0 ? 0 : 1;

static double RunScipy(string script, string maskPath, string? labelsPath)
{
    var psi = new ProcessStartInfo("/usr/bin/python3") { RedirectStandardOutput = true, RedirectStandardError = true };
    psi.ArgumentList.Add(script);
    psi.ArgumentList.Add(maskPath);
    if (labelsPath is not null) psi.ArgumentList.Add(labelsPath);
    using var process = Process.Start(psi)!;
    string output = process.StandardOutput.ReadToEnd();
    string error = process.StandardError.ReadToEnd();
    process.WaitForExit();
    if (process.ExitCode != 0) throw new InvalidOperationException($"scipy failed: {error}");
    return double.Parse(output.Trim(), CultureInfo.InvariantCulture);
}
