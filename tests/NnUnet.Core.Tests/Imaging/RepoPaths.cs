namespace NnUnet.Core.Tests.Imaging;

/// <summary>Paths inside the repository, found by walking up from the test binaries to the folder holding the solution.</summary>
internal static class RepoPaths
{
    private static readonly Lazy<string> Root = new(() =>
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "NnUnetCluster.sln"))) return dir.FullName;
        throw new InvalidOperationException($"NnUnetCluster.sln not found above {AppContext.BaseDirectory}");
    });

    public static string RepoRoot => Root.Value;
    public static string NiftiFixtures => Path.Combine(RepoRoot, "tests", "fixtures", "nifti");

    /// <summary>Files our writer wrote, checked by nibabel after the test run (scripts/test.sh).</summary>
    public static string NibabelVerify
    {
        get
        {
            string dir = Path.Combine(RepoRoot, "TestResults", "nibabel-verify");
            Directory.CreateDirectory(dir);
            return dir;
        }
    }
}

/// <summary>A temporary folder deleted on dispose.</summary>
internal sealed class TempFolder : IDisposable
{
    public TempFolder() => Path = Directory.CreateTempSubdirectory("nnunet-nifti-").FullName;
    public string Path { get; }
    public string File(string name) => System.IO.Path.Combine(Path, name);
    public void Dispose() { try { Directory.Delete(Path, recursive: true); } catch (IOException) { } }
}
