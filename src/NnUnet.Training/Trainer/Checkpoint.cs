using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using NnUnet.Core.Planning;
using static TorchSharp.torch;
using NnUnet.Core.IO;
using NnUnet.Core.Results;

namespace NnUnet.Training.Trainer;

/// <summary>Everything a checkpoint records besides tensors.</summary>
public sealed record CheckpointMetadata
{
    [JsonPropertyName("format_version")] public int FormatVersion { get; init; } = 1;
    [JsonPropertyName("trainer_name")] public required string TrainerName { get; init; }
    [JsonPropertyName("plans_name")] public required string PlansName { get; init; }
    [JsonPropertyName("dataset_name")] public required string DatasetName { get; init; }
    [JsonPropertyName("configuration")] public required string Configuration { get; init; }
    [JsonPropertyName("fold")] public required string Fold { get; init; }
    [JsonPropertyName("architecture")] public required ArchitectureKwargs Architecture { get; init; }
    [JsonPropertyName("input_channels")] public required int InputChannels { get; init; }
    [JsonPropertyName("num_classes")] public required int NumClasses { get; init; }
    [JsonPropertyName("patch_size")] public required int[] PatchSize { get; init; }
    /// <summary>Axes trained with mirroring (nnU-Net's inference_allowed_mirroring_axes).</summary>
    [JsonPropertyName("inference_allowed_mirroring_axes")] public required int[] MirrorAxes { get; init; }
    [JsonPropertyName("max_epochs")] public required int MaxEpochs { get; init; }
    [JsonPropertyName("iters_per_epoch")] public required int ItersPerEpoch { get; init; }
    [JsonPropertyName("val_iters")] public required int ValIters { get; init; }
    [JsonPropertyName("seed")] public required long Seed { get; init; }
    /// <summary>The epoch to run next (== finished epochs when <see cref="Iteration"/> is 0).</summary>
    [JsonPropertyName("current_epoch")] public required int Epoch { get; init; }
    /// <summary>The next training iteration within <see cref="Epoch"/> (non-zero only after a cancellation mid-epoch).</summary>
    [JsonPropertyName("current_iteration")] public int Iteration { get; init; }
    /// <summary>Losses of the iterations of <see cref="Epoch"/> already done (mid-epoch checkpoints).</summary>
    [JsonPropertyName("partial_train_losses")] public List<double> PartialTrainLosses { get; init; } = [];
    [JsonPropertyName("logging")] public required TrainingCurves Curves { get; init; }
    [JsonPropertyName("best_ema")] public double? BestEma { get; init; }
    /// <summary>Torch's global CPU generator state (base64), restored on resume.</summary>
    [JsonPropertyName("torch_rng_state")] public string? TorchRngState { get; init; }
}

/// <summary>
/// A training checkpoint: metadata (JSON), the network's state_dict and the optimizer's momentum buffers.
/// File layout (little endian): "NNUCKPT1", int32 JSON length, JSON, int32 tensor count, per tensor (name, dtype, shape,
/// raw bytes), then a footer: int64 payload length, SHA-256 of the payload, "NNUCKEND". A truncated or altered file fails
/// the footer check and is reported as corrupt (so a resume can fall back to the previous checkpoint).
/// Our own format (TorchSharp cannot write PyTorch's pickle), hence the <c>.ckpt</c> extension.
/// </summary>
public sealed class Checkpoint : IDisposable
{
    public const string Extension = ResultLayout.CheckpointExtension;
    private static readonly byte[] HeadMagic = "NNUCKPT1"u8.ToArray();
    private static readonly byte[] TailMagic = "NNUCKEND"u8.ToArray();
    private const int FooterLength = 8 + 32 + 8;
    private const string MomentumPrefix = "optimizer.momentum_buffer.";

    public static readonly JsonSerializerOptions JsonOptions = new()
    {
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        WriteIndented = false,
    };

    public required CheckpointMetadata Metadata { get; init; }
    /// <summary>Network state_dict tensors (CPU copies).</summary>
    public required Dictionary<string, Tensor> NetworkState { get; init; }
    /// <summary>Momentum buffer per network parameter in <c>parameters()</c> order; null before the first step.</summary>
    public required Tensor?[] MomentumBuffers { get; init; }

