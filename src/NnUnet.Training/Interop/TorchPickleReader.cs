using System.Buffers.Binary;
using System.IO.Compression;
using System.Numerics;
using System.Text;
using TorchSharp;
using static TorchSharp.torch;

namespace NnUnet.Training.Interop;

/// <summary>A pickle that references something a checkpoint does not hold (a foreign global, an unknown opcode).</summary>
public sealed class UnsafePickleException(string message) : IOException(message);

/// <summary>A Python tuple read from a pickle.</summary>
public sealed record PickleTuple(object?[] Items)
{
    public bool Equals(PickleTuple? other) => other is not null && Items.SequenceEqual(other.Items);
    public override int GetHashCode() => Items.Length;
    public int Count => Items.Length;
    public object? this[int index] => Items[index];
}

/// <summary>A Python dict (or <c>collections.OrderedDict</c>) read from a pickle, in insertion order.</summary>
public sealed class PickleDict
{
    public List<KeyValuePair<object?, object?>> Items { get; } = [];

    public object? this[string key] => TryGet(key, out var value) ? value : throw new KeyNotFoundException($"no key '{key}'");

    public bool TryGet(string key, out object? value)
    {
        foreach (var (k, v) in Items)
            if (k is string s && s == key) { value = v; return true; }
        value = null;
        return false;
    }

    public void Set(object? key, object? value)
    {
        for (int i = 0; i < Items.Count; i++)
            if (Equals(Items[i].Key, key)) { Items[i] = new(key, value); return; }
        Items.Add(new(key, value));
    }
}

/// <summary><c>torch.device</c> as pickled: type (<c>cpu</c>, <c>cuda</c>) and optional index.</summary>
public sealed record TorchDeviceValue(string Type, long? Index);

/// <summary><c>numpy.dtype</c> as pickled (its type string, e.g. <c>f8</c>).</summary>
public sealed record NumpyDtypeValue(string Code);

/// <summary>
/// Reads PyTorch's checkpoint format (<c>torch.save</c> since 1.6: a zip with <c>ARCHIVE/data.pkl</c>, the storages as
/// <c>ARCHIVE/data/KEY</c> and <c>ARCHIVE/version</c>) without executing anything. The unpickler knows only the values
/// a checkpoint holds: dict/<c>collections.OrderedDict</c>, list, tuple, int, float, str, bytes, None/True/False,
/// tensors (<c>torch._utils._rebuild_tensor_v2</c> / <c>_rebuild_parameter</c> over storages of float, double, half,
/// bfloat16, int, long, short, byte, char, bool), <c>torch.device</c>, numpy scalars and dtypes and
/// <c>_codecs.encode</c> (how protocol 2 writes bytes). Any other global is refused with
/// <see cref="UnsafePickleException"/> naming it, before anything could run: globals resolve to our own handlers,
/// never to code named by the file.
/// </summary>
public static class TorchPickleReader
{
    private static readonly Dictionary<string, ScalarType> StorageTypes = new(StringComparer.Ordinal)
    {
        ["FloatStorage"] = ScalarType.Float32, ["DoubleStorage"] = ScalarType.Float64, ["HalfStorage"] = ScalarType.Float16,
        ["BFloat16Storage"] = ScalarType.BFloat16, ["IntStorage"] = ScalarType.Int32, ["LongStorage"] = ScalarType.Int64,
        ["ShortStorage"] = ScalarType.Int16, ["ByteStorage"] = ScalarType.Byte, ["CharStorage"] = ScalarType.Int8,
        ["BoolStorage"] = ScalarType.Bool,
    };

    private static readonly HashSet<string> AllowedGlobals = new(StringComparer.Ordinal)
    {
        "collections.OrderedDict", "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_parameter", "torch.device",
        "numpy.core.multiarray.scalar", "numpy._core.multiarray.scalar", "numpy.dtype", "_codecs.encode",
    };

