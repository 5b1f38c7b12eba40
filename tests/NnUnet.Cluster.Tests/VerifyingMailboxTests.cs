using Akka.Actor;
using NnUnet.Cluster.Hosting;
using NnUnet.Cluster.Messages;
using NnUnet.Cluster.Sweeps;

namespace NnUnet.Cluster.Tests;

public sealed class VerifyingMailboxTests
{
    private sealed class Echo : ReceiveActor
    {
        public Echo() => ReceiveAny(m => Sender.Tell(m));
    }

    private sealed class StashingEcho : ReceiveActor, IWithUnboundedStash
    {
        public IStash Stash { get; set; } = null!;
        public StashingEcho() => ReceiveAny(m => Sender.Tell(m));
    }

    [Fact]
    public async Task OurMessages_ArriveAsSerializedCopies_InPlainAndStashingActors_OtherMessagesUntouched()
    {
        var config = ClusterConfig.Build(new NodeOptions(NodeKind.Worker, ExtraHocon: VerifyOurMessages.Hocon + "\n" + LocalCluster.TestHocon));
        var system = ActorSystem.Create("verify", config);
        try
        {
            foreach (var props in new[] { Props.Create(() => new Echo()), Props.Create(() => new StashingEcho()) })
            {
                var echo = system.ActorOf(props);
                var sent = new JobProgressReport("w", "2d/fold_0", 1, new EpochMetrics(3, 5, 0.1, 0.2, 0.3, 0.4, 1.5));
                var received = await echo.Ask<object>(sent, TimeSpan.FromSeconds(10));
                Assert.Equal(sent, received);
                Assert.NotSame(sent, received); // it went through MessagePack on the way in
                var other = new object();
                Assert.Same(other, await echo.Ask<object>(other, TimeSpan.FromSeconds(10)));
            }
        }
        finally
        {
            await system.Terminate();
        }
    }
}
