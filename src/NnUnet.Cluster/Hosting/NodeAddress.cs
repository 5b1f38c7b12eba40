using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;

namespace NnUnet.Cluster.Hosting;

/// <summary>
/// The address a node announces to the cluster. Other nodes connect to it (workers heartbeat each other too), so it
/// must be one they reach: `hostname -i` often answers 127.0.1.1 (Debian's /etc/hosts line for the host name), which
/// no other node can reach. <c>--host auto</c> picks it: the local address the kernel would use to reach the first
/// seed (a UDP socket connected to it: the route is looked up, no packet is sent), or, for the first coordinator
/// (no seed), the first IPv4 address of an interface that is up and not loopback.
/// </summary>
public static class NodeAddress
{
    public const string Auto = "auto";

    public static string Resolve(string host, IReadOnlyList<string> seeds)
    {
        if (!string.Equals(host, Auto, StringComparison.OrdinalIgnoreCase)) return host;
        foreach (var seed in seeds)
            if (TowardsSeed(seed) is { } local) return local;
        return FirstExternalAddress()
               ?? throw new InvalidOperationException("--host auto: this machine has no IPv4 address on an interface that is up besides loopback; give --host ADDRESS");
    }

    /// <summary>The local address of the route to <paramref name="seed"/> (akka.tcp://nnunet@HOST:PORT), or null when it does not resolve.</summary>
    public static string? TowardsSeed(string seed)
    {
        if (!Uri.TryCreate(seed, UriKind.Absolute, out var uri) || uri.Host.Length == 0) return null;
        IPAddress? target = IPAddress.TryParse(uri.Host, out var literal) ? literal : null;
        if (target is null)
        {
            try { target = Array.Find(Dns.GetHostAddresses(uri.Host), a => a.AddressFamily == AddressFamily.InterNetwork); }
            catch (SocketException) { return null; }
            if (target is null) return null;
        }
        try
        {
            using var socket = new Socket(target.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
            socket.Connect(target, uri.Port > 0 ? uri.Port : 4053);
            return ((IPEndPoint)socket.LocalEndPoint!).Address.ToString();
        }
        catch (SocketException) { return null; }
    }

    private static string? FirstExternalAddress()
    {
        foreach (var nic in NetworkInterface.GetAllNetworkInterfaces())
        {
            if (nic.OperationalStatus != OperationalStatus.Up || nic.NetworkInterfaceType == NetworkInterfaceType.Loopback) continue;
            foreach (var unicast in nic.GetIPProperties().UnicastAddresses)
                if (unicast.Address.AddressFamily == AddressFamily.InterNetwork && !IPAddress.IsLoopback(unicast.Address))
                    return unicast.Address.ToString();
        }
        return null;
    }
}