    /// <summary>Reads a <c>.pth</c> file; tensors come back on the CPU (the caller owns them).</summary>
    public static object? Load(string path)
    {
        ZipArchive zip;
        try { zip = ZipFile.OpenRead(path); }
        catch (InvalidDataException)
        {
            throw new InvalidDataException($"{path}: not a PyTorch checkpoint (not a zip archive; files of torch.save before PyTorch 1.6 are not read)");
        }
        using (zip)
        {
            var pickle = zip.Entries.FirstOrDefault(e => e.FullName.EndsWith("/data.pkl", StringComparison.Ordinal) && e.FullName.Count(c => c == '/') == 1)
                         ?? throw new InvalidDataException($"{path}: not a PyTorch checkpoint (no ARCHIVE/data.pkl in the zip)");
            string prefix = pickle.FullName[..^"data.pkl".Length];
            byte[] bytes = ReadEntry(pickle);
            byte[] StorageBytes(string key)
            {
                var entry = zip.GetEntry(prefix + "data/" + key)
                            ?? throw new InvalidDataException($"{path}: storage '{key}' is missing from the archive");
                return ReadEntry(entry);
            }
            try { return new Unpickler(bytes, StorageBytes, path).Run(); }
            catch (Exception ex) when (ex is InvalidCastException or IndexOutOfRangeException or ArgumentException or InvalidOperationException or EndOfStreamException)
            {
                throw new InvalidDataException($"{path}: malformed pickle in {pickle.FullName} ({ex.Message})", ex);
            }
        }
    }

    /// <summary>Unpickles <paramref name="pickle"/> alone (no storages: a tensor in it is an error); for tests and tools.</summary>
    public static object? Unpickle(byte[] pickle, string source) =>
        new Unpickler(pickle, key => throw new InvalidDataException($"{source}: storage '{key}' outside a checkpoint archive"), source).Run();

    private static byte[] ReadEntry(ZipArchiveEntry entry)
    {
        using var stream = entry.Open();
        var bytes = new byte[entry.Length];
        stream.ReadExactly(bytes);
        return bytes;
    }

    private sealed record GlobalRef(string Module, string Name)
    {
        public string FullName => Module + "." + Name;
    }

    private sealed record StorageRef(ScalarType DType, string Key, long Numel);

    private sealed class Mark;

    private sealed class Unpickler(byte[] data, Func<string, byte[]> storageBytes, string source)
    {
        private readonly List<object?> _stack = [];
        private readonly Dictionary<long, object?> _memo = [];
        private readonly Dictionary<string, Tensor> _storages = new(StringComparer.Ordinal);
        private static readonly Mark TheMark = new();
        private int _pos;

