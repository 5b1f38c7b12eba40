using System.Runtime.CompilerServices;

namespace NnUnet.TestSupport;

/// <summary>
/// The one way tests wait for a state they cannot be told about (another process's output, a file, an HTTP answer):
/// poll until it holds, fail with a description of what was awaited (and the last thing seen) when it does not in
/// time. Never a fixed sleep: a fixed sleep is too short on a loaded machine and wasted on an idle one. Actor tests
/// wait on messages instead (TestKit probes).
/// </summary>
public static class Eventually
{
    /// <summary>How often a condition is polled unless told otherwise.</summary>
    public static readonly TimeSpan DefaultInterval = TimeSpan.FromMilliseconds(100);

    /// <summary>
    /// Polls <paramref name="probe"/> until it returns a value (not null). <paramref name="transient"/>: exceptions that
    /// mean "not yet" (e.g. a server not listening yet); any other exception fails at once.
    /// </summary>
    [OverloadResolutionPriority(1)] // an async lambda is an asynchronous probe, not a synchronous one returning a Task
    public static async Task<T> Until<T>(Func<Task<T?>> probe, TimeSpan timeout, Func<string> what,
        Func<Exception, bool>? transient = null, TimeSpan? interval = null) where T : class
    {
        var deadline = DateTime.UtcNow + timeout;
        Exception? lastError = null;
        while (true)
        {
            try
            {
                if (await probe() is { } value) return value;
            }
            catch (Exception e) when (transient?.Invoke(e) == true)
            {
                lastError = e;
            }
            if (DateTime.UtcNow >= deadline)
                throw new TimeoutException($"not within {timeout.TotalSeconds:0.#} s: {what()}" + (lastError is null ? "" : $" (last error: {lastError.Message})"));
            await Task.Delay(interval ?? DefaultInterval);
        }
    }

    /// <summary>Polls a synchronous probe until it returns a value (not null).</summary>
    public static Task<T> Until<T>(Func<T?> probe, TimeSpan timeout, Func<string> what, TimeSpan? interval = null) where T : class =>
        Until(() => Task.FromResult(probe()), timeout, what, null, interval);

    /// <summary>Polls until <paramref name="condition"/> holds.</summary>
    public static Task Until(Func<bool> condition, TimeSpan timeout, Func<string> what, TimeSpan? interval = null) =>
        Until(() => Task.FromResult(condition() ? Done : null), timeout, what, null, interval);

    /// <summary>Polls an asynchronous condition until it holds; <paramref name="transient"/> as above.</summary>
    [OverloadResolutionPriority(1)]
    public static Task Until(Func<Task<bool>> condition, TimeSpan timeout, Func<string> what, Func<Exception, bool>? transient = null,
        TimeSpan? interval = null) =>
        Until(async () => await condition() ? Done : null, timeout, what, transient, interval);

    private static readonly object Done = new();
}
