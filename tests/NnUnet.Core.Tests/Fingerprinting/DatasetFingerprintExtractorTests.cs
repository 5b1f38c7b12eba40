using System.Text.Json.Nodes;
using NnUnet.Core.Datasets;
using NnUnet.Core.Fingerprinting;
using NnUnet.Core.Imaging;
using NnUnet.Core.Tests.Datasets;
using NnUnet.Core.Tests.Splits;

namespace NnUnet.Core.Tests.Fingerprinting;

public class DatasetFingerprintExtractorTests
{
    private static readonly Lazy<JsonObject> Vectors = new(() =>
        (JsonObject)JsonNode.Parse(File.ReadAllText(SplitVectors.FixturePath("fingerprint", "fingerprint_vectors.json")))!);

    // Same formulas as tests/fixtures/fingerprint/make_fingerprint_vectors.py.
    private static float ImageValue(int k, int c, int z, int y, int x, int[] shape)
    {
        bool inside = z >= 1 && y >= 1 && x >= 2 && x < shape[2] - 1;
        if (!inside) return 0;
        if (z == shape[0] / 2 && y == shape[1] / 2 && x == shape[2] / 2) return 0;
        long key = (z * 7919L + y * 104729L + x * 1299709L + k * 15485863L + c * 13L) % 1009;
        return (float)(key * 0.37 - 50.0 + c * 100.0);
    }

    private static int LabelValue(int k, int z, int y, int x, int[] shape, HashSet<int> emptyCases)
    {
        if (emptyCases.Contains(k)) return 0;
        bool inside = z >= 1 && y >= 1 && x >= 2 && x < shape[2] - 1;
        if (!inside) return 0;
        if (x == 3) return 2;
        return (z + y + x + k) % 3 == 0 ? 1 : 0;
    }

