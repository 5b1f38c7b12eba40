namespace NnUnet.Cli.Tests.Cluster;

/// <summary>Sweep definitions the real trainer could never complete are refused before any node starts.</summary>
[Collection(ConsoleCollection.Name)]
public sealed class SweepOptionsTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("cli-sweep-").FullName;

    public SweepOptionsTests() => Directory.CreateDirectory(Path.Combine(_root, "Dataset004_Hippocampus"));

    public void Dispose() => Directory.Delete(_root, recursive: true);

    [Theory]
    [InlineData("sweep")]
    [InlineData("coordinator")]
    public void CascadeOverFewerThanFiveFolds_IsRefusedWithTheReason(string verb)
    {
        var (code, _, error) = CliRunner.Run(verb, "4", "-c", "3d_lowres,3d_cascade_fullres", "--folds", "0,1", "--no-dashboard",
            "--preprocessed", _root, "--results", _root);
        Assert.Equal(NnUnetApp.ExitBadInput, code);
        Assert.Contains("3d_cascade_fullres trains on the 3d_lowres predictions of every training case", error);
        Assert.Contains("--folds 0,1,2,3,4", error);
        Assert.Empty(Directory.GetFiles(_root, "*", SearchOption.AllDirectories)); // no journal, nothing written
    }
}
