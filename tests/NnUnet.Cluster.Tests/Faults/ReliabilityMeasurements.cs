using System.Globalization;

namespace NnUnet.Cluster.Tests.Faults;

/// <summary>
/// Times the fault tests measure on the way (issue 13: a worker's cut to its job running elsewhere, a coordinator's
/// restart to every worker re-registered), appended to <c>TestResults/reliability-measurements.tsv</c> and printed.
/// Never asserted on (timings live in bench/): <c>bench/reliability/run.sh</c> runs the tests several times and sums
/// the file up for docs/reliability.md.
/// </summary>
public static class ReliabilityMeasurements
{
    public static string FilePath => Path.Combine(Repository.TestResults(), "reliability-measurements.tsv");

    /// <param name="what">what was measured, e.g. "cut -> job running elsewhere"</param>
    /// <param name="conditions">the settings and network it was measured under</param>
    public static void Record(string what, TimeSpan time, string conditions)
    {
        string line = string.Join('\t', DateTime.UtcNow.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture), what,
            time.TotalSeconds.ToString("F2", CultureInfo.InvariantCulture), conditions);
        lock (typeof(ReliabilityMeasurements)) File.AppendAllText(FilePath, line + "\n");
        Console.WriteLine("MEASURED " + line);
    }
}
