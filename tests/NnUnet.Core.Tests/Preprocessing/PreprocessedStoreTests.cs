using NnUnet.Core.Imaging;
using NnUnet.Core.Preprocessing;

namespace NnUnet.Core.Tests.Preprocessing;

public sealed class PreprocessedStoreTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("store-tests-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    internal static PreprocessedCase SampleCase(string id)
    {
        int[] shape = [3, 4, 5];
        var data = new float[2 * 60];
        for (int i = 0; i < data.Length; i++) data[i] = i * 0.5f - 7;
        var seg = new sbyte[60];
        for (int i = 0; i < seg.Length; i++) seg[i] = (sbyte)(i % 4 - 1);
        var properties = new CaseProperties
        {
            Geometry = new ImageGeometry([0.7, 0.8, 2.5], [1, -2, 3], [1, 0, 0, 0, -1, 0, 0, 0, 1]),
            Spacing = [2.5, 0.8, 0.7],
            ShapeBeforeCropping = [5, 9, 9],
            BboxUsedForCropping = [[1, 4], [2, 6], [0, 5]],
            ShapeAfterCroppingAndBeforeResampling = [3, 4, 5],
            ClassLocations = new() { [1] = [[0, 1, 2], [2, 3, 4]], [2] = [] },
        };
        return new PreprocessedCase(id, data, 2, shape, seg, properties);
    }

    [Fact]
    public void Saved_case_loads_back_identically_and_is_listed()
    {
        var original = SampleCase("case_001");
        PreprocessedStore.Save(_dir, original);
        PreprocessedStore.Save(_dir, SampleCase("case_000"));
        Assert.Equal(["case_000", "case_001"], PreprocessedStore.ListCases(_dir));
        Assert.Empty(Directory.GetFiles(_dir, "*.tmp-*"));
        Assert.True(PreprocessedStore.IsComplete(_dir, "case_001", 2));
        Assert.False(PreprocessedStore.IsComplete(_dir, "case_001", 3));

        var loaded = PreprocessedStore.Load(_dir, "case_001");
        Assert.Equal(original.Data, loaded.Data);
        Assert.Equal(original.Seg, loaded.Seg);
        Assert.Equal(2, loaded.Channels);
        Assert.Equal(original.Shape, loaded.Shape);
        var p = loaded.Properties;
        Assert.Equal(original.Properties.Geometry, p.Geometry);
        Assert.Equal(original.Properties.Spacing, p.Spacing);
        Assert.Equal(original.Properties.BboxUsedForCropping, p.BboxUsedForCropping);
        Assert.Equal(original.Properties.ShapeBeforeCropping, p.ShapeBeforeCropping);
        Assert.Equal(original.Properties.ShapeAfterCroppingAndBeforeResampling, p.ShapeAfterCroppingAndBeforeResampling);
        Assert.Equal(original.Properties.ClassLocations[1], p.ClassLocations[1]);
        Assert.Empty(p.ClassLocations[2]);
        // numpy-readable layout: (c, z, y, x) float32 and (1, z, y, x) int8
        Assert.Equal([2, 3, 4, 5], NpyFile.ReadHeader(PreprocessedStore.DataPath(_dir, "case_001")).Shape);
        var segHeader = NpyFile.ReadHeader(PreprocessedStore.SegPath(_dir, "case_001"));
        Assert.Equal(NpyDType.Int8, segHeader.DType);
        Assert.Equal([1, 3, 4, 5], segHeader.Shape);
    }

    [Fact]
    public void Mapped_case_reads_the_same_values()
    {
        var original = SampleCase("m");
        PreprocessedStore.Save(_dir, original);
        var (data, seg) = PreprocessedStore.OpenMapped(_dir, "m");
        using (data)
        using (seg)
        {
            Assert.Equal([2, 3, 4, 5], data.Shape);
            Assert.True(data.Span<float>(60, 60).SequenceEqual(original.Data.AsSpan(60, 60)));
            Assert.True(seg!.Span<sbyte>(0, 60).SequenceEqual(original.Seg));
        }
    }

    [Fact]
    public void Damaged_cases_are_not_complete_and_fail_to_load_with_the_path()
    {
        PreprocessedStore.Save(_dir, SampleCase("a"));
        using (var s = new FileStream(PreprocessedStore.DataPath(_dir, "a"), FileMode.Open)) s.SetLength(s.Length - 4);
        Assert.False(PreprocessedStore.IsComplete(_dir, "a", 2));
        Assert.Contains("a.npy", Assert.Throws<InvalidDataException>(() => PreprocessedStore.Load(_dir, "a")).Message);

        PreprocessedStore.Save(_dir, SampleCase("b"));
        File.WriteAllText(PreprocessedStore.PropertiesPath(_dir, "b"), "{ not json");
        Assert.False(PreprocessedStore.IsComplete(_dir, "b", 2));
        Assert.Contains("b.json", Assert.Throws<InvalidDataException>(() => PreprocessedStore.Load(_dir, "b")).Message);

        Assert.False(PreprocessedStore.IsComplete(_dir, "missing", 2));
        Assert.Throws<FileNotFoundException>(() => PreprocessedStore.Load(_dir, "missing"));
        Assert.Throws<DirectoryNotFoundException>(() => PreprocessedStore.ListCases(Path.Combine(_dir, "nope")));
    }
}
