using System.Net;
using System.Net.NetworkInformation;
using NnUnet.Cluster.Hosting;

namespace NnUnet.Cluster.Tests;

/// <summary>`--host auto`: the address other nodes reach, never Debian's 127.0.1.1 host-name line.</summary>
public sealed class NodeAddressTests
{
    [Fact]
    public void GivenAddress_IsKept() =>
        Assert.Equal("10.1.2.3", NodeAddress.Resolve("10.1.2.3", ["akka.tcp://nnunet@127.0.0.3:4053"]));

    [Fact]
    public void Auto_IsTheLocalAddressOfTheRouteToTheSeed()
    {
        // the kernel's route to another loopback address leaves from 127.0.0.1 (no packet is sent to find it)
        Assert.Equal("127.0.0.1", NodeAddress.Resolve("auto", ["akka.tcp://nnunet@127.0.0.3:4053"]));
        Assert.Equal("127.0.0.1", NodeAddress.Resolve("AUTO", ["akka.ssl.tcp://nnunet@127.0.0.2:25520"]));
    }

    [Fact]
    public void Auto_WithoutASeed_IsAnAddressOfAnInterfaceThatIsUp_NotLoopback()
    {
        var external = NetworkInterface.GetAllNetworkInterfaces()
            .Where(n => n.OperationalStatus == OperationalStatus.Up && n.NetworkInterfaceType != NetworkInterfaceType.Loopback)
            .SelectMany(n => n.GetIPProperties().UnicastAddresses).Select(a => a.Address)
            .Where(a => a.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork && !IPAddress.IsLoopback(a)).Select(a => a.ToString()).ToArray();
        if (external.Length == 0)
        {
            var error = Assert.Throws<InvalidOperationException>(() => NodeAddress.Resolve("auto", []));
            Assert.Contains("give --host ADDRESS", error.Message);
            return;
        }
        var chosen = NodeAddress.Resolve("auto", []);
        Assert.Contains(chosen, external);
        Assert.False(IPAddress.IsLoopback(IPAddress.Parse(chosen)));
        // a seed that does not resolve falls back to the same
        Assert.Equal(chosen, NodeAddress.Resolve("auto", ["akka.tcp://nnunet@no-such-host.invalid:4053"]));
    }
}
