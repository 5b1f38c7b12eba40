using Akka.Actor;
using Akka.Cluster;
using Akka.TestKit.Xunit2;
using NnUnet.Cluster.Actors;
using NnUnet.Cluster.Hosting;
using NnUnet.Cluster.Messages;
using NnUnet.Cluster.Sweeps;
using AkkaCluster = Akka.Cluster.Cluster;

namespace NnUnet.Cluster.Tests.Actors;

/// <summary>
/// Who may tell the coordinator what: operator commands only from coordinator-role nodes (this node, where the
/// dashboard runs), not from a worker or client node; a worker id held by a live worker cannot be taken by another
/// node. The coordinator runs in the test's system (a one-node cluster); the other nodes are real ActorSystems that
/// join it over TCP and talk to the coordinator through a relay actor, so the coordinator sees their real addresses.
/// </summary>
public sealed class CoordinatorAuthorityTests : TestKit
{
    private static readonly SweepDefinition Definition = LocalCluster.Definition(["2d"], [0, 1], epochs: 3);
    private readonly List<ActorSystem> _nodes = [];
    private readonly IActorRef _coordinator;

    public CoordinatorAuthorityTests() : base(ActorTestConfig.Create(), "nnunet")
    {
        var cluster = AkkaCluster.Get(Sys);
        cluster.Join(cluster.SelfAddress);
        AwaitCondition(() => cluster.SelfMember.Status == MemberStatus.Up, TimeSpan.FromSeconds(20));
        _coordinator = Sys.ActorOf(SweepCoordinator.Props(new CoordinatorSettings(Definition, "/nnunet-results", new FakeResultStore(),
            TimeSpan.FromHours(1), TimeSpan.FromHours(1), TimeSpan.Zero, 1000)), "coordinator");
    }

    protected override void AfterAll()
    {
        foreach (var node in _nodes) node.Terminate().Wait(TimeSpan.FromSeconds(10));
        base.AfterAll();
    }

    /// <summary>A node of <paramref name="kind"/>'s role joins; returns it and a relay to the coordinator whose answers reach <paramref name="replies"/>.</summary>
    private (ActorSystem Node, IActorRef Relay) Join(NodeKind kind, IActorRef replies)
    {
        var self = AkkaCluster.Get(Sys).SelfAddress;
        var node = NnUnetClusterHost.StartSystem(ClusterConfig.Build(new NodeOptions(kind, Seeds: [self.ToString()], ExtraHocon: LocalCluster.TestHocon)));
        _nodes.Add(node);
        var address = AkkaCluster.Get(node).SelfAddress;
        AwaitCondition(() => AkkaCluster.Get(Sys).State.Members.Any(m => m.Address.Equals(address) && m.Status == MemberStatus.Up), TimeSpan.FromSeconds(30));
        var coordinator = node.ActorSelection(new RootActorPath(self) / "user" / "coordinator");
        return (node, node.ActorOf(Props.Create(() => new Relay(coordinator, replies))));
    }

    private SweepStatus Status()
    {
        var asker = CreateTestProbe();
        asker.Send(_coordinator, GetSweepView.Instance);
        return asker.ExpectMsg<SweepView>().Status;
    }

