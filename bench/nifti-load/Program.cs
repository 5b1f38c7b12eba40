using System.Diagnostics;
using System.Globalization;
using NnUnet.Core.Imaging.Nifti;

// Usage: NiftiLoadBench REPEATS FILE...   Prints one line per file: "csharp FILE best_s median_s voxels checksum".
int repeats = int.Parse(args[0], CultureInfo.InvariantCulture);
Console.Error.WriteLine($"gzip backend: {GzipDecompression.Backend}");
foreach (var path in args[1..])
{
    var times = new double[repeats];
    long checksum = 0;
    long voxels = 0;
    for (int r = 0; r < repeats; r++)
    {
        var clock = Stopwatch.StartNew();
        var image = NiftiReader.Read(path);
        times[r] = clock.Elapsed.TotalSeconds;
        voxels = image.VoxelsPerChannel * image.Channels;
        checksum = Checksum(image);
    }
    Array.Sort(times);
    Console.WriteLine($"csharp {path} {times[0]:F3} {times[repeats / 2]:F3} {voxels} {checksum}");
}

// The sum of the voxels (as stored: int16 here) proves both sides read the same data.
static long Checksum(NnUnet.Core.Imaging.MedicalImage image)
{
    long sum = 0;
    if (image.Voxels is short[] values) foreach (var v in values) sum += v;
    else throw new InvalidDataException($"expected int16 voxels, got {image.Voxels.GetType().Name}");
    return sum;
}
