using System.Buffers.Binary;
using System.Text;
using NnUnet.Core.IO;
using static TorchSharp.torch;

namespace NnUnet.Training.Interop;

/// <summary>
/// Writes PyTorch's checkpoint format as <c>torch.save</c> does (zip, stored entries with 64-byte aligned data:
/// <c>ARCHIVE/data.pkl</c> in pickle protocol 2, <c>ARCHIVE/data/N</c> one per tensor, <c>ARCHIVE/version</c> = 3,
/// <c>ARCHIVE/byteorder</c> = little). Values: <see cref="PickleDict"/> (written as a plain dict, or as
/// <c>collections.OrderedDict</c> with <see cref="OrderedDict"/>), <see cref="List{T}"/> of object, <see cref="PickleTuple"/>,
/// string, long/int, double, bool, null and CPU tensors. Only globals that <c>torch.load(weights_only=True)</c> accepts
/// are written (OrderedDict, <c>torch._utils._rebuild_tensor_v2</c>, the storage types), so the file loads under
/// PyTorch 2.6's default.
/// </summary>
public static class TorchPickleWriter
{
    /// <summary>Marks a dict to be written as <c>collections.OrderedDict</c> (what a state_dict is).</summary>
    public sealed record OrderedDict(PickleDict Dict);

    public static void Save(string path, object? root)
    {
        var storages = new List<Tensor>();
        var pickle = new MemoryStream();
        var writer = new PickleWriter(pickle, storages);
        pickle.WriteByte(0x80); pickle.WriteByte(2);   // PROTO 2
        writer.Write(root);
        pickle.WriteByte((byte)'.');

        string archive = Path.GetFileNameWithoutExtension(path);
        if (archive.Length == 0 || archive.Any(c => c is '/' or '\\')) archive = "archive";
        using var file = AtomicFile.Create(path);
        var zip = new StoredZipWriter(file.Stream);
        zip.Add(archive + "/data.pkl", pickle.ToArray());
        zip.Add(archive + "/byteorder", "little"u8.ToArray());
        for (int i = 0; i < storages.Count; i++)
        {
            using var cpu = storages[i].detach().cpu().contiguous();
            zip.Add(archive + "/data/" + i.ToString(System.Globalization.CultureInfo.InvariantCulture), cpu.bytes.ToArray());
        }
        zip.Add(archive + "/version", "3\n"u8.ToArray());
        zip.Finish();
        file.Commit(flushToDisk: true);
    }

    private sealed class PickleWriter(Stream output, List<Tensor> storages)
    {
        private readonly Dictionary<Tensor, int> _storageKeys = new(ReferenceEqualityComparer.Instance);

        public void Write(object? value)
        {
            switch (value)
            {
                case null: output.WriteByte((byte)'N'); break;
                case bool b: output.WriteByte(b ? (byte)0x88 : (byte)0x89); break;
                case int i: WriteLong(i); break;
                case long l: WriteLong(l); break;
                case double d: output.WriteByte((byte)'G'); Span<byte> buffer = stackalloc byte[8]; BinaryPrimitives.WriteDoubleBigEndian(buffer, d); output.Write(buffer); break;
                case float f: Write((double)f); break;
                case string s: WriteString(s); break;
                case PickleTuple t: WriteTuple(t.Items); break;
                case List<object?> list:
                    output.WriteByte((byte)']');
                    if (list.Count == 0) break;
                    output.WriteByte((byte)'(');
                    foreach (var item in list) Write(item);
                    output.WriteByte((byte)'e');
                    break;
                case PickleDict dict: output.WriteByte((byte)'}'); WriteItems(dict); break;
                case OrderedDict ordered:
                    WriteGlobal("collections", "OrderedDict");
                    output.WriteByte((byte)')');
                    output.WriteByte((byte)'R');
                    WriteItems(ordered.Dict);
                    break;
                case Tensor tensor: WriteTensor(tensor); break;
                default: throw new ArgumentException($"cannot pickle a {value.GetType().Name} into a checkpoint");
            }
        }

        private void WriteItems(PickleDict dict)
        {
            if (dict.Items.Count == 0) return;
            output.WriteByte((byte)'(');
            foreach (var (key, item) in dict.Items) { Write(key); Write(item); }
            output.WriteByte((byte)'u');
        }

