using NnUnet.Cli.Backends;
using NnUnet.Cluster.Sweeps;
using NnUnet.Core.Datasets;
using NnUnet.Core.Reproducibility;

namespace NnUnet.Cli.Tests.Cluster;

/// <summary>What the TorchSharp backend puts into a fold's manifest: the seed its trainer is given and the loaded versions.</summary>
public sealed class TorchBackendRecordTests
{
    private static JobSpec Spec(string sweepId, string jobId) => new(sweepId, jobId, 1, JobKind.Train, "Dataset990_Demo", "nnUNetPlans", "nnUNetTrainer",
        jobId.Split('/')[0], int.Parse(jobId[^1..], System.Globalization.CultureInfo.InvariantCulture), 3, false, "/results", [], []);

    [Fact]
    public void SeedIsTheSweepsDerivedSeed_UnlessTheNodeFixesOne()
    {
        var paths = new NnUnetPaths(null, null, null);
        var backend = new TorchTrainingBackend(paths, "cpu", new TorchBackendOptions());
        Assert.Equal(FoldSeed.For("S-1", "3d_fullres/fold_2"), backend.SeedFor(Spec("S-1", "3d_fullres/fold_2")));
        Assert.NotEqual(backend.SeedFor(Spec("S-1", "3d_fullres/fold_2")), backend.SeedFor(Spec("S-1", "3d_fullres/fold_3")));
        Assert.Equal(7, new TorchTrainingBackend(paths, "cpu", new TorchBackendOptions { Seed = 7 }).SeedFor(Spec("S-1", "2d/fold_0")));
    }

    [Fact]
    public void Describe_NamesTorchSharpLibtorchAndTheCpu()
    {
        var environment = new TorchTrainingBackend(new NnUnetPaths(null, null, null), "cpu", new TorchBackendOptions()).Describe("cpu");
        Assert.Matches(@"^0\.\d+\.\d+", environment.TorchSharp ?? "");
        Assert.Matches(@"^2\.\d+\.\d+", environment.LibTorch ?? "");
        Assert.StartsWith("cpu (", environment.Device);
        Assert.Contains($"{Environment.ProcessorCount} logical cores", environment.Device);
    }
}
