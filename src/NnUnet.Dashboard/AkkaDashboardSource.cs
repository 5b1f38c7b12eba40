using Akka.Actor;
using Akka.Cluster.Tools.PublishSubscribe;
using NnUnet.Cluster.Hosting;
using NnUnet.Cluster.Messages;
using NnUnet.Cluster.Sweeps;

namespace NnUnet.Dashboard;

/// <summary>
/// <see cref="IDashboardSource"/> over a running node: asks the coordinator singleton (through its proxy, so it works
/// on any node of the cluster) and subscribes to the <see cref="SweepTopics.Changes"/> pub-sub topic.
/// </summary>
public sealed class AkkaDashboardSource(ActorSystem system, TimeSpan? askTimeout = null) : IDashboardSource
{
    private readonly TimeSpan _timeout = askTimeout ?? TimeSpan.FromSeconds(5);

    public Task<SweepView> GetSnapshotAsync(CancellationToken cancellationToken) =>
        NnUnetClusterHost.CoordinatorProxy(system).Ask<SweepView>(GetSweepView.Instance, _timeout, cancellationToken);

    public Task<SweepControlResult> ControlAsync(SweepControl command, CancellationToken cancellationToken) =>
        NnUnetClusterHost.CoordinatorProxy(system).Ask<SweepControlResult>(command, _timeout, cancellationToken);

    public IReadOnlyList<ClusterMemberView> GetMembers()
    {
        var cluster = Akka.Cluster.Cluster.Get(system);
        var state = cluster.State;
        var unreachable = new HashSet<Address>();
        foreach (var m in state.Unreachable) unreachable.Add(m.Address);
        var members = new List<ClusterMemberView>();
        foreach (var m in state.Members)
            members.Add(new ClusterMemberView(m.Address.ToString(), m.Status.ToString(), m.Roles.Order(StringComparer.Ordinal).ToArray(),
                !unreachable.Contains(m.Address), m.Address == cluster.SelfAddress));
        return members;
    }

    public IDisposable Subscribe(Action<SweepChanged> onChange)
    {
        var listener = system.ActorOf(Props.Create(() => new ChangeListener(onChange)));
        DistributedPubSub.Get(system).Mediator.Tell(new Subscribe(SweepTopics.Changes, listener));
        return new Subscription(system, listener);
    }

    private sealed class ChangeListener : ReceiveActor
    {
        public ChangeListener(Action<SweepChanged> onChange)
        {
            Receive<SweepChanged>(onChange);
            Receive<SubscribeAck>(_ => { });
            Receive<SweepFinished>(_ => { });
        }
    }

    private sealed class Subscription(ActorSystem system, IActorRef listener) : IDisposable
    {
        public void Dispose()
        {
            if (system.WhenTerminated.IsCompleted) return;
            DistributedPubSub.Get(system).Mediator.Tell(new Unsubscribe(SweepTopics.Changes, listener));
            listener.Tell(PoisonPill.Instance);
        }
    }
}
