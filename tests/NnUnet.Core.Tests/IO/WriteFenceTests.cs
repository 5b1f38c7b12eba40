using NnUnet.Core.IO;

namespace NnUnet.Core.Tests.IO;

/// <summary>The fence file of a job attempt and the check every atomic write of a fenced flow makes before its rename.</summary>
public sealed class WriteFenceTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("nnunet-fence-").FullName;
    public void Dispose() => Directory.Delete(_folder, true);

    private string FencePath => Path.Combine(_folder, WriteFence.FileName);
    private static FenceToken Token(int attempt, string run = "sweep-a", string holder = "w") => new(run, attempt, holder + attempt, DateTime.UtcNow);

    [Fact]
    public void AHigherAttemptTakesTheFence_ALowerOneNeverTakesItBack_AnotherRunTakesItOver()
    {
        WriteFence.Take(FencePath, Token(1));
        WriteFence.Take(FencePath, Token(3));
        var refused = Assert.Throws<AttemptSupersededException>(() => WriteFence.Take(FencePath, Token(2)));
        Assert.Equal("sweep-a attempt 2 on w2 was superseded by attempt 3 on w3 (" + FencePath + "); it stopped without writing", refused.Message);
        Assert.Equal(3, WriteFence.Read(FencePath)!.Attempt);

        WriteFence.Take(FencePath, Token(3)); // the same attempt again (a worker that keeps its attempt after a coordinator restart)
        WriteFence.Take(FencePath, Token(1, run: "sweep-b")); // another sweep, allowed in by the results lock
        Assert.Equal(("sweep-b", 1), (WriteFence.Read(FencePath)!.Run, WriteFence.Read(FencePath)!.Attempt));
        Assert.Equal([WriteFence.FileName], Directory.GetFiles(_folder).Select(Path.GetFileName)); // no temp file left
    }

    [Fact]
    public void InsideItsFence_AWriteGoesThrough_AfterANewerAttemptTookIt_TheWriteStopsAndTheNewerFileStays()
    {
        string target = Path.Combine(_folder, "checkpoint_latest.ckpt");
        var stale = WriteFence.Take(FencePath, Token(1));
        using (stale.Enter())
        {
            AtomicFile.WriteAllText(target, "attempt 1, epoch 1");
            Assert.Equal("attempt 1, epoch 1", File.ReadAllText(target));

            var newer = WriteFence.Take(FencePath, Token(2));
            using (newer.Enter()) AtomicFile.WriteAllText(target, "attempt 2, epoch 2");

            Assert.Throws<AttemptSupersededException>(() => AtomicFile.WriteAllText(target, "attempt 1, epoch 2"));
            Assert.Throws<AttemptSupersededException>(() => AtomicFile.Copy(target, target + ".copy"));
            Assert.Throws<AttemptSupersededException>(() => AtomicFile.TryCreate(target + ".new", t => File.WriteAllText(t, "x")));
            using (var stream = AtomicFile.Create(target))
            {
                stream.Stream.Write("attempt 1 again"u8);
                Assert.Throws<AttemptSupersededException>(() => stream.Commit());
            }
            Assert.Throws<AttemptSupersededException>(WriteFence.CheckCurrent);
        }
        Assert.Equal("attempt 2, epoch 2", File.ReadAllText(target));
        Assert.Equal(new[] { WriteFence.FileName, "checkpoint_latest.ckpt" }.Order(), Directory.GetFiles(_folder).Select(Path.GetFileName).Order());

        // outside a fenced flow nothing is checked (nnunet train by hand, preprocessing)
        AtomicFile.WriteAllText(target, "by hand");
        Assert.Equal("by hand", File.ReadAllText(target));
    }

    [Fact]
    public void AWriterStalledBetweenItsTempFileAndItsRename_IsCheckedAgainAfterTheStall()
    {
        string target = Path.Combine(_folder, "checkpoint_latest.ckpt");
        File.WriteAllText(target, "attempt 2's");
        var stale = WriteFence.Take(FencePath, Token(1));
        using var scope = stale.Enter();
        // the stall (a caller keeping the previous version, a hung mount): the newer attempt takes the fence meanwhile
        Assert.Throws<AttemptSupersededException>(() =>
            AtomicFile.WriteAllText(target, "attempt 1's", beforeRename: () => WriteFence.Take(FencePath, Token(2))));
        Assert.Equal("attempt 2's", File.ReadAllText(target));
    }

    [Fact]
    public async Task TheFenceFollowsTheFlow_IntoTasksAndParallelLoops_NotOutOfIt()
    {
        var fence = WriteFence.Take(FencePath, Token(1));
        WriteFence? seenInTask = null;
        var seenInLoop = new WriteFence?[4];
        using (fence.Enter())
        {
            seenInTask = await Task.Run(() => WriteFence.Current);
            Parallel.For(0, 4, i => seenInLoop[i] = WriteFence.Current);
        }
        Assert.Same(fence, seenInTask);
        Assert.All(seenInLoop, f => Assert.Same(fence, f));
        Assert.Null(WriteFence.Current);
        Assert.Null(await Task.Run(() => WriteFence.Current));
    }

    [Fact]
    public void AFenceALowerAttemptWroteOver_OrThatWentMissing_IsWrittenAgainByItsOwner()
    {
        var owner = WriteFence.Take(FencePath, Token(2));
        // attempt 1 read the fence before attempt 2 wrote it, and wrote after: the last rename wins
        File.WriteAllText(FencePath, """{"Run": "sweep-a", "Attempt": 1, "Holder": "w1", "TakenAtUtc": "2026-01-01T00:00:00Z"}""");
        owner.Check();
        Assert.Equal(2, WriteFence.Read(FencePath)!.Attempt); // so attempt 1 stops at its next check
        File.Delete(FencePath);
        owner.Check();
        Assert.Equal(2, WriteFence.Read(FencePath)!.Attempt);
    }
}
