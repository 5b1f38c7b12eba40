using NnUnet.Cluster.Sweeps;
using NnUnet.Core.IO;

namespace NnUnet.Cluster.Backends;

/// <summary>
/// Runs one job attempt under its fence (<see cref="WriteFence"/>): takes the job's fence file
/// (<see cref="JobOutputs.FencePath"/>) for the attempt before anything is written, then runs the job with the fence
/// current, so that every write of the job checks it. An attempt superseded at the start or at any later write ends
/// with <see cref="AttemptSupersededException"/>.
/// </summary>
public static class FencedAttempt
{
    public static async Task<JobOutcome> RunAsync(JobSpec spec, string workerId, Func<Task<JobOutcome>> run)
    {
        var fence = WriteFence.Take(JobOutputs.FencePath(spec), new FenceToken(spec.SweepId, spec.Attempt, workerId, DateTime.UtcNow));
        using (fence.Enter())
            return await run().ConfigureAwait(false);
    }
}
