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
    public static TrainingBackendFactory Resolve(bool simulate, int simulatedEpochMilliseconds, SimulatedStalls? stalls = null)
    {
        if (simulate)
        {
            var options = new SimulatedBackendOptions
            {
                EpochDuration = _ => TimeSpan.FromMilliseconds(simulatedEpochMilliseconds),
                StallInCheckpointWrite = stalls is { CheckpointEpoch: > 0 } c
                    ? (spec, epoch) => spec.Attempt == 1 && epoch == c.CheckpointEpoch ? c.Duration : TimeSpan.Zero
                    : (_, _) => TimeSpan.Zero,
                StallInValidation = stalls is { InValidation: true, Hang: false } v ? spec => spec.Attempt == 1 ? v.Duration : TimeSpan.Zero : _ => TimeSpan.Zero,
                HangInValidation = stalls is { Hang: true } h ? spec => spec.Attempt == 1 ? h.Duration : TimeSpan.Zero : _ => TimeSpan.Zero,
            };
            return device => new SimulatedTrainingBackend(options, device);
        }
        // Raw and preprocessed roots are this node's view of the shared storage; results come with each job.
        var nodePaths = NnUnetPaths.FromEnvironment();
        return device => new TorchTrainingBackend(nodePaths, device, new TorchBackendOptions());
    }

    /// <summary>Number of CUDA devices on this node; 0 when CUDA is unavailable or libtorch cannot be loaded.</summary>
    public static int DetectGpuCount()
    {
        try { return NnUnet.Training.Devices.TorchDevices.CudaDeviceCount; }
        catch (Exception ex) when (ex is DllNotFoundException or TypeInitializationException or InvalidOperationException) { return 0; }
    }
}

/// <summary>
/// Fault injection for <c>nnunet worker --simulate</c> (tests kill the process while a job stalls): the first attempt
/// of every job stalls for <paramref name="Duration"/> inside the checkpoint write after epoch
/// <paramref name="CheckpointEpoch"/> (0 = never), or in its validation phase: a long validation reporting a case about
/// every second (<c>validation:MS</c>) or, with <paramref name="Hang"/>, a true hang without progress (<c>hang:MS</c>).
/// </summary>
internal sealed record SimulatedStalls(int CheckpointEpoch, bool InValidation, TimeSpan Duration, bool Hang = false)
{
    /// <summary>Parses <c>checkpoint:EPOCH:MS</c>, <c>validation:MS</c> or <c>hang:MS</c>.</summary>
    public static SimulatedStalls Parse(string text)
    {
        var parts = text.Split(':');
        if (parts.Length == 3 && parts[0] == "checkpoint" && int.TryParse(parts[1], out var epoch) && epoch > 0 && int.TryParse(parts[2], out var ms) && ms >= 0)
            return new(epoch, false, TimeSpan.FromMilliseconds(ms));
        if (parts.Length == 2 && parts[0] == "validation" && int.TryParse(parts[1], out ms) && ms >= 0)
            return new(0, true, TimeSpan.FromMilliseconds(ms));
        if (parts.Length == 2 && parts[0] == "hang" && int.TryParse(parts[1], out ms) && ms >= 0)
            return new(0, true, TimeSpan.FromMilliseconds(ms), Hang: true);
        throw new ArgumentException($"--sim-stall: '{text}' is neither checkpoint:EPOCH:MS, validation:MS nor hang:MS");
    }
}
