using System.Diagnostics;
using Npgsql;

namespace NnUnet.Cluster.Tests.Faults;

/// <summary>
/// A throwaway PostgreSQL server for one test: Debian's binaries (<c>/usr/lib/postgresql/N/bin</c>), a fresh data
/// folder from <c>initdb</c> under /tmp, listening on 127.0.0.1 at a free port (its Unix socket in the same folder),
/// trust authentication for user <c>nnunet</c>, database <c>nnunet</c>. initdb and the server refuse to run as root,
/// so as root they run as the <c>postgres</c> user (created by Debian's package) through <c>runuser</c>.
/// Missing binaries fail the test with what to do; nothing is skipped.
/// </summary>
public sealed class PostgresServer : IDisposable
{
    public const string User = "nnunet";
    public const string Database = "nnunet";
    public string Root { get; } = CreateRoot();
    public int Port { get; } = ProcessCluster.FreePort();
    public string ConnectionString => $"Host=127.0.0.1;Port={Port};Database={Database};Username={User};Pooling=false;Timeout=5";
    private readonly string? _bin;
    private readonly bool _asPostgresUser = Environment.UserName == "root";
    private string DataDir => Path.Combine(Root, "data");

    public PostgresServer()
    {
        try
        {
            _bin = FindBinaries();
            Start(_bin);
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    private void Start(string bin)
    {
        // as root, the server runs as postgres: it must own its data and socket folder
        if (_asPostgresUser) Run("chown", ["postgres:", Root], asPostgres: false);
        Run(Path.Combine(bin, "initdb"), ["-D", DataDir, "-U", User, "--auth=trust", "-E", "UTF8", "--no-sync"], _asPostgresUser);
        Run(Path.Combine(bin, "pg_ctl"), ["start", "-w", "-t", "60", "-D", DataDir, "-l", Path.Combine(Root, "server.log"),
            "-o", $"-p {Port} -k {Root} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off"], _asPostgresUser);
        using var connection = new NpgsqlConnection($"Host=127.0.0.1;Port={Port};Database=postgres;Username={User};Pooling=false;Timeout=5");
        connection.Open();
        using var create = new NpgsqlCommand($"CREATE DATABASE {Database}", connection);
        create.ExecuteNonQuery();
    }

    /// <summary>
    /// A fresh folder for data and socket. As root under /tmp itself: the server then runs as postgres, which could not
    /// reach a folder inside a private TMPDIR (e.g. under /root).
    /// </summary>
    private static string CreateRoot()
    {
        if (Environment.UserName != "root" || !Directory.Exists("/tmp")) return Directory.CreateTempSubdirectory("nnunet-pg-").FullName;
        var path = Path.Combine("/tmp", "nnunet-pg-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(path);
        return path;
    }

    /// <summary>Runs a scalar query against the test database.</summary>
    public T Scalar<T>(string sql)
    {
        using var connection = new NpgsqlConnection(ConnectionString);
        connection.Open();
        using var command = new NpgsqlCommand(sql, connection);
        return (T)Convert.ChangeType(command.ExecuteScalar()!, typeof(T), System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>The newest <c>/usr/lib/postgresql/N/bin</c> that holds initdb and pg_ctl, else the PATH.</summary>
    private static string FindBinaries()
    {
        const string debianRoot = "/usr/lib/postgresql";
        if (Directory.Exists(debianRoot))
        {
            string? best = null;
            int bestVersion = -1;
            foreach (var dir in Directory.GetDirectories(debianRoot))
            {
                var bin = Path.Combine(dir, "bin");
                if (int.TryParse(Path.GetFileName(dir), out var version) && version > bestVersion
                    && File.Exists(Path.Combine(bin, "initdb")) && File.Exists(Path.Combine(bin, "pg_ctl")))
                    (best, bestVersion) = (bin, version);
            }
            if (best is not null) return best;
        }
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries))
            if (File.Exists(Path.Combine(dir, "initdb")) && File.Exists(Path.Combine(dir, "pg_ctl"))) return dir;
        throw new InvalidOperationException(
            "PostgreSQL server binaries (initdb, pg_ctl) were found neither in /usr/lib/postgresql/*/bin nor on PATH: " +
            "run scripts/setup.sh (it installs Debian's postgresql package) and run the test again");
    }

    private void Run(string file, string[] args, bool asPostgres)
    {
        var info = new ProcessStartInfo(asPostgres ? "runuser" : file)
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = Root,
        };
        if (asPostgres)
        {
            foreach (var a in new[] { "-u", "postgres", "--", file }) info.ArgumentList.Add(a);
        }
        foreach (var a in args) info.ArgumentList.Add(a);
        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromSeconds(90)))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{file} {string.Join(' ', args)} did not finish in 90 s");
        }
        process.WaitForExit();
        if (process.ExitCode != 0)
        {
            var log = Path.Combine(Root, "server.log");
            throw new InvalidOperationException($"{(asPostgres ? "runuser -u postgres -- " : "")}{file} {string.Join(' ', args)} exited {process.ExitCode}:\n" +
                                                stdout.Result + stderr.Result + (File.Exists(log) ? "\nserver log:\n" + File.ReadAllText(log) : "") +
                                                (asPostgres ? "\n(as root, the server runs as the 'postgres' user of Debian's postgresql package: run scripts/setup.sh)" : ""));
        }
    }

    public void Dispose()
    {
        if (_bin is not null)
            try { Run(Path.Combine(_bin, "pg_ctl"), ["stop", "-D", DataDir, "-m", "immediate", "-w"], _asPostgresUser); }
            catch (InvalidOperationException) { }
            catch (TimeoutException) { }
        try { Directory.Delete(Root, true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
