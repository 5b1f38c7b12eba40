using NnUnet.Cli.Backends;
using NnUnet.Cluster.Backends;
using NnUnet.Core.Datasets;

namespace NnUnet.Cli.Commands.Cluster;

/// <summary>
/// Where the CLI gets the backend that runs jobs. NnUnet.Cluster only knows <see cref="ITrainingBackend"/>; the
/// TorchSharp trainer (NnUnet.Training) is adapted to it here in the CLI project, which references both.
/// </summary>
internal static class TrainingBackends
{
    /// <summary>The factory a verb uses: the simulated one with <c>--simulate</c>, else the TorchSharp trainer.</summary>
    public static TrainingBackendFactory Resolve(bool simulate, int simulatedEpochMilliseconds, TorchBackendOptions budget)
    {
        if (simulate)
        {
            var options = new SimulatedBackendOptions { EpochDuration = _ => TimeSpan.FromMilliseconds(simulatedEpochMilliseconds) };
            return device => new SimulatedTrainingBackend(options, device);
        }
        // Raw and preprocessed roots are this node's view of the shared storage; results come with each job.
        var nodePaths = NnUnetPaths.FromEnvironment();
        return device => new TorchTrainingBackend(nodePaths, device, budget);
    }

    /// <summary>Number of CUDA devices on this node; 0 when CUDA is unavailable or libtorch cannot be loaded.</summary>
    public static int DetectGpuCount()
    {
        try { return NnUnet.Training.Devices.TorchDevices.CudaDeviceCount; }
        catch (Exception ex) when (ex is DllNotFoundException or TypeInitializationException or InvalidOperationException) { return 0; }
    }
}