        private void WriteTuple(object?[] items)
        {
            switch (items.Length)
            {
                case 0: output.WriteByte((byte)')'); return;
                case 1: Write(items[0]); output.WriteByte(0x85); return;
                case 2: Write(items[0]); Write(items[1]); output.WriteByte(0x86); return;
                case 3: Write(items[0]); Write(items[1]); Write(items[2]); output.WriteByte(0x87); return;
                default:
                    output.WriteByte((byte)'(');
                    foreach (var item in items) Write(item);
                    output.WriteByte((byte)'t');
                    return;
            }
        }

        private void WriteLong(long value)
        {
            Span<byte> buffer = stackalloc byte[9];
            if (value is >= 0 and <= 0xff) { output.WriteByte((byte)'K'); output.WriteByte((byte)value); }
            else if (value is >= 0 and <= 0xffff) { output.WriteByte((byte)'M'); BinaryPrimitives.WriteUInt16LittleEndian(buffer, (ushort)value); output.Write(buffer[..2]); }
            else if (value is >= int.MinValue and <= int.MaxValue) { output.WriteByte((byte)'J'); BinaryPrimitives.WriteInt32LittleEndian(buffer, (int)value); output.Write(buffer[..4]); }
            else { output.WriteByte(0x8a); output.WriteByte(8); BinaryPrimitives.WriteInt64LittleEndian(buffer, value); output.Write(buffer[..8]); }
        }

        private void WriteString(string s)
        {
            byte[] utf8 = Encoding.UTF8.GetBytes(s);
            output.WriteByte((byte)'X');
            Span<byte> length = stackalloc byte[4];
            BinaryPrimitives.WriteUInt32LittleEndian(length, (uint)utf8.Length);
            output.Write(length);
            output.Write(utf8);
        }

        private void WriteGlobal(string module, string name) => output.Write(Encoding.ASCII.GetBytes($"c{module}\n{name}\n"));

        private void WriteTensor(Tensor tensor)
        {
            string storageType = tensor.dtype switch
            {
                ScalarType.Float32 => "FloatStorage", ScalarType.Float64 => "DoubleStorage", ScalarType.Float16 => "HalfStorage",
                ScalarType.BFloat16 => "BFloat16Storage", ScalarType.Int32 => "IntStorage", ScalarType.Int64 => "LongStorage",
                ScalarType.Int16 => "ShortStorage", ScalarType.Byte => "ByteStorage", ScalarType.Int8 => "CharStorage",
                ScalarType.Bool => "BoolStorage",
                _ => throw new ArgumentException($"cannot write a tensor of dtype {tensor.dtype}"),
            };
            // the same tensor object twice (nnU-Net's duplicate names of one parameter) shares one storage, as torch.save does
            if (!_storageKeys.TryGetValue(tensor, out int key))
            {
                key = storages.Count;
                storages.Add(tensor);
                _storageKeys[tensor] = key;
            }
            WriteGlobal("torch._utils", "_rebuild_tensor_v2");
            output.WriteByte((byte)'(');
            // persistent id: ('storage', torch.XStorage, key, location, numel)
            output.WriteByte((byte)'(');
            WriteString("storage");
            WriteGlobal("torch", storageType);
            WriteString(key.ToString(System.Globalization.CultureInfo.InvariantCulture));
            WriteString("cpu");
            WriteLong(tensor.numel());
            output.WriteByte((byte)'t');
            output.WriteByte((byte)'Q');
            WriteLong(0);
            long[] shape = tensor.shape;
            var stride = new long[shape.Length];
            long step = 1;
            for (int d = shape.Length - 1; d >= 0; d--) { stride[d] = step; step *= shape[d]; }
            WriteTuple(shape.Select(s => (object?)s).ToArray());
            WriteTuple(stride.Select(s => (object?)s).ToArray());
            Write(false);
            WriteGlobal("collections", "OrderedDict");
            output.WriteByte((byte)')');
            output.WriteByte((byte)'R');
            output.WriteByte((byte)'t');
            output.WriteByte((byte)'R');
        }
    }

    /// <summary>A zip of stored (uncompressed) entries whose data start at multiples of 64 bytes, as PyTorch writes them.</summary>
    private sealed class StoredZipWriter(Stream output)
    {
        private const int Alignment = 64;
        private readonly List<(string Name, uint Crc, long Size, long Offset)> _entries = [];
        private long _position;

