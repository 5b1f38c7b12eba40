using System.Text.Json;
using NnUnet.Core.Imaging;
using NnUnet.Core.Imaging.Nifti;

namespace NnUnet.Core.Tests.Imaging;

/// <summary>Write then read gives the same voxels and geometry; every written file is also left for nibabel to check.</summary>
public class NiftiRoundTripTests
{
    private static readonly VoxelType[] AllTypes =
    [
        VoxelType.UInt8, VoxelType.Int8, VoxelType.Int16, VoxelType.UInt16, VoxelType.Int32, VoxelType.UInt32,
        VoxelType.Int64, VoxelType.Float32, VoxelType.Float64,
    ];

    public static TheoryData<VoxelType, string, int> Cases()
    {
        var data = new TheoryData<VoxelType, string, int>();
        foreach (var type in AllTypes)
            foreach (var extension in new[] { ".nii", ".nii.gz" })
                foreach (int channels in new[] { 1, 3 })
                    data.Add(type, extension, channels);
        return data;
    }

    /// <summary>An oblique, left-handed geometry with values that float32 does not hold exactly.</summary>
    internal static ImageGeometry Oblique()
    {
        double a = 0.4, b = -0.25;
        double[] rz = [Math.Cos(a), -Math.Sin(a), 0, Math.Sin(a), Math.Cos(a), 0, 0, 0, 1];
        double[] rx = [1, 0, 0, 0, Math.Cos(b), -Math.Sin(b), 0, Math.Sin(b), Math.Cos(b)];
        var d = new double[9];
        for (int r = 0; r < 3; r++)
            for (int c = 0; c < 3; c++)
                for (int k = 0; k < 3; k++) d[r * 3 + c] += rz[r * 3 + k] * rx[k * 3 + c];
        for (int r = 0; r < 3; r++) d[r * 3 + 2] = -d[r * 3 + 2]; // reflection: qfac = -1
        return new ImageGeometry([0.7, 1.3, 2.9], [-101.3, 57.71, 12.25], d);
    }

    internal static MedicalImage Sample(VoxelType type, int channels, int sizeZ, int sizeY, int sizeX, ImageGeometry geometry, int seed)
    {
        var random = new Random(seed);
        int n = channels * sizeZ * sizeY * sizeX;
        Array voxels = type switch
        {
            VoxelType.UInt8 => Fill<byte>(n, () => (byte)random.Next(256)),
            VoxelType.Int8 => Fill<sbyte>(n, () => (sbyte)random.Next(-128, 128)),
            VoxelType.Int16 => Fill<short>(n, () => (short)random.Next(short.MinValue, short.MaxValue + 1)),
            VoxelType.UInt16 => Fill<ushort>(n, () => (ushort)random.Next(ushort.MaxValue + 1)),
            VoxelType.Int32 => Fill(n, () => random.Next(int.MinValue, int.MaxValue)),
            VoxelType.UInt32 => Fill(n, () => (uint)random.NextInt64(uint.MaxValue + 1L)),
            VoxelType.Int64 => Fill(n, () => random.NextInt64(-(1L << 50), 1L << 50)),
            VoxelType.Float32 => Fill(n, () => (float)(random.NextDouble() * 2000 - 1000)),
            VoxelType.Float64 => Fill(n, () => random.NextDouble() * 2e6 - 1e6),
            _ => throw new ArgumentException(type.ToString()),
        };
        return new MedicalImage(channels, sizeZ, sizeY, sizeX, type, voxels, geometry);
    }

