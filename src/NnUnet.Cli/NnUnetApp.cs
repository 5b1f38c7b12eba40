using Spectre.Console;
using Spectre.Console.Cli;

namespace NnUnet.Cli;

/// <summary>
/// The <c>nnunet</c> command. Exit codes: 0 success; 1 the work ran but found problems or some items failed
/// (e.g. verify found problems, a case failed); 2 bad usage or bad input (one clear line naming the file and the problem);
/// 130 interrupted with Ctrl-C (finished work is kept; re-run to resume). 3 comes from the installed launcher
/// (scripts/nnunet-launcher.sh) before this program starts: the node lacks a native library or driver it needs.
/// </summary>
public static class NnUnetApp
{
    public const int ExitOk = 0;
    public const int ExitProblems = 1;
    public const int ExitBadInput = 2;
    public const int ExitInterrupted = 130;

    public static int Run(string[] args)
    {
        // before the verbs: the first thing to run on a new node, and what the install script shows at the end
        if (args is ["--version", ..]) return VersionReport.Print(Console.Out, Console.Error);
        bool verbose = args.Contains("--verbose");
        var app = new CommandApp();
        app.Configure(config =>
        {
            config.SetApplicationName("nnunet");
            config.PropagateExceptions();
            CommandRegistry.Register(config);
        });
        // --json: stdout carries the document alone; everything else a verb prints goes to stderr
        using var json = args.Contains("--json") ? JsonStdout.Redirect() : null;
        try
        {
            // nnU-Net spells the worker count "-np" and the checkpoint "-chk"; POSIX parsing would read them as "-n -p", "-c -h -k".
            return app.Run(args.Where(a => a != "--verbose").Select(a => a switch { "-np" => "--np", "-chk" => "--checkpoint", _ => a }).ToArray());
        }
        catch (Exception ex) when (!verbose)
        {
            var inner = ex is CommandAppException { InnerException: not null } ? ex.InnerException! : ex;
            Console.Error.WriteLine($"error: {inner.Message}");
            if (inner is CommandAppException or CommandParseException or CommandRuntimeException)
            {
                Console.Error.WriteLine("hint: nnunet --help, or nnunet VERB --help");
                return ExitBadInput;
            }
            // these messages already say what exists and every way on
            if (inner is NnUnet.Core.Results.ResultsConflictException or NnUnet.Core.Results.ResultsLockedException) return ExitBadInput;
            Console.Error.WriteLine("hint: re-run with --verbose for details");
            return inner is OperationCanceledException ? ExitInterrupted : ExitBadInput;
        }
    }
}
