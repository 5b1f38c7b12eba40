using System.Runtime.ExceptionServices;
using System.Threading.Channels;
using NnUnet.Core.IO;

namespace NnUnet.Training.Inference;

/// <summary>How <see cref="Predictor.PredictFolder"/> overlaps the cases (nnU-Net: <c>-npp</c> and <c>-nps</c> worker processes).</summary>
public sealed record PipelineOptions
{
    public static readonly PipelineOptions Default = new();

    /// <summary>One case after the other on the calling thread: read, preprocess, predict, export.</summary>
    public static readonly PipelineOptions Sequential = new() { IsSequential = true };

    public bool IsSequential { get; init; }

    /// <summary>Threads reading and preprocessing the next cases while the device predicts.</summary>
    public int PreprocessWorkers { get; init; } = 2;

    /// <summary>Threads exporting finished cases (resampling, argmax, postprocessing, NIfTI write) while the device predicts.</summary>
    public int ExportWorkers { get; init; } = 2;

    /// <summary>Preprocessed cases waiting for the device (each holds its preprocessed image).</summary>
    public int PreparedQueueCapacity { get; init; } = 2;

    /// <summary>Predicted cases waiting for export (each holds its logits in host memory: the largest item).</summary>
    public int PredictedQueueCapacity { get; init; } = 2;

    internal void Validate()
    {
        if (IsSequential) return;
        if (PreprocessWorkers < 1 || ExportWorkers < 1)
            throw new ArgumentException($"the pipeline needs at least one preprocessing and one export worker (got {PreprocessWorkers} and {ExportWorkers})");
        if (PreparedQueueCapacity < 1 || PredictedQueueCapacity < 1)
            throw new ArgumentException($"the pipeline's queues need a capacity of at least 1 (got {PreparedQueueCapacity} and {PredictedQueueCapacity})");
    }
}

/// <summary>
/// The three stages of predicting one case, for <see cref="CasePipeline"/>: <paramref name="Prepare"/> (CPU: read and
/// preprocess), <paramref name="Infer"/> (the device: one thread), <paramref name="Export"/> (CPU: write, returns the
/// written file and an optional note for the user). Each gets the case's index. An exception fails that case only, with
/// its message.
/// </summary>
internal sealed record CaseStages<TPrepared, TInferred>(
    Func<int, CancellationToken, TPrepared> Prepare,
    Func<int, TPrepared, CancellationToken, TInferred> Infer,
    Func<int, TInferred, CancellationToken, (string File, string? Note)> Export)
    where TInferred : IDisposable;

