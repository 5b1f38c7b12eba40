using System.Text.Json;
using NnUnet.Core.Imaging;
using NnUnet.Core.Imaging.Nifti;

namespace NnUnet.Core.Tests.Imaging;

/// <summary>Every fixture written by tests/fixtures/make_nifti_fixtures.py, compared with what nibabel reported for it.</summary>
public class NiftiFixtureTests
{
    private static readonly Lazy<Dictionary<string, JsonElement>> Expected = new(() =>
    {
        using var stream = File.OpenRead(Path.Combine(RepoPaths.NiftiFixtures, "expected.json"));
        var doc = JsonDocument.Parse(stream);
        var result = new Dictionary<string, JsonElement>();
        foreach (var file in doc.RootElement.GetProperty("files").EnumerateArray())
            result[file.GetProperty("file").GetString()!] = file.Clone();
        return result;
    });

    public static TheoryData<string> FixtureNames()
    {
        var data = new TheoryData<string>();
        foreach (var name in Expected.Value.Keys) data.Add(name);
        return data;
    }

    [Fact]
    public void FixtureSetCoversTheRequiredCases()
    {
        var names = Expected.Value.Keys.ToList();
        Assert.True(names.Count >= 30, $"only {names.Count} fixtures");
        foreach (var type in new[] { "uint8", "int8", "int16", "uint16", "int32", "uint32", "int64", "float32", "float64" })
            Assert.Contains($"dtype_{type}.nii", names);
        Assert.Contains(names, n => n.EndsWith(".nii.gz"));
        Assert.Contains(names, n => Expected.Value[n].GetProperty("version").GetInt32() == 2);
        Assert.Contains(names, n => Expected.Value[n].GetProperty("big_endian").GetBoolean());
        // Every fixture file on disk is described (a new fixture without expectations would go untested).
        var onDisk = Directory.GetFiles(RepoPaths.NiftiFixtures).Select(Path.GetFileName).Where(n => n!.Contains(".nii")).ToList();
        Assert.Equal(onDisk.Order(), names.Order());
    }

    [Theory]
    [MemberData(nameof(FixtureNames))]
    public void ReadMatchesNibabel(string name)
    {
        var expected = Expected.Value[name];
        string path = Path.Combine(RepoPaths.NiftiFixtures, name);
        var image = NiftiReader.Read(path);

        int[] size = expected.GetProperty("size_xyzc").EnumerateArray().Select(e => e.GetInt32()).ToArray();
        Assert.Equal(size, new[] { image.SizeX, image.SizeY, image.SizeZ, image.Channels });
        Assert.Equal(TypeOf(expected.GetProperty("output_dtype").GetString()!), image.Type);

        AssertAffine(Matrix(expected.GetProperty("affine")), image.Geometry.ToRasAffine(), name);
        AssertClose(Doubles(expected.GetProperty("spacing")), image.Geometry.Spacing, name + " spacing");
        AssertClose(Doubles(expected.GetProperty("origin")), image.Geometry.Origin, name + " origin");
        AssertClose(Doubles(expected.GetProperty("direction")), image.Geometry.Direction, name + " direction");

        double[] want = Doubles(expected.GetProperty("values"));
        double[] got = AsDoubles(image);
        Assert.Equal(want.Length, got.Length);
        for (int i = 0; i < want.Length; i++)
        {
            // nibabel computes scaled values in float64; a float32 result is that value rounded once.
            double reference = image.Type == VoxelType.Float32 ? (float)want[i] : want[i];
            if (got[i] != reference) Assert.Fail($"{name}: voxel {i} = {got[i]:R}, nibabel says {reference:R}");
        }
        double sum = 0, sumSq = 0;
        foreach (double v in got) { sum += v; sumSq += v * v; }
        if (image.Type != VoxelType.Float32)
        {
            Assert.Equal(expected.GetProperty("sum").GetDouble(), sum, 1e-9 * Math.Max(1, Math.Abs(sum)));
            Assert.Equal(expected.GetProperty("sum_sq").GetDouble(), sumSq, 1e-9 * Math.Max(1, sumSq));
        }
    }

    [Theory]
    [MemberData(nameof(FixtureNames))]
    public void HeaderMatchesNibabel(string name)
    {
        var expected = Expected.Value[name];
        var header = NiftiReader.ReadHeader(Path.Combine(RepoPaths.NiftiFixtures, name));
        Assert.Equal(expected.GetProperty("version").GetInt32(), (int)header.Version);
        Assert.Equal(expected.GetProperty("big_endian").GetBoolean(), header.IsBigEndian);
        Assert.Equal(name.EndsWith(".gz"), header.IsGzipped);
        Assert.Equal(expected.GetProperty("qform_code").GetInt32(), header.QformCode);
        Assert.Equal(expected.GetProperty("sform_code").GetInt32(), header.SformCode);
        Assert.Equal(expected.GetProperty("vox_offset").GetInt64(), header.DataOffset);
        Assert.Equal(TypeOf(expected.GetProperty("stored_dtype").GetString()!), header.StoredType);
        Assert.Equal(TypeOf(expected.GetProperty("output_dtype").GetString()!), header.OutputType);
        string source = header.SformCode > 0 ? "sform" : header.QformCode > 0 ? "qform" : "pixdim";
        Assert.Equal(source, header.GeometrySource);
        AssertAffine(Matrix(expected.GetProperty("affine")), header.RasAffine, name);
    }

