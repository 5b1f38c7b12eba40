using System.Security.Cryptography.X509Certificates;
using Akka.Actor;
using Akka.Actor.Setup;
using Akka.Configuration;
using Akka.Event;
using Akka.Remote.Transport.DotNetty;

namespace NnUnet.Cluster.Hosting;

/// <summary>
/// TLS between nodes with pinned certificates (cluster-config/tls.hocon). Akka's own check needs the peer's chain to
/// end in a trusted root, which a self-signed cluster certificate never does; instead of suppressing validation (any
/// certificate would then be accepted) the peer must present one of the pinned certificates: this node's own (one
/// certificate shared by the cluster) or one listed in <c>nnunet.cluster.tls.allowed-thumbprints</c>.
/// </summary>
public static class ClusterTls
{
    public const string CertificateVariable = "NNUNET_TLS_CERT";
    public const string PasswordVariable = "NNUNET_TLS_PASSWORD";

    private static string? NonEmpty(string? value) => string.IsNullOrEmpty(value) ? null : value;

    public static bool IsPinned(Config config) =>
        config.GetBoolean("akka.remote.dot-netty.tcp.enable-ssl", false) && config.GetBoolean("nnunet.cluster.tls.pin-certificates", false);

    /// <summary>Loads the certificate named by <c>akka.remote.dot-netty.tcp.ssl.certificate</c>; a clear error for a missing file or a wrong password.</summary>
    public static X509Certificate2 LoadCertificate(Config config)
    {
        var ssl = config.GetConfig("akka.remote.dot-netty.tcp.ssl");
        // the environment fills what the HOCON leaves empty (cluster-config/tls.hocon leaves both empty)
        string path = NonEmpty(ssl.GetString("certificate.path", null)) ?? NonEmpty(Environment.GetEnvironmentVariable(CertificateVariable)) ?? "";
        string? password = NonEmpty(ssl.GetString("certificate.password", null)) ?? Environment.GetEnvironmentVariable(PasswordVariable);
        // the cluster credential (the default) when no certificate of the user's own is named
        if (path.Length == 0 && NonEmpty(config.GetString("nnunet.cluster.tls.credential-folder", null)) is { } folder)
            return ClusterCredential.Load(folder);
        if (path.Length == 0)
            throw new ArgumentException("TLS is on but no certificate is configured: set NNUNET_TLS_CERT (and NNUNET_TLS_PASSWORD) or akka.remote.dot-netty.tcp.ssl.certificate.path");
        if (!File.Exists(path)) throw new FileNotFoundException($"TLS certificate {path} does not exist", path);
        try
        {
            var certificate = X509CertificateLoader.LoadPkcs12FromFile(path, password, X509KeyStorageFlags.Exportable);
            if (!certificate.HasPrivateKey) throw new InvalidDataException($"TLS certificate {path} has no private key (a .pfx with the key is needed)");
            return certificate;
        }
        catch (System.Security.Cryptography.CryptographicException ex)
        {
            throw new InvalidDataException($"TLS certificate {path} cannot be read (wrong password or not a PKCS#12 file): {ex.Message}", ex);
        }
    }

    /// <summary>
    /// The actor system setup with the pinned certificate. The certificate path is blanked in <paramref name="config"/>
    /// so that Akka does not also load it from HOCON (the setup takes precedence; blanking avoids its warning).
    /// </summary>
    public static ActorSystemSetup PinnedSetup(ref Config config)
    {
        var certificate = LoadCertificate(config);
        var allowed = new List<string> { certificate.Thumbprint };
        foreach (var thumbprint in config.GetStringList("nnunet.cluster.tls.allowed-thumbprints"))
            allowed.Add(thumbprint.Replace(":", "", StringComparison.Ordinal).Trim().ToUpperInvariant());
        var ssl = config.GetConfig("akka.remote.dot-netty.tcp.ssl");
        var refusals = new RefusalLog(RefusalLog.DefaultInterval, () => DateTime.UtcNow);
        var validator = PinnedValidator(allowed, refusals);
        var setup = new DotNettySslSetup(certificate, suppressValidation: false,
            requireMutualAuthentication: ssl.GetBoolean("require-mutual-authentication", true),
            validateCertificateHostname: ssl.GetBoolean("validate-certificate-hostname", false), customValidator: validator);
        config = ConfigurationFactory.ParseString("akka.remote.dot-netty.tcp.ssl.certificate { path = \"\", password = \"\" }").WithFallback(config);
        var logFilter = new LogFilterBuilder().Add(new AdmissionLogFilter(refusals)).Build();
        return ActorSystemSetup.Create(BootstrapSetup.Create().WithConfig(config), setup, logFilter);
    }

