using System.Diagnostics;
using System.Text.RegularExpressions;

namespace NnUnet.Cluster.Tests.Faults;

/// <summary>
/// Network faults made by the kernel (iptables), not by Akka's throttler: only on loopback addresses of the test, every
/// rule tagged with this test process's id and removed on every exit path (<see cref="Heal"/>, Dispose, and a later
/// test removes rules whose process is gone). Cutting a node off needs two rules: packets TO its address, and packets
/// FROM its processes by their Unix user, because its outgoing connections leave from 127.0.0.1 whatever address the
/// node listens on (the kernel's route to 127.0.0.0/8), so no address rule matches them.
/// </summary>
public sealed class KernelFirewall : IDisposable
{
    private const string TagPrefix = "nnunet-test-";
    private readonly string _tag = $"{TagPrefix}{Environment.ProcessId}";
    private readonly List<string[]> _rules = [];

    public KernelFirewall()
    {
        Assert.True(Environment.UserName == "root" || Environment.GetEnvironmentVariable("USER") == "root",
            "kernel-level fault tests change iptables rules and need root (CI runs the tests as root)");
        Assert.True(File.Exists("/usr/sbin/iptables") || File.Exists("/sbin/iptables"),
            "kernel-level fault tests need iptables: scripts/setup.sh installs it (apt-get install iptables)");
        RemoveRulesOfGoneProcesses();
    }

    /// <summary>Drops every packet to <paramref name="address"/> and every packet sent by processes of <paramref name="uid"/>.</summary>
    public void CutOff(string address, string uid)
    {
        Assert.StartsWith("127.", address); // never anything outside loopback
        Add("INPUT", "-d", address);
        Add("OUTPUT", "-o", "lo", "-m", "owner", "--uid-owner", uid);
    }

    /// <summary>Removes this firewall's rules.</summary>
    public void Heal()
    {
        foreach (var rule in _rules) Iptables(["-D", .. rule], mustWork: false);
        _rules.Clear();
    }

    public void Dispose() => Heal();

    private void Add(string chain, params string[] match)
    {
        string[] rule = [chain, .. match, "-m", "comment", "--comment", _tag, "-j", "DROP"];
        Iptables(["-I", .. rule], mustWork: true);
        _rules.Add(rule);
    }

    /// <summary>Rules a killed test process left behind (its id no longer runs).</summary>
    private static void RemoveRulesOfGoneProcesses()
    {
        var (_, listing) = Iptables(["-S"], mustWork: true);
        foreach (Match m in Regex.Matches(listing, $@"^-A (.*--comment {TagPrefix}(\d+).*)$", RegexOptions.Multiline))
        {
            int pid = int.Parse(m.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture);
            if (pid == Environment.ProcessId || File.Exists($"/proc/{pid}/stat")) continue;
            Iptables(["-D", .. m.Groups[1].Value.Split(' ', StringSplitOptions.RemoveEmptyEntries)], mustWork: false);
        }
    }

    private static (int ExitCode, string Output) Iptables(string[] args, bool mustWork)
    {
        var info = new ProcessStartInfo("iptables") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        info.ArgumentList.Add("-w"); // wait for the xtables lock (another test may change rules at the same moment)
        foreach (var a in args) info.ArgumentList.Add(a);
        using var process = Process.Start(info)!;
        string output = process.StandardOutput.ReadToEnd(), error = process.StandardError.ReadToEnd();
        process.WaitForExit();
        if (mustWork)
            Assert.True(process.ExitCode == 0, $"iptables {string.Join(' ', args)} exited {process.ExitCode} (the kernel refused?): {error}");
        return (process.ExitCode, output);
    }
}
