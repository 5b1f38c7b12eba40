using System.Security.Cryptography;
using NnUnet.Core.Reproducibility;

namespace NnUnet.Core.Tests.Reproducibility;

/// <summary>Streaming digests, the reuse rule, the comparison and the start records, on real files in a temp folder.</summary>
public sealed class ManifestTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("nnunet-manifest-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    private string Write(string name, byte[] content)
    {
        string path = Path.Combine(_root, name);
        File.WriteAllBytes(path, content);
        return path;
    }

    [Fact]
    public void Sha256_StreamsFilesLargerThanItsBuffer_AndMatchesTheKnownVector()
    {
        Assert.Equal("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", FileDigest.Sha256(Write("abc", "abc"u8.ToArray())));
        var large = new byte[3 * (1 << 20) + 17];
        new Random(1).NextBytes(large);
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(large)), FileDigest.Sha256(Write("large.bin", large)));
    }

    [Fact]
    public void HashAll_ReusesAKnownDigestOnlyWhileSizeAndWriteTimeAreUnchanged()
    {
        string path = Write("case.npy", [1, 2, 3]);
        var input = new ManifestInput(path, "nnUNet_preprocessed/D/case.npy");
        var first = Assert.Single(FileDigest.HashAll([input]));
        Assert.Equal(FileDigest.Sha256(path), first.Sha256);

        // an entry with the same size and time is taken as it is (the stand-in digest proves the file was not read)
        var known = FileDigest.ByPath([first with { Sha256 = "recorded" }]);
        Assert.Equal("recorded", Assert.Single(FileDigest.HashAll([input], known)).Sha256);

        File.WriteAllBytes(path, [9, 9, 9]);
        File.SetLastWriteTimeUtc(path, first.ModifiedUtc.AddSeconds(5));
        Assert.Equal(FileDigest.Sha256(path), Assert.Single(FileDigest.HashAll([input], known)).Sha256);

        var missing = Assert.Throws<FileNotFoundException>(() => FileDigest.HashAll([new ManifestInput(Path.Combine(_root, "gone.npy"), "x")]));
        Assert.Contains("gone.npy", missing.Message);
    }

    [Fact]
    public void Compare_ListsChangedAddedAndRemovedFilesByPath()
    {
        var at = DateTime.UtcNow;
        HashedFile File(string path, string sha) => new(path, 1, at, sha);
        var changes = ManifestComparison.Compare([File("a", "1"), File("b", "2"), File("c", "3")], [File("a", "1"), File("b", "9"), File("d", "4")]);
        Assert.Equal([
            new InputChange("b", InputChangeKind.Changed, "2", "9"),
            new InputChange("c", InputChangeKind.Removed, "3", null),
            new InputChange("d", InputChangeKind.Added, null, "4")], changes);
        Assert.Empty(ManifestComparison.Compare([File("a", "1")], [File("a", "1")]));
        Assert.Equal("b changed (sha256 2 -> 9)", changes[0].ToString());
    }

    private SweepManifest Manifest(string sweepId, List<HashedFile> inputs) => new()
    {
        SweepId = sweepId, Dataset = "Dataset990_Demo", Plans = "nnUNetPlans", Trainer = "nnUNetTrainer", Configurations = ["2d"], Folds = [0],
        PredictTest = false, Budget = new TrainingBudget(3, 12, 3), FoldSeeds = new() { ["2d/fold_0"] = FoldSeed.For(sweepId, "2d/fold_0") },
        Inputs = inputs, Runs = [],
    };

    [Fact]
    public void RecordStart_AppendsARunWithTheChangesSinceThePreviousStart_AndKeepsAnotherSweepsManifest()
    {
        string path = Path.Combine(_root, SweepManifest.FileName);
        string caseFile = Write("case.npy", [1, 2, 3]);
        List<HashedFile> Hash() => FileDigest.HashAll([new ManifestInput(caseFile, "nnUNet_preprocessed/D/case.npy")]);
        var environment = RuntimeEnvironment.Current(device: "cpu");

        var (first, none) = SweepManifest.RecordStart(path, Manifest("S-1", Hash()), environment, DateTime.UtcNow);
        Assert.Empty(none);
        Assert.Single(first.Runs);
        Assert.Equal(first.Inputs, SweepManifest.Load(path).Inputs);

        File.WriteAllBytes(caseFile, [1, 2, 4]);
        var (second, changes) = SweepManifest.RecordStart(path, Manifest("S-1", Hash()), environment, DateTime.UtcNow);
        var change = Assert.Single(changes);
        Assert.Equal("nnUNet_preprocessed/D/case.npy", change.Path);
        Assert.Equal(InputChangeKind.Changed, change.Kind);
        Assert.Equal(2, second.Runs.Count);
        Assert.Equal(changes, SweepManifest.Load(path).Runs[1].ChangedInputs);

        SweepManifest.RecordStart(path, Manifest("S-2", Hash()), environment, DateTime.UtcNow);
        Assert.Equal("S-2", SweepManifest.Load(path).SweepId);
        Assert.Equal(2, SweepManifest.Load(Path.Combine(_root, "sweep_manifest.S-1.json")).Runs.Count);
    }

    [Fact]
    public void FoldSeed_IsFixedPerSweepAndJob()
    {
        Assert.Equal(FoldSeed.For("S-1", "2d/fold_0"), FoldSeed.For("S-1", "2d/fold_0"));
        Assert.NotEqual(FoldSeed.For("S-1", "2d/fold_0"), FoldSeed.For("S-1", "2d/fold_1"));
        Assert.NotEqual(FoldSeed.For("S-1", "2d/fold_0"), FoldSeed.For("S-2", "2d/fold_0"));
        Assert.True(FoldSeed.For("S-1", "2d/fold_0") >= 0);
    }
}
