using Akka.Actor;
using Akka.Cluster;
using Akka.Event;
using NnUnet.Cluster.Hosting;

namespace NnUnet.Cluster.Actors;

/// <summary>
/// On a worker node: notices that the coordinator was restarted while this node still counts the dead one as an
/// unreachable member, and downs this node, so that the worker process rejoins with a fresh node at once.
/// <para>
/// A coordinator restarted within seconds forms a new cluster; the workers' nodes still belong to the old one and
/// would leave it only when their split-brain resolver downs them: failure-detector pause + stable-after (about 25 s
/// as shipped) after the crash. Meanwhile the restarted coordinator holds their running jobs for adoption-grace.
/// The incarnation shows in the coordinator node's singleton manager: while the coordinator is up, this actor asks
/// it for its identity (<see cref="Identify"/>) and keeps its actor uid; while the coordinator is unreachable it asks
/// again every <see cref="ProbeInterval"/>. An answer with another uid comes from a new process at the same address.
/// A coordinator that was only cut off answers with the old uid when the link heals, and nothing happens.
/// </para>
/// </summary>
public sealed class CoordinatorIncarnationWatch : ReceiveActor, IWithTimers
{
    public static readonly TimeSpan ProbeInterval = TimeSpan.FromSeconds(2);
    private const string CoordinatorRole = "coordinator";

    private sealed class Probe
    {
        public static readonly Probe Instance = new();
    }

    private readonly Akka.Cluster.Cluster _cluster = Akka.Cluster.Cluster.Get(Context.System);
    private readonly ILoggingAdapter _log = Context.GetLogger();
    // coordinator node -> the uid of its singleton manager, learnt while it was reachable
    private readonly Dictionary<Address, long> _incarnations = [];
    private readonly HashSet<Address> _unreachable = [];
    private bool _leaving;

    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props() => Akka.Actor.Props.Create(() => new CoordinatorIncarnationWatch());

    public CoordinatorIncarnationWatch()
    {
        Receive<ClusterEvent.MemberUp>(up =>
        {
            if (up.Member.HasRole(CoordinatorRole)) Identify(up.Member.Address);
        });
        Receive<ClusterEvent.UnreachableMember>(m =>
        {
            if (!m.Member.HasRole(CoordinatorRole)) return;
            _unreachable.Add(m.Member.Address);
            if (!Timers.IsTimerActive("probe")) Timers.StartPeriodicTimer("probe", Probe.Instance, ProbeInterval);
        });
        Receive<ClusterEvent.ReachableMember>(m => Reachable(m.Member.Address));
        Receive<ClusterEvent.MemberRemoved>(m =>
        {
            Reachable(m.Member.Address);
            _incarnations.Remove(m.Member.Address);
        });
        Receive<Probe>(_ =>
        {
            foreach (var address in _unreachable) Identify(address);
        });
        Receive<ActorIdentity>(OnIdentity);
        ReceiveAny(_ => { }); // other cluster events
    }

    protected override void PreStart() =>
        _cluster.Subscribe(Self, ClusterEvent.SubscriptionInitialStateMode.InitialStateAsEvents,
            typeof(ClusterEvent.IMemberEvent), typeof(ClusterEvent.IReachabilityEvent));

    protected override void PostStop() => _cluster.Unsubscribe(Self);

    private void Reachable(Address address)
    {
        _unreachable.Remove(address);
        if (_unreachable.Count == 0) Timers.Cancel("probe");
    }

    private static void Identify(Address address) =>
        Context.ActorSelection(new RootActorPath(address) / "user" / NnUnetClusterHost.CoordinatorManagerName).Tell(new Identify(address.ToString()));

    private void OnIdentity(ActorIdentity identity)
    {
        if (identity.Subject is not { } manager || identity.MessageId is not string asked) return;
        var address = manager.Path.Address;
        if (address.ToString() != asked) return;
        long uid = manager.Path.Uid;
        if (!_incarnations.TryGetValue(address, out var known))
        {
            // learnt only from a reachable coordinator: an answer while it is unreachable may already be the new one
            if (!_unreachable.Contains(address)) _incarnations[address] = uid;
            return;
        }
        if (known == uid || !_unreachable.Contains(address) || _leaving) return;
        _leaving = true;
        _log.Warning("the coordinator at {0} was restarted (it answers as a new process while this node still counts the old one " +
                     "as unreachable): downing this node, to join the new coordinator with a fresh one", address);
        _cluster.Down(_cluster.SelfAddress);
    }
}
