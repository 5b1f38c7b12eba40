using System.Buffers.Binary;
using System.IO.MemoryMappedFiles;
using System.Runtime.InteropServices;
using System.Text;

namespace NnUnet.Core.Preprocessing;

/// <summary>Element types of .npy files this project reads and writes.</summary>
public enum NpyDType
{
    Float32, Float64, Int8, UInt8, Int16, Int32, Int64,
}

/// <summary>Header of a .npy file: element type, C-order shape and where the data starts.</summary>
public sealed record NpyHeader(NpyDType DType, int[] Shape, long DataOffset)
{
    public long Count
    {
        get
        {
            long n = 1;
            foreach (int d in Shape) n *= d;
            return n;
        }
    }

    public int ElementSize => NpyFile.ElementSize(DType);
}

/// <summary>An array read from a .npy file: <see cref="Data"/> is a typed array (float[], sbyte[], ...).</summary>
public sealed record NpyArray(NpyDType DType, int[] Shape, Array Data)
{
    public T[] As<T>(string path = "array") where T : unmanaged =>
        Data as T[] ?? throw new InvalidDataException($"{path}: holds {DType}, expected {NpyFile.DTypeOf<T>()}");
}

/// <summary>
/// numpy's .npy format: version 1.0 written (2.0 / 3.0 read), little-endian, C order, for float32, float64, int8,
/// uint8, int16, int32 and int64. Fortran-order and big-endian files are refused with a clear error.
/// </summary>
public static class NpyFile
{
    private static readonly byte[] Magic = [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y'];

    public static int ElementSize(NpyDType dtype) => dtype switch
    {
        NpyDType.Int8 or NpyDType.UInt8 => 1,
        NpyDType.Int16 => 2,
        NpyDType.Float32 or NpyDType.Int32 => 4,
        _ => 8,
    };

    public static NpyDType DTypeOf<T>() where T : unmanaged =>
        typeof(T) == typeof(float) ? NpyDType.Float32 :
        typeof(T) == typeof(double) ? NpyDType.Float64 :
        typeof(T) == typeof(sbyte) ? NpyDType.Int8 :
        typeof(T) == typeof(byte) ? NpyDType.UInt8 :
        typeof(T) == typeof(short) ? NpyDType.Int16 :
        typeof(T) == typeof(int) ? NpyDType.Int32 :
        typeof(T) == typeof(long) ? NpyDType.Int64 :
        throw new NotSupportedException($"{typeof(T).Name} has no .npy type here");

    private static string Descr(NpyDType dtype) => dtype switch
    {
        NpyDType.Float32 => "<f4",
        NpyDType.Float64 => "<f8",
        NpyDType.Int8 => "|i1",
        NpyDType.UInt8 => "|u1",
        NpyDType.Int16 => "<i2",
        NpyDType.Int32 => "<i4",
        _ => "<i8",
    };

    private static NpyDType ParseDescr(string descr, string path) => descr switch
    {
        "<f4" => NpyDType.Float32,
        "<f8" => NpyDType.Float64,
        "|i1" or "<i1" or "i1" => NpyDType.Int8,
        "|u1" or "<u1" or "u1" => NpyDType.UInt8,
        "<i2" => NpyDType.Int16,
        "<i4" => NpyDType.Int32,
        "<i8" => NpyDType.Int64,
        _ when descr.StartsWith('>') => throw new InvalidDataException($"{path}: big-endian arrays ('{descr}') are not supported"),
        _ => throw new InvalidDataException($"{path}: unsupported dtype '{descr}'"),
    };

    /// <summary>Writes <paramref name="data"/> with <paramref name="shape"/> (C order) to <paramref name="path"/>.</summary>
    public static void Write<T>(string path, ReadOnlySpan<T> data, ReadOnlySpan<int> shape) where T : unmanaged
    {
        using var stream = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16);
        Write(stream, data, shape);
    }

    public static void Write<T>(Stream stream, ReadOnlySpan<T> data, ReadOnlySpan<int> shape) where T : unmanaged
    {
        long count = 1;
        foreach (int d in shape)
        {
            if (d < 0) throw new ArgumentException("shape has a negative axis", nameof(shape));
            count *= d;
        }
        if (count != data.Length) throw new ArgumentException($"shape holds {count} elements, data has {data.Length}");
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("writing .npy needs a little-endian machine");
        stream.Write(BuildHeader(DTypeOf<T>(), shape));
        stream.Write(MemoryMarshal.AsBytes(data));
    }

