using NnUnet.Core.Fingerprinting;
using NnUnet.Core.Planning;

namespace NnUnet.Core.Tests.Planning;

/// <summary>Synthetic fingerprints: the planner only reads spacings, shapes, the cropping ratio and per-channel statistics.</summary>
internal static class PlanningFixtures
{
    public static readonly IntensityProperties SomeIntensities = new(100, 90, 20, -50, 400, 350, -20);

    /// <summary><paramref name="cases"/> identical cases, so medians and percentiles equal the given values.</summary>
    public static DatasetFingerprint Uniform(int cases, double[] spacing, int[] shape, double medianRelativeSize = 1.0, int channels = 1)
    {
        var spacings = new List<double[]>(cases);
        var shapes = new List<int[]>(cases);
        for (int i = 0; i < cases; i++)
        {
            spacings.Add((double[])spacing.Clone());
            shapes.Add((int[])shape.Clone());
        }
        return new DatasetFingerprint(Channels(channels), medianRelativeSize, shapes, spacings);
    }

    public static Dictionary<string, IntensityProperties> Channels(int channels)
    {
        var properties = new Dictionary<string, IntensityProperties>();
        for (int c = 0; c < channels; c++) properties[c.ToString(System.Globalization.CultureInfo.InvariantCulture)] = SomeIntensities with { Mean = 100 + c };
        return properties;
    }

    public static PlannerDatasetInfo Info(int numTraining, string channel = "CT", int labels = 2) =>
        new("Dataset999_Test", [channel], labels, numTraining);

    public static NnUnetPlans PlanUniform(int cases, double[] spacing, int[] shape, double gpuMemoryGb = 8, int labels = 2) =>
        ExperimentPlanner.Plan(Uniform(cases, spacing, shape), Info(cases, labels: labels), new PlannerOptions(gpuMemoryGb));

    public static double Product(int[] values)
    {
        double product = 1;
        foreach (int v in values) product *= v;
        return product;
    }

    public static double Product(double[] values)
    {
        double product = 1;
        foreach (double v in values) product *= v;
        return product;
    }
}
