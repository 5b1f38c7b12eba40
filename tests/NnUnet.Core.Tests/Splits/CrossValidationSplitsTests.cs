using NnUnet.Core.Datasets;
using NnUnet.Core.Tests.Datasets;

namespace NnUnet.Core.Tests.Splits;

public class CrossValidationSplitsTests
{
    [Fact]
    public void KFoldMatchesSklearnForManyCaseCounts()
    {
        int checkedEntries = 0;
        foreach (var entry in SplitVectors.Section("kfold"))
        {
            string[] ids = SplitVectors.Strings(entry!["ids"]);
            int nSplits = (int)entry["n_splits"]!;
            // Hand the ids over unsorted: Create sorts them as nnU-Net does.
            var shuffledIds = (string[])ids.Clone();
            Array.Reverse(shuffledIds);
            var folds = CrossValidationSplits.Create(shuffledIds, nSplits, (long)entry["seed"]!);
            var expected = entry["splits"]!.AsArray();
            Assert.Equal(expected.Count, folds.Count);
            for (int f = 0; f < folds.Count; f++)
            {
                Assert.Equal(SplitVectors.Strings(expected[f]!["train"]), folds[f].Train);
                Assert.Equal(SplitVectors.Strings(expected[f]!["val"]), folds[f].Val);
            }
            checkedEntries++;
        }
        Assert.True(checkedEntries >= 12);
    }

    [Fact]
    public void FoldBeyondSplitsIsNnUnetsSeededRandom80To20()
    {
        foreach (var entry in SplitVectors.Section("random_80_20"))
        {
            string[] ids = SplitVectors.Strings(entry!["ids"]);
            var splits = CrossValidationSplits.Create(ids);
            var fold = CrossValidationSplits.SelectFold(splits, (int)entry["fold"]!, ids);
            Assert.Equal(SplitVectors.Strings(entry["train"]), fold.Train);
            Assert.Equal(SplitVectors.Strings(entry["val"]), fold.Val);
        }
    }

    [Fact]
    public void SplitsFileIsWrittenOnceAndAnExistingFileIsRespected()
    {
        using var tmp = new TempFolder();
        string folder = Path.Combine(tmp.Path, "Dataset001_X");
        string[] ids = ["a", "b", "c", "d", "e", "f", "g"];
        var first = CrossValidationSplits.LoadOrCreate(folder, ids, out bool created);
        Assert.True(created);
        string path = Path.Combine(folder, CrossValidationSplits.FileName);
        Assert.Equal(CrossValidationSplits.Create(ids).Select(f => f.Val), first.Select(f => f.Val));
        var reloaded = CrossValidationSplits.Load(path);
        Assert.Equal(first.Select(f => f.Train), reloaded.Select(f => f.Train));

        // A user-made split with 2 folds is used as is, and not replaced by a default one.
        File.WriteAllText(path, """[{"train": ["a", "b"], "val": ["c"]}, {"train": ["c"], "val": ["a", "b"]}]""");
        var custom = CrossValidationSplits.LoadOrCreate(folder, ids, out created);
        Assert.False(created);
        Assert.Equal(2, custom.Count);
        Assert.Equal(["c"], custom[0].Val);
        Assert.False(CrossValidationSplits.TrySaveNew(path, CrossValidationSplits.Create(ids)));
        Assert.Contains("\"c\"", File.ReadAllText(path));
        Assert.Equal(2, CrossValidationSplits.Load(path).Count);
    }

    [Fact]
    public void FileIsInNnUnetFormat()
    {
        using var tmp = new TempFolder();
        string path = Path.Combine(tmp.Path, "splits_final.json");
        Assert.True(CrossValidationSplits.TrySaveNew(path, [new CrossValidationFold(["a"], ["b"])]));
        var root = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(path))!.AsArray();
        Assert.Equal("a", (string)root[0]!["train"]![0]!);
        Assert.Equal("b", (string)root[0]!["val"]![0]!);
    }

    [Theory]
    [InlineData("{}", "non-empty list")]
    [InlineData("[]", "non-empty list")]
    [InlineData("""[{"train": ["a"]}]""", "split 0 has no list \"val\"")]
    [InlineData("""[{"train": ["a"], "val": [3]}]""", "split 0 \"val\"[0]")]
    [InlineData("""[{"train""", "not valid JSON")]
    public void BadSplitsFilesNameFileAndProblem(string content, string expected)
    {
        using var tmp = new TempFolder();
        string path = tmp.Write("splits_final.json", content);
        var ex = Assert.Throws<InvalidDataException>(() => CrossValidationSplits.Load(path));
        Assert.Contains(path, ex.Message);
        Assert.Contains(expected, ex.Message);
    }

    [Fact]
    public void ProblemsAgainstTheDatasetAreListed()
    {
        var problems = CrossValidationSplits.FindProblems([new CrossValidationFold(["a", "zz"], ["a", "b"])], ["a", "b"]);
        Assert.Equal(2, problems.Count);
        Assert.Contains(problems, p => p.Contains("'zz' is not a case"));
        Assert.Contains(problems, p => p.Contains("'a' is in both"));
    }

    [Fact]
    public void TooFewCasesOrDuplicatesAreRejected()
    {
        Assert.Throws<ArgumentException>(() => CrossValidationSplits.Create(["a", "b", "c"]));
        Assert.Throws<ArgumentException>(() => CrossValidationSplits.Create(["a", "b", "c", "d", "a", "e"]));
        var all = CrossValidationSplits.AllCasesFold(["b", "a"]);
        Assert.Equal(["a", "b"], all.Train);
        Assert.Equal(["a", "b"], all.Val);
    }
}
