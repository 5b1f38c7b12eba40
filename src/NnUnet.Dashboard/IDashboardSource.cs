using NnUnet.Cluster.Messages;
using NnUnet.Cluster.Sweeps;

namespace NnUnet.Dashboard;

/// <summary>A member of the Akka cluster as the dashboard shows it.</summary>
public sealed record ClusterMemberView(string Address, string Status, string[] Roles, bool Reachable, bool IsSelf);

/// <summary>
/// What the dashboard needs from the sweep: the read model, the cluster's members, operator commands and a stream of
/// changes. <see cref="AkkaDashboardSource"/> is the real one (over the coordinator singleton); tests may fake it.
/// </summary>
public interface IDashboardSource
{
    Task<SweepView> GetSnapshotAsync(CancellationToken cancellationToken);

    IReadOnlyList<ClusterMemberView> GetMembers();

    Task<SweepControlResult> ControlAsync(SweepControl command, CancellationToken cancellationToken);

    /// <summary>Calls <paramref name="onChange"/> for every change the coordinator publishes until the result is disposed.</summary>
    IDisposable Subscribe(Action<SweepChanged> onChange);
}
