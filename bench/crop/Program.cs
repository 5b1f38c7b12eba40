using System.Diagnostics;
using System.Globalization;
using NnUnet.Core.Preprocessing;

// Usage: CropBench data.npy seg.npy repeats. Prints the best time and what the crop found.
float[] data = NpyFile.Read<float>(args[0], out int[] shape);
float[] seg = NpyFile.Read<float>(args[1], out _);
int repeats = int.Parse(args[2], CultureInfo.InvariantCulture);
int[] spatial = [shape[1], shape[2], shape[3]];
double best = double.MaxValue;
CropResult? result = null;
for (int r = 0; r < repeats; r++)
{
    var watch = Stopwatch.StartNew();
    result = Cropping.CropToNonzero(data, shape[0], spatial, seg);
    best = Math.Min(best, watch.Elapsed.TotalSeconds);
}
long outside = 0;
foreach (sbyte v in result!.Seg) if (v < 0) outside++;
Console.WriteLine($"csharp_seconds {best:F3}");
Console.WriteLine($"csharp_bbox {string.Join(",", result.Bbox.Select(b => $"{b[0]}:{b[1]}"))}");
Console.WriteLine($"csharp_outside {outside}");
