using NnUnet.Core.IO;

namespace NnUnet.Core.Tests.IO;

public sealed class AtomicFileTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("nnunet-atomic-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string[] Leftovers() => Directory.GetFiles(_dir, ".*");

    [Fact]
    public void Write_ReplacesTheTargetAndLeavesNoTemporary()
    {
        var path = Path.Combine(_dir, "sub", "plans.json");
        AtomicFile.WriteAllText(path, "old");
        AtomicFile.WriteAllText(path, "new");
        Assert.Equal("new", File.ReadAllText(path));
        Assert.Empty(Directory.GetFiles(Path.Combine(_dir, "sub"), ".*"));
    }

    [Fact]
    public void AFailingWriter_LeavesTheOldContentAndNoTemporary()
    {
        var path = Path.Combine(_dir, "summary.json");
        AtomicFile.WriteAllText(path, "complete");
        Assert.Throws<IOException>(() => AtomicFile.Write(path, temporary =>
        {
            File.WriteAllText(temporary, "half");
            throw new IOException("disk full");
        }));
        Assert.Equal("complete", File.ReadAllText(path));
        Assert.Empty(Leftovers());
    }

    [Fact]
    public void TheTemporaryIsHiddenAndNeverMatchesTheTargetsPattern()
    {
        var path = Path.Combine(_dir, "case_001.pkl.json");
        string? seen = null;
        AtomicFile.Write(path, temporary =>
        {
            seen = temporary;
            File.WriteAllText(temporary, "{}");
            // a folder listing of results while the write is under way does not see it
            Assert.Empty(Directory.GetFiles(_dir, "*.json"));
        });
        Assert.StartsWith(".", Path.GetFileName(seen));
        Assert.Single(Directory.GetFiles(_dir, "*.json"));
    }

    [Fact]
    public void TryCreate_KeepsWhatExists()
    {
        var path = Path.Combine(_dir, "splits_final.json");
        Assert.True(AtomicFile.TryCreate(path, t => File.WriteAllText(t, "first")));
        Assert.False(AtomicFile.TryCreate(path, t => File.WriteAllText(t, "second")));
        Assert.Equal("first", File.ReadAllText(path));
        Assert.Empty(Leftovers());
    }

    [Fact]
    public void StreamWithoutCommit_LeavesTheTargetUntouched_CommitRunsBeforeRenameFirst()
    {
        var path = Path.Combine(_dir, "checkpoint_latest.ckpt");
        File.WriteAllText(path, "previous");
        using (var abandoned = AtomicFile.Create(path)) abandoned.Stream.Write("partial"u8);
        Assert.Equal("previous", File.ReadAllText(path));
        Assert.Empty(Leftovers());

        using var file = AtomicFile.Create(path);
        file.Stream.Write("next"u8);
        file.Commit(flushToDisk: true, beforeRename: () => File.Move(path, path + ".prev"));
        Assert.Equal("next", File.ReadAllText(path));
        Assert.Equal("previous", File.ReadAllText(path + ".prev"));
    }
}