    private static T[] Fill<T>(int n, Func<T> next)
    {
        var a = new T[n];
        for (int i = 0; i < n; i++) a[i] = next();
        return a;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void EveryTypeRoundTrips(VoxelType type, string extension, int channels)
    {
        var image = Sample(type, channels, 4, 5, 6, Oblique(), seed: (int)type * 10 + channels);
        string name = $"roundtrip_{type}_{channels}c{extension}";
        string path = Path.Combine(RepoPaths.NibabelVerify, name);
        NiftiWriter.Write(path, image);
        WriteSidecar(path, image);

        var back = NiftiReader.Read(path);
        AssertSameVoxels(image, back);
        AssertGeometryClose(image.Geometry, back.Geometry, 1e-5); // NIfTI-1 stores geometry as float32
        var header = NiftiReader.ReadHeader(path);
        Assert.Equal(NiftiVersion.Nifti1, header.Version);
        Assert.Equal(extension == ".nii.gz", header.IsGzipped);
        Assert.Equal((1, 1), (header.QformCode, header.SformCode));
    }

    [Fact]
    public void Float32ExactGeometryRoundTripsExactly()
    {
        // Axis-aligned, float32-exact values: the geometry comes back bit for bit (record equality).
        var geometry = new ImageGeometry([0.75, 0.5, 2.5], [-12.5, 100.25, 3], [-1, 0, 0, 0, 1, 0, 0, 0, -1]);
        var image = Sample(VoxelType.Int16, 1, 3, 4, 5, geometry, seed: 1);
        using var temp = new TempFolder();
        NiftiWriter.Write(temp.File("exact.nii.gz"), image);
        var back = NiftiReader.Read(temp.File("exact.nii.gz"));
        Assert.Equal(geometry, back.Geometry);
        AssertSameVoxels(image, back);
    }

    [Fact]
    public void QformAloneReproducesTheGeometry()
    {
        // The writer's quaternion must describe the same orientation as its sform: drop the sform and re-read.
        var image = Sample(VoxelType.Float32, 1, 3, 4, 5, Oblique(), seed: 2);
        using var temp = new TempFolder();
        string path = temp.File("qform.nii");
        NiftiWriter.Write(path, image);
        var bytes = File.ReadAllBytes(path);
        bytes[254] = 0; bytes[255] = 0; // sform_code = 0
        File.WriteAllBytes(path, bytes);
        var header = NiftiReader.ReadHeader(path);
        Assert.Equal("qform", header.GeometrySource);
        AssertGeometryClose(image.Geometry, header.Geometry, 1e-5);
    }

    [Theory]
    [InlineData(".nii")]
    [InlineData(".nii.gz")]
    public void Nifti2OnRequestRoundTripsInDoublePrecision(string extension)
    {
        var image = Sample(VoxelType.Float64, 2, 3, 4, 5, Oblique(), seed: 3);
        string path = Path.Combine(RepoPaths.NibabelVerify, $"roundtrip_nifti2{extension}");
        NiftiWriter.Write(path, image, new NiftiWriteOptions { Version = NiftiVersion.Nifti2 });
        WriteSidecar(path, image);
        var header = NiftiReader.ReadHeader(path);
        Assert.Equal(NiftiVersion.Nifti2, header.Version);
        var back = NiftiReader.Read(path);
        AssertSameVoxels(image, back);
        AssertGeometryClose(image.Geometry, back.Geometry, 1e-12);
    }

    [Fact]
    public void AxisLongerThanNifti1AllowsIsWrittenAsNifti2()
    {
        var image = Sample(VoxelType.UInt8, 1, 1, 1, 40000, ImageGeometry.Identity(), seed: 4);
        using var temp = new TempFolder();
        NiftiWriter.Write(temp.File("long.nii.gz"), image);
        Assert.Equal(NiftiVersion.Nifti2, NiftiReader.ReadHeader(temp.File("long.nii.gz")).Version);
        AssertSameVoxels(image, NiftiReader.Read(temp.File("long.nii.gz")));
        Assert.Throws<ArgumentException>(() =>
            NiftiWriter.Write(temp.File("forced.nii"), image, new NiftiWriteOptions { Version = NiftiVersion.Nifti1 }));
    }

    [Fact]
    public void TwoDimensionalImageRoundTripsAsOneSlice()
    {
        var image = Sample(VoxelType.Int16, 1, 1, 6, 7, Oblique(), seed: 5);
        string path = Path.Combine(RepoPaths.NibabelVerify, "roundtrip_2d.nii.gz");
        NiftiWriter.Write(path, image);
        WriteSidecar(path, image);
        var back = NiftiReader.Read(path);
        Assert.Equal(1, back.SizeZ);
        AssertSameVoxels(image, back);
    }

    [Fact]
    public void WriteReplacesAnExistingFileAndLeavesNoTemporaryFiles()
    {
        using var temp = new TempFolder();
        string path = temp.File("out.nii.gz");
        NiftiWriter.Write(path, Sample(VoxelType.UInt8, 1, 2, 2, 2, ImageGeometry.Identity(), 6));
        var second = Sample(VoxelType.Float32, 1, 3, 3, 3, ImageGeometry.Identity(2, 2, 2), 7);
        NiftiWriter.Write(path, second);
        AssertSameVoxels(second, NiftiReader.Read(path));
        Assert.Equal(["out.nii.gz"], Directory.GetFiles(temp.Path).Select(Path.GetFileName));
    }

    [Fact]
    public void WriterRejectsBadNamesAndGeometry()
    {
        using var temp = new TempFolder();
        var image = Sample(VoxelType.UInt8, 1, 2, 2, 2, ImageGeometry.Identity(), 8);
        var e = Assert.Throws<ArgumentException>(() => NiftiWriter.Write(temp.File("x.nrrd"), image));
        Assert.Contains("x.nrrd", e.Message);
        var flat = new MedicalImage(1, 2, 2, 2, VoxelType.UInt8, new byte[8], new ImageGeometry([1, 0, 1], [0, 0, 0], [1, 0, 0, 0, 1, 0, 0, 0, 1]));
        e = Assert.Throws<ArgumentException>(() => NiftiWriter.Write(temp.File("flat.nii"), flat));
        Assert.Contains("spacing[1]", e.Message);
        Assert.Empty(Directory.GetFiles(temp.Path));
    }

    internal static void AssertSameVoxels(MedicalImage expected, MedicalImage actual)
    {
        Assert.Equal((expected.Channels, expected.SizeZ, expected.SizeY, expected.SizeX), (actual.Channels, actual.SizeZ, actual.SizeY, actual.SizeX));
        Assert.Equal(expected.Type, actual.Type);
        Assert.Equal(expected.Voxels.GetType(), actual.Voxels.GetType());
        Assert.Equal(NiftiFixtureTests.AsDoubles(expected), NiftiFixtureTests.AsDoubles(actual));
    }

    internal static void AssertGeometryClose(ImageGeometry expected, ImageGeometry actual, double tolerance)
    {
        for (int i = 0; i < 3; i++)
        {
            Assert.True(Math.Abs(expected.Spacing[i] - actual.Spacing[i]) <= tolerance * Math.Max(1, expected.Spacing[i]), $"spacing[{i}] {actual.Spacing[i]} vs {expected.Spacing[i]}");
            Assert.True(Math.Abs(expected.Origin[i] - actual.Origin[i]) <= tolerance * Math.Max(1, Math.Abs(expected.Origin[i])), $"origin[{i}] {actual.Origin[i]} vs {expected.Origin[i]}");
        }
        for (int i = 0; i < 9; i++)
            Assert.True(Math.Abs(expected.Direction[i] - actual.Direction[i]) <= tolerance, $"direction[{i}] {actual.Direction[i]} vs {expected.Direction[i]}");
    }

    /// <summary>What nibabel must find in <paramref name="path"/> (checked by make_nifti_fixtures.py --verify).</summary>
    internal static void WriteSidecar(string path, MedicalImage image)
    {
        double[] values = NiftiFixtureTests.AsDoubles(image);
        double sum = 0, sumSq = 0;
        foreach (double v in values) { sum += v; sumSq += v * v; }
        var shape = new List<int> { image.SizeX, image.SizeY, image.SizeZ };
        if (image.Channels > 1) shape.Add(image.Channels);
        var ras = image.Geometry.ToRasAffine();
        var affine = new double[4][];
        for (int r = 0; r < 4; r++) affine[r] = [ras[r, 0], ras[r, 1], ras[r, 2], ras[r, 3]];
        int[] indices = [0, 1, values.Length / 2, values.Length - 1];
        var sidecar = new
        {
            shape,
            dtype = image.Type.ToString().ToLowerInvariant(),
            affine,
            sum,
            sum_sq = sumSq,
            samples = indices.Select(i => new object[] { i, values[i] }).ToArray(),
        };
        File.WriteAllText(path + ".json", JsonSerializer.Serialize(sidecar));
    }
}
