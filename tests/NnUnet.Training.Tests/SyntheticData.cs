using NnUnet.Core.Imaging;
using NnUnet.Core.Preprocessing;

namespace NnUnet.Training.Tests;

/// <summary>
/// Synthetic preprocessed cases: bright ellipsoids of two classes (class 1 bright, class 2 brighter and smaller) in
/// Gaussian noise, already "preprocessed" (z-scored-ish, anisotropic: few thick slices), with class_locations as
/// preprocessing stores them.
/// </summary>
internal static class SyntheticData
{
    public static List<PreprocessedCase> Make(int count, int[] shape, int seed, int ellipsoidsPerCase = 2)
    {
        var rng = new Random(seed);
        var result = new List<PreprocessedCase>(count);
        for (int n = 0; n < count; n++)
        {
            int voxels = shape[0] * shape[1] * shape[2];
            var data = new float[voxels];
            var seg = new sbyte[voxels];
            for (int i = 0; i < voxels; i++) data[i] = (float)(Gaussian(rng) * 0.6);
            for (int e = 0; e < ellipsoidsPerCase; e++)
            {
                int label = e % 2 + 1;
                double rz = Math.Max(0.8, shape[0] / (label == 1 ? 3.5 : 5.0)), ry = shape[1] / (label == 1 ? 5.0 : 7.0), rx = shape[2] / (label == 1 ? 4.5 : 7.0);
                double cz = rng.Next((int)rz, Math.Max((int)rz + 1, shape[0] - (int)rz)), cy = rng.Next((int)ry, shape[1] - (int)ry), cx = rng.Next((int)rx, shape[2] - (int)rx);
                float intensity = label == 1 ? 1.5f : 3.0f;
                for (int z = 0; z < shape[0]; z++)
                for (int y = 0; y < shape[1]; y++)
                for (int x = 0; x < shape[2]; x++)
                {
                    double q = Sq((z - cz) / rz) + Sq((y - cy) / ry) + Sq((x - cx) / rx);
                    if (q > 1) continue;
                    int i = (z * shape[1] + y) * shape[2] + x;
                    seg[i] = (sbyte)label;
                    data[i] += intensity;
                }
            }
            result.Add(new PreprocessedCase($"case_{n:D3}", data, 1, (int[])shape.Clone(), seg, Properties(shape, seg, seed + n)));
        }
        return result;
    }

    private static CaseProperties Properties(int[] shape, sbyte[] seg, int seed)
    {
        var perClass = new Dictionary<int, List<int[]>>();
        for (int z = 0, i = 0; z < shape[0]; z++)
        for (int y = 0; y < shape[1]; y++)
        for (int x = 0; x < shape[2]; x++, i++)
        {
            int label = seg[i];
            if (label <= 0) continue;
            if (!perClass.TryGetValue(label, out var list)) perClass[label] = list = new List<int[]>();
            list.Add([z, y, x]);
        }
        var locations = new Dictionary<int, int[][]>();
        var rng = new Random(seed);
        foreach (var (label, list) in perClass)
            locations[label] = list.OrderBy(_ => rng.Next()).Take(500).ToArray();
        return new CaseProperties
        {
            Geometry = new ImageGeometry([1, 1, 3], [0, 0, 0], [1, 0, 0, 0, 1, 0, 0, 0, 1]),
            Spacing = [3, 1, 1],
            ShapeBeforeCropping = (int[])shape.Clone(),
            BboxUsedForCropping = [[0, shape[0]], [0, shape[1]], [0, shape[2]]],
            ShapeAfterCroppingAndBeforeResampling = (int[])shape.Clone(),
            ClassLocations = locations,
        };
    }

    private static double Sq(double v) => v * v;

    private static double Gaussian(Random rng) => Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());
}