    private static byte[] BuildHeader(NpyDType dtype, ReadOnlySpan<int> shape)
    {
        var dims = new StringBuilder();
        foreach (int d in shape) dims.Append(d).Append(", ");
        string shapeText = shape.Length == 1 ? $"({shape[0]},)" : shape.Length == 0 ? "()" : $"({dims.ToString(0, dims.Length - 2)})";
        string dict = $"{{'descr': '{Descr(dtype)}', 'fortran_order': False, 'shape': {shapeText}, }}";
        // numpy pads the header with spaces so that the data starts on a multiple of 64 bytes, ending in '\n'
        int unpadded = Magic.Length + 2 + 2 + dict.Length + 1;
        int total = (unpadded + 63) / 64 * 64;
        var header = new byte[total];
        Magic.CopyTo(header, 0);
        header[6] = 1; header[7] = 0;
        BinaryPrimitives.WriteUInt16LittleEndian(header.AsSpan(8), (ushort)(total - 10));
        Encoding.ASCII.GetBytes(dict, header.AsSpan(10));
        header.AsSpan(10 + dict.Length, total - 10 - dict.Length - 1).Fill((byte)' ');
        header[total - 1] = (byte)'\n';
        return header;
    }

    public static NpyHeader ReadHeader(string path)
    {
        using var stream = File.OpenRead(path);
        return ReadHeader(stream, path);
    }

    public static NpyHeader ReadHeader(Stream stream, string path)
    {
        Span<byte> prefix = stackalloc byte[12];
        if (ReadAtMost(stream, prefix[..10]) < 10 || !prefix[..6].SequenceEqual(Magic))
            throw new InvalidDataException($"{path}: not a .npy file (bad magic)");
        int major = prefix[6];
        long headerLength, dataOffset;
        if (major == 1)
        {
            headerLength = BinaryPrimitives.ReadUInt16LittleEndian(prefix[8..]);
            dataOffset = 10 + headerLength;
        }
        else if (major is 2 or 3)
        {
            if (ReadAtMost(stream, prefix[10..12]) < 2) throw new InvalidDataException($"{path}: truncated .npy header");
            headerLength = BinaryPrimitives.ReadUInt32LittleEndian(prefix[8..]);
            dataOffset = 12 + headerLength;
        }
        else throw new InvalidDataException($"{path}: unsupported .npy version {major}.{prefix[7]}");
        if (headerLength > 1 << 20) throw new InvalidDataException($"{path}: .npy header too large ({headerLength} bytes)");
        var text = new byte[headerLength];
        if (ReadAtMost(stream, text) < headerLength) throw new InvalidDataException($"{path}: truncated .npy header");
        return ParseHeaderDict(Encoding.Latin1.GetString(text), dataOffset, path);
    }

    private static NpyHeader ParseHeaderDict(string dict, long dataOffset, string path)
    {
        string descr = ValueAfter(dict, "descr", path).Trim().Trim('\'', '"');
        string fortran = ValueAfter(dict, "fortran_order", path).Trim();
        if (fortran.StartsWith("True", StringComparison.Ordinal))
            throw new InvalidDataException($"{path}: Fortran-order arrays are not supported (save with np.ascontiguousarray)");
        string shapeText = ValueAfter(dict, "shape", path).Trim();
        if (!shapeText.StartsWith('(') || !shapeText.Contains(')'))
            throw new InvalidDataException($"{path}: unreadable shape '{shapeText}'");
        var parts = shapeText[1..shapeText.IndexOf(')')].Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var shape = new int[parts.Length];
        for (int i = 0; i < parts.Length; i++)
            if (!int.TryParse(parts[i].TrimEnd('L'), out shape[i]) || shape[i] < 0)
                throw new InvalidDataException($"{path}: bad shape entry '{parts[i]}'");
        return new NpyHeader(ParseDescr(descr, path), shape, dataOffset);
    }

    /// <summary>The text after <c>'key':</c> up to the next top-level comma of the header dict.</summary>
    private static string ValueAfter(string dict, string key, string path)
    {
        int at = dict.IndexOf($"'{key}'", StringComparison.Ordinal);
        if (at < 0) at = dict.IndexOf($"\"{key}\"", StringComparison.Ordinal);
        if (at < 0) throw new InvalidDataException($"{path}: .npy header has no '{key}'");
        int colon = dict.IndexOf(':', at);
        int i = colon + 1, depth = 0;
        for (; i < dict.Length; i++)
        {
            char ch = dict[i];
            if (ch == '(') depth++;
            else if (ch == ')') depth--;
            else if ((ch == ',' || ch == '}') && depth == 0) break;
        }
        return dict[(colon + 1)..i];
    }

