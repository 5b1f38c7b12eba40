namespace NnUnet.Cli.Tests.Reliability;

/// <summary>
/// <c>nnunet verify</c> and <c>nnunet fingerprint</c> on the bad-input corpus (tests/fixtures/bad/datasets): a non-zero
/// exit with the file, case and problem on the console, no stack trace, and an earlier fingerprint left as it was.
/// </summary>
[Collection(ConsoleCollection.Name)]
public sealed class BadInputCliTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("nnunet-cli-bad-").FullName;
    private string Raw => Path.Combine(_root, "raw");
    private string Preprocessed => Path.Combine(_root, "pre");

    public void Dispose()
    {
        try { Directory.Delete(_root, recursive: true); } catch (IOException) { }
    }

    private static string Corpus(params string[] parts) => Path.Combine([Repository.Root, "tests", "fixtures", "bad", .. parts]);

    private string Install(string corpusDataset, string datasetName)
    {
        string source = Corpus("datasets", corpusDataset);
        string target = Path.Combine(Raw, datasetName);
        foreach (string dir in Directory.EnumerateDirectories(source, "*", SearchOption.AllDirectories))
            Directory.CreateDirectory(Path.Combine(target, Path.GetRelativePath(source, dir)));
        Directory.CreateDirectory(target);
        foreach (string file in Directory.EnumerateFiles(source, "*", SearchOption.AllDirectories))
            File.Copy(file, Path.Combine(target, Path.GetRelativePath(source, file)));
        return target;
    }

    private (int ExitCode, string Out, string Error) Run(params string[] args) =>
        CliRunner.Run([.. args, "--raw", Raw, "--preprocessed", Preprocessed]);

    [Theory]
    [InlineData("nan_image", "NaN")]
    [InlineData("undeclared_label", "case_000")]
    [InlineData("shape_mismatch", "case_000")]
    [InlineData("json_wrong_types", "numTraining")]
    [InlineData("json_not_json", "not valid JSON")]
    [InlineData("traversal_case_id", "not a valid case id")]
    public void Verify_exits_non_zero_and_names_the_problem(string corpusDataset, string expected)
    {
        Install(corpusDataset, "Dataset951_Bad");
        var result = Run("verify", "951");
        string all = result.Out + result.Error;
        Assert.NotEqual(NnUnetApp.ExitOk, result.ExitCode);
        Assert.Contains(expected, all);
        Assert.DoesNotContain("   at ", all);
        Assert.DoesNotContain("Exception", all);
    }

    [Fact]
    public void Failed_fingerprint_leaves_the_earlier_fingerprint_untouched()
    {
        string folder = Install("valid", "Dataset952_Rel");
        Assert.Equal(NnUnetApp.ExitOk, Run("fingerprint", "952").ExitCode);
        string fingerprint = Path.Combine(Preprocessed, "Dataset952_Rel", "dataset_fingerprint.json");
        byte[] bytes = File.ReadAllBytes(fingerprint);
        var time = File.GetLastWriteTimeUtc(fingerprint);

        // a new, broken case arrives; a forced recompute must fail by name and keep the old result
        string broken = Path.Combine(folder, "imagesTr", "case_001_0000.nii.gz");
        File.Copy(Corpus("nifti", "truncated_gzip.nii.gz"), broken);
        File.Copy(Path.Combine(folder, "labelsTr", "case_000.nii.gz"), Path.Combine(folder, "labelsTr", "case_001.nii.gz"));
        File.WriteAllText(Path.Combine(folder, "dataset.json"), File.ReadAllText(Path.Combine(folder, "dataset.json")).Replace("\"numTraining\": 1", "\"numTraining\": 2"));

        var verify = Run("verify", "952");
        Assert.NotEqual(NnUnetApp.ExitOk, verify.ExitCode);
        Assert.Contains(broken, verify.Out + verify.Error);

        var again = Run("fingerprint", "952", "--clean");
        string all = again.Out + again.Error;
        Assert.NotEqual(NnUnetApp.ExitOk, again.ExitCode);
        Assert.Contains(broken, all);
        Assert.Contains("truncated", all);
        Assert.DoesNotContain("   at ", all);
        Assert.Equal(bytes, File.ReadAllBytes(fingerprint));
        Assert.Equal(time, File.GetLastWriteTimeUtc(fingerprint));
    }
}
