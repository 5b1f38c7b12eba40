namespace NnUnet.Cli.Tests.Cluster;

/// <summary>`nnunet sweep-control`: an action without its target (or with one it does not take) is refused before any node starts.</summary>
[Collection(ConsoleCollection.Name)]
public sealed class SweepControlOptionsTests
{
    [Theory]
    [InlineData("release", null, "release needs the worker: nnunet sweep-control release WORKER")]
    [InlineData("retry", null, "retry needs the job: nnunet sweep-control retry JOB")]
    [InlineData("pause", "2d/fold_0", "pause takes no target (got '2d/fold_0')")]
    [InlineData("quarantine", "w", "unknown action 'quarantine': use pause, resume, retry JOB, cancel JOB or release WORKER")]
    public void AnActionWithoutItsTarget_IsRefusedWithTheUsage(string action, string? target, string message)
    {
        string[] args = target is null ? ["sweep-control", action, "--seed", "akka.tcp://nnunet@127.0.0.1:1"] : ["sweep-control", action, target, "--seed", "akka.tcp://nnunet@127.0.0.1:1"];
        var (code, output, error) = CliRunner.Run(args);
        Assert.Equal(NnUnetApp.ExitBadInput, code);
        Assert.Contains(message, output + error);
    }
}
