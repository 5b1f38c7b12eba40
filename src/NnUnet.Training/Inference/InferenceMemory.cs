using System.Globalization;

namespace NnUnet.Training.Inference;

/// <summary>Element type of the sliding window's logit and weight accumulators.</summary>
public enum LogitsPrecision
{
    /// <summary>float16, as nnU-Net v2 (<c>predicted_logits</c> and <c>n_predictions</c> are <c>torch.half</c>): half the memory.</summary>
    Half,
    /// <summary>float32: exact sums, for tests that compare against a by-hand computation.</summary>
    Float32,
}

/// <summary>
/// Where and how large the sliding window's accumulators may be, and how much of the logits the export converts at once.
/// </summary>
public sealed record InferenceMemoryOptions
{
    public static readonly InferenceMemoryOptions Default = new();

    /// <summary>Accumulator precision; nnU-Net's half by default.</summary>
    public LogitsPrecision Precision { get; init; } = LogitsPrecision.Half;

    /// <summary>
    /// Bytes the padded volume's accumulators and input may take on the device; above it they live in host memory and
    /// only the tiles go to the device (nnU-Net's fallback). Null: no budget, try the device and fall back when it
    /// reports out of memory. Applies to a CPU device too, so that the fallback path can be exercised without a GPU.
    /// </summary>
    public long? DeviceMemoryBudgetBytes { get; init; }

    /// <summary>Host memory the prediction may assume available; null: what the OS reports (<see cref="HostMemory.AvailableBytes"/>).</summary>
    public long? HostMemoryBudgetBytes { get; init; }

    /// <summary>Float32 bytes of logits the export converts and resamples at once (whole class channels; at least one).</summary>
    public long ExportChunkBytes { get; init; } = 256L << 20;

    internal long HostAvailable() => HostMemoryBudgetBytes ?? HostMemory.AvailableBytes();
}

/// <summary>Where one sliding-window prediction accumulated its logits.</summary>
/// <param name="FellBackToHost">True when the accumulators were placed in host memory while the network ran on another device
/// (or on the CPU because the device budget was exceeded).</param>
/// <param name="AccumulatorBytes">Logits and weights of the padded volume.</param>
/// <param name="Reason">Why the host was used; null when the device held them.</param>
public sealed record LogitsAccumulation(bool FellBackToHost, LogitsPrecision Precision, long AccumulatorBytes, string? Reason);

/// <summary>
/// A prediction that does not fit even in host memory: one line with the numbers (what is needed, what is available).
/// Thrown before the allocation, so nothing is half-done and the process keeps running.
/// </summary>
public sealed class InferenceMemoryException(string message) : Exception(message);

/// <summary>Available host memory: the smaller of the kernel's <c>MemAvailable</c> and the cgroup's remaining limit.</summary>
public static class HostMemory
{
    public static long AvailableBytes()
    {
        long available = long.MaxValue;
        if (TryReadMemAvailable(out long memAvailable)) available = memAvailable;
        if (TryReadLong("/sys/fs/cgroup/memory.max", out long limit) && TryReadLong("/sys/fs/cgroup/memory.current", out long current))
            available = Math.Min(available, Math.Max(0, limit - current));
        if (available == long.MaxValue)
            available = GC.GetGCMemoryInfo().TotalAvailableMemoryBytes; // not Linux: the runtime's view of the limit
        return available;
    }

    private static bool TryReadMemAvailable(out long bytes)
    {
        bytes = 0;
        try
        {
            foreach (string line in File.ReadLines("/proc/meminfo"))
            {
                if (!line.StartsWith("MemAvailable:", StringComparison.Ordinal)) continue;
                var parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                if (parts.Length >= 2 && long.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out long kb))
                {
                    bytes = kb * 1024;
                    return true;
                }
            }
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        return false;
    }

    private static bool TryReadLong(string path, out long value)
    {
        value = 0;
        try
        {
            // "max" (no limit) does not parse, which is what we want
            return File.Exists(path) && long.TryParse(File.ReadAllText(path).Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out value);
        }
        catch (IOException) { return false; }
        catch (UnauthorizedAccessException) { return false; }
    }

    /// <summary>Bytes for people: "4.19 GB", "84.0 MB" (decimal units).</summary>
    public static string Format(long bytes) => bytes switch
    {
        >= 1_000_000_000 => (bytes / 1e9).ToString("0.00", CultureInfo.InvariantCulture) + " GB",
        >= 1_000_000 => (bytes / 1e6).ToString("0.0", CultureInfo.InvariantCulture) + " MB",
        >= 1_000 => (bytes / 1e3).ToString("0.0", CultureInfo.InvariantCulture) + " kB",
        _ => bytes.ToString(CultureInfo.InvariantCulture) + " B",
    };
}
