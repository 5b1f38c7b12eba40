using System.Text.Json;

namespace NnUnet.Cli.Tests.Imaging;

[Collection(ConsoleCollection.Name)]
public class ImageInfoCommandTests
{
    private static string Fixture(string name) => Path.Combine(Repository.Root, "tests", "fixtures", "nifti", name);

    [Fact]
    public void JsonReportsShapeGeometryAndStatistics()
    {
        var (code, stdout, stderr) = CliRunner.Run("image", "info", Fixture("four_d_int16.nii"), "--json");
        Assert.True(code == 0, stderr);
        var json = JsonDocument.Parse(stdout).RootElement;
        Assert.Equal([7, 6, 5], json.GetProperty("shape_zyx").EnumerateArray().Select(e => e.GetInt32()));
        Assert.Equal(2, json.GetProperty("channels").GetInt32());
        Assert.Equal("int16", json.GetProperty("dtype").GetString());
        Assert.Equal("sform", json.GetProperty("geometry_source").GetString());
        // AXIS fixture: RAS diag(0.75, 0.8, 2.5), origin (-10.5, 20.25, -30) -> LPS origin (10.5, -20.25, -30).
        Assert.Equal([10.5, -20.25, -30], json.GetProperty("origin").EnumerateArray().Select(e => e.GetDouble()));
        Assert.Equal(0.75, json.GetProperty("ras_affine")[0][0].GetDouble());
        Assert.Equal(-1, json.GetProperty("direction")[0].GetDouble());
        // The fixture generator puts the type's extremes in voxels 0 and 1.
        Assert.Equal(-32768, json.GetProperty("min").GetDouble());
        Assert.Equal(32767, json.GetProperty("max").GetDouble());
        Assert.Equal(2, json.GetProperty("channel_stats").GetArrayLength());
    }

    [Fact]
    public void TableShowsTheFields()
    {
        var (code, stdout, stderr) = CliRunner.Run("image", "info", Fixture("scaled_int16.nii"));
        Assert.True(code == 0, stderr);
        foreach (var field in new[] { "shape (z, y, x)", "7 x 6 x 5", "channels", "float32", "stored int16", "spacing", "origin", "direction", "RAS affine", "min / max / mean" })
            Assert.Contains(field, stdout);
    }

    [Fact]
    public void BadFileGivesOneErrorLineAndExitCode2()
    {
        string path = Fixture("expected.json");
        var (code, stdout, stderr) = CliRunner.Run("image", "info", path);
        Assert.Equal(NnUnetApp.ExitBadInput, code);
        var lines = stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines);
        Assert.Contains(path, lines[0]);
        Assert.Contains("sizeof_hdr", lines[0]);
        Assert.Equal("", stdout);
    }

    [Fact]
    public void MissingFileGivesExitCode2()
    {
        var (code, _, stderr) = CliRunner.Run("image", "info", Fixture("no_such_file.nii.gz"));
        Assert.Equal(NnUnetApp.ExitBadInput, code);
        Assert.Contains("no_such_file.nii.gz", stderr);
    }
}
