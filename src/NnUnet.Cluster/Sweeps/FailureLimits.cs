namespace NnUnet.Cluster.Sweeps;

/// <summary>
/// The limits of the failure rules, from <c>nnunet.cluster</c> in the node's configuration (not journaled: a restarted
/// coordinator applies its current configuration to the recovered jobs).
/// </summary>
/// <param name="MaxRequeues">how often one job may lose its worker (node lost, lease expired, worker restarted, hung)
/// and be re-queued; the next loss fails it with the reason, so that no job cycles forever (default 10).</param>
public sealed record FailureLimits(int MaxRequeues = FailureLimits.DefaultMaxRequeues)
{
    public const int DefaultMaxRequeues = 10;

    public static readonly FailureLimits Default = new();
}
