namespace NnUnet.Cli;

/// <summary>
/// With <c>--json</c>, stdout holds the JSON document and nothing else: <see cref="NnUnetApp.Run"/> points
/// <see cref="Console.Out"/> at stderr for the whole run (progress bars, log lines, Akka's console logger, anything a
/// library prints), and the verbs write their document to <see cref="Writer"/>, the real stdout.
/// </summary>
internal static class JsonStdout
{
    private static TextWriter? _writer;

    /// <summary>Where a verb writes its JSON document: the process' stdout even while <see cref="Console.Out"/> is stderr.</summary>
    public static TextWriter Writer => _writer ?? Console.Out;

    /// <summary>Routes <see cref="Console.Out"/> to stderr until the returned scope is disposed (the original writer is restored).</summary>
    public static IDisposable Redirect()
    {
        var original = Console.Out;
        _writer = original;
        Console.SetOut(Console.Error);
        return new Scope(original);
    }

    private sealed class Scope(TextWriter original) : IDisposable
    {
        public void Dispose()
        {
            original.Flush();
            Console.SetOut(original);
            _writer = null;
        }
    }
}