    private static (string Folder, JsonObject Entry) WriteFixtureDataset(TempFolder tmp, int index)
    {
        var entry = (JsonObject)Vectors.Value["datasets"]![index]!;
        var shapes = entry["shapes"]!.AsArray().Select(s => s!.AsArray().Select(v => (int)v!).ToArray()).ToArray();
        int channels = (int)entry["channels"]!;
        var empty = entry["cases_without_foreground"]!.AsArray().Select(v => (int)v!).ToHashSet();
        string folder = Path.Combine(tmp.Path, "raw", $"Dataset{100 + index:D3}_{(string)entry["name"]!}");
        Directory.CreateDirectory(folder);
        File.WriteAllText(Path.Combine(folder, "dataset.json"), SyntheticDataset.DatasetJson(channels, 3, shapes.Length));
        var geometry = ImageGeometry.Identity(0.5, 0.75, 2.5);
        for (int k = 0; k < shapes.Length; k++)
        {
            int[] shape = shapes[k];
            int caseIndex = k;
            for (int c = 0; c < channels; c++)
            {
                int channel = c;
                SyntheticDataset.WriteImage(folder, $"case_{k:D2}", c, SyntheticDataset.Image(shape, (z, y, x) => ImageValue(caseIndex, channel, z, y, x, shape), geometry));
            }
            SyntheticDataset.WriteLabel(folder, $"case_{k:D2}", SyntheticDataset.Label(shape, (z, y, x) => LabelValue(caseIndex, z, y, x, shape, empty), geometry));
        }
        return (folder, entry);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    public void MatchesNnUnetsFingerprintComputedByNumpy(int index)
    {
        using var tmp = new TempFolder();
        var (folder, entry) = WriteFixtureDataset(tmp, index);
        var expected = entry["expected"]!.AsObject();
        var dataset = RawDataset.Open(folder);
        var fingerprint = DatasetFingerprintExtractor.Extract(dataset, maxParallelism: 2, totalSamples: (long)entry["total_samples"]!);

        Assert.Equal(expected["shapes_after_crop"]!.AsArray().Select(s => s!.AsArray().Select(v => (int)v!).ToArray()), fingerprint.ShapesAfterCrop);
        Assert.Equal(expected["spacings"]!.AsArray().Select(s => s!.AsArray().Select(v => (double)v!).ToArray()), fingerprint.Spacings);
        Assert.Equal((double)expected["median_relative_size_after_cropping"]!, fingerprint.MedianRelativeSizeAfterCropping);
        var channels = expected["foreground_intensity_properties_per_channel"]!.AsObject();
        Assert.Equal(channels.Count, fingerprint.ForegroundIntensityPropertiesPerChannel.Count);
        foreach (var (channel, node) in channels)
        {
            var actual = fingerprint.ForegroundIntensityPropertiesPerChannel[channel];
            Assert.Equal((double)node!["mean"]!, actual.Mean);
            Assert.Equal((double)node["median"]!, actual.Median);
            Assert.Equal((double)node["std"]!, actual.Std);
            Assert.Equal((double)node["min"]!, actual.Min);
            Assert.Equal((double)node["max"]!, actual.Max);
            Assert.Equal((double)node["percentile_99_5"]!, actual.Percentile99_5);
            Assert.Equal((double)node["percentile_00_5"]!, actual.Percentile00_5);
        }
    }

    [Fact]
    public void CaseAnalysisMatchesAnIndependentComputation()
    {
        // 1 channel, 4x5x6, foreground = 3 voxels with distinct values: every sample must be one of them and the crop
        // must be the non-zero box.
        int[] shape = [4, 5, 6];
        var geometry = ImageGeometry.Identity(1, 1, 3);
        var image = SyntheticDataset.Image(shape, (z, y, x) => z >= 1 && z <= 2 && y >= 1 && y <= 3 && x >= 2 && x <= 4 ? 10 + x + 10 * y : 0, geometry);
        var label = SyntheticDataset.Label(shape, (z, y, x) => z == 1 && y == 2 && x >= 2 && x <= 4 ? 1 : 0, geometry);
        var result = DatasetFingerprintExtractor.AnalyzeCase("c", image, label, 50);
        Assert.Equal([2, 3, 3], result.ShapeAfterCrop);
        Assert.Equal([3.0, 1.0, 1.0], result.Spacing);
        Assert.Equal(18.0 / 120.0, result.RelativeSizeAfterCropping, 12);
        var samples = Assert.Single(result.ForegroundSamples);
        Assert.Equal(50, samples.Length);
        Assert.All(samples, v => Assert.Contains(v, new[] { 32f, 33f, 34f }));

        // The draws are numpy's choice(3, 50) with RandomState(1234): recompute them with the RNG directly.
        var rs = new NumpyRandomState(1234);
        var drawn = new int[50];
        rs.ChoiceWithReplacement(3, drawn);
        Assert.Equal(drawn.Select(i => 32f + i), samples);
    }

    [Fact]
    public void RunWritesFingerprintAndDatasetJsonAndReusesUnlessClean()
    {
        using var tmp = new TempFolder();
        string raw = SyntheticDataset.CreateValid(tmp.Path, "Dataset009_Run", ["a", "b", "c"], channels: 2);
        string preprocessed = Path.Combine(tmp.Path, "pre", "Dataset009_Run");
        var dataset = RawDataset.Open(raw);
        var first = DatasetFingerprintExtractor.Run(dataset, preprocessed, clean: false, maxParallelism: 2, out bool reused, totalSamples: 300);
        Assert.False(reused);
        string path = Path.Combine(preprocessed, DatasetFingerprintExtractor.FileName);
        Assert.True(File.Exists(Path.Combine(preprocessed, "dataset.json")));
        var json = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        foreach (string key in new[] { "spacings", "shapes_after_crop", "foreground_intensity_properties_per_channel", "median_relative_size_after_cropping" })
            Assert.True(json.ContainsKey(key), key);
        Assert.Equal(3, json["spacings"]!.AsArray().Count);
        Assert.NotNull(json["foreground_intensity_properties_per_channel"]!["1"]!["percentile_00_5"]);

        // Change the stored file: without --clean it is reused as is, with --clean it is recomputed.
        json["median_relative_size_after_cropping"] = 0.123;
        File.WriteAllText(path, json.ToJsonString());
        var second = DatasetFingerprintExtractor.Run(dataset, preprocessed, clean: false, maxParallelism: 1, out reused, totalSamples: 300);
        Assert.True(reused);
        Assert.Equal(0.123, second.MedianRelativeSizeAfterCropping);
        var third = DatasetFingerprintExtractor.Run(dataset, preprocessed, clean: true, maxParallelism: 1, out reused, totalSamples: 300);
        Assert.False(reused);
        Assert.Equal(first.MedianRelativeSizeAfterCropping, third.MedianRelativeSizeAfterCropping);
        Assert.Equal(first.ForegroundIntensityPropertiesPerChannel["0"], third.ForegroundIntensityPropertiesPerChannel["0"]);
        Assert.Equal(first.ShapesAfterCrop, DatasetFingerprintExtractor.Load(path).ShapesAfterCrop);
    }

    [Fact]
    public void TwoDimensionalFilesGetNnUnets999Spacing()
    {
        using var tmp = new TempFolder();
        string folder = tmp.Sub("Dataset011_Slices");
        File.WriteAllText(Path.Combine(folder, "dataset.json"),
            """{"channel_names": {"0": "MR"}, "labels": {"background": 0, "a": 1}, "numTraining": 1, "file_ending": ".nii"}""");
        var geometry = ImageGeometry.Identity(0.5, 0.7, 1.0);
        int[] shape = [1, 6, 7];
        string image = Path.Combine(tmp.Sub("Dataset011_Slices", "imagesTr"), "s_0000.nii");
        string label = Path.Combine(tmp.Sub("Dataset011_Slices", "labelsTr"), "s.nii");
        NnUnet.Core.Imaging.Nifti.NiftiWriter.Write(image, SyntheticDataset.Image(shape, (_, y, x) => 1 + y + x, geometry));
        NnUnet.Core.Imaging.Nifti.NiftiWriter.Write(label, SyntheticDataset.Label(shape, (_, y, _) => y > 2 ? 1 : 0, geometry));
        // Make them 2D files: NIfTI-1 dim[0] (int16 at byte 40) = 2.
        foreach (string file in new[] { image, label })
        {
            using var stream = new FileStream(file, FileMode.Open, FileAccess.ReadWrite);
            stream.Position = 40;
            stream.Write([2, 0]);
        }
        var fingerprint = DatasetFingerprintExtractor.Extract(RawDataset.Open(folder), totalSamples: 10);
        var spacing = Assert.Single(fingerprint.Spacings);
        Assert.Equal(999 * (double)0.7f, spacing[0], 9);
        Assert.Equal((double)0.7f, spacing[1], 9);
        Assert.Equal((double)0.5f, spacing[2], 9);
        Assert.Equal([1, 6, 7], fingerprint.ShapesAfterCrop[0]);
    }

    [Fact]
    public void BadCasesAreNamed()
    {
        using var tmp = new TempFolder();
        string raw = SyntheticDataset.CreateValid(tmp.Path, "Dataset010_Bad", ["a", "b"]);
        SyntheticDataset.WriteLabel(raw, "b", SyntheticDataset.Label([6, 7, 8], (z, y, x) => z == 2 && y == 3 && x == 4 ? 200 : 0));
        var inner = Assert.Throws<InvalidDataException>(() => DatasetFingerprintExtractor.Extract(RawDataset.Open(raw), totalSamples: 100));
        Assert.Contains("case b", inner.Message);
        Assert.Contains("200", inner.Message);

        File.Delete(Path.Combine(raw, "labelsTr", "b.nii.gz"));
        var missing = Assert.Throws<FileNotFoundException>(() => DatasetFingerprintExtractor.Extract(RawDataset.Open(raw), totalSamples: 100));
        Assert.Contains("case b", missing.Message);
        Assert.Contains("b.nii.gz", missing.Message);
    }

    [Fact]
    public void NoForegroundAnywhereIsAClearError()
    {
        var empty = new CaseFingerprint("a", [1, 1, 1], [1, 1, 1], 1, [Array.Empty<float>()]);
        var ex = Assert.Throws<InvalidDataException>(() => DatasetFingerprintExtractor.Combine([empty], 1));
        Assert.Contains("no training case has foreground", ex.Message);
        Assert.Equal(33_333_333, DatasetFingerprintExtractor.SamplesPerCase(3));
    }
}
