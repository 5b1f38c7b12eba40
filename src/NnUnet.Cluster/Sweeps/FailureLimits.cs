namespace NnUnet.Cluster.Sweeps;

/// <summary>
/// The limits of the failure rules, from <c>nnunet.cluster</c> in the node's configuration (not journaled: a restarted
/// coordinator applies its current configuration to the recovered jobs and workers).
/// </summary>
/// <param name="MaxRequeues">how often one job may lose its worker (node lost, lease expired, worker restarted, hung)
/// and be re-queued; the next loss fails it with the reason, so that no job cycles forever (default 10).</param>
public sealed record FailureLimits(int MaxRequeues = FailureLimits.DefaultMaxRequeues)
{
    public const int DefaultMaxRequeues = 10;
    public const int DefaultQuarantineAfterFailures = 3;

    public static readonly FailureLimits Default = new();

    /// <summary>Failures in a row (across jobs, none of them the job's own) after which a worker is quarantined (default 3).</summary>
    public int QuarantineAfterFailures { get; init; } = DefaultQuarantineAfterFailures;

    /// <summary>A failure this soon after the attempt's start is taken for the worker's fault (a broken mount, a broken GPU):
    /// the worker is quarantined at once, as long as another worker can take the job (default 30 s; zero = off).</summary>
    public TimeSpan QuarantineFastFailure { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>The first quarantine of a worker lasts this long; each further one (without a success in between) twice as long (default 5 min).</summary>
    public TimeSpan QuarantineBackoff { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>The longest quarantine (default 1 h).</summary>
    public TimeSpan QuarantineMaxBackoff { get; init; } = TimeSpan.FromHours(1);

    /// <summary>How long the <paramref name="level"/>-th quarantine in a row lasts: the back-off doubled per level, at most the maximum.</summary>
    public TimeSpan QuarantineFor(int level)
    {
        double factor = Math.Pow(2, Math.Clamp(level - 1, 0, 30));
        var backoff = TimeSpan.FromTicks((long)Math.Min(QuarantineBackoff.Ticks * factor, TimeSpan.MaxValue.Ticks / 2.0));
        return backoff > QuarantineMaxBackoff ? QuarantineMaxBackoff : backoff;
    }
}
