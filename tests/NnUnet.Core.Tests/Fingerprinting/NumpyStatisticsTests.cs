using System.Text.Json.Nodes;
using NnUnet.Core.Datasets;
using NnUnet.Core.Fingerprinting;
using NnUnet.Core.Tests.Splits;

namespace NnUnet.Core.Tests.Fingerprinting;

public class NumpyStatisticsTests
{
    private static readonly Lazy<JsonObject> Vectors = new(() =>
        (JsonObject)JsonNode.Parse(File.ReadAllText(SplitVectors.FixturePath("fingerprint", "fingerprint_vectors.json")))!);

    [Fact]
    public void MeanStdAndPercentilesMatchNumpyBitForBit()
    {
        // Arrays regenerated exactly as the fixture script drew them: random_sample(n) * 2000 - 700 from RandomState(42).
        var random = new NumpyRandomState(42);
        double[] qs = [50, 0.5, 99.5];
        int checkedArrays = 0;
        foreach (var entry in Vectors.Value["statistics"]!.AsArray())
        {
            var values = new double[(int)entry!["n"]!];
            for (int i = 0; i < values.Length; i++) values[i] = random.RandomSample() * 2000.0 - 700.0;
            (double Mean, double Std) moments;
            double[] percentiles;
            if ((string)entry["dtype"]! == "float32")
            {
                var floats = Array.ConvertAll(values, v => (float)v);
                moments = NumpyStatistics.MeanStd(floats);
                percentiles = NumpyStatistics.Percentiles(floats.AsSpan(), qs);
            }
            else
            {
                moments = NumpyStatistics.MeanStd(values);
                percentiles = NumpyStatistics.Percentiles(values.AsSpan(), qs);
            }
            string context = $"n={values.Length} {(string)entry["dtype"]!}";
            Assert.True((double)entry["mean"]! == moments.Mean, $"{context}: mean {moments.Mean} vs {(double)entry["mean"]!}");
            Assert.True((double)entry["std"]! == moments.Std, $"{context}: std {moments.Std} vs {(double)entry["std"]!}");
            Assert.True((double)entry["median"]! == percentiles[0], $"{context}: median {percentiles[0]} vs {(double)entry["median"]!}");
            Assert.True((double)entry["percentile_00_5"]! == percentiles[1], $"{context}: p0.5 {percentiles[1]} vs {(double)entry["percentile_00_5"]!}");
            Assert.True((double)entry["percentile_99_5"]! == percentiles[2], $"{context}: p99.5 {percentiles[2]} vs {(double)entry["percentile_99_5"]!}");
            checkedArrays++;
        }
        Assert.True(checkedArrays >= 9);
    }

    [Fact]
    public void SelectionBasedPercentilesEqualSortedOnes()
    {
        var random = new Random(5);
        double[] qs = [0.5, 50, 99.5, 0, 100, 12.25];
        foreach (int n in new[] { 1, 2, 3, 17, 100, 1000, 20_001 })
        {
            foreach (int distinct in new[] { 1, 3, 50, 1_000_000 })
            {
                var values = new float[n];
                for (int i = 0; i < n; i++) values[i] = random.Next(distinct) * 0.5f - 7f;
                var sorted = (float[])values.Clone();
                Array.Sort(sorted);
                double[] selected = NumpyStatistics.Percentiles(values.AsSpan(), qs);
                for (int q = 0; q < qs.Length; q++)
                    Assert.Equal(NumpyStatistics.PercentileOfSorted(sorted, qs[q]), selected[q]);
                var doubles = Array.ConvertAll(sorted, v => (double)v);
                random.Shuffle(doubles);
                double[] selectedDoubles = NumpyStatistics.Percentiles(doubles.AsSpan(), qs);
                Array.Sort(doubles);
                for (int q = 0; q < qs.Length; q++)
                    Assert.Equal(NumpyStatistics.PercentileOfSorted(doubles, qs[q]), selectedDoubles[q]);
            }
        }
    }
}
