using NnUnet.Cluster.Backends;

namespace NnUnet.Cli.Commands.Cluster;

/// <summary>
/// Where the CLI gets the backend that runs jobs. NnUnet.Cluster only knows <see cref="ITrainingBackend"/>; the
/// TorchSharp trainer (NnUnet.Training) is adapted to it here in the CLI project, which references both.
/// REGISTRATION POINT: the trainer adapter sets <see cref="Trainer"/> (e.g. in a static constructor of the adapter
/// class called from <see cref="EnsureRegistered"/>). Until then only <c>--simulate</c> runs jobs.
/// </summary>
internal static class TrainingBackends
{
    /// <summary>The real trainer: device ("cuda:N" or "cpu") to backend. Null until the trainer adapter is plugged in.</summary>
    public static TrainingBackendFactory? Trainer { get; set; }

    /// <summary>Hook for the trainer adapter's registration (kept in one place so every verb sees the same backend).</summary>
    public static void EnsureRegistered()
    {
        // the TorchSharp trainer adapter registers itself here, e.g.: Trainer ??= TorchTrainerBackend.Create;
    }

    /// <summary>The factory a verb uses: the simulated one with <c>--simulate</c>, else the registered trainer.</summary>
    public static TrainingBackendFactory Resolve(bool simulate, int simulatedEpochMilliseconds)
    {
        if (simulate)
        {
            var options = new SimulatedBackendOptions { EpochDuration = _ => TimeSpan.FromMilliseconds(simulatedEpochMilliseconds) };
            return device => new SimulatedTrainingBackend(options, device);
        }
        EnsureRegistered();
        return Trainer ?? throw new InvalidOperationException(
            "no training backend is available in this build (the TorchSharp trainer adapter is not registered yet); run with --simulate to exercise the cluster");
    }

    /// <summary>Number of CUDA devices on this node; 0 when CUDA is unavailable or libtorch cannot be loaded.</summary>
    public static int DetectGpuCount()
    {
        try { return NnUnet.Training.Devices.TorchDevices.CudaDeviceCount; }
        catch (Exception ex) when (ex is DllNotFoundException or TypeInitializationException or InvalidOperationException) { return 0; }
    }
}