        public object? Run()
        {
            while (true)
            {
                byte op = data[_pos++];
                switch (op)
                {
                    case 0x80: _pos++; break;                                   // PROTO
                    case 0x95: _pos += 8; break;                                // FRAME
                    case (byte)'.': return Pop();                               // STOP
                    case (byte)'(': _stack.Add(TheMark); break;                 // MARK
                    case (byte)'}': _stack.Add(new PickleDict()); break;        // EMPTY_DICT
                    case (byte)']': _stack.Add(new List<object?>()); break;     // EMPTY_LIST
                    case (byte)')': _stack.Add(new PickleTuple([])); break;     // EMPTY_TUPLE
                    case (byte)'N': _stack.Add(null); break;
                    case 0x88: _stack.Add(true); break;
                    case 0x89: _stack.Add(false); break;
                    case (byte)'J': _stack.Add((long)BinaryPrimitives.ReadInt32LittleEndian(Take(4))); break;
                    case (byte)'K': _stack.Add((long)Take(1)[0]); break;
                    case (byte)'M': _stack.Add((long)BinaryPrimitives.ReadUInt16LittleEndian(Take(2))); break;
                    case 0x8a: _stack.Add(Long(Take(Take(1)[0]))); break;       // LONG1
                    case 0x8b: _stack.Add(Long(Take(checked((int)BinaryPrimitives.ReadUInt32LittleEndian(Take(4)))))); break;
                    case (byte)'G': _stack.Add(BinaryPrimitives.ReadDoubleBigEndian(Take(8))); break;
                    case (byte)'X': _stack.Add(Encoding.UTF8.GetString(Take(checked((int)BinaryPrimitives.ReadUInt32LittleEndian(Take(4)))))); break;
                    case 0x8c: _stack.Add(Encoding.UTF8.GetString(Take(Take(1)[0]))); break;        // SHORT_BINUNICODE
                    case 0x8d: _stack.Add(Encoding.UTF8.GetString(Take(checked((int)BinaryPrimitives.ReadInt64LittleEndian(Take(8)))))); break;
                    case (byte)'U': _stack.Add(Encoding.Latin1.GetString(Take(Take(1)[0]))); break;   // SHORT_BINSTRING
                    case (byte)'T': _stack.Add(Encoding.Latin1.GetString(Take(BinaryPrimitives.ReadInt32LittleEndian(Take(4))))); break;
                    case (byte)'C': _stack.Add(Take(Take(1)[0]).ToArray()); break;                    // SHORT_BINBYTES
                    case (byte)'B': _stack.Add(Take(checked((int)BinaryPrimitives.ReadUInt32LittleEndian(Take(4)))).ToArray()); break;
                    case (byte)'q': _memo[Take(1)[0]] = Peek(); break;                                 // BINPUT
                    case (byte)'r': _memo[BinaryPrimitives.ReadUInt32LittleEndian(Take(4))] = Peek(); break;
                    case 0x94: _memo[_memo.Count] = Peek(); break;                                     // MEMOIZE
                    case (byte)'h': _stack.Add(Memo(Take(1)[0])); break;                               // BINGET
                    case (byte)'j': _stack.Add(Memo(BinaryPrimitives.ReadUInt32LittleEndian(Take(4)))); break;
                    case (byte)'c': _stack.Add(Global(Line(), Line())); break;                         // GLOBAL
                    case 0x93: { var name = (string)Pop()!; var module = (string)Pop()!; _stack.Add(Global(module, name)); break; }
                    case (byte)'t': _stack.Add(new PickleTuple(PopMark().ToArray())); break;
                    case 0x85: _stack.Add(new PickleTuple([Pop()])); break;
                    case 0x86: { var b = Pop(); var a = Pop(); _stack.Add(new PickleTuple([a, b])); break; }
                    case 0x87: { var c = Pop(); var b = Pop(); var a = Pop(); _stack.Add(new PickleTuple([a, b, c])); break; }
                    case (byte)'l': _stack.Add(PopMark()); break;                                      // LIST
                    case (byte)'d': { var items = PopMark(); var dict = new PickleDict(); for (int i = 0; i + 1 < items.Count; i += 2) dict.Set(Key(items[i]), items[i + 1]); _stack.Add(dict); break; }
                    case (byte)'a': { var item = Pop(); ((List<object?>)Peek()!).Add(item); break; }  // APPEND
                    case (byte)'e': { var items = PopMark(); ((List<object?>)Peek()!).AddRange(items); break; }
                    case (byte)'s': { var value = Pop(); var key = Pop(); ((PickleDict)Peek()!).Set(Key(key), value); break; }
                    case (byte)'u': { var items = PopMark(); var dict = (PickleDict)Peek()!; for (int i = 0; i + 1 < items.Count; i += 2) dict.Set(Key(items[i]), items[i + 1]); break; }
                    case (byte)'R': { var args = (PickleTuple)Pop()!; var callable = Pop(); _stack.Add(Reduce(callable, args)); break; }
                    case 0x81: { var args = (PickleTuple)Pop()!; var cls = Pop(); _stack.Add(Reduce(cls, args)); break; } // NEWOBJ
                    case (byte)'b': { var state = Pop(); Build(Peek(), state); break; }                 // BUILD
                    case (byte)'Q': _stack.Add(PersistentLoad(Pop())); break;                           // BINPERSID
                    default:
                        throw new UnsafePickleException($"{source}: refusing to load: pickle opcode 0x{op:x2} at byte {_pos - 1} is not one a PyTorch checkpoint uses");
                }
            }
        }

        private ReadOnlySpan<byte> Take(int n)
        {
            if (n < 0 || _pos + n > data.Length) throw new EndOfStreamException($"the pickle ends inside an opcode at byte {_pos}");
            var span = data.AsSpan(_pos, n);
            _pos += n;
            return span;
        }

        private string Line()
        {
            int end = Array.IndexOf(data, (byte)'\n', _pos);
            if (end < 0) throw new EndOfStreamException("unterminated GLOBAL");
            string s = Encoding.ASCII.GetString(data, _pos, end - _pos);
            _pos = end + 1;
            return s;
        }

