using NnUnet.Core.Preprocessing;

namespace NnUnet.Core.Tests.Preprocessing;

public sealed class NpyFileTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("npy-tests-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void Every_dtype_round_trips()
    {
        RoundTrip(new float[] { 1.5f, -2.25f, float.MaxValue, 0f, 3f, 4f }, [2, 3]);
        RoundTrip(new double[] { Math.PI, -1e300 }, [2]);
        RoundTrip(new sbyte[] { -1, 0, 1, 127, -128, 5, 6, 7 }, [1, 2, 2, 2]);
        RoundTrip(new byte[] { 0, 255, 7 }, [3, 1]);
        RoundTrip(new short[] { short.MinValue, 0, short.MaxValue, 1 }, [4]);
        RoundTrip(new int[] { int.MinValue, 0, int.MaxValue }, [1, 3]);
        RoundTrip(new long[] { long.MinValue, 1 }, [2]);
    }

    private void RoundTrip<T>(T[] data, int[] shape) where T : unmanaged
    {
        string path = Path.Combine(_dir, typeof(T).Name + ".npy");
        NpyFile.Write<T>(path, data, shape);
        Assert.Equal(0, (new FileInfo(path).Length - data.Length * System.Runtime.InteropServices.Marshal.SizeOf<T>()) % 64);
        var back = NpyFile.Read<T>(path, out var readShape);
        Assert.Equal(shape, readShape);
        Assert.Equal(data, back);
        var untyped = NpyFile.Read(path);
        Assert.Equal(NpyFile.DTypeOf<T>(), untyped.DType);
        Assert.Equal(data, untyped.As<T>());
    }

    [Fact]
    public void Numpy_reads_our_files_and_we_read_numpys()
    {
        NpyFile.Write<float>(Path.Combine(_dir, "ours_f4.npy"), [0.5f, -1f, 2f, 3f, 4f, 5f], [1, 2, 3]);
        NpyFile.Write<sbyte>(Path.Combine(_dir, "ours_i1.npy"), [-1, 0, 1, 2], [1, 4]);
        NpyFile.Write<short>(Path.Combine(_dir, "ours_i2.npy"), [-300, 300], [2]);
        NpyFile.Write<double>(Path.Combine(_dir, "ours_f8.npy"), [1e-300], [1]);
        NpyFile.Write<byte>(Path.Combine(_dir, "ours_u1.npy"), [200, 1], [2, 1]);
        NpyFile.Write<int>(Path.Combine(_dir, "ours_i4.npy"), [123456789], [1, 1, 1]);
        const string script = """
            import numpy as np, sys, os
            d = sys.argv[1]
            def check(name, dtype, shape, values):
                a = np.load(os.path.join(d, name))
                assert a.dtype == np.dtype(dtype), (name, a.dtype)
                assert a.shape == shape, (name, a.shape)
                assert a.flags['C_CONTIGUOUS']
                assert np.array_equal(a.ravel(), np.array(values, dtype=dtype)), (name, a)
            check('ours_f4.npy', '<f4', (1, 2, 3), [0.5, -1, 2, 3, 4, 5])
            check('ours_i1.npy', 'i1', (1, 4), [-1, 0, 1, 2])
            check('ours_i2.npy', '<i2', (2,), [-300, 300])
            check('ours_f8.npy', '<f8', (1,), [1e-300])
            check('ours_u1.npy', 'u1', (2, 1), [200, 1])
            check('ours_i4.npy', '<i4', (1, 1, 1), [123456789])
            np.save(os.path.join(d, 'np_f4.npy'), np.arange(24, dtype=np.float32).reshape(2, 3, 4) / 8)
            np.save(os.path.join(d, 'np_i1.npy'), np.array([[-1, 0], [3, 127]], dtype=np.int8))
            np.save(os.path.join(d, 'np_i2.npy'), np.array([-5, 1000], dtype=np.int16))
            np.save(os.path.join(d, 'np_f8.npy'), np.array([1.0 / 3], dtype=np.float64))
            np.save(os.path.join(d, 'np_u1.npy'), np.array([9], dtype=np.uint8))
            np.save(os.path.join(d, 'np_i4.npy'), np.array([[-7]], dtype=np.int32))
            np.save(os.path.join(d, 'np_fortran.npy'), np.asfortranarray(np.ones((2, 3), dtype=np.float32)))
            np.save(os.path.join(d, 'np_bigendian.npy'), np.ones(3, dtype='>f4'))
            np.save(os.path.join(d, 'np_scalar.npy'), np.float32(2.5))
            print('ok')
            """;
        Python.Run(script, _dir);
        var f4 = NpyFile.Read<float>(Path.Combine(_dir, "np_f4.npy"), out var shape);
        Assert.Equal([2, 3, 4], shape);
        for (int i = 0; i < 24; i++) Assert.Equal(i / 8f, f4[i]);
        Assert.Equal(new sbyte[] { -1, 0, 3, 127 }, NpyFile.Read<sbyte>(Path.Combine(_dir, "np_i1.npy"), out shape));
        Assert.Equal([2, 2], shape);
        Assert.Equal(new short[] { -5, 1000 }, NpyFile.Read<short>(Path.Combine(_dir, "np_i2.npy"), out _));
        Assert.Equal(new[] { 1.0 / 3 }, NpyFile.Read<double>(Path.Combine(_dir, "np_f8.npy"), out _));
        Assert.Equal(new byte[] { 9 }, NpyFile.Read<byte>(Path.Combine(_dir, "np_u1.npy"), out _));
        Assert.Equal(new[] { -7 }, NpyFile.Read<int>(Path.Combine(_dir, "np_i4.npy"), out _));
        var scalar = NpyFile.Read<float>(Path.Combine(_dir, "np_scalar.npy"), out shape);
        Assert.Empty(shape);
        Assert.Equal(new[] { 2.5f }, scalar);
        var fortran = Assert.Throws<InvalidDataException>(() => NpyFile.Read(Path.Combine(_dir, "np_fortran.npy")));
        Assert.Contains("np_fortran.npy", fortran.Message);
        Assert.Contains("Fortran", fortran.Message);
        Assert.Contains("big-endian", Assert.Throws<InvalidDataException>(() => NpyFile.Read(Path.Combine(_dir, "np_bigendian.npy"))).Message);
    }

    [Fact]
    public void Arrays_read_from_a_non_seekable_stream()
    {
        var buffer = new MemoryStream();
        NpyFile.Write<short>(buffer, [1, -2, 3], [3]);
        using var zip = new System.IO.Compression.ZipArchive(new MemoryStream(ZipWith("a.npy", buffer.ToArray())));
        using var entry = zip.GetEntry("a.npy")!.Open();
        Assert.Equal(new short[] { 1, -2, 3 }, NpyFile.Read<short>(entry, "a.npy", out var shape));
        Assert.Equal([3], shape);
    }

    private static byte[] ZipWith(string name, byte[] content)
    {
        var zipBytes = new MemoryStream();
        using (var zip = new System.IO.Compression.ZipArchive(zipBytes, System.IO.Compression.ZipArchiveMode.Create, leaveOpen: true))
        using (var s = zip.CreateEntry(name).Open()) s.Write(content);
        return zipBytes.ToArray();
    }

    [Fact]
    public void Bad_files_give_errors_naming_the_file()
    {
        string notNpy = Path.Combine(_dir, "text.npy");
        File.WriteAllText(notNpy, "hello, this is not numpy");
        var ex = Assert.Throws<InvalidDataException>(() => NpyFile.Read(notNpy));
        Assert.Contains("text.npy", ex.Message);

        string truncated = Path.Combine(_dir, "short.npy");
        NpyFile.Write<float>(truncated, new float[100], [10, 10]);
        using (var s = new FileStream(truncated, FileMode.Open)) s.SetLength(s.Length - 8);
        ex = Assert.Throws<InvalidDataException>(() => NpyFile.Read<float>(truncated, out _));
        Assert.Contains("short.npy", ex.Message);
        Assert.Contains("truncated", ex.Message);

        ex = Assert.Throws<InvalidDataException>(() => NpyFile.Read<sbyte>(Path.Combine(_dir, "short.npy"), out _));
        Assert.Contains("Float32", ex.Message);
    }

    [Fact]
    public void Mapped_read_sees_the_same_values()
    {
        string path = Path.Combine(_dir, "big.npy");
        var data = new float[3 * 50 * 40];
        for (int i = 0; i < data.Length; i++) data[i] = i * 0.25f;
        NpyFile.Write<float>(path, data, [3, 50, 40]);
        using var mapped = NpyFile.OpenMapped(path);
        Assert.Equal([3, 50, 40], mapped.Shape);
        var slice = mapped.Span<float>(2000, 2000);
        Assert.True(slice.SequenceEqual(data.AsSpan(2000, 2000)));
        Assert.Throws<InvalidOperationException>(() => mapped.Span<sbyte>(0, 1).Length);
        Assert.Throws<ArgumentOutOfRangeException>(() => mapped.Span<float>(5999, 2).Length);
    }
}