/// <summary>
/// Runs cases through prepare -> infer -> export, either one after another or overlapped: several preparing threads
/// feed a bounded queue that one device thread reads, which feeds a bounded queue that several exporting threads read.
/// The queues bound the memory (a full queue blocks its writers). A failing case is reported and the others go on;
/// cancellation stops every stage and disposes what was waiting in the queues. Results come back in case order.
/// </summary>
internal static class CasePipeline
{
    public static CasePredictionResult[] Run<TPrepared, TInferred>(IReadOnlyList<string> caseIds, PipelineOptions options,
        CaseStages<TPrepared, TInferred> stages, Action<int>? onStart, Action<int, CasePredictionResult>? onDone, CancellationToken ct)
        where TInferred : IDisposable
    {
        options.Validate();
        var results = new CasePredictionResult[caseIds.Count];
        var callbackLock = new object();
        void Start(int index)
        {
            if (onStart is null) return;
            lock (callbackLock) onStart(index);
        }
        void Done(int index, (string File, string? Note)? written, Exception? error)
        {
            var result = new CasePredictionResult(caseIds[index], written?.File, error?.Message) { Note = written?.Note };
            results[index] = result;
            if (onDone is null) return;
            lock (callbackLock) onDone(index, result);
        }

        if (options.IsSequential)
        {
            for (int i = 0; i < caseIds.Count; i++)
            {
                ct.ThrowIfCancellationRequested();
                Start(i);
                try
                {
                    var input = stages.Prepare(i, ct);
                    using var output = stages.Infer(i, input, ct);
                    Done(i, stages.Export(i, output, ct), null);
                }
                catch (Exception ex) when (!ct.IsCancellationRequested && !IsSuperseded(ex))
                {
                    Done(i, null, ex);
                }
            }
            return results;
        }

        using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var token = cts.Token;
        var prepared = Channel.CreateBounded<(int Index, TPrepared Item)>(new BoundedChannelOptions(options.PreparedQueueCapacity)
            { SingleReader = true, FullMode = BoundedChannelFullMode.Wait });
        var inferred = Channel.CreateBounded<(int Index, TInferred Item)>(new BoundedChannelOptions(options.PredictedQueueCapacity)
            { SingleWriter = true, FullMode = BoundedChannelFullMode.Wait });
        int next = -1;
        int preparersLeft = options.PreprocessWorkers;
        Exception? fatal = null;

        void Preparer()
        {
            try
            {
                while (true)
                {
                    int i = Interlocked.Increment(ref next);
                    if (i >= caseIds.Count) return;
                    token.ThrowIfCancellationRequested();
                    Start(i);
                    TPrepared item;
                    try { item = stages.Prepare(i, token); }
                    catch (Exception ex) when (!token.IsCancellationRequested && !IsSuperseded(ex)) { Done(i, null, ex); continue; }
                    Write(prepared.Writer, (i, item), token);
                }
            }
            finally
            {
                if (Interlocked.Decrement(ref preparersLeft) == 0) prepared.Writer.TryComplete();
            }
        }

        void Device()
        {
            try
            {
                while (Read(prepared.Reader, token, out var next))
                {
                    TInferred item;
                    try { item = stages.Infer(next.Index, next.Item, token); }
                    catch (Exception ex) when (!token.IsCancellationRequested && !IsSuperseded(ex)) { Done(next.Index, null, ex); continue; }
                    try { Write(inferred.Writer, (next.Index, item), token); }
                    catch
                    {
                        item.Dispose();
                        throw;
                    }
                }
            }
            finally
            {
                inferred.Writer.TryComplete();
            }
        }

        void Exporter()
        {
            while (Read(inferred.Reader, token, out var next))
            {
                using var item = next.Item;
                (string File, string? Note) written;
                try { written = stages.Export(next.Index, item, token); }
                catch (Exception ex) when (!token.IsCancellationRequested && !IsSuperseded(ex)) { Done(next.Index, null, ex); continue; }
                Done(next.Index, written, null);
            }
        }

        Task Launch(Action body, string name) => Task.Factory.StartNew(() =>
        {
            Thread.CurrentThread.Name ??= name;
            try { body(); }
            catch (OperationCanceledException) when (token.IsCancellationRequested) { }
            catch (Exception ex)
            {
                // not a case's failure: stop the whole pipeline and report it
                Interlocked.CompareExchange(ref fatal, ex, null);
                cts.Cancel();
            }
        }, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);

        var tasks = new List<Task>();
        for (int w = 0; w < options.PreprocessWorkers; w++) tasks.Add(Launch(Preparer, $"predict-prepare-{w + 1}"));
        tasks.Add(Launch(Device, "predict-device"));
        for (int w = 0; w < options.ExportWorkers; w++) tasks.Add(Launch(Exporter, $"predict-export-{w + 1}"));
        // not on ct: each stage ends on it by itself, and the clean-up below must wait until all of them have
        Task.WaitAll(tasks, CancellationToken.None);

        // after a cancellation: logits still queued for export hold (device or host) memory
        while (inferred.Reader.TryRead(out var left)) left.Item.Dispose();
        if (fatal is not null) ExceptionDispatchInfo.Throw(fatal);
        ct.ThrowIfCancellationRequested();
        return results;
    }

    /// <summary>Not a case's failure: the job attempt lost its fence (<see cref="WriteFence"/>) and the whole run stops.</summary>
    private static bool IsSuperseded(Exception ex) => ex is AttemptSupersededException;

    private static bool Read<T>(ChannelReader<T> reader, CancellationToken ct, out T item)
    {
        while (!reader.TryRead(out item!))
        {
            if (!reader.WaitToReadAsync(ct).AsTask().GetAwaiter().GetResult()) return false;
        }
        return true;
    }

    private static void Write<T>(ChannelWriter<T> writer, T item, CancellationToken ct)
    {
        while (!writer.TryWrite(item))
        {
            if (!writer.WaitToWriteAsync(ct).AsTask().GetAwaiter().GetResult())
                throw new InvalidOperationException("the prediction pipeline's queue was closed while a case was waiting");
        }
    }
}