        private static object Long(ReadOnlySpan<byte> bytes)
        {
            if (bytes.Length == 0) return 0L;
            var value = new BigInteger(bytes, isUnsigned: false, isBigEndian: false);
            return value >= long.MinValue && value <= long.MaxValue ? (object)(long)value : value;
        }

        private object? Pop()
        {
            if (_stack.Count == 0) throw new InvalidOperationException("stack underflow");
            var top = _stack[^1];
            _stack.RemoveAt(_stack.Count - 1);
            return top;
        }

        private object? Peek() => _stack.Count > 0 ? _stack[^1] : throw new InvalidOperationException("stack underflow");

        private List<object?> PopMark()
        {
            int mark = _stack.FindLastIndex(x => ReferenceEquals(x, TheMark));
            if (mark < 0) throw new InvalidOperationException("no MARK on the stack");
            var items = _stack.GetRange(mark + 1, _stack.Count - mark - 1);
            _stack.RemoveRange(mark, _stack.Count - mark);
            return items;
        }

        private object? Memo(long index) => _memo.TryGetValue(index, out var v) ? v : throw new InvalidOperationException($"memo {index} unset");

        private static object? Key(object? key) => key is PickleTuple or List<object?> or PickleDict
            ? throw new InvalidOperationException("unhashable dict key") : key;

        private GlobalRef Global(string module, string name)
        {
            var global = new GlobalRef(module, name);
            if (module == "torch" && StorageTypes.ContainsKey(name)) return global;
            if (!AllowedGlobals.Contains(global.FullName))
                throw new UnsafePickleException($"{source}: refusing to load: the pickle references the global '{global.FullName}', " +
                    "which a model checkpoint does not hold (read: tensors, numbers, strings, containers, torch.device, numpy scalars); nothing was executed");
            return global;
        }

        private object? Reduce(object? callable, PickleTuple args)
        {
            if (callable is not GlobalRef global) throw new UnsafePickleException($"{source}: refusing to load: REDUCE of a non-global ({callable?.GetType().Name ?? "None"})");
            switch (global.FullName)
            {
                case "collections.OrderedDict":
                    var dict = new PickleDict();
                    if (args.Count > 0 && args[0] is List<object?> pairs)
                        foreach (var pair in pairs) if (pair is PickleTuple { Count: 2 } kv) dict.Set(Key(kv[0]), kv[1]);
                    return dict;
                case "torch._utils._rebuild_tensor_v2":
                    return RebuildTensor((StorageRef)args[0]!, (long)args[1]!, Ints(args[2]), Ints(args[3]));
                case "torch._utils._rebuild_parameter":
                    return args[0] as Tensor ?? throw new InvalidDataException("_rebuild_parameter without a tensor");
                case "torch.device":
                    string spec = (string)args[0]!;
                    long? index = args.Count > 1 ? (long?)args[1] : null;
                    int colon = spec.IndexOf(':', StringComparison.Ordinal);
                    return colon < 0 ? new TorchDeviceValue(spec, index) : new TorchDeviceValue(spec[..colon], long.Parse(spec[(colon + 1)..], System.Globalization.CultureInfo.InvariantCulture));
                case "numpy.dtype":
                    return new NumpyDtypeValue((string)args[0]!);
                case "numpy.core.multiarray.scalar":
                case "numpy._core.multiarray.scalar":
                    return NumpyScalar((NumpyDtypeValue)args[0]!, args[1] switch { byte[] b => b, string s => Encoding.Latin1.GetBytes(s), _ => throw new InvalidDataException("numpy scalar without bytes") });
                case "_codecs.encode":
                    if (args.Count > 1 && args[1] is string encoding && !encoding.Equals("latin1", StringComparison.OrdinalIgnoreCase) && !encoding.Equals("latin-1", StringComparison.OrdinalIgnoreCase))
                        throw new UnsafePickleException($"{source}: refusing to load: _codecs.encode with encoding '{encoding}'");
                    return Encoding.Latin1.GetBytes((string)args[0]!);
                default:
                    throw new UnsafePickleException($"{source}: refusing to load: the pickle calls '{global.FullName}', which a model checkpoint does not hold; nothing was executed");
            }
        }

