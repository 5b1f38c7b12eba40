using Akka.Configuration;
using NnUnet.Cluster.Hosting;

namespace NnUnet.Cluster.Tests.Actors;

/// <summary>
/// One ActorSystem per test, no network peers and no files: the node's real configuration (serializers, cluster
/// provider: the coordinator subscribes to cluster events and pub-sub) with the in-memory journal and snapshot store
/// (kept by the system, so a coordinator started again in the same test recovers what the first one persisted), and
/// every one of our messages passed through MessagePack on delivery (<see cref="VerifyOurMessages"/>). The node never
/// joins a cluster: the actors under test talk to probes only.
/// </summary>
public static class ActorTestConfig
{
    public static Config Create() => ClusterConfig.Build(new NodeOptions(NodeKind.Embedded, ExtraHocon: """
        akka.loglevel = WARNING
        akka.persistence.journal.plugin = "akka.persistence.journal.inmem"
        akka.persistence.snapshot-store.plugin = "akka.persistence.snapshot-store.inmem"
        akka.test.single-expect-default = 10s
        """ + "\n" + VerifyOurMessages.Hocon));
}
