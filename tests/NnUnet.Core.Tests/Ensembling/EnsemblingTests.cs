using NnUnet.Core.Ensembling;

namespace NnUnet.Core.Tests.Ensembling;

public class EnsemblingTests
{
    private static string Fixture(string name)
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            string candidate = Path.Combine(dir.FullName, "tests", "fixtures", "components", name);
            if (File.Exists(candidate)) return candidate;
        }
        throw new FileNotFoundException($"tests/fixtures/components/{name} not found above {AppContext.BaseDirectory}");
    }

    [Fact]
    public void Average_is_the_float32_sum_in_member_order_divided_by_the_count()
    {
        var rng = new Random(11);
        var members = new List<ProbabilityMap>();
        for (int m = 0; m < 3; m++)
        {
            var v = new float[2 * 1 * 3 * 4];
            for (int i = 0; i < v.Length; i++) v[i] = (float)rng.NextDouble();
            members.Add(new ProbabilityMap(2, 1, 3, 4, v));
        }
        var average = ProbabilityEnsembler.Average(members);
        for (int i = 0; i < average.Values.Length; i++)
        {
            float expected = members[0].Values[i];
            expected += members[1].Values[i];
            expected += members[2].Values[i];
            expected /= 3f;
            Assert.Equal(expected, average.Values[i]);
        }
    }

    [Fact]
    public void Argmax_takes_the_first_class_on_ties_and_regions_paint_in_order()
    {
        // 3 classes, 4 voxels: argmax 2, tie 0/1 -> 0, 1, tie 1/2 -> 1
        float[] softmax = [0.1f, 0.4f, 0.2f, 0.3f, /**/ 0.2f, 0.4f, 0.5f, 0.35f, /**/ 0.7f, 0.2f, 0.3f, 0.35f];
        var labels = ProbabilityEnsembler.ToSegmentation(new ProbabilityMap(3, 1, 1, 4, softmax), SegmentationHeads.Softmax);
        Assert.Equal(new[] { 2, 0, 1, 1 }, labels.Labels);

        // regions (1,2) painted 1, then (2,) painted 2 on top; exactly 0.5 is not above 0.5
        float[] sigmoid = [0.9f, 0.9f, 0.5f, 0.1f, /**/ 0.2f, 0.8f, 0.9f, 0.5f];
        var regions = ProbabilityEnsembler.ToSegmentation(new ProbabilityMap(2, 1, 1, 4, sigmoid), SegmentationHeads.Regions([1, 2]));
        Assert.Equal(new[] { 1, 2, 2, 0 }, regions.Labels);
    }

    [Fact]
    public void Members_of_different_shapes_are_an_error_naming_the_case()
    {
        var a = new ProbabilityMap(2, 1, 2, 2, new float[8]);
        var b = new ProbabilityMap(2, 1, 4, 1, new float[8]);
        var ex = Assert.Throws<InvalidDataException>(() => ProbabilityEnsembler.Average([a, b], "case_3"));
        Assert.Contains("case_3", ex.Message);
    }

    [Fact]
    public void Reads_npz_written_by_numpy_savez_compressed()
    {
        var map = ProbabilityMap.Load(Fixture("probabilities_numpy.npz"));
        Assert.Equal(new[] { 2, 3, 4, 5 }, map.Shape);
        for (int i = 0; i < map.Values.Length; i++) Assert.Equal((float)((i % 17) / 16.0), map.Values[i]);
    }

    [Fact]
    public void Npz_written_here_is_read_by_numpy()
    {
        string folder = Directory.CreateTempSubdirectory("nnunet-npz").FullName;
        try
        {
            var values = new float[2 * 2 * 3 * 4];
            for (int i = 0; i < values.Length; i++) values[i] = i * 0.25f;
            string path = Path.Combine(folder, "case.npz");
            new ProbabilityMap(2, 2, 3, 4, values).Save(path);
            Assert.Equal(values, ProbabilityMap.Load(path).Values);

            string output = Python.Run("import sys, numpy as np\np = np.load(sys.argv[1])['probabilities']\n" +
                "assert p.dtype == np.float32 and p.shape == (2, 2, 3, 4), (p.dtype, p.shape)\n" +
                "assert (p.ravel() == np.arange(48, dtype=np.float32) * 0.25).all()\nprint('ok')", path);
            Assert.Equal("ok", output.Trim());
        }
        finally { Directory.Delete(folder, true); }
    }

    [Fact]
    public void A_file_that_is_not_a_zip_is_a_clear_error()
    {
        string folder = Directory.CreateTempSubdirectory("nnunet-npz").FullName;
        try
        {
            string path = Path.Combine(folder, "broken.npz");
            File.WriteAllText(path, "not a zip");
            var ex = Assert.Throws<InvalidDataException>(() => ProbabilityMap.Load(path));
            Assert.Contains("broken.npz", ex.Message);
        }
        finally { Directory.Delete(folder, true); }
    }
}
