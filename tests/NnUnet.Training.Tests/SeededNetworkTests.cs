using NnUnet.Training.Network;

namespace NnUnet.Training.Tests;

/// <summary>
/// A run's seed fixes its network's initial weights even while other networks are built in the same process at the same
/// moment (a worker process runs one job per device, training and prediction). Runs alone (<see cref="SeededTrainingCollection"/>):
/// other test classes seed Torch's global generator directly.
/// </summary>
[Collection(SeededTrainingCollection.Name)]
public class SeededNetworkTests
{
    private static float[] Weights(PlainConvUNet network)
    {
        var all = new List<float>();
        foreach (var parameter in network.parameters()) all.AddRange(parameter.data<float>().ToArray());
        return [.. all];
    }

    [Fact]
    public async Task SeededNetworksBuiltAtOnce_EqualTheOnesBuiltAloneWithTheirSeeds()
    {
        var arch = TestPlans.Arch3d(stages: 4, baseFeatures: 8);
        var alone = new[] { 1L, 2L }.Select(seed =>
        {
            using var network = new PlainConvUNet(arch, 1, 3, deepSupervision: true, seed);
            return Weights(network);
        }).ToArray();
        Assert.False(alone[0].SequenceEqual(alone[1]), "two seeds gave the same weights");

        // seeded builds (seeds 1 and 2) and unseeded ones (a predictor's network before its checkpoint is loaded), started together on threads of their own
        using var start = new Barrier(6);
        var builds = Enumerable.Range(0, 6).Select(i => Task.Factory.StartNew(() =>
        {
            start.SignalAndWait();
            using var network = i % 3 == 0 ? new PlainConvUNet(arch, 1, 3, deepSupervision: true) : new PlainConvUNet(arch, 1, 3, deepSupervision: true, i % 3);
            return (Seed: i % 3, Weights: Weights(network));
        }, TaskCreationOptions.LongRunning)).ToArray();
        foreach (var (seed, weights) in await Task.WhenAll(builds))
            if (seed > 0) Assert.True(weights.SequenceEqual(alone[seed - 1]), $"a network built with seed {seed} beside others has other weights than alone");
    }
}
