using System.ComponentModel;
using System.Text.Json;
using NnUnet.Cluster.Messages;
using Spectre.Console;
using Spectre.Console.Cli;

namespace NnUnet.Cli.Commands.Cluster;

internal sealed class SweepControlVerbSettings : CoordinatorClientSettings
{
    [CommandArgument(0, "<ACTION>")]
    [Description("pause | resume | retry JOB | cancel JOB | release WORKER")]
    public string Action { get; init; } = "";

    [CommandArgument(1, "[TARGET]")]
    [Description("the job (retry, cancel: e.g. 2d/fold_3) or the worker (release: its id as sweep-status shows it, e.g. 10.0.0.7:4053/cuda:1)")]
    public string? Target { get; init; }

    public override ValidationResult Validate()
    {
        var (action, needs) = Parse(Action);
        if (action is null) return ValidationResult.Error($"unknown action '{Action}': use pause, resume, retry JOB, cancel JOB or release WORKER");
        if (needs is not null && string.IsNullOrWhiteSpace(Target)) return ValidationResult.Error($"{Action} needs the {needs}: nnunet sweep-control {Action} {needs.ToUpperInvariant()}");
        if (needs is null && Target is not null) return ValidationResult.Error($"{Action} takes no target (got '{Target}')");
        return base.Validate();
    }

    /// <summary>The action, and what it needs as its target ("job", "worker") or null.</summary>
    public static (SweepControlAction? Action, string? Needs) Parse(string action) => action.ToLowerInvariant() switch
    {
        "pause" => (SweepControlAction.Pause, null),
        "resume" => (SweepControlAction.Resume, null),
        "retry" => (SweepControlAction.RetryJob, "job"),
        "cancel" => (SweepControlAction.CancelJob, "job"),
        "release" => (SweepControlAction.ReleaseWorker, "worker"),
        _ => (null, null),
    };
}

/// <summary>
/// <c>nnunet sweep-control ACTION [TARGET]</c>: the operator's actions of the dashboard from a shell: pause, resume,
/// retry or cancel a job, release a quarantined worker. Joins the cluster briefly as a client node, as sweep-status.
/// Exit 0 when the coordinator did it (or there was nothing to do), 1 when it refused, saying why.
/// </summary>
internal sealed class SweepControlVerb : AsyncCommand<SweepControlVerbSettings>
{
    public override async Task<int> ExecuteAsync(CommandContext context, SweepControlVerbSettings settings, CancellationToken cancellationToken)
    {
        var action = SweepControlVerbSettings.Parse(settings.Action).Action!.Value;
        var control = action == SweepControlAction.ReleaseWorker
            ? new SweepControl(action, null, settings.Target)
            : new SweepControl(action, settings.Target);
        var result = await ClusterCommandSupport.AskCoordinatorAsync<SweepControlResult>(settings.Seeds, settings.Host, settings.TimeoutSeconds, control);
        if (settings.Json) JsonStdout.Writer.WriteLine(JsonSerializer.Serialize(result, ClusterCommandSupport.JsonOptions));
        else if (result.Ok) Console.WriteLine(result.Message);
        else Console.Error.WriteLine($"error: {settings.Action} refused: {result.Message}");
        return result.Ok ? NnUnetApp.ExitOk : NnUnetApp.ExitProblems;
    }
}
