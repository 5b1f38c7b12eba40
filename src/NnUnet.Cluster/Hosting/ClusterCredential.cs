using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace NnUnet.Cluster.Hosting;

/// <summary>
/// The cluster credential: a private key and its self-signed certificate that every node presents and pins (Akka's
/// mutual TLS, see <see cref="ClusterTls"/>). The coordinator creates it on its first start in a private folder of
/// nnUNet_results (<see cref="DefaultFolder"/>); every node of the same user that mounts the same results folder reads
/// it there, and a process of another user cannot (folder 0700, file 0600), so it is refused at the transport.
/// A folder or file that others can read, or that another user owns, is refused with the reason: its key may be known.
/// </summary>
public static class ClusterCredential
{
    /// <summary>The folder's name in nnUNet_results (next to the datasets' journals).</summary>
    public const string FolderName = ".nnunet-cluster";

    /// <summary>PKCS#12 with the private key, no password (the file's mode is the protection).</summary>
    public const string CertificateFile = "cluster.pfx";

    private const UnixFileMode OwnerOnlyFolder = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
    private const UnixFileMode OwnerOnlyFile = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    private const UnixFileMode GroupOrOther = UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.GroupExecute
                                              | UnixFileMode.OtherRead | UnixFileMode.OtherWrite | UnixFileMode.OtherExecute;

    public static string DefaultFolder(string resultsRoot) => Path.Combine(Path.GetFullPath(resultsRoot), FolderName);

    public static string CertificatePath(string folder) => Path.Combine(Path.GetFullPath(folder), CertificateFile);

    /// <summary>True when the folder holds a credential file (whether it may be used is checked by <see cref="Load"/>).</summary>
    public static bool Exists(string folder) => File.Exists(CertificatePath(folder));

    /// <summary>
    /// The credential in <paramref name="folder"/>, created there first when there is none (coordinator, embedded
    /// sweep). Two processes creating it at once end with the same one: the file is moved into place only if absent.
    /// </summary>
    public static X509Certificate2 LoadOrCreate(string folder)
    {
        folder = Path.GetFullPath(folder);
        if (!Directory.Exists(folder))
        {
            try
            {
                if (OperatingSystem.IsWindows()) Directory.CreateDirectory(folder);
                else Directory.CreateDirectory(folder, OwnerOnlyFolder);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new IOException($"cannot create the cluster credential folder {folder}: {e.Message}", e);
            }
        }
        CheckPrivate(folder, isFolder: true);
        var path = CertificatePath(folder);
        if (!File.Exists(path))
        {
            var temporary = Path.Combine(folder, $".{CertificateFile}.{Environment.ProcessId}.{Guid.NewGuid():N}");
            var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
            if (!OperatingSystem.IsWindows()) options.UnixCreateMode = OwnerOnlyFile; // never readable by others, not even for a moment
            using (var certificate = NewCertificate())
            using (var stream = new FileStream(temporary, options))
            {
                stream.Write(certificate.Export(X509ContentType.Pkcs12));
                stream.Flush(flushToDisk: true);
            }
            try { File.Move(temporary, path, overwrite: false); }
            catch (IOException) when (File.Exists(path)) { File.Delete(temporary); } // another process was first: use its credential
        }
        return Load(folder);
    }

    /// <summary>The credential in <paramref name="folder"/>; a clear error when it is missing, unreadable or not private.</summary>
    public static X509Certificate2 Load(string folder)
    {
        folder = Path.GetFullPath(folder);
        var path = CertificatePath(folder);
        try
        {
            if (!Directory.Exists(folder))
                throw new FileNotFoundException($"no cluster credential: {folder} does not exist (the coordinator creates it on its first start, " +
                    "in nnUNet_results/.nnunet-cluster; start it first, give this node the same nnUNet_results (or --results), " +
                    "point --cluster-secret at that folder, or use --insecure on a trusted network)", path);
            CheckPrivate(folder, isFolder: true);
            if (!File.Exists(path))
                throw new FileNotFoundException($"no cluster credential: {path} does not exist (the coordinator creates it on its first start)", path);
            CheckPrivate(path, isFolder: false);
            var certificate = X509CertificateLoader.LoadPkcs12FromFile(path, null, X509KeyStorageFlags.Exportable);
            if (!certificate.HasPrivateKey) throw new InvalidDataException($"cluster credential {path} has no private key");
            return certificate;
        }
        catch (UnauthorizedAccessException e) when (e is not CredentialNotPrivateException)
        {
            throw new UnauthorizedAccessException($"cannot read the cluster credential in {folder}: {e.Message} " +
                "(it belongs to the user who started the coordinator; run this node as that user)", e);
        }
        catch (CryptographicException e)
        {
            throw new InvalidDataException($"cluster credential {path} cannot be read ({e.Message}); delete the folder {folder} and restart the coordinator to make a new one", e);
        }
    }