    [Fact]
    public void Commands_are_accepted_from_coordinator_and_operator_nodes_only()
    {
        var replies = CreateTestProbe();
        var (_, worker) = Join(NodeKind.Worker, replies.Ref);
        var (_, client) = Join(NodeKind.Client, replies.Ref);
        var (_, standby) = Join(NodeKind.Coordinator, replies.Ref);

        worker.Tell(new Relay.Send(new SweepControl(SweepControlAction.Pause, null)));
        var refused = replies.ExpectMsg<SweepControlResult>();
        Assert.False(refused.Ok);
        Assert.Contains("only from coordinator nodes", refused.Message);
        Assert.Contains("role(s) worker", refused.Message);
        client.Tell(new Relay.Send(new SweepControl(SweepControlAction.CancelJob, "2d/fold_0")));
        Assert.Contains("role(s) client", replies.ExpectMsg<SweepControlResult>(r => !r.Ok).Message);
        Assert.Equal(SweepStatus.Running, Status());

        // a coordinator-role node (a stand-by coordinator, whose dashboard checks its token) may
        standby.Tell(new Relay.Send(new SweepControl(SweepControlAction.Pause, null)));
        Assert.True(replies.ExpectMsg<SweepControlResult>().Ok);
        Assert.Equal(SweepStatus.Paused, Status());

        // an operator node (nnunet sweep-control) may
        var (_, operatorNode) = Join(NodeKind.Operator, replies.Ref);
        operatorNode.Tell(new Relay.Send(new SweepControl(SweepControlAction.Resume, null)));
        Assert.True(replies.ExpectMsg<SweepControlResult>().Ok);
        Assert.Equal(SweepStatus.Running, Status());
        standby.Tell(new Relay.Send(new SweepControl(SweepControlAction.Pause, null)));
        Assert.True(replies.ExpectMsg<SweepControlResult>().Ok);

        // this node (its dashboard asks from here)
        var local = CreateTestProbe();
        local.Send(_coordinator, new SweepControl(SweepControlAction.Resume, null));
        Assert.True(local.ExpectMsg<SweepControlResult>().Ok);
        Assert.Equal(SweepStatus.Running, Status());
    }

    [Fact]
    public void A_worker_id_held_by_a_live_worker_of_another_node_is_refused_until_that_node_is_gone()
    {
        var replies = CreateTestProbe();
        var (node, remote) = Join(NodeKind.Worker, replies.Ref);

        var w1 = CreateTestProbe("w1");
        w1.Send(_coordinator, new RegisterWorker("w1", "node-1", "cpu", null, 0));
        w1.ExpectMsg<WorkerRegistered>();

        remote.Tell(new Relay.Send(new RegisterWorker("w1", "spoofer", "cpu", null, 0)));
        var refused = replies.ExpectMsg<WorkerRegistrationRefused>();
        Assert.Equal("w1", refused.WorkerId);
        Assert.Contains("worker id w1 is held by a live worker of node", refused.Reason);
        Assert.Contains(AkkaCluster.Get(node).SelfAddress.ToString(), refused.Reason);
        // the id still names the first worker: it gets the work
        w1.Send(_coordinator, new RequestJob("w1"));
        w1.ExpectMsg<StartJob>();
        replies.ExpectNoMsg(TimeSpan.FromMilliseconds(300));

        // the same node may register again under its id (a restarted worker actor); another id is free
        w1.Send(_coordinator, new RegisterWorker("w1", "node-1", "cpu", null, 0));
        w1.ExpectMsg<WorkerRegistered>();
        remote.Tell(new Relay.Send(new RegisterWorker("w2", "node-2", "cpu", null, 0)));
        replies.ExpectMsg<WorkerRegistered>(r => r.WorkerId == "w2");

        // the other way round: w2 belongs to the remote node while it lives, and is free once it has left
        var local2 = CreateTestProbe("w2");
        local2.Send(_coordinator, new RegisterWorker("w2", "node-1", "cpu", null, 0));
        local2.ExpectMsg<WorkerRegistrationRefused>();
        var leaving = AkkaCluster.Get(node).SelfAddress;
        AkkaCluster.Get(node).Leave(leaving);
        AwaitCondition(() => !AkkaCluster.Get(Sys).State.Members.Any(m => m.Address.Equals(leaving)), TimeSpan.FromSeconds(30));
        local2.Send(_coordinator, new RegisterWorker("w2", "node-1", "cpu", null, 0));
        local2.FishForMessage(m => m is WorkerRegistered, TimeSpan.FromSeconds(10));
    }

    /// <summary>Sends what it is given to the coordinator as itself (a remote sender) and passes the answers on.</summary>
    private sealed class Relay : ReceiveActor
    {
        public sealed record Send(object Message) : INoSerializationVerificationNeeded;

        public Relay(ActorSelection coordinator, IActorRef replies)
        {
            Receive<Send>(s => coordinator.Tell(s.Message, Self));
            ReceiveAny(m => replies.Tell(m));
        }
    }
}