    /// <summary>
    /// Accepts exactly the pinned certificates. A refused peer is logged as a warning naming its address, once per
    /// <see cref="RefusalLog.Interval"/> and address (a refused node retries its join every few seconds).
    /// </summary>
    internal static CertificateValidationCallback PinnedValidator(IReadOnlyCollection<string> thumbprints, RefusalLog refusals)
    {
        var allowed = new HashSet<string>(thumbprints, StringComparer.OrdinalIgnoreCase);
        return (certificate, _, remotePeer, _, log) =>
        {
            if (certificate is not null && allowed.Contains(certificate.Thumbprint)) return true;
            var reason = certificate is null ? "it presented no certificate" : $"its certificate {certificate.Subject} ({certificate.Thumbprint}) is not the cluster's";
            if (refusals.ShouldLog(remotePeer, out int suppressed))
                log.Warning("refused {0}: {1}; it does not hold the cluster credential and is not admitted{2}", remotePeer, reason,
                    suppressed > 0 ? $" ({suppressed} more refusal line(s) of this host not logged in the last {refusals.Interval.TotalSeconds:0} s)" : "");
            return false;
        };
    }
}

/// <summary>
/// Akka logs every refused TLS handshake as an error with a stack trace plus a warning, on every retry of the refused
/// node (several per second with many of them). Of those, one line per host and <see cref="RefusalLog.Interval"/> is
/// kept: the pinned validator's (naming the certificate), else Akka's "Rejected incoming connection from [address]"
/// (a plain-TCP node, or one without a certificate). The handshake's error lines are dropped: that warning says it.
/// </summary>
internal sealed class AdmissionLogFilter(RefusalLog refusals) : LogFilterBase
{
    public const string RejectedPrefix = "Rejected incoming connection from [";

    public override LogFilterType FilterType => LogFilterType.Content;

    public override LogFilterDecision ShouldKeepMessage(LogEvent content, string? expandedMessage = null)
    {
        // the message alone (the expanded one starts with level, time, thread and source)
        var message = content.Message?.ToString() ?? "";
        if (message.StartsWith(RejectedPrefix, StringComparison.Ordinal))
        {
            // "Rejected incoming connection from [[::ffff:10.0.0.7]:41234] due to TLS handshake failure. ..."
            int end = message.IndexOf("] due to", RejectedPrefix.Length, StringComparison.Ordinal);
            var peer = end > 0 ? message[RejectedPrefix.Length..end] : null;
            return refusals.ShouldLog(peer, out _) ? LogFilterDecision.Keep : LogFilterDecision.Drop;
        }
        // the whole line with the exception: a plain-TCP peer's error names NotSslRecordException only in its cause
        var line = expandedMessage ?? (content is Error { Cause: { } cause } ? message + " " + cause : message);
        bool fromServerHandler = content.LogSource?.Contains("TcpServerHandler", StringComparison.Ordinal) == true;
        if (fromServerHandler && (line.Contains("TLS handshake failed", StringComparison.Ordinal)
                                  || line.Contains("not an SSL/TLS record", StringComparison.Ordinal)))
            return LogFilterDecision.Drop;
        return LogFilterDecision.NoDecision;
    }
}

/// <summary>
/// Which refused peers to log: the first refusal of a host, then at most one line per interval and host with the
/// number of refusals in between. Keyed by host, not host:port: every retry of a refused node comes from a new port.
/// </summary>
internal sealed class RefusalLog(TimeSpan interval, Func<DateTime> clock)
{
    public static readonly TimeSpan DefaultInterval = TimeSpan.FromMinutes(1);
    private const int MaxHosts = 4096;
    private readonly Dictionary<string, (DateTime LastLogged, int Suppressed)> _hosts = new(StringComparer.Ordinal);
    private readonly Lock _gate = new();

    public TimeSpan Interval => interval;

    /// <summary>True when this refusal is to be logged; <paramref name="suppressed"/> counts those not logged since the last line.</summary>
    public bool ShouldLog(string? remotePeer, out int suppressed)
    {
        var host = HostOf(remotePeer);
        var now = clock();
        lock (_gate)
        {
            // many refused hosts (a scan): forget those whose interval is over, so the table stays small
            if (_hosts.Count > MaxHosts)
                foreach (var stale in _hosts.Where(h => now - h.Value.LastLogged >= interval).Select(h => h.Key).ToList()) _hosts.Remove(stale);
            if (_hosts.TryGetValue(host, out var entry) && now - entry.LastLogged < interval)
            {
                _hosts[host] = (entry.LastLogged, entry.Suppressed + 1);
                suppressed = 0;
                return false;
            }
            suppressed = entry.Suppressed;
            _hosts[host] = (now, 0);
            return true;
        }
    }

    /// <summary><c>10.0.0.7</c> of <c>10.0.0.7:41234</c>, <c>[::ffff:10.0.0.7]:41234</c> (as DotNetty names a peer) or <c>akka.ssl.tcp://nnunet@10.0.0.7:41234</c>.</summary>
    internal static string HostOf(string? remotePeer)
    {
        if (string.IsNullOrEmpty(remotePeer)) return "?";
        var peer = remotePeer;
        int at = peer.LastIndexOf('@');
        if (at >= 0) peer = peer[(at + 1)..];
        if (peer.StartsWith('[') && peer.IndexOf(']') is > 0 and var close) peer = peer[1..close];
        else if (peer.LastIndexOf(':') is > 0 and var colon && peer.IndexOf(':') == colon) peer = peer[..colon];
        return System.Net.IPAddress.TryParse(peer, out var ip) && ip.IsIPv4MappedToIPv6 ? ip.MapToIPv4().ToString() : peer;
    }
}