    [Fact]
    public void WithoutXformsTheAffineIsItksNotNibabels()
    {
        // ITK: diag(pixdim), origin 0. nibabel centres the volume and flips x. We follow ITK (see docs/imaging.md).
        var header = NiftiReader.ReadHeader(Path.Combine(RepoPaths.NiftiFixtures, "pixdim_only.nii"));
        Assert.Equal("pixdim", header.GeometrySource);
        Assert.Equal([-1.0, 0, 0, 0, -1, 0, 0, 0, 1], header.Geometry.Direction);
        Assert.Equal([0.0, 0, 0], header.Geometry.Origin);
        var nibabel = Matrix(Expected.Value["pixdim_only.nii"].GetProperty("nibabel_affine"));
        Assert.NotEqual(nibabel[0, 0], header.RasAffine[0, 0]);
    }

    internal static VoxelType TypeOf(string numpyName) => numpyName switch
    {
        "uint8" => VoxelType.UInt8,
        "int8" => VoxelType.Int8,
        "int16" => VoxelType.Int16,
        "uint16" => VoxelType.UInt16,
        "int32" => VoxelType.Int32,
        "uint32" => VoxelType.UInt32,
        "int64" => VoxelType.Int64,
        "float32" => VoxelType.Float32,
        "float64" => VoxelType.Float64,
        _ => throw new ArgumentException(numpyName),
    };

    internal static double[] AsDoubles(MedicalImage image)
    {
        var voxels = image.Voxels;
        var result = new double[voxels.Length];
        // By Type: the runtime lets sbyte[] pass as byte[] in a type pattern.
        switch (image.Type)
        {
            case VoxelType.UInt8: { var a = (byte[])voxels; for (int i = 0; i < a.Length; i++) result[i] = a[i]; break; }
            case VoxelType.Int8: { var a = (sbyte[])voxels; for (int i = 0; i < a.Length; i++) result[i] = a[i]; break; }
            case VoxelType.Int16: { var a = (short[])voxels; for (int i = 0; i < a.Length; i++) result[i] = a[i]; break; }
            case VoxelType.UInt16: { var a = (ushort[])voxels; for (int i = 0; i < a.Length; i++) result[i] = a[i]; break; }
            case VoxelType.Int32: { var a = (int[])voxels; for (int i = 0; i < a.Length; i++) result[i] = a[i]; break; }
            case VoxelType.UInt32: { var a = (uint[])voxels; for (int i = 0; i < a.Length; i++) result[i] = a[i]; break; }
            case VoxelType.Int64: { var a = (long[])voxels; for (int i = 0; i < a.Length; i++) result[i] = a[i]; break; }
            case VoxelType.Float32: { var a = (float[])voxels; for (int i = 0; i < a.Length; i++) result[i] = a[i]; break; }
            case VoxelType.Float64: ((double[])voxels).CopyTo(result, 0); break;
            default: throw new ArgumentException(image.Type.ToString());
        }
        return result;
    }

    private static double[] Doubles(JsonElement e) => e.EnumerateArray().Select(v => v.GetDouble()).ToArray();

    private static double[,] Matrix(JsonElement e)
    {
        var m = new double[4, 4];
        int r = 0;
        foreach (var row in e.EnumerateArray())
        {
            int c = 0;
            foreach (var v in row.EnumerateArray()) m[r, c++] = v.GetDouble();
            r++;
        }
        return m;
    }

    internal static void AssertAffine(double[,] want, double[,] got, string what)
    {
        for (int r = 0; r < 4; r++)
            for (int c = 0; c < 4; c++)
                if (Math.Abs(want[r, c] - got[r, c]) > 1e-6)
                    Assert.Fail($"{what}: affine[{r},{c}] = {got[r, c]:R}, expected {want[r, c]:R}");
    }

    private static void AssertClose(double[] want, double[] got, string what)
    {
        Assert.Equal(want.Length, got.Length);
        for (int i = 0; i < want.Length; i++)
            if (Math.Abs(want[i] - got[i]) > 1e-6) Assert.Fail($"{what}[{i}] = {got[i]:R}, expected {want[i]:R}");
    }
}
