using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace NnUnet.Cluster.Tests.Faults;

/// <summary>
/// Network faults made by the kernel, not by Akka's throttler: iptables rules on the test's loopback addresses only,
/// every rule tagged with this test process's id and removed on every exit path (<see cref="Heal"/>, Dispose, and a
/// later test removes rules whose process is gone).
/// <list type="bullet">
/// <item><see cref="CutOff"/>: drops every packet of a node. Two rules: packets TO its address, and packets FROM its
/// processes by their Unix user, because its outgoing connections leave from 127.0.0.1 whatever address the node
/// listens on (the kernel's route to 127.0.0.0/8), so no address rule matches them.</item>
/// <item><see cref="Impair"/>: latency and loss on every link of a set of nodes. Loss is iptables' random statistic
/// (DROP). Latency would be `tc netem`, but the test machines' kernel has no netem qdisc; instead iptables hands the
/// packets to an NFQUEUE queue, and <c>tests/fixtures/net/delay_queue.py</c> lets each one go after the delay (the
/// kernel holds the packet meanwhile, so TCP sees a real round trip). Every packet between two of these nodes has one
/// of their addresses as source or destination (the connecting side sends from 127.0.0.1), so matching both
/// directions of each address covers every link, and loopback packets pass OUTPUT once: each packet is delayed once,
/// a round trip takes twice the delay.</item>
/// </list>
/// </summary>
public sealed class KernelNetwork : IDisposable
{
    private const string TagPrefix = "nnunet-test-";
    private readonly string _tag = $"{TagPrefix}{Environment.ProcessId}";
    private readonly List<string[]> _rules = [];
    private Process? _delayQueue;
    private readonly StringBuilder _delayQueueOutput = new();

    public KernelNetwork()
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
        AssertLoopback(address);
        Add(["INPUT", "-d", address], ["DROP"]);
        Add(["OUTPUT", "-o", "lo", "-m", "owner", "--uid-owner", uid], ["DROP"]);
    }

    /// <summary>
    /// Every packet to or from <paramref name="addresses"/> is dropped with probability <paramref name="loss"/> and
    /// the others are held for <paramref name="delay"/> (one way; a round trip between two nodes takes twice as long).
    /// </summary>
    public void Impair(string[] addresses, TimeSpan delay, double loss)
    {
        foreach (var address in addresses) AssertLoopback(address);
        int queue = 1000 + Environment.ProcessId % 60000;
        StartDelayQueue(queue, delay);
        // inserted at the top, so the loss rules (inserted last) come first: a dropped packet is not queued
        foreach (var address in addresses)
            foreach (var direction in (string[])["-d", "-s"])
                Add(["OUTPUT", "-o", "lo", direction, address],
                    // --queue-bypass: should the delaying process die, packets pass instead of being dropped
                    ["NFQUEUE", "--queue-num", queue.ToString(CultureInfo.InvariantCulture), "--queue-bypass"]);
        foreach (var address in addresses)
            foreach (var direction in (string[])["-d", "-s"])
                Add(["OUTPUT", "-o", "lo", direction, address, "-m", "statistic", "--mode", "random", "--probability",
                    loss.ToString("0.####", CultureInfo.InvariantCulture)], ["DROP"]);
    }

    /// <summary>Packets this network's rules dropped and delayed so far (the kernel's counters), to show the faults were real.</summary>
    public (long Dropped, long Delayed) Counters()
    {
        var (_, listing) = Iptables(["-v", "-S", "OUTPUT"], mustWork: true);
        long dropped = 0, delayed = 0;
        foreach (Match m in Regex.Matches(listing, $@"^-A OUTPUT .*--comment {_tag} -c (\d+) \d+ -j (\w+)", RegexOptions.Multiline))
        {
            long packets = long.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
            if (m.Groups[2].Value == "DROP") dropped += packets; else delayed += packets;
        }
        return (dropped, delayed);
    }

    /// <summary>Removes this network's rules, then stops the delaying process (the rules first: no packet waits for a queue that is gone).</summary>
    public void Heal()
    {
        foreach (var rule in _rules) Iptables(["-D", .. rule], mustWork: false);
        _rules.Clear();
        if (_delayQueue is { } process)
        {
            Thread.Sleep(500); // packets already queued leave after the delay
            try { if (!process.HasExited) process.Kill(); } catch (InvalidOperationException) { }
            process.WaitForExit();
            process.Dispose();
            _delayQueue = null;
        }
    }

    public void Dispose() => Heal();

    private static void AssertLoopback(string address) =>
        Assert.True(address.StartsWith("127.", StringComparison.Ordinal), $"{address}: these tests touch loopback addresses only");

    private void StartDelayQueue(int queue, TimeSpan delay)
    {
        var script = Path.Combine(Repository.Root, "tests", "fixtures", "net", "delay_queue.py");
        var info = new ProcessStartInfo("/usr/bin/python3") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in (string[])[script, "--queue", queue.ToString(CultureInfo.InvariantCulture), "--delay-ms",
                     delay.TotalMilliseconds.ToString(CultureInfo.InvariantCulture)])
            info.ArgumentList.Add(a);
        var process = Process.Start(info)!;
        _delayQueue = process;
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (_delayQueueOutput) _delayQueueOutput.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (_delayQueueOutput) _delayQueueOutput.AppendLine(e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var clock = Stopwatch.StartNew();
        while (true)
        {
            string text;
            lock (_delayQueueOutput) text = _delayQueueOutput.ToString();
            if (text.Contains("bound queue", StringComparison.Ordinal)) return;
            Assert.False(process.HasExited && process.WaitForExit(1000), $"the packet-delaying process ended (the kernel refused NFQUEUE?): {text}");
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(20), $"the packet-delaying process did not bind its queue in 20 s: {text}");
            Thread.Sleep(50);
        }
    }

    private void Add(string[] match, string[] target)
    {
        string[] rule = [.. match, "-m", "comment", "--comment", _tag, "-j", .. target];
        Iptables(["-I", .. rule], mustWork: true);
        _rules.Add(rule);
    }

    /// <summary>Rules a killed test process left behind (its id no longer runs).</summary>
    private static void RemoveRulesOfGoneProcesses()
    {
        var (_, listing) = Iptables(["-S"], mustWork: true);
        foreach (Match m in Regex.Matches(listing, $@"^-A (.*--comment {TagPrefix}(\d+).*)$", RegexOptions.Multiline))
        {
            int pid = int.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture);
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