        public void Add(string name, byte[] content)
        {
            byte[] nameBytes = Encoding.UTF8.GetBytes(name);
            long offset = _position;
            int headerEnd = (int)((offset + 30 + nameBytes.Length + 4) % Alignment);
            int padding = headerEnd == 0 ? 0 : Alignment - headerEnd;
            uint crc = Crc32(content);
            var header = new byte[30 + nameBytes.Length + 4 + padding];
            var span = header.AsSpan();
            BinaryPrimitives.WriteUInt32LittleEndian(span, 0x04034b50);
            BinaryPrimitives.WriteUInt16LittleEndian(span[4..], 20);     // version needed
            BinaryPrimitives.WriteUInt16LittleEndian(span[8..], 0);      // stored
            BinaryPrimitives.WriteUInt32LittleEndian(span[14..], crc);
            BinaryPrimitives.WriteUInt32LittleEndian(span[18..], checked((uint)content.Length));
            BinaryPrimitives.WriteUInt32LittleEndian(span[22..], checked((uint)content.Length));
            BinaryPrimitives.WriteUInt16LittleEndian(span[26..], (ushort)nameBytes.Length);
            BinaryPrimitives.WriteUInt16LittleEndian(span[28..], (ushort)(4 + padding));
            nameBytes.CopyTo(span[30..]);
            // extra field 'FB' (PyTorch's padding record) pads the data to the alignment
            BinaryPrimitives.WriteUInt16LittleEndian(span[(30 + nameBytes.Length)..], 0x4246);
            BinaryPrimitives.WriteUInt16LittleEndian(span[(32 + nameBytes.Length)..], (ushort)padding);
            output.Write(header);
            output.Write(content);
            _position += header.Length + content.Length;
            _entries.Add((name, crc, content.Length, offset));
        }

        public void Finish()
        {
            long start = _position;
            foreach (var (name, crc, size, offset) in _entries)
            {
                byte[] nameBytes = Encoding.UTF8.GetBytes(name);
                var record = new byte[46 + nameBytes.Length];
                var span = record.AsSpan();
                BinaryPrimitives.WriteUInt32LittleEndian(span, 0x02014b50);
                BinaryPrimitives.WriteUInt16LittleEndian(span[4..], 20);
                BinaryPrimitives.WriteUInt16LittleEndian(span[6..], 20);
                BinaryPrimitives.WriteUInt32LittleEndian(span[16..], crc);
                BinaryPrimitives.WriteUInt32LittleEndian(span[20..], checked((uint)size));
                BinaryPrimitives.WriteUInt32LittleEndian(span[24..], checked((uint)size));
                BinaryPrimitives.WriteUInt16LittleEndian(span[28..], (ushort)nameBytes.Length);
                BinaryPrimitives.WriteUInt32LittleEndian(span[42..], checked((uint)offset));
                nameBytes.CopyTo(span[46..]);
                output.Write(record);
                _position += record.Length;
            }
            var end = new byte[22];
            BinaryPrimitives.WriteUInt32LittleEndian(end, 0x06054b50);
            BinaryPrimitives.WriteUInt16LittleEndian(end.AsSpan(8), (ushort)_entries.Count);
            BinaryPrimitives.WriteUInt16LittleEndian(end.AsSpan(10), (ushort)_entries.Count);
            BinaryPrimitives.WriteUInt32LittleEndian(end.AsSpan(12), checked((uint)(_position - start)));
            BinaryPrimitives.WriteUInt32LittleEndian(end.AsSpan(16), checked((uint)start));
            output.Write(end);
        }

        private static readonly uint[] CrcTable = BuildCrcTable();

        private static uint[] BuildCrcTable()
        {
            var table = new uint[256];
            for (uint n = 0; n < 256; n++)
            {
                uint c = n;
                for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
                table[n] = c;
            }
            return table;
        }

        private static uint Crc32(ReadOnlySpan<byte> data)
        {
            uint c = 0xFFFFFFFFu;
            foreach (byte b in data) c = CrcTable[(c ^ b) & 0xff] ^ (c >> 8);
            return c ^ 0xFFFFFFFFu;
        }
    }
}
