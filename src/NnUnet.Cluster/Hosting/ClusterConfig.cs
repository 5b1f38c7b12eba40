using System.Reflection;
using Akka.Configuration;
using Akka.Persistence.Sql;

namespace NnUnet.Cluster.Hosting;

/// <summary>Which kind of node a process is; picks the role file from <c>cluster-config/</c>.</summary>
/// <remarks>Client: a short-lived node that only asks (<c>sweep-status</c>); Operator: one that may also command (<c>sweep-control</c>).</remarks>
public enum NodeKind { Embedded, Coordinator, Worker, Client, Operator }

/// <summary>Command-line level settings of a node; everything else comes from the HOCON files.</summary>
/// <param name="Seeds">seed node addresses (<c>akka.tcp://nnunet@host:port</c>); empty = this node starts the cluster.</param>
/// <param name="ConfigFile">a user HOCON file layered over the built-in ones (e.g. cluster-config/postgres-journal.hocon).</param>
/// <param name="SqliteJournalPath">the SQLite file of the journal and snapshots (coordinator and embedded nodes).</param>
/// <param name="ExtraHocon">highest-precedence HOCON (tests tune failure detection with it).</param>
/// <param name="CredentialFolder">the cluster credential's folder (<see cref="ClusterCredential"/>): mutual TLS with its
/// certificate pinned, so that only nodes holding it are admitted. Null: plain TCP (<c>--insecure</c>), unless the
/// configuration file turns TLS on with a certificate of its own (cluster-config/tls.hocon).</param>
public sealed record NodeOptions(
    NodeKind Kind,
    string Host = "127.0.0.1",
    int Port = 0,
    string[]? Seeds = null,
    string? ConfigFile = null,
    string? SqliteJournalPath = null,
    string? ExtraHocon = null,
    string? CredentialFolder = null);

/// <summary>Builds a node's configuration from the HOCON files in <c>cluster-config/</c> (embedded into this assembly).</summary>
public static class ClusterConfig
{
    public const string SystemName = "nnunet";

    /// <summary>The built-in HOCON file (base, embedded, coordinator, worker, postgres-journal) as text.</summary>
    public static string BuiltInFile(string name)
    {
        var resource = $"NnUnet.Cluster.cluster_config.{name}";
        using var stream = Assembly.GetExecutingAssembly().GetManifestResourceStream(resource)
                           ?? throw new ArgumentException($"no built-in cluster configuration '{name}'");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }

    // akka.tcp, akka.ssl.tcp, or a scheme with transport adapters (akka.trttl.tcp: the throttler the partition tests use)
    private static readonly System.Text.RegularExpressions.Regex SeedAddress =
        new($@"^akka(\.[a-z]+)*\.tcp://{SystemName}@[^/]+:\d+/?$", System.Text.RegularExpressions.RegexOptions.CultureInvariant);

    public static Config Build(NodeOptions options)
    {
        if (options.Port is < 0 or > 65535) throw new ArgumentException($"port must be in 0..65535, got {options.Port}");
        foreach (var seed in options.Seeds ?? [])
            if (!SeedAddress.IsMatch(seed))
                throw new ArgumentException($"seed '{seed}' is not an address like akka.tcp://{SystemName}@HOST:PORT");
        var roleFile = options.Kind switch
        {
            NodeKind.Embedded => BuiltInFile("embedded.hocon"),
            NodeKind.Coordinator => BuiltInFile("coordinator.hocon"),
            NodeKind.Worker => BuiltInFile("worker.hocon"),
            NodeKind.Operator => "akka.cluster.roles = [operator]",
            _ => "akka.cluster.roles = [client]",
        };
        var seeds = string.Join(", ", (options.Seeds ?? []).Select(s => $"\"{s}\""));
        var overrides = $$"""
            akka.remote.dot-netty.tcp.hostname = "{{options.Host}}"
            akka.remote.dot-netty.tcp.port = {{options.Port}}
            akka.cluster.seed-nodes = [{{seeds}}]
            """;
        Config config = ConfigurationFactory.ParseString(overrides);
        if (options.ExtraHocon is not null) config = config.WithFallback(ConfigurationFactory.ParseString(options.ExtraHocon));
        if (options.ConfigFile is not null)
        {
            if (!File.Exists(options.ConfigFile)) throw new FileNotFoundException($"cluster configuration file {options.ConfigFile} does not exist");
            try { config = config.WithFallback(ConfigurationFactory.ParseString(File.ReadAllText(options.ConfigFile))); }
            catch (Exception ex) when (ex is not FileNotFoundException)
            {
                throw new InvalidDataException($"{options.ConfigFile}: not valid HOCON: {ex.Message}", ex);
            }
        }
        // below --config: a tls.hocon with a certificate of its own (path or NNUNET_TLS_CERT) takes precedence
        if (options.CredentialFolder is { } credential) config = config.WithFallback(ConfigurationFactory.ParseString(CredentialHocon(credential)));
        config = config.WithFallback(ConfigurationFactory.ParseString(roleFile))
                       .WithFallback(ConfigurationFactory.ParseString(BuiltInFile("base.hocon")));
        if (config.GetBoolean("akka.remote.dot-netty.tcp.enable-ssl", false))
        {
            // TLS changes the address scheme; seeds may be written either way (the CLI builds akka.tcp ones)
            var tlsSeeds = string.Join(", ", (options.Seeds ?? []).Select(s => $"\"{ToTlsAddress(s)}\""));
            config = ConfigurationFactory.ParseString($"akka.cluster.seed-nodes = [{tlsSeeds}]").WithFallback(config);
        }
        bool journalFromConfig = config.GetBoolean("nnunet.cluster.journal-from-config", false);
        if (!journalFromConfig && options.SqliteJournalPath is { } db && options.Kind is NodeKind.Embedded or NodeKind.Coordinator)
            config = ConfigurationFactory.ParseString(SqliteJournal(db)).WithFallback(config);
        return config.WithFallback(SqlPersistence.DefaultConfiguration)
            .WithFallback(Akka.Cluster.Tools.Singleton.ClusterSingleton.DefaultConfig())
            .WithFallback(Akka.Cluster.Tools.PublishSubscribe.DistributedPubSub.DefaultConfig());
    }

