using System.Threading.Channels;
using NnUnet.Cluster.Backends;
using NnUnet.Cluster.Sweeps;

namespace NnUnet.Cluster.Tests.Actors;

/// <summary>
/// A training backend the test drives by hand: every <see cref="RunAsync"/> becomes a <see cref="Run"/> the test
/// takes with <see cref="NextRun"/>, reports epochs through, and ends (success, failure) when it wants to; a
/// cancelled run ends with <see cref="OperationCanceledException"/> as the real trainer does. No timing involved.
/// </summary>
public sealed class ControlledBackend : ITrainingBackend
{
    public sealed class Run(JobSpec spec, IJobProgressSink sink, CancellationToken token)
    {
        private readonly TaskCompletionSource<JobOutcome> _end = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public JobSpec Spec { get; } = spec;
        public CancellationToken Token { get; } = token;
        internal Task<JobOutcome> Ended => _end.Task.WaitAsync(Token);

        public void Epoch(int epoch, double pseudoDice = 0.5) =>
            sink.ReportEpoch(new EpochMetrics(epoch, Spec.Epochs, 1.0 / epoch, 1.1 / epoch, pseudoDice, pseudoDice * 0.9, 0.01));

        public void Succeed(double dice = 0.8) =>
            _end.SetResult(new JobOutcome($"/results/{Spec.JobId}/summary.json", new Dictionary<string, double> { ["foreground_mean_dice"] = dice }));

        public void Fail(string error) => _end.SetException(new InvalidOperationException(error));

        /// <summary>Ends the run with this exception (e.g. the fence's <c>AttemptSupersededException</c> at a write).</summary>
        public void End(Exception error) => _end.SetException(error);
    }

    private readonly Channel<Run> _runs = Channel.CreateUnbounded<Run>();

    public string Name => "controlled";

    public Task<JobOutcome> RunAsync(JobSpec spec, IJobProgressSink progress, CancellationToken cancellationToken)
    {
        var run = new Run(spec, progress, cancellationToken);
        _runs.Writer.TryWrite(run);
        return run.Ended;
    }

    /// <summary>The next run a worker started (fails the test when none starts within <paramref name="timeout"/>).</summary>
    public async Task<Run> NextRun(TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(10));
        try { return await _runs.Reader.ReadAsync(cts.Token); }
        catch (OperationCanceledException) { throw new TimeoutException("the worker started no run"); }
    }

    public bool HasPendingRun => _runs.Reader.TryPeek(out _);
}
