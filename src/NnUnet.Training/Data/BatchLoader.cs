using System.Threading.Channels;
using NnUnet.Training.Augmentation;
using static TorchSharp.torch;
using NnUnet.Training.Torch;

namespace NnUnet.Training.Data;

/// <summary>One training batch: data float32 (b, c, *patch) and target int64 (b, 1, *patch) with labels in [0, C);
/// for the cascade, c includes the one-hot previous-stage channels the augmenter appended.</summary>
public sealed class TrainingBatch(Tensor data, Tensor target, string[] caseIds) : IDisposable
{
    public Tensor Data { get; } = data;
    public Tensor Target { get; } = target;
    public string[] CaseIds { get; } = caseIds;

    public void Dispose() { Data.Dispose(); Target.Dispose(); }
}

/// <summary>
/// Prepares batches <c>first .. first + count - 1</c> of one stream on background threads, at most
/// <c>queueCapacity</c> ahead of the consumer (a bounded channel of pending batches). Batch k depends only
/// on (seed, stream, k): its sampler RNG and its augmentation generator are derived from them, so the sequence is the
/// same whatever the thread timing, and resuming at batch k reproduces the uninterrupted run.
/// </summary>
public sealed class BatchLoader : IAsyncDisposable
{
    private readonly PatchSampler sampler;
    private readonly IBatchAugmenter augmenter;
    private readonly long seed;
    private readonly int stream;
    private readonly Device augmentDevice;
    private readonly Channel<Task<TrainingBatch>> pending;
    private readonly CancellationTokenSource stop;
    private readonly Task producer;

    public BatchLoader(PatchSampler sampler, IBatchAugmenter augmenter, long seed, int stream, long first, long count,
        int queueCapacity, Device augmentDevice, CancellationToken ct)
    {
        this.sampler = sampler;
        this.augmenter = augmenter;
        this.seed = seed;
        this.stream = stream;
        this.augmentDevice = augmentDevice;
        pending = Channel.CreateBounded<Task<TrainingBatch>>(new BoundedChannelOptions(Math.Max(1, queueCapacity)) { SingleReader = true, SingleWriter = true });
        stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        // not Task.Run(..., stop.Token): cancelled before it starts, the producer would never complete the channel
        producer = Task.Run(() => ProduceAsync(first, count, stop.Token), CancellationToken.None);
    }

    private async Task ProduceAsync(long first, long count, CancellationToken ct)
    {
        try
        {
            for (long k = first; k < first + count; k++)
            {
                long index = k;
                var work = Task.Run(() => Make(index), ct);
                await pending.Writer.WriteAsync(work, ct).ConfigureAwait(false);
            }
            pending.Writer.TryComplete();
        }
        catch (Exception ex)
        {
            pending.Writer.TryComplete(ex);
        }
    }

    /// <summary>Builds batch <paramref name="index"/> of this stream (also callable directly, e.g. by tests).</summary>
    public TrainingBatch Make(long index)
    {
        var rng = DeterministicRandom.ForBatch(seed, stream, index);
        int b = sampler.BatchSize, c = sampler.Channels;
        var data = new float[b * c * sampler.VoxelsPerPatch];
        var seg = new short[b * sampler.SegChannels * sampler.VoxelsPerPatch];
        var ids = new string[b];
        sampler.SampleBatch(ref rng, data, seg, ids);
        var dataShape = new long[2 + sampler.PatchSize.Length];
        dataShape[0] = b; dataShape[1] = c;
        for (int d = 0; d < sampler.PatchSize.Length; d++) dataShape[2 + d] = sampler.PatchSize[d];
        var segShape = (long[])dataShape.Clone();
        segShape[1] = sampler.SegChannels;
        using var scope = NewDisposeScope();
        var dataT = tensor(data, dataShape).to(augmentDevice);
        var segT = tensor(seg, segShape).to(augmentDevice);
        using var generator = new Generator((ulong)DeterministicRandom.TorchSeed(seed, stream, index), augmentDevice);
        var (augData, augSeg) = augmenter.Apply(dataT, segT, generator);
        if (augSeg.shape[1] != 1)
            throw new InvalidOperationException($"{augmenter.GetType().Name} returned a seg with {augSeg.shape[1]} channels; the cascade's previous-stage channel must become data channels (one-hot)");
        // seg -1 (outside the image / mask) becomes background, as nnU-Net's RemoveLabelTansform(-1, 0)
        var target = augSeg.clamp_min(TorchScalars.Zero).to(ScalarType.Int64);
        var batch = new TrainingBatch(augData.contiguous().MoveToOuterDisposeScope(), target.MoveToOuterDisposeScope(), ids);
        return batch;
    }

    /// <summary>The next batch in order; throws what the batch's preparation threw.</summary>
    public async ValueTask<TrainingBatch> NextAsync(CancellationToken ct)
    {
        var work = await pending.Reader.ReadAsync(ct).ConfigureAwait(false);
        return await work.WaitAsync(ct).ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync()
    {
        await stop.CancelAsync().ConfigureAwait(false);
        try { await producer.ConfigureAwait(false); } catch (OperationCanceledException) { }
        // drain batches made ahead so their native memory is released now
        while (pending.Reader.TryRead(out var work))
        {
            try { (await work.ConfigureAwait(false)).Dispose(); } catch (Exception) { /* cancelled or failed: nothing to free */ }
        }
        stop.Dispose();
    }
}