    /// <summary>Mutual TLS with the cluster credential's certificate pinned (read by <see cref="ClusterTls.LoadCertificate"/>).</summary>
    private static string CredentialHocon(string folder) => $$"""
        akka.remote.dot-netty.tcp {
          enable-ssl = true
          ssl {
            suppress-validation = false
            require-mutual-authentication = true
          }
        }
        nnunet.cluster.tls {
          pin-certificates = on
          credential-folder = "{{Path.GetFullPath(folder).Replace("\\", "\\\\").Replace("\"", "\\\"")}}"
        }
        """;

    /// <summary>True when the node's transport is plain TCP: any process that reaches its port can join (<c>--insecure</c>).</summary>
    public static bool IsPlainTcp(Config config) => !config.GetBoolean("akka.remote.dot-netty.tcp.enable-ssl", false);

    /// <summary><c>akka.tcp://nnunet@h:p</c> as the TLS address <c>akka.ssl.tcp://nnunet@h:p</c> (unchanged when already TLS).</summary>
    public static string ToTlsAddress(string address) =>
        address.StartsWith("akka.tcp://", StringComparison.Ordinal) ? "akka.ssl.tcp://" + address["akka.tcp://".Length..] : address;

    /// <summary>
    /// Fails at start, naming the folder, when the SQLite journal cannot be written there (read-only file system,
    /// permissions, a file in the way). Otherwise the journal plugin would fail inside the coordinator singleton,
    /// which restarts with back-off for ever while the sweep waits.
    /// </summary>
    public static void EnsureWritable(string journalFile)
    {
        var folder = Path.GetDirectoryName(journalFile)!;
        string Advice(string reason) =>
            $"the sweep journal cannot be written: {reason}. Make the folder writable, or keep the journal elsewhere " +
            "with --journal FILE (or in PostgreSQL: --config cluster-config/postgres-journal.hocon)";
        try
        {
            Directory.CreateDirectory(folder);
            var probe = Path.Combine(folder, $".nnunet-write-probe-{Environment.ProcessId}-{Guid.NewGuid():N}");
            using (new FileStream(probe, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1, FileOptions.DeleteOnClose)) { }
            if (File.Exists(journalFile)) using (new FileStream(journalFile, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite)) { }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new IOException(Advice(File.Exists(journalFile) && Directory.Exists(folder)
                ? $"{journalFile} or its folder is not writable ({ex.Message})"
                : $"folder {folder} is not writable ({ex.Message})"), ex);
        }
    }

    /// <summary>Journal and snapshot store in one SQLite file (Microsoft.Data.Sqlite provider of LinqToDB).</summary>
    public static string SqliteJournal(string path)
    {
        var full = Path.GetFullPath(path);
        EnsureWritable(full);
        var connection = $"Data Source={full.Replace("\\", "\\\\").Replace("\"", "\\\"")};Pooling=True";
        return $$"""
            akka.persistence {
              journal {
                plugin = "akka.persistence.journal.sql"
                sql {
                  class = "Akka.Persistence.Sql.Journal.SqlWriteJournal, Akka.Persistence.Sql"
                  connection-string = "{{connection}}"
                  provider-name = "SQLite.MS"
                  auto-initialize = on
                }
              }
              snapshot-store {
                plugin = "akka.persistence.snapshot-store.sql"
                sql {
                  class = "Akka.Persistence.Sql.Snapshot.SqlSnapshotStore, Akka.Persistence.Sql"
                  connection-string = "{{connection}}"
                  provider-name = "SQLite.MS"
                  auto-initialize = on
                }
              }
            }
            """;
    }
}
