using System.IO.Compression;
using System.Runtime.InteropServices;
using System.Text.Json.Nodes;
using NnUnet.Core.Postprocessing;

namespace NnUnet.Core.Tests.Postprocessing;

public class ConnectedComponentsTests
{
    private static string FixtureFolder()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            string candidate = Path.Combine(dir.FullName, "tests", "fixtures", "components");
            if (File.Exists(Path.Combine(candidate, "manifest.json"))) return candidate;
        }
        throw new FileNotFoundException($"tests/fixtures/components not found above {AppContext.BaseDirectory}");
    }

    private static byte[] ReadGz(string path)
    {
        using var file = File.OpenRead(path);
        using var gz = new GZipStream(file, CompressionMode.Decompress);
        using var memory = new MemoryStream();
        gz.CopyTo(memory);
        return memory.ToArray();
    }

    public static TheoryData<string> FixtureNames()
    {
        var data = new TheoryData<string>();
        foreach (var entry in JsonNode.Parse(File.ReadAllText(Path.Combine(FixtureFolder(), "manifest.json")))!.AsArray())
            data.Add(entry!["name"]!.GetValue<string>());
        return data;
    }

    [Theory]
    [MemberData(nameof(FixtureNames))]
    public void Labels_equal_scipy_ndimage_label_voxel_for_voxel(string name)
    {
        string folder = FixtureFolder();
        var entry = JsonNode.Parse(File.ReadAllText(Path.Combine(folder, "manifest.json")))!.AsArray()
            .First(e => e!["name"]!.GetValue<string>() == name)!;
        var shape = entry["shape"]!.AsArray().Select(v => v!.GetValue<int>()).ToArray();
        var connectivity = entry["connectivity"]!.GetValue<string>() == "full" ? Connectivity.Full : Connectivity.Faces;
        byte[] mask = ReadGz(Path.Combine(folder, name + ".mask.bin.gz"));
        int[] expected = MemoryMarshal.Cast<byte, int>(ReadGz(Path.Combine(folder, name + ".labels.bin.gz"))).ToArray();

        var labels = new int[mask.Length];
        int count = ConnectedComponents.Label(mask, shape[0], shape[1], shape[2], connectivity, labels);

        Assert.Equal(entry["count"]!.GetValue<int>(), count);
        Assert.Equal(expected, labels); // same partition and same numbering (raster order of first voxel)
    }

    [Fact]
    public void Faces_connectivity_does_not_join_diagonal_neighbours_but_full_does()
    {
        // two voxels touching only at a corner (z, y and x all differ)
        var mask = new byte[8];
        mask[0] = 1;           // (0,0,0)
        mask[7] = 1;           // (1,1,1)
        var labels = new int[8];
        Assert.Equal(1, ConnectedComponents.Label(mask, 2, 2, 2, Connectivity.Full, labels));
        Assert.Equal(2, ConnectedComponents.Label(mask, 2, 2, 2, Connectivity.Faces, labels));
        Assert.Equal(1, labels[0]);
        Assert.Equal(2, labels[7]);
    }

    [Fact]
    public void Keep_largest_keeps_all_components_of_the_largest_size()
    {
        // 1D row: components of sizes 2, 3, 1, 3 -> both size-3 components kept
        byte[] mask = [1, 1, 0, 1, 1, 1, 0, 1, 0, 1, 1, 1];
        var keep = new byte[mask.Length];
        int count = ConnectedComponents.KeepLargest(mask, 1, 1, mask.Length, Connectivity.Full, keep);
        Assert.Equal(4, count);
        Assert.Equal(new byte[] { 0, 0, 0, 1, 1, 1, 0, 0, 0, 1, 1, 1 }, keep);
    }

    [Fact]
    public void Component_sizes_count_voxels_per_label()
    {
        byte[] mask = [1, 1, 0, 1, 0, 0, 1, 1, 1];
        var labels = new int[mask.Length];
        int count = ConnectedComponents.Label(mask, 1, 1, mask.Length, Connectivity.Full, labels);
        Assert.Equal(new long[] { 3, 2, 1, 3 }, ConnectedComponents.ComponentSizes(labels, count));
    }
}
