using Akka.Actor;
using Akka.Cluster;
using Akka.Event;
using NnUnet.Cluster.Hosting;
using AkkaCluster = Akka.Cluster.Cluster;

namespace NnUnet.Cluster.Tests;

/// <summary>
/// Admission by default: the cluster credential (created private, refused when it is not), nodes holding it form a
/// cluster over mutual TLS, a node with another credential or plain TCP is refused at the transport, and the refusal
/// is logged once per interval and host.
/// </summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class ClusterAdmissionTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("nnunet-admission-").FullName;
    private readonly List<ActorSystem> _systems = [];

    public void Dispose()
    {
        foreach (var s in _systems) s.Terminate().Wait(TimeSpan.FromSeconds(10));
        try { Directory.Delete(_dir, true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    [Fact]
    public void The_credential_is_created_owner_only_and_found_again()
    {
        var folder = ClusterCredential.DefaultFolder(Path.Combine(_dir, "results"));
        using var created = ClusterCredential.LoadOrCreate(folder);
        Assert.True(created.HasPrivateKey);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(folder));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(ClusterCredential.CertificatePath(folder)));
        Assert.Single(Directory.GetFiles(folder)); // no temporary left behind

        using var again = ClusterCredential.LoadOrCreate(folder);
        using var loaded = ClusterCredential.Load(folder);
        Assert.Equal(created.Thumbprint, again.Thumbprint);
        Assert.Equal(created.Thumbprint, loaded.Thumbprint);
    }

    [Fact]
    public void A_credential_others_can_read_or_another_user_owns_is_refused_with_the_reason()
    {
        var folder = Path.Combine(_dir, "secret");
        ClusterCredential.LoadOrCreate(folder).Dispose();
        var file = ClusterCredential.CertificatePath(folder);

        File.SetUnixFileMode(folder, (UnixFileMode)Convert.ToInt32("750", 8));
        var ex = Assert.Throws<ClusterCredential.CredentialNotPrivateException>(() => ClusterCredential.Load(folder));
        Assert.Contains($"cluster credential folder {folder} has mode 750", ex.Message);
        File.SetUnixFileMode(folder, (UnixFileMode)Convert.ToInt32("700", 8));

        File.SetUnixFileMode(file, (UnixFileMode)Convert.ToInt32("644", 8));
        ex = Assert.Throws<ClusterCredential.CredentialNotPrivateException>(() => ClusterCredential.Load(folder));
        Assert.Contains($"cluster credential file {file} has mode 644", ex.Message);
        Assert.Throws<ClusterCredential.CredentialNotPrivateException>(() => ClusterCredential.LoadOrCreate(folder));
        File.SetUnixFileMode(file, (UnixFileMode)Convert.ToInt32("600", 8));

        // owned by someone else (the tests run as root, which could read it anyway: the owner check refuses it)
        var (uid, gid) = Faults.ProcessCluster.OtherUser(Faults.ProcessCluster.OutsiderName);
        Faults.ProcessCluster.GiveTo(folder, uid, gid);
        ex = Assert.Throws<ClusterCredential.CredentialNotPrivateException>(() => ClusterCredential.Load(folder));
        Assert.Contains($"is owned by user id {uid}, not by this user", ex.Message);

        var missing = Path.Combine(_dir, "nowhere");
        Assert.Contains("no cluster credential", Assert.Throws<FileNotFoundException>(() => ClusterCredential.Load(missing)).Message);
    }

    [Fact]
    public void The_refusal_of_a_host_is_logged_once_per_interval_with_the_count_in_between()
    {
        var now = new DateTime(2026, 1, 1, 0, 0, 0, DateTimeKind.Utc);
        var log = new RefusalLog(TimeSpan.FromMinutes(1), () => now);
        Assert.True(log.ShouldLog("127.0.0.5:40001", out int suppressed));
        Assert.Equal(0, suppressed);
        for (int i = 0; i < 30; i++)
        {
            now = now.AddSeconds(1);
            Assert.False(log.ShouldLog($"127.0.0.5:{40002 + i}", out _)); // every retry from a new port: still the same host
        }
        Assert.True(log.ShouldLog("127.0.0.6:40001", out suppressed)); // another host is logged at once
        now = now.AddSeconds(30);
        Assert.True(log.ShouldLog("127.0.0.5:41000", out suppressed));
        Assert.Equal(30, suppressed);
        Assert.False(log.ShouldLog("127.0.0.5:41001", out _));

        Assert.Equal("10.1.2.3", RefusalLog.HostOf("10.1.2.3:4053"));
        Assert.Equal("127.0.0.1", RefusalLog.HostOf("[::ffff:127.0.0.1]:56000")); // as DotNetty names a peer
        Assert.Equal("::1", RefusalLog.HostOf("[::1]:4053"));
        Assert.Equal("10.1.2.3", RefusalLog.HostOf("akka.ssl.tcp://nnunet@10.1.2.3:4053"));
    }

    [Fact]
    public void Akkas_lines_of_a_refused_handshake_are_cut_to_one_per_host_and_interval()
    {
        var now = new DateTime(2026, 1, 1, 0, 0, 0, DateTimeKind.Utc);
        var sharedLog = new RefusalLog(TimeSpan.FromMinutes(1), () => now);
        var filter = new AdmissionLogFilter(sharedLog);
        LogEvent Rejected(int port) => new Warning("TcpServerHandler (akka://nnunet)", typeof(object),
            $"Rejected incoming connection from [[::ffff:127.0.0.9]:{port}] due to TLS handshake failure. This is likely invalid or malicious traffic.");
        var handshake = new Error(null, "TcpServerHandler (akka://nnunet)", typeof(object), "TLS handshake failed on channel [x]");
        var notTls = new Error(new InvalidDataException("not an SSL/TLS record: 2d00"), "TcpServerHandler (akka://nnunet)", typeof(object), "Error caught channel [x]");
        var other = new Warning("Cluster", typeof(object), "something else");

        // as Akka's evaluator calls it: with the whole expanded line
        var evaluator = new LogFilterEvaluator([filter]);
        bool Keeps(LogEvent e) => evaluator.ShouldTryKeepMessage(e, out _);
        Assert.True(Keeps(Rejected(50000)));
        Assert.False(Keeps(Rejected(50001)));
        Assert.False(Keeps(handshake));
        Assert.False(Keeps(notTls));
        Assert.True(Keeps(other));
        Assert.Equal(LogFilterDecision.NoDecision, filter.ShouldKeepMessage(other, "[WARNING][...] something else"));
        // the pinned validator's line and Akka's share the host's minute (one line per refused attempt would be two)
        now = now.AddMinutes(1);
        Assert.True(sharedLog.ShouldLog("[::ffff:127.0.0.9]:50003", out _));
        Assert.False(Keeps(Rejected(50003)));
        now = now.AddMinutes(1);
        Assert.True(Keeps(Rejected(50002)));
    }

    [Fact]
    public async Task Nodes_with_the_credential_join_others_are_refused_at_the_transport_and_logged_once()
    {
        var ours = Path.Combine(_dir, "ours");
        var theirs = Path.Combine(_dir, "theirs");
        ClusterCredential.LoadOrCreate(ours).Dispose();
        ClusterCredential.LoadOrCreate(theirs).Dispose();

        var first = Start(ours, seed: null);
        var refusals = new List<string>();
        var listener = first.ActorOf(Props.Create(() => new WarningCollector(refusals)));
        first.EventStream.Subscribe(listener, typeof(Warning));
        first.EventStream.Subscribe(listener, typeof(Error));
        var address = AkkaCluster.Get(first).SelfAddress;
        Assert.Equal("akka.ssl.tcp", address.Protocol);
        string seed = $"akka.tcp://{ClusterConfig.SystemName}@127.0.0.1:{address.Port}";

        var second = Start(ours, seed);
        await WaitUp(first, 2);
        var intruder = Start(theirs, seed);
        // one line per host and minute: the plain-TCP node (same host) starts once the intruder's refusal is logged,
        // else whichever is refused first takes that host's line
        await Eventually.Until(() => { lock (refusals) return refusals.Any(r => r.Contains("not the cluster's", StringComparison.Ordinal)); },
            TimeSpan.FromSeconds(20), () => "no refusal naming the intruder was logged:\n" + string.Join("\n", refusals));
        var plain = Start(credential: null, seed);
        await Task.Delay(TimeSpan.FromSeconds(8));
        Assert.Equal(2, UpCount(first));
        Assert.Equal(0, UpCount(intruder));
        Assert.Equal(0, UpCount(plain));
        Assert.Equal(2, UpCount(second));

        string[] lines;
        lock (refusals) lines = refusals.Where(r => r.Contains("refused", StringComparison.Ordinal)).ToArray();
        Assert.True(lines.Any(l => l.Contains("127.0.0.1", StringComparison.Ordinal) && l.Contains("not the cluster's", StringComparison.Ordinal)),
            "no refusal naming the intruder was logged:\n" + string.Join("\n", refusals));
        Assert.True(lines.Length <= 2, $"refusals logged {lines.Length} times in 8 s (once per minute and host expected):\n" + string.Join("\n", lines));
    }

    private ActorSystem Start(string? credential, string? seed)
    {
        var config = ClusterConfig.Build(new NodeOptions(NodeKind.Client, Seeds: seed is null ? [] : [seed],
            ExtraHocon: LocalCluster.TestHocon, CredentialFolder: credential));
        var system = NnUnetClusterHost.StartSystem(config);
        _systems.Add(system);
        return system;
    }

    private static int UpCount(ActorSystem system) => AkkaCluster.Get(system).State.Members.Count(m => m.Status == MemberStatus.Up);

    private static Task WaitUp(ActorSystem system, int count) =>
        Eventually.Until(() => UpCount(system) >= count, TimeSpan.FromSeconds(20), () => $"{UpCount(system)} of {count} members up");


    private sealed class WarningCollector : ReceiveActor
    {
        public WarningCollector(List<string> lines) => Receive<LogEvent>(w => { lock (lines) lines.Add(w.ToString()!); });
    }
}