    /// <summary>A fresh key (ECDSA P-256) and self-signed certificate for server and client authentication, valid ten years.</summary>
    public static X509Certificate2 NewCertificate()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=nnunet-cluster", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, critical: true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension(
            [new Oid("1.3.6.1.5.5.7.3.1", "serverAuth"), new Oid("1.3.6.1.5.5.7.3.2", "clientAuth")], critical: false));
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, critical: true));
        using var created = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddYears(10));
        // through PKCS#12 bytes: the key of CreateSelfSigned is ephemeral, which TLS on some platforms cannot use
        return X509CertificateLoader.LoadPkcs12(created.Export(X509ContentType.Pkcs12), null, X509KeyStorageFlags.Exportable);
    }

    /// <summary>
    /// Refuses a path that is not private to this user: owned by another user, or readable, writable or listable by
    /// group or others. (Skipped on Windows, whose ACLs this does not read.)
    /// </summary>
    public static void CheckPrivate(string path, bool isFolder)
    {
        if (OperatingSystem.IsWindows()) return;
        var what = isFolder ? "cluster credential folder" : "cluster credential file";
        var mode = File.GetUnixFileMode(path);
        if (UnixOwner.Of(path) is { } owner && owner != UnixOwner.Effective)
            throw new CredentialNotPrivateException($"{what} {path} is owned by user id {owner}, not by this user (id {UnixOwner.Effective}); " +
                "refusing to use a credential someone else controls (run this node as the user who started the coordinator, or give --cluster-secret DIR)");
        if ((mode & GroupOrOther) != 0)
            throw new CredentialNotPrivateException($"{what} {path} has mode {ModeText(mode)}, which lets other users {(isFolder ? "into it" : "read or change it")}; " +
                $"refusing to use it (its key may be known): chmod {(isFolder ? "700" : "600")} {path} and make a new credential (delete the folder), " +
                "or point --cluster-secret at a private folder");
    }

    private static string ModeText(UnixFileMode mode) => Convert.ToString((int)mode & 0x1FF, 8).PadLeft(3, '0');

    /// <summary>A credential folder or file that is not private to this user (its key may be known to others).</summary>
    public sealed class CredentialNotPrivateException(string message) : UnauthorizedAccessException(message);

    /// <summary>Owner user ids through Linux statx (its struct has one layout on every architecture); null elsewhere.</summary>
    private static class UnixOwner
    {
        private const int AtFdCwd = -100;
        private const uint StatxUid = 0x0008;
        private const int UidOffset = 20; // stx_mask u32, stx_blksize u32, stx_attributes u64, stx_nlink u32, then stx_uid

        [DllImport("libc", EntryPoint = "statx", SetLastError = true)]
        private static extern int Statx(int dirfd, byte[] nulTerminatedUtf8Path, int flags, uint mask, byte[] buffer);

        [DllImport("libc", EntryPoint = "geteuid")]
        private static extern uint GetEffectiveUserId();

        public static uint Effective => GetEffectiveUserId();

        public static uint? Of(string path)
        {
            if (!OperatingSystem.IsLinux()) return null;
            var buffer = new byte[256];
            try
            {
                if (Statx(AtFdCwd, System.Text.Encoding.UTF8.GetBytes(path + "\0"), 0, StatxUid, buffer) != 0)
                    throw new IOException($"cannot read the owner of {path} (errno {Marshal.GetLastPInvokeError()})");
            }
            catch (EntryPointNotFoundException) { return null; } // a libc before glibc 2.28: mode check only
            return BitConverter.ToUInt32(buffer, UidOffset);
        }
    }
}