    /// <summary>Reads a whole .npy file.</summary>
    public static NpyArray Read(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        var header = ReadHeader(stream, path);
        Array data = header.DType switch
        {
            NpyDType.Float32 => ReadData<float>(stream, header, path),
            NpyDType.Float64 => ReadData<double>(stream, header, path),
            NpyDType.Int8 => ReadData<sbyte>(stream, header, path),
            NpyDType.UInt8 => ReadData<byte>(stream, header, path),
            NpyDType.Int16 => ReadData<short>(stream, header, path),
            NpyDType.Int32 => ReadData<int>(stream, header, path),
            _ => ReadData<long>(stream, header, path),
        };
        return new NpyArray(header.DType, header.Shape, data);
    }

    /// <summary>Reads a .npy file that must hold <typeparamref name="T"/> elements.</summary>
    public static T[] Read<T>(string path, out int[] shape) where T : unmanaged
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        return Read<T>(stream, path, out shape);
    }

    /// <summary>
    /// Reads a .npy array of <typeparamref name="T"/> from the current position of <paramref name="stream"/> (e.g. an
    /// entry of an .npz zip); <paramref name="name"/> is used in error messages.
    /// </summary>
    public static T[] Read<T>(Stream stream, string name, out int[] shape) where T : unmanaged
    {
        var header = ReadHeader(stream, name);
        if (header.DType != DTypeOf<T>())
            throw new InvalidDataException($"{name}: holds {header.DType}, expected {DTypeOf<T>()}");
        shape = header.Shape;
        return ReadData<T>(stream, header, name);
    }

    private static T[] ReadData<T>(Stream stream, NpyHeader header, string path) where T : unmanaged
    {
        long count = header.Count;
        if (count > Array.MaxLength) throw new InvalidDataException($"{path}: {count} elements are too many for one array (use OpenMapped)");
        if (stream.CanSeek && stream.Length - stream.Position < count * header.ElementSize)
            throw new InvalidDataException($"{path}: truncated: shape ({string.Join(", ", header.Shape)}) needs {count * header.ElementSize} data bytes, file has {stream.Length - stream.Position}");
        var data = GC.AllocateUninitializedArray<T>((int)count);
        var bytes = MemoryMarshal.AsBytes(data.AsSpan());
        if (ReadAtMost(stream, bytes) < bytes.Length) throw new InvalidDataException($"{path}: truncated data");
        return data;
    }

    /// <summary>Maps a .npy file read-only; elements are read on demand (for arrays too large to copy).</summary>
    public static MappedNpy OpenMapped(string path)
    {
        var header = ReadHeader(path);
        long bytes = header.Count * header.ElementSize;
        long fileLength = new FileInfo(path).Length;
        if (fileLength - header.DataOffset < bytes)
            throw new InvalidDataException($"{path}: truncated: needs {bytes} data bytes, file has {fileLength - header.DataOffset}");
        return new MappedNpy(path, header);
    }

    private static int ReadAtMost(Stream stream, Span<byte> buffer)
    {
        int total = 0;
        while (total < buffer.Length)
        {
            int read = stream.Read(buffer[total..]);
            if (read == 0) break;
            total += read;
        }
        return total;
    }
}

/// <summary>A memory-mapped, read-only .npy array. Dispose it to unmap.</summary>
public sealed unsafe class MappedNpy : IDisposable
{
    private readonly MemoryMappedFile _file;
    private readonly MemoryMappedViewAccessor _view;
    private readonly byte* _pointer;

    internal MappedNpy(string path, NpyHeader header)
    {
        Header = header;
        _file = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
        _view = _file.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
        byte* p = null;
        _view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
        _pointer = p + _view.PointerOffset + header.DataOffset;
    }

    public NpyHeader Header { get; }
    public int[] Shape => Header.Shape;

    /// <summary>
    /// Elements <paramref name="start"/> .. start + length - 1 (flat C-order index) as a span over the mapping; valid until
    /// disposed.
    /// </summary>
    public ReadOnlySpan<T> Span<T>(long start, int length) where T : unmanaged
    {
        if (Header.DType != NpyFile.DTypeOf<T>())
            throw new InvalidOperationException($"array holds {Header.DType}, not {NpyFile.DTypeOf<T>()}");
        if (start < 0 || length < 0 || start + length > Header.Count) throw new ArgumentOutOfRangeException(nameof(start));
        return new ReadOnlySpan<T>(_pointer + start * sizeof(T), length);
    }

    public void Dispose()
    {
        _view.SafeMemoryMappedViewHandle.ReleasePointer();
        _view.Dispose();
        _file.Dispose();
    }
}
