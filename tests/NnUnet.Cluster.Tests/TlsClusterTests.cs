using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Akka.Actor;
using Akka.Cluster;
using AkkaCluster = Akka.Cluster.Cluster;
using NnUnet.Cluster.Hosting;

namespace NnUnet.Cluster.Tests;

/// <summary>
/// Akka remoting over TLS with cluster-config/tls.hocon: two nodes holding the cluster certificate form a cluster; a
/// plain-TCP node and a node with another self-signed certificate never become members. Certificates are made here
/// with CertificateRequest (what scripts/make-dev-certs.sh makes with openssl).
/// </summary>
public sealed class TlsClusterTests : IDisposable
{
    private static readonly TimeSpan JoinTimeout = TimeSpan.FromSeconds(20);
    private static readonly TimeSpan RefusedWindow = TimeSpan.FromSeconds(8);
    private readonly string _dir = Directory.CreateTempSubdirectory("nnunet-tls-").FullName;
    private readonly List<ActorSystem> _systems = [];

    public void Dispose()
    {
        foreach (var s in _systems) s.Terminate().Wait(TimeSpan.FromSeconds(10));
        try { Directory.Delete(_dir, true); } catch (IOException) { }
    }

    [Fact]
    public async Task Nodes_with_the_cluster_certificate_join_and_others_are_refused()
    {
        string clusterCert = MakePfx("cluster", "s3cret-cluster");
        string otherCert = MakePfx("intruder", "other-pass");

        var first = Start(TlsHocon(clusterCert, "s3cret-cluster"), seed: null);
        var firstAddress = AkkaCluster.Get(first).SelfAddress;
        Assert.Equal("akka.ssl.tcp", firstAddress.Protocol);
        await WaitMembersUp(first, 1, JoinTimeout);

        // the seed is written akka.tcp://, as the CLI does; TLS nodes rewrite it to akka.ssl.tcp://
        string plainSeed = $"akka.tcp://{ClusterConfig.SystemName}@127.0.0.1:{firstAddress.Port}";
        var second = Start(TlsHocon(clusterCert, "s3cret-cluster"), plainSeed);
        await WaitMembersUp(first, 2, JoinTimeout);
        await WaitMembersUp(second, 2, JoinTimeout);

        var plain = Start(extraHocon: "", plainSeed, tls: false);
        var intruder = Start(TlsHocon(otherCert, "other-pass"), plainSeed);
        await Task.Delay(RefusedWindow);
        Assert.Equal(2, UpCount(first));
        Assert.True(UpCount(plain) == 0, "a plain-TCP node became a member of the TLS cluster");
        Assert.True(UpCount(intruder) == 0, "a node with another certificate became a member of the TLS cluster");
        Assert.DoesNotContain(AkkaCluster.Get(first).State.Members, m => m.Address.Equals(AkkaCluster.Get(intruder).SelfAddress));
    }

    [Fact]
    public void Tls_config_rewrites_seeds_and_reports_a_missing_certificate()
    {
        var config = ClusterConfig.Build(new NodeOptions(NodeKind.Client, Seeds: ["akka.tcp://nnunet@127.0.0.1:4053"],
            ConfigFile: TlsHoconFile, ExtraHocon: "akka.remote.dot-netty.tcp.ssl.certificate.path = \"\""));
        Assert.Equal(["akka.ssl.tcp://nnunet@127.0.0.1:4053"], config.GetStringList("akka.cluster.seed-nodes"));
        var ex = Assert.Throws<ArgumentException>(() => NnUnetClusterHost.StartSystem(config));
        Assert.Contains("NNUNET_TLS_CERT", ex.Message);

        string missing = Path.Combine(_dir, "missing.pfx");
        var withPath = ClusterConfig.Build(new NodeOptions(NodeKind.Client, ConfigFile: TlsHoconFile,
            ExtraHocon: $"akka.remote.dot-netty.tcp.ssl.certificate.path = \"{missing}\""));
        Assert.Contains(missing, Assert.Throws<FileNotFoundException>(() => NnUnetClusterHost.StartSystem(withPath)).Message);

        string cert = MakePfx("wrong-password", "right");
        var wrong = ClusterConfig.Build(new NodeOptions(NodeKind.Client, ConfigFile: TlsHoconFile, ExtraHocon: TlsHocon(cert, "wrong")));
        Assert.Contains("wrong password", Assert.Throws<InvalidDataException>(() => NnUnetClusterHost.StartSystem(wrong)).Message);
    }

    [Fact]
    public void Certificate_and_password_come_from_the_environment_when_the_hocon_leaves_them_empty()
    {
        string cert = MakePfx("from-env", "env-pass");
        var config = ClusterConfig.Build(new NodeOptions(NodeKind.Client, ConfigFile: TlsHoconFile));
        Environment.SetEnvironmentVariable(ClusterTls.CertificateVariable, cert);
        Environment.SetEnvironmentVariable(ClusterTls.PasswordVariable, "env-pass");
        try
        {
            using var loaded = ClusterTls.LoadCertificate(config);
            Assert.Equal("CN=nnunet-from-env", loaded.Subject);
            Assert.True(loaded.HasPrivateKey);
        }
        finally
        {
            Environment.SetEnvironmentVariable(ClusterTls.CertificateVariable, null);
            Environment.SetEnvironmentVariable(ClusterTls.PasswordVariable, null);
        }
    }

    private static string TlsHoconFile => Path.Combine(Repository.Root, "cluster-config", "tls.hocon");

    private static string TlsHocon(string pfx, string password) =>
        $"akka.remote.dot-netty.tcp.ssl.certificate {{ path = \"{pfx}\", password = \"{password}\" }}";

    private ActorSystem Start(string extraHocon, string? seed, bool tls = true)
    {
        var config = ClusterConfig.Build(new NodeOptions(NodeKind.Client, Seeds: seed is null ? [] : [seed],
            ConfigFile: tls ? TlsHoconFile : null, ExtraHocon: extraHocon + "\n" + LocalCluster.TestHocon));
        var system = NnUnetClusterHost.StartSystem(config);
        _systems.Add(system);
        return system;
    }

    private static int UpCount(ActorSystem system) => AkkaCluster.Get(system).State.Members.Count(m => m.Status == MemberStatus.Up);

    private static Task WaitMembersUp(ActorSystem system, int count, TimeSpan timeout) =>
        Eventually.Until(() => UpCount(system) >= count, timeout, () => $"{AkkaCluster.Get(system).SelfAddress}: {UpCount(system)} of {count} members up");

    /// <summary>A self-signed RSA certificate for 127.0.0.1/localhost with server and client auth, as a password-protected .pfx.</summary>
    private string MakePfx(string name, string password)
    {
        using var rsa = RSA.Create(2048);
        var request = new CertificateRequest($"CN=nnunet-{name}", rsa, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        var san = new SubjectAlternativeNameBuilder();
        san.AddIpAddress(IPAddress.Loopback);
        san.AddDnsName("localhost");
        request.CertificateExtensions.Add(san.Build());
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyEncipherment, critical: true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension(
            [new Oid("1.3.6.1.5.5.7.3.1"), new Oid("1.3.6.1.5.5.7.3.2")], critical: false));
        using var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30));
        string path = Path.Combine(_dir, name + ".pfx");
        File.WriteAllBytes(path, certificate.Export(X509ContentType.Pfx, password));
        return path;
    }
}
