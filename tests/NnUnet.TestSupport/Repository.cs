namespace NnUnet.TestSupport;

/// <summary>Paths inside the repository, found by walking up from the test binaries to the folder holding the solution.</summary>
public static class Repository
{
    private static readonly Lazy<string> RootFolder = new(() =>
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "NnUnetCluster.sln"))) return dir.FullName;
        throw new InvalidOperationException($"NnUnetCluster.sln not found above {AppContext.BaseDirectory}");
    });

    public static string Root => RootFolder.Value;

    /// <summary><c>TestResults/</c> at the repository root (screenshots, files for a later check), created on first use.</summary>
    public static string TestResults(string? subfolder = null)
    {
        string dir = subfolder is null ? Path.Combine(Root, "TestResults") : Path.Combine(Root, "TestResults", subfolder);
        Directory.CreateDirectory(dir);
        return dir;
    }

    /// <summary>The <c>nnunet</c> CLI built next to the tests (same configuration), for tests that start real processes.</summary>
    public static string CliDll()
    {
        var config = AppContext.BaseDirectory.Contains("/Release/", StringComparison.Ordinal) ? "Release" : "Debug";
        var dll = Path.Combine(Root, "src", "NnUnet.Cli", "bin", config, "net10.0", "nnunet.dll");
        if (!File.Exists(dll)) throw new FileNotFoundException($"{dll} does not exist: build src/NnUnet.Cli ({config}) first");
        return dll;
    }
}
