using System.Collections.Concurrent;
using NnUnet.Training.Inference;

namespace NnUnet.Training.Tests.Prediction;

/// <summary>
/// <see cref="CasePipeline"/> with stages that record what runs when, on real threads: overlap of the stages, the
/// memory bound of the queues, failures naming their case, cancellation.
/// </summary>
public sealed class CasePipelineTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(20);

    private sealed class Logits(ConcurrentDictionary<int, int> alive, int index) : IDisposable
    {
        public int Index { get; } = index;
        public int Disposed;

        public void Dispose()
        {
            if (Interlocked.Increment(ref Disposed) == 1) alive.TryRemove(Index, out _);
        }
    }

    private static string[] Ids(int n) => Enumerable.Range(0, n).Select(i => $"case_{i:00}").ToArray();

    [Fact]
    public void TheDeviceStartsTheNextCaseWhileTheLastOneIsExportedAndTheOneAfterIsPrepared()
    {
        var secondInferenceStarted = new ManualResetEventSlim();
        var thirdPrepared = new ManualResetEventSlim();
        bool exportSawTheDeviceBusy = false, deviceSawThePreparation = false;
        var alive = new ConcurrentDictionary<int, int>();
        var stages = new CaseStages<int, Logits>(
            (i, _) =>
            {
                if (i == 2) thirdPrepared.Set();
                return i;
            },
            (i, p, _) =>
            {
                if (i == 0) deviceSawThePreparation = thirdPrepared.Wait(Patience); // case 2 is prepared while case 0 is on the device
                if (i == 1) secondInferenceStarted.Set();
                alive[i] = i;
                return new Logits(alive, i);
            },
            (i, l, _) =>
            {
                if (i == 0) exportSawTheDeviceBusy = secondInferenceStarted.Wait(Patience); // case 0 is exported while case 1 is on the device
                return ($"{i}.nii.gz", null);
            });
        var results = CasePipeline.Run(Ids(4), PipelineOptions.Default, stages, null, null, CancellationToken.None);
        Assert.True(deviceSawThePreparation, "no case was prepared while the device worked");
        Assert.True(exportSawTheDeviceBusy, "the device waited for the export");
        Assert.Equal(["0.nii.gz", "1.nii.gz", "2.nii.gz", "3.nii.gz"], results.Select(r => r.OutputFile));
        Assert.Empty(alive); // every case's logits disposed after its export
    }

    [Fact]
    public void BoundedQueuesLimitTheCasesHeldInMemoryWhateverStageIsSlow()
    {
        var options = new PipelineOptions { PreprocessWorkers = 2, ExportWorkers = 2, PreparedQueueCapacity = 2, PredictedQueueCapacity = 1 };
        foreach (string slow in new[] { "device", "export" })
        {
            int prepared = 0, maxPrepared = 0;
            var alive = new ConcurrentDictionary<int, int>();
            int maxAlive = 0;
            var stages = new CaseStages<int, Logits>(
                (i, _) =>
                {
                    int now = Interlocked.Increment(ref prepared);
                    InterlockedMax(ref maxPrepared, now);
                    return i;
                },
                (i, p, _) =>
                {
                    Interlocked.Decrement(ref prepared); // the device has taken the prepared case
                    if (slow == "device") Thread.Sleep(30);
                    alive[i] = i;
                    InterlockedMax(ref maxAlive, alive.Count);
                    return new Logits(alive, i);
                },
                (i, l, _) =>
                {
                    if (slow == "export") Thread.Sleep(30);
                    return ($"{i}", null);
                });
            var results = CasePipeline.Run(Ids(24), options, stages, null, null, CancellationToken.None);
            Assert.All(results, r => Assert.True(r.Succeeded));
            // prepared: one per preparing thread waiting at the full queue, the queue, and the one the device has just taken
            Assert.InRange(maxPrepared, 1, options.PreprocessWorkers + options.PreparedQueueCapacity + 1);
            // predicted: one per exporting thread, the queue, and the one the device waits to hand over
            Assert.InRange(maxAlive, 1, options.ExportWorkers + options.PredictedQueueCapacity + 1);
            Assert.Empty(alive);
        }
    }

    private static void InterlockedMax(ref int target, int value)
    {
        int seen;
        while ((seen = Volatile.Read(ref target)) < value && Interlocked.CompareExchange(ref target, value, seen) != seen) { }
    }

    [Fact]
    public void AFailureInAnyStageFailsThatCaseWithItsMessageAndTheOthersComplete()
    {
        foreach (var options in new[] { PipelineOptions.Sequential, PipelineOptions.Default })
        {
            var alive = new ConcurrentDictionary<int, int>();
            var done = new List<string>();
            var stages = new CaseStages<int, Logits>(
                (i, _) => i == 1 ? throw new InvalidDataException("case_01: not a NIfTI file") : i,
                (i, p, _) =>
                {
                    if (i == 3) throw new InferenceMemoryException("needs 9 GB, only 2 GB available");
                    alive[i] = i;
                    return new Logits(alive, i);
                },
                (i, l, _) => i == 5 ? throw new IOException("disk full") : ($"{i}.nii.gz", i == 4 ? "logits in host memory" : null));
            var results = CasePipeline.Run(Ids(7), options, stages, null, (_, r) => { lock (done) done.Add(r.CaseId); }, CancellationToken.None);

            Assert.Equal(Ids(7), results.Select(r => r.CaseId));
            Assert.Equal("case_01: not a NIfTI file", results[1].Error);
            Assert.Equal("needs 9 GB, only 2 GB available", results[3].Error);
            Assert.Equal("disk full", results[5].Error);
            Assert.Equal("logits in host memory", results[4].Note);
            foreach (int ok in new[] { 0, 2, 4, 6 }) Assert.Equal($"{ok}.nii.gz", results[ok].OutputFile);
            Assert.Equal(7, done.Count);
            Assert.Empty(alive); // the failed export's logits were disposed too
        }
    }

    [Fact]
    public void CancellationStopsEveryStageAndDisposesTheLogitsStillQueued()
    {
        using var cts = new CancellationTokenSource();
        var alive = new ConcurrentDictionary<int, int>();
        int prepared = 0;
        var stages = new CaseStages<int, Logits>(
            (i, _) =>
            {
                Interlocked.Increment(ref prepared);
                return i;
            },
            (i, p, _) =>
            {
                alive[i] = i;
                return new Logits(alive, i);
            },
            (i, l, ct) =>
            {
                cts.Cancel();
                ct.WaitHandle.WaitOne(Patience); // an export that notices the cancellation
                ct.ThrowIfCancellationRequested();
                return ("never", null);
            });
        var options = new PipelineOptions { PreprocessWorkers = 1, ExportWorkers = 1, PreparedQueueCapacity = 1, PredictedQueueCapacity = 2 };
        Assert.ThrowsAny<OperationCanceledException>(() => CasePipeline.Run(Ids(50), options, stages, null, null, cts.Token));
        Assert.Empty(alive);
        Assert.True(prepared < 50, $"{prepared} cases were prepared after the cancellation");
    }

    [Fact]
    public void AnErrorOutsideTheCasesStopsThePipelineAndIsRethrown()
    {
        var stages = new CaseStages<int, Logits>((i, _) => i, (i, p, _) => new Logits(new ConcurrentDictionary<int, int>(), i), (i, l, _) => ($"{i}", null));
        // a progress callback that throws is no case's fault
        var ex = Assert.Throws<InvalidOperationException>(() => CasePipeline.Run(Ids(10), PipelineOptions.Default, stages, null,
            (_, r) => throw new InvalidOperationException($"progress display broke at {r.CaseId}"), CancellationToken.None));
        Assert.StartsWith("progress display broke", ex.Message);
    }
}