    public void Dispose()
    {
        foreach (var t in NetworkState.Values) t.Dispose();
        foreach (var t in MomentumBuffers) t?.Dispose();
    }

    /// <summary>Writes atomically: a temp file in the same folder, flushed to disk, then renamed over <paramref name="path"/>.
    /// With <paramref name="keepPrevious"/>, the replaced file is kept as <c>PATH.prev</c> (fallback when the newest is damaged).</summary>
    public static void Save(string path, CheckpointMetadata metadata, Dictionary<string, Tensor> networkState, IReadOnlyList<Tensor?> momentumBuffers, bool keepPrevious = false)
    {
        using var target = AtomicFile.Create(path);
        {
            var file = target.Stream;
            using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            var output = new HashingStream(file, hash);
            using (var writer = new BinaryWriter(output, Encoding.UTF8, leaveOpen: true))
            {
                writer.Write(HeadMagic);
                byte[] json = JsonSerializer.SerializeToUtf8Bytes(metadata, JsonOptions);
                writer.Write(json.Length);
                writer.Write(json);
                int count = networkState.Count;
                for (int i = 0; i < momentumBuffers.Count; i++) if (momentumBuffers[i] is not null) count++;
                writer.Write(count);
                foreach (var (name, t) in networkState) WriteTensor(writer, name, t);
                for (int i = 0; i < momentumBuffers.Count; i++)
                    if (momentumBuffers[i] is { } buffer) WriteTensor(writer, MomentumPrefix + i, buffer);
                writer.Write(momentumBuffers.Count);
            }
            long payload = output.Written;
            var footer = new byte[FooterLength];
            BitConverter.TryWriteBytes(footer.AsSpan(0, 8), payload);
            hash.GetHashAndReset().CopyTo(footer, 8);
            TailMagic.CopyTo(footer, 40);
            file.Write(footer);
        }
        // renames only: a reader sees the old file, the new file, or (briefly) only PATH.prev, never a partial one
        target.Commit(flushToDisk: true, beforeRename: () =>
        {
            if (keepPrevious && File.Exists(path)) File.Move(path, path + ResultLayout.PreviousCheckpointSuffix, overwrite: true);
        });
    }

    /// <summary>Reads and verifies a checkpoint; throws <see cref="InvalidDataException"/> naming the file when it is truncated or corrupt.</summary>
    public static Checkpoint Load(string path)
    {
        byte[] bytes;
        try { bytes = File.ReadAllBytes(path); }
        catch (FileNotFoundException) { throw new FileNotFoundException($"{path}: checkpoint not found", path); }
        if (bytes.Length < HeadMagic.Length + FooterLength || !bytes.AsSpan(0, 8).SequenceEqual(HeadMagic))
            throw new InvalidDataException($"{path}: not a checkpoint of this trainer (bad header or too short: {bytes.Length} bytes)");
        var footer = bytes.AsSpan(bytes.Length - FooterLength);
        long payload = BitConverter.ToInt64(footer[..8]);
        if (!footer[40..].SequenceEqual(TailMagic) || payload != bytes.Length - FooterLength)
            throw new InvalidDataException($"{path}: checkpoint is truncated or damaged (footer missing or length mismatch)");
        var digest = SHA256.HashData(bytes.AsSpan(0, (int)payload));
        if (!digest.AsSpan().SequenceEqual(footer.Slice(8, 32)))
            throw new InvalidDataException($"{path}: checkpoint is corrupt (checksum mismatch)");

        using var reader = new BinaryReader(new MemoryStream(bytes, 0, (int)payload, writable: false), Encoding.UTF8);
        reader.ReadBytes(HeadMagic.Length);
        int jsonLength = reader.ReadInt32();
        var metadata = JsonSerializer.Deserialize<CheckpointMetadata>(reader.ReadBytes(jsonLength), JsonOptions)
                       ?? throw new InvalidDataException($"{path}: empty checkpoint metadata");
        int count = reader.ReadInt32();
        var network = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        var momentum = new Dictionary<int, Tensor>();
        for (int i = 0; i < count; i++)
        {
            var (name, t) = ReadTensor(reader, path);
            if (name.StartsWith(MomentumPrefix, StringComparison.Ordinal)) momentum[int.Parse(name[MomentumPrefix.Length..], System.Globalization.CultureInfo.InvariantCulture)] = t;
            else network[name] = t;
        }
        int buffers = reader.ReadInt32();
        var momentumBuffers = new Tensor?[buffers];
        foreach (var (index, t) in momentum)
        {
            if (index >= buffers) throw new InvalidDataException($"{path}: momentum buffer {index} beyond the {buffers} parameters recorded");
            momentumBuffers[index] = t;
        }
        return new Checkpoint { Metadata = metadata, NetworkState = network, MomentumBuffers = momentumBuffers };
    }

