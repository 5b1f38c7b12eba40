namespace NnUnet.Cluster.Tests;

/// <summary>
/// Tests that start several `nnunet` processes or many ActorSystems run one at a time: on a 2-core machine, running
/// them side by side starves their failure detectors and start-up and turns timing into flakiness.
/// </summary>
[CollectionDefinition(Collection, DisableParallelization = true)]
public sealed class ProcessTests
{
    public const string Collection = "processes";
}
