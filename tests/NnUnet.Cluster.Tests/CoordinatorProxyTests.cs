using Akka.Actor;
using NnUnet.Cluster.Hosting;

namespace NnUnet.Cluster.Tests;

public sealed class CoordinatorProxyTests
{
    [Fact]
    public async Task ConcurrentCallers_GetTheSameProxy_NeverANameClash()
    {
        var system = NnUnetClusterHost.StartSystem(ClusterConfig.Build(new NodeOptions(NodeKind.Client, ExtraHocon: "akka.loglevel = WARNING")));
        try
        {
            var proxies = new IActorRef[32];
            Parallel.For(0, proxies.Length, i => proxies[i] = NnUnetClusterHost.CoordinatorProxy(system));
            foreach (var p in proxies) Assert.Same(proxies[0], p);
            Assert.Equal($"/user/{NnUnetClusterHost.CoordinatorProxyName}", proxies[0].Path.ToStringWithoutAddress());
        }
        finally { await system.Terminate(); }
    }
}
