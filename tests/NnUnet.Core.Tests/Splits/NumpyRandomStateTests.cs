using NnUnet.Core.Datasets;

namespace NnUnet.Core.Tests.Splits;

public class NumpyRandomStateTests
{
    [Fact]
    public void RawOutputsMatchNumpyAcrossRegenerations()
    {
        foreach (var entry in SplitVectors.Section("raw"))
        {
            var rs = new NumpyRandomState((long)entry!["seed"]!);
            long[] expected = SplitVectors.Longs(entry["values"]);
            for (int i = 0; i < expected.Length; i++)
                Assert.True(expected[i] == rs.NextUInt32(), $"seed {entry["seed"]}: output {i} differs");
        }
    }

    [Fact]
    public void RandomSampleMatchesNumpyBitForBit()
    {
        foreach (var entry in SplitVectors.Section("random_sample"))
        {
            var rs = new NumpyRandomState((long)entry!["seed"]!);
            foreach (var value in entry["values"]!.AsArray())
                Assert.Equal(BitConverter.DoubleToInt64Bits((double)value!), BitConverter.DoubleToInt64Bits(rs.RandomSample()));
        }
    }

    [Fact]
    public void ShuffleMatchesNumpy()
    {
        foreach (var entry in SplitVectors.Section("shuffle"))
        {
            int n = (int)entry!["n"]!;
            var values = new int[n];
            for (int i = 0; i < n; i++) values[i] = i;
            new NumpyRandomState((long)entry["seed"]!).Shuffle(values.AsSpan());
            long[] expected = SplitVectors.Longs(entry["values"]);
            Assert.Equal(expected, Array.ConvertAll(values, v => (long)v));
        }
    }

    [Fact]
    public void RandIntMatchesNumpyIncludingWideRangesAndContinuation()
    {
        foreach (var entry in SplitVectors.Section("randint"))
        {
            long low = (long)entry!["low"]!.AsValue().GetValue<decimal>();
            long high = (long)entry["high"]!.AsValue().GetValue<decimal>();
            long[] expected = SplitVectors.Longs(entry["values"]);
            var rs = new NumpyRandomState((long)entry["seed"]!);
            var actual = new long[expected.Length];
            rs.RandInt(low, high, actual);
            Assert.Equal(expected, actual);
            Assert.Equal((long)entry["next"]!.AsValue().GetValue<decimal>(), rs.RandInt(low, high));
        }
    }

    [Fact]
    public void ChoiceWithReplacementMatchesNumpyOnConsecutiveCalls()
    {
        foreach (var entry in SplitVectors.Section("choice_replace"))
        {
            int population = (int)entry!["population"]!;
            int k = (int)entry["k"]!;
            var rs = new NumpyRandomState((long)entry["seed"]!);
            var first = new int[k];
            var second = new int[k];
            rs.ChoiceWithReplacement(population, first);
            rs.ChoiceWithReplacement(population, second);
            Assert.Equal(SplitVectors.Longs(entry["first"]), Array.ConvertAll(first, v => (long)v));
            Assert.Equal(SplitVectors.Longs(entry["second"]), Array.ConvertAll(second, v => (long)v));
        }
    }

    [Fact]
    public void ChoiceWithoutReplacementMatchesNumpy()
    {
        foreach (var entry in SplitVectors.Section("choice_no_replace"))
        {
            var rs = new NumpyRandomState((long)entry!["seed"]!);
            int[] actual = rs.ChoiceWithoutReplacement((int)entry["population"]!, (int)entry["k"]!);
            Assert.Equal(SplitVectors.Longs(entry["values"]), Array.ConvertAll(actual, v => (long)v));
        }
    }

    [Fact]
    public void RejectsSeedsOutsideNumpysRange()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new NumpyRandomState(-1));
        Assert.Throws<ArgumentOutOfRangeException>(() => new NumpyRandomState(1L << 32));
        Assert.Throws<ArgumentOutOfRangeException>(() => new NumpyRandomState(1).RandInt(3, 3));
    }
}
