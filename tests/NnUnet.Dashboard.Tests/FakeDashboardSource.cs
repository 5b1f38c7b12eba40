using NnUnet.Cluster.Messages;
using NnUnet.Cluster.Sweeps;

namespace NnUnet.Dashboard.Tests;

/// <summary>A hand-driven source for pure endpoint tests: a fixed snapshot, recorded commands, changes pushed by the test.</summary>
internal sealed class FakeDashboardSource : IDashboardSource
{
    private readonly List<Action<SweepChanged>> _subscribers = [];
    public SweepView Snapshot { get; set; }
    public List<SweepControl> Commands { get; } = [];

    public FakeDashboardSource(SweepView snapshot) => Snapshot = snapshot;

    public static SweepDefinition Definition => SweepDefinition.Create("Dataset004_Hippocampus", "nnUNetPlans", "nnUNetTrainer", ["2d", "3d_fullres"], [0, 1], 10);

    public static JobView Job(string config, int fold, JobDisplayStatus status, int epoch = 0, string? worker = null) =>
        new(JobRecord.TrainJobId(config, fold), JobKind.Train, config, fold, status, status == JobDisplayStatus.Waiting ? 0 : 1, 0, epoch, 10,
            epoch > 0 ? 0.5 : null, epoch > 0 ? 0.45 : null, worker, worker is null ? null : "node", 12.5, null, [], null, null, null, null);

    public static SweepView Sample() => new("sweep-abc", Definition, SweepStatus.Running,
        [Job("2d", 0, JobDisplayStatus.Running, 3, "w0"), Job("2d", 1, JobDisplayStatus.Completed, 10), Job("3d_fullres", 0, JobDisplayStatus.Failed),
         Job("3d_fullres", 1, JobDisplayStatus.Ready)],
        [new WorkerView("w0", "node", "cuda:0", "2d/fold_0", 1), new WorkerView("w1", "node", "cuda:1", null, null)],
        [new SweepEventView(DateTime.UtcNow, "assigned", "2d/fold_0", "2d/fold_0 attempt 1 -> w0")], 1, 1, 4, 99, DateTime.UtcNow);

    public Task<SweepView> GetSnapshotAsync(CancellationToken cancellationToken) => Task.FromResult(Snapshot);

    public IReadOnlyList<ClusterMemberView> GetMembers() => [new("akka.tcp://nnunet@127.0.0.1:1", "Up", ["coordinator", "worker"], true, true)];

    public Task<SweepControlResult> ControlAsync(SweepControl command, CancellationToken cancellationToken)
    {
        lock (Commands) Commands.Add(command);
        return Task.FromResult(new SweepControlResult(true, $"{command.Action} done"));
    }

    public IDisposable Subscribe(Action<SweepChanged> onChange)
    {
        lock (_subscribers) _subscribers.Add(onChange);
        return new Unsub(() => { lock (_subscribers) _subscribers.Remove(onChange); });
    }

    public void Push(SweepChanged change)
    {
        Action<SweepChanged>[] subs;
        lock (_subscribers) subs = [.. _subscribers];
        foreach (var s in subs) s(change);
    }

    private sealed class Unsub(Action dispose) : IDisposable { public void Dispose() => dispose(); }
}
