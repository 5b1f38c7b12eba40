using NnUnet.Core.Datasets;
using NnUnet.Core.Imaging;
using NnUnet.Core.Imaging.Nifti;

namespace NnUnet.Core.Demo;

/// <summary>Size and content of a generated demo dataset.</summary>
/// <param name="TrainingCases">Cases with labels in imagesTr/labelsTr.</param>
/// <param name="TestCases">Cases in imagesTs, with their references in labelsTs (not part of nnU-Net's layout; used to score the demo's test predictions).</param>
/// <param name="Shape">Array shape (z, y, x) of every case before the random size jitter.</param>
/// <param name="Spacing">Array-order spacing (z, y, x) in mm; anisotropic by default like most CT/MR.</param>
public sealed record SyntheticDatasetOptions(
    int TrainingCases = 20,
    int TestCases = 5,
    int[]? Shape = null,
    double[]? Spacing = null,
    int Seed = 42)
{
    public int[] ShapeOrDefault => Shape ?? [20, 48, 48];
    public double[] SpacingOrDefault => Spacing ?? [3.0, 1.0, 1.0];
}

/// <summary>
/// Writes a small CT-like 3D dataset in nnU-Net v2's raw layout: in each case an "organ" (label 1, a large ellipsoid at
/// a random place and orientation of its axes) and a "lesion" (label 2, a small sphere touching the organ), bright on a
/// noisy body with air around it. Two structures of different size make the demo's per-class Dice, ensembling and
/// connected-component postprocessing meaningful; the random position, size and intensity make folds differ.
/// </summary>
public static class SyntheticDataset
{
    public static readonly string[] LabelNames = ["background", "organ", "lesion"];

    public static DatasetLocation Write(string rawRoot, int datasetId, string name, SyntheticDatasetOptions options)
    {
        string datasetName = DatasetLocator.FormatName(datasetId, name);
        string folder = Path.Combine(rawRoot, datasetName);
        string imagesTr = Path.Combine(folder, "imagesTr"), labelsTr = Path.Combine(folder, "labelsTr");
        string imagesTs = Path.Combine(folder, "imagesTs"), labelsTs = Path.Combine(folder, "labelsTs");
        foreach (var dir in new[] { imagesTr, labelsTr, imagesTs, labelsTs }) Directory.CreateDirectory(dir);

        var random = new Random(options.Seed);
        for (int i = 0; i < options.TrainingCases + options.TestCases; i++)
        {
            bool training = i < options.TrainingCases;
            string caseId = $"{name.ToLowerInvariant()}_{i:D3}";
            var (image, label) = MakeCase(random, options.ShapeOrDefault, options.SpacingOrDefault);
            NiftiWriter.Write(Path.Combine(training ? imagesTr : imagesTs, caseId + "_0000.nii.gz"), image);
            NiftiWriter.Write(Path.Combine(training ? labelsTr : labelsTs, caseId + ".nii.gz"), label);
        }

        var labels = new List<DatasetLabel>();
        for (int l = 0; l < LabelNames.Length; l++) labels.Add(new DatasetLabel(LabelNames[l], [l]));
        DatasetJson.Create(["CT"], labels, options.TrainingCases, ".nii.gz").Save(Path.Combine(folder, DatasetJson.FileName));
        return new DatasetLocation(datasetName, datasetId, folder);
    }

    /// <summary>One case: int16 CT-like image and uint8 label, same geometry.</summary>
    public static (MedicalImage Image, MedicalImage Label) MakeCase(Random random, int[] baseShape, double[] spacingZyx)
    {
        // Jitter the size a little so the fingerprint sees a distribution, as with real scans.
        int sz = baseShape[0] + random.Next(-1, 2), sy = baseShape[1] + random.Next(-4, 5), sx = baseShape[2] + random.Next(-4, 5);
        int n = sz * sy * sx;
        var image = new short[n];
        var label = new byte[n];

        // Physical coordinates (mm) so that shapes are round in the world, not in voxels.
        double cz = sz * spacingZyx[0] / 2, cy = sy * spacingZyx[1] / 2, cx = sx * spacingZyx[2] / 2;
        double bodyRy = cy * 0.85, bodyRx = cx * 0.9;
        double organZ = cz + Uniform(random, -0.15, 0.15) * cz, organY = cy + Uniform(random, -0.2, 0.2) * cy, organX = cx + Uniform(random, -0.2, 0.2) * cx;
        double organRz = cz * Uniform(random, 0.45, 0.6), organRy = cy * Uniform(random, 0.3, 0.45), organRx = cx * Uniform(random, 0.3, 0.45);
        double angle = Uniform(random, 0, Math.PI);
        double cos = Math.Cos(angle), sin = Math.Sin(angle);
        // The lesion sits on the organ's surface along a random in-plane direction.
        double lesionAngle = Uniform(random, 0, 2 * Math.PI);
        // large enough (2-3 slices at 3 mm) for a few hundred training iterations to find it
        double lesionR = Math.Min(organRy, organRx) * Uniform(random, 0.55, 0.75);
        double lesionY = organY + Math.Sin(lesionAngle) * Math.Min(organRy, organRx) * 0.9;
        double lesionX = organX + Math.Cos(lesionAngle) * Math.Min(organRy, organRx) * 0.9;
        double lesionZ = organZ;
        double organHu = Uniform(random, 40, 80), lesionHu = organHu + Uniform(random, 60, 100);

        for (int z = 0; z < sz; z++)
        {
            double pz = (z + 0.5) * spacingZyx[0];
            for (int y = 0; y < sy; y++)
            {
                double py = (y + 0.5) * spacingZyx[1];
                int row = (z * sy + y) * sx;
                for (int x = 0; x < sx; x++)
                {
                    double px = (x + 0.5) * spacingZyx[2];
                    double noise = Gaussian(random) * 20;
                    double body = Sq((py - cy) / bodyRy) + Sq((px - cx) / bodyRx);
                    double value = body <= 1 ? 0 + noise : -1000 + noise;
                    double dy = py - organY, dx = px - organX;
                    double ry = cos * dy + sin * dx, rx = -sin * dy + cos * dx;
                    byte l = 0;
                    if (Sq((pz - organZ) / organRz) + Sq(ry / organRy) + Sq(rx / organRx) <= 1) { l = 1; value = organHu + noise; }
                    if (Sq(pz - lesionZ) + Sq(py - lesionY) + Sq(px - lesionX) <= lesionR * lesionR) { l = 2; value = lesionHu + noise; }
                    image[row + x] = (short)Math.Clamp(Math.Round(value), short.MinValue, short.MaxValue);
                    label[row + x] = l;
                }
            }
        }

        var geometry = new ImageGeometry([spacingZyx[2], spacingZyx[1], spacingZyx[0]], [-cx, -cy, 0], [1, 0, 0, 0, 1, 0, 0, 0, 1]);
        return (new MedicalImage(1, sz, sy, sx, VoxelType.Int16, image, geometry),
                new MedicalImage(1, sz, sy, sx, VoxelType.UInt8, label, geometry));
    }

    private static double Sq(double v) => v * v;
    private static double Uniform(Random r, double low, double high) => low + (high - low) * r.NextDouble();
    private static double Gaussian(Random r) => Math.Sqrt(-2 * Math.Log(1 - r.NextDouble())) * Math.Cos(2 * Math.PI * r.NextDouble());
}
