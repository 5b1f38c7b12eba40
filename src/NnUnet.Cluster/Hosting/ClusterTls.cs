using System.Security.Cryptography.X509Certificates;
using Akka.Actor;
using Akka.Actor.Setup;
using Akka.Configuration;
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
        var validator = CertificateValidation.PinnedCertificate(allowed.ToArray());
        var setup = new DotNettySslSetup(certificate, suppressValidation: false,
            requireMutualAuthentication: ssl.GetBoolean("require-mutual-authentication", true),
            validateCertificateHostname: ssl.GetBoolean("validate-certificate-hostname", false), customValidator: validator);
        config = ConfigurationFactory.ParseString("akka.remote.dot-netty.tcp.ssl.certificate { path = \"\", password = \"\" }").WithFallback(config);
        return ActorSystemSetup.Create(BootstrapSetup.Create().WithConfig(config), setup);
    }
}