    /// <summary>
    /// Only the metadata at the head of a checkpoint (no tensors read, no checksum over the weights): what a fold was
    /// trained with, for results that have no owner record. Null when the file is absent or not a checkpoint of this trainer.
    /// </summary>
    public static CheckpointMetadata? TryReadMetadata(string path)
    {
        try
        {
            using var reader = new BinaryReader(File.OpenRead(path), Encoding.UTF8);
            if (!reader.ReadBytes(HeadMagic.Length).AsSpan().SequenceEqual(HeadMagic)) return null;
            int jsonLength = reader.ReadInt32();
            if (jsonLength <= 0 || jsonLength > reader.BaseStream.Length) return null;
            return JsonSerializer.Deserialize<CheckpointMetadata>(reader.ReadBytes(jsonLength), JsonOptions);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or JsonException) { return null; }
    }

    /// <summary>Whether <paramref name="path"/> exists and passes the footer and checksum checks.</summary>
    public static bool IsValid(string path, out string? problem)
    {
        problem = null;
        if (!File.Exists(path)) { problem = $"{path}: missing"; return false; }
        try { Load(path).Dispose(); return true; }
        catch (InvalidDataException ex) { problem = ex.Message; return false; }
    }

    /// <summary>Copies the network weights into <paramref name="network"/> (strict: every key must match).</summary>
    public void LoadWeightsInto(nn.Module network)
    {
        using var noGrad = no_grad();
        var own = network.state_dict();
        foreach (var (name, target) in own)
        {
            if (!NetworkState.TryGetValue(name, out var source))
                throw new InvalidDataException($"checkpoint has no tensor '{name}' (network and checkpoint architectures differ)");
            if (!source.shape.SequenceEqual(target.shape))
                throw new InvalidDataException($"checkpoint tensor '{name}' has shape [{string.Join(",", source.shape)}], the network expects [{string.Join(",", target.shape)}]");
            target.copy_(source);
        }
        if (own.Count != NetworkState.Count)
            throw new InvalidDataException($"checkpoint holds {NetworkState.Count} network tensors, the network has {own.Count}");
    }

    private static void WriteTensor(BinaryWriter writer, string name, Tensor t)
    {
        using var cpu = t.detach().cpu().contiguous();
        writer.Write(name);
        writer.Write((int)cpu.dtype);
        writer.Write((int)cpu.dim());
        foreach (long d in cpu.shape) writer.Write(d);
        var raw = cpu.bytes;
        writer.Write((long)raw.Length);
        writer.Write(raw);
    }

    private static (string, Tensor) ReadTensor(BinaryReader reader, string path)
    {
        string name = reader.ReadString();
        var dtype = (ScalarType)reader.ReadInt32();
        int dims = reader.ReadInt32();
        if (dims is < 0 or > 8) throw new InvalidDataException($"{path}: tensor '{name}' has {dims} dimensions");
        var shape = new long[dims];
        for (int d = 0; d < dims; d++) shape[d] = reader.ReadInt64();
        long length = reader.ReadInt64();
        var t = empty(shape, dtype);
        if (length != t.numel() * t.ElementSize)
            throw new InvalidDataException($"{path}: tensor '{name}' stores {length} bytes, shape and dtype need {t.numel() * t.ElementSize}");
        t.bytes = reader.ReadBytes((int)length);
        return (name, t);
    }

    /// <summary>Forwards writes to a file while hashing them and counting bytes.</summary>
    private sealed class HashingStream(Stream inner, IncrementalHash hash) : Stream
    {
        public long Written { get; private set; }
        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));
        public override void Write(ReadOnlySpan<byte> buffer)
        {
            hash.AppendData(buffer);
            inner.Write(buffer);
            Written += buffer.Length;
        }
        public override void Flush() => inner.Flush();
        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => Written;
        public override long Position { get => Written; set => throw new NotSupportedException(); }
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
    }
}
