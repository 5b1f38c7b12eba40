namespace NnUnet.Core.Tests.Imaging;

/// <summary>Paths inside the repository, found by walking up from the test binaries to the folder holding the solution.</summary>
internal static class RepoPaths
{
    public static string RepoRoot => Repository.Root;
    public static string NiftiFixtures => Path.Combine(RepoRoot, "tests", "fixtures", "nifti");

    /// <summary>Files our writer wrote, checked by nibabel after the test run (scripts/test.sh).</summary>
    public static string NibabelVerify
    {
        get => Repository.TestResults("nibabel-verify");
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