        private static void Build(object? target, object? state)
        {
            switch (target)
            {
                case PickleDict: return;  // OrderedDict attributes (a state_dict's _metadata): not needed
                case NumpyDtypeValue when state is PickleTuple { Count: > 1 } t && t[1] is string order:
                    if (order == ">") throw new InvalidDataException("big-endian numpy scalars are not supported");
                    return;
                case NumpyDtypeValue: return;
                default: throw new UnsafePickleException($"BUILD on {target?.GetType().Name ?? "None"} is not part of a model checkpoint");
            }
        }

        private object PersistentLoad(object? pid)
        {
            if (pid is not PickleTuple { Count: >= 5 } t || t[0] is not "storage" || t[1] is not GlobalRef type || !StorageTypes.TryGetValue(type.Name, out var dtype))
                throw new UnsafePickleException($"{source}: refusing to load: persistent id {Describe(pid)} is not a tensor storage");
            return new StorageRef(dtype, (string)t[2]!, (long)t[4]!);
        }

        private static string Describe(object? value) => value is PickleTuple t ? "(" + string.Join(", ", t.Items.Select(i => i?.ToString() ?? "None")) + ")" : value?.ToString() ?? "None";

        private static long[] Ints(object? value) => value is PickleTuple t ? t.Items.Select(i => (long)i!).ToArray() : throw new InvalidDataException("tensor size/stride is not a tuple");

        private Tensor RebuildTensor(StorageRef storage, long offset, long[] size, long[] stride)
        {
            if (!_storages.TryGetValue(storage.Key, out var flat))
            {
                byte[] bytes = storageBytes(storage.Key);
                flat = torch.empty(storage.Numel, storage.DType);
                long expected = storage.Numel * flat.ElementSize;
                if (bytes.Length != expected)
                    throw new InvalidDataException($"{source}: storage '{storage.Key}' has {bytes.Length} bytes, {storage.Numel} elements of {storage.DType} need {expected}");
                flat.bytes = bytes;
                _storages[storage.Key] = flat;
            }
            long reach = offset;
            for (int d = 0; d < size.Length; d++) if (size[d] > 0) reach += (size[d] - 1) * stride[d];
            if (offset < 0 || (size.All(s => s > 0) && reach >= storage.Numel))
                throw new InvalidDataException($"{source}: tensor view beyond its storage '{storage.Key}'");
            using var view = flat.as_strided(size, stride, offset);
            return view.contiguous().clone();
        }

        private static object NumpyScalar(NumpyDtypeValue dtype, byte[] bytes) => dtype.Code switch
        {
            "f8" when bytes.Length == 8 => BinaryPrimitives.ReadDoubleLittleEndian(bytes),
            "f4" when bytes.Length == 4 => (double)BinaryPrimitives.ReadSingleLittleEndian(bytes),
            "f2" when bytes.Length == 2 => (double)BinaryPrimitives.ReadHalfLittleEndian(bytes),
            "i8" when bytes.Length == 8 => BinaryPrimitives.ReadInt64LittleEndian(bytes),
            "i4" when bytes.Length == 4 => (long)BinaryPrimitives.ReadInt32LittleEndian(bytes),
            "i2" when bytes.Length == 2 => (long)BinaryPrimitives.ReadInt16LittleEndian(bytes),
            "i1" when bytes.Length == 1 => (long)(sbyte)bytes[0],
            "u8" when bytes.Length == 8 => (long)BinaryPrimitives.ReadUInt64LittleEndian(bytes),
            "u4" when bytes.Length == 4 => (long)BinaryPrimitives.ReadUInt32LittleEndian(bytes),
            "u2" when bytes.Length == 2 => (long)BinaryPrimitives.ReadUInt16LittleEndian(bytes),
            "u1" when bytes.Length == 1 => (long)bytes[0],
            "b1" when bytes.Length == 1 => bytes[0] != 0,
            _ => throw new InvalidDataException($"numpy scalar of dtype '{dtype.Code}' ({bytes.Length} bytes) is not supported"),
        };
    }
}
