using NnUnet.Core.Preprocessing;

namespace NnUnet.Core.Tests.Preprocessing;

public sealed class ClassLocationsTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("classloc-tests-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void Sampling_matches_numpy_including_the_one_percent_rule_and_regions()
    {
        // label 1 covers ~1.2M voxels (1% ~ 12,000 > 10,000 samples), label 2 a few hundred, label 3 is absent
        int[] shape = [30, 200, 210];
        var seg = new sbyte[30 * 200 * 210];
        var rng = new Random(11);
        for (int i = 0; i < seg.Length; i++)
        {
            int r = rng.Next(1000);
            seg[i] = (sbyte)(r < 950 ? 1 : r < 951 ? 2 : r < 960 ? -1 : 0);
        }
        NpyFile.Write<sbyte>(Path.Combine(_dir, "seg.npy"), seg, shape);
        ClassLocations.SampledClass[] classes = [new(1, [1]), new(3, [3]), new(2, [2]), new(7, [2, -1])];
        var result = ClassLocations.Sample(seg, shape, classes);
        int ones = 0;
        foreach (sbyte v in seg) if (v == 1) ones++;
        Assert.True(ones > 1_000_000);
        Assert.Equal((int)Math.Ceiling(ones * 0.01), result[1].Length);
        Assert.Empty(result[3]);

        const string script = """
            import numpy as np, sys, os
            d = sys.argv[1]
            seg = np.load(os.path.join(d, 'seg.npy'))
            rs = np.random.RandomState(1234)
            out = []
            for labels in ([1], [3], [2], [2, -1]):
                # nnU-Net v2: voxels grouped label by label (in the class's order), each label in C order
                coords = np.concatenate([np.argwhere(seg == l) for l in labels])
                if len(coords) == 0:
                    out.append(np.zeros((0, 3), dtype=np.int64)); continue
                n = max(min(10000, len(coords)), int(np.ceil(len(coords) * 0.01)))
                out.append(coords[rs.choice(len(coords), n, replace=False)])
            np.save(os.path.join(d, 'expected.npy'), np.concatenate(out).astype(np.int32))
            print(*[len(o) for o in out])
            """;
        string counts = Python.Run(script, _dir).Trim();
        var expected = NpyFile.Read<int>(Path.Combine(_dir, "expected.npy"), out _);
        Assert.Equal($"{result[1].Length} 0 {result[2].Length} {result[7].Length}", counts);
        int k = 0;
        foreach (int key in new[] { 1, 3, 2, 7 })
            foreach (var location in result[key])
            {
                Assert.Equal(expected[3 * k], location[0]);
                Assert.Equal(expected[3 * k + 1], location[1]);
                Assert.Equal(expected[3 * k + 2], location[2]);
                k++;
            }
    }

    [Fact]
    public void Classes_for_labels_regions_and_ignore_label()
    {
        var labels = ClassLocations.ClassesFor(TestPlans.Dataset(1, 1, 2));
        Assert.Equal([1, 2], labels.Select(c => c.Key));
        var regions = NnUnet.Core.Datasets.DatasetJson.Create(["CT"],
            [new("background", [0]), new("whole", [1, 2, 3]), new("core", [2, 3]), new("enhancing", [3])], 1, ".nii.gz", regionsClassOrder: [1, 2, 3]);
        var regionClasses = ClassLocations.ClassesFor(regions);
        Assert.Equal([0, 1, 2], regionClasses.Select(c => c.Key));
        Assert.Equal([2, 3], regionClasses[1].Labels);
    }
}
