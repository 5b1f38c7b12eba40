using NnUnet.Core.Results;
using NnUnet.Training.Inference;

namespace NnUnet.Training.Tests.Prediction;

/// <summary>
/// The predictor's part of distributed prediction (issue 16): shards of the input's cases, receipts that make a run
/// resumable, and the manifest written last; on a real results tree, real networks and NIfTI inputs.
/// </summary>
public sealed class ResumablePredictionTests : IDisposable
{
    private readonly PredictionFixture _fx = new("resumable-");

    public void Dispose() => _fx.Dispose();

    private PredictionOptions Options() => new() { ModelFolder = _fx.WriteModel("3d_fullres", 0), Folds = [0], Device = "cpu" };

    private PredictionRun Predict(PredictionOptions options, string output) => Predictor.PredictFolder(_fx.Paths, _fx.Input, output, options);

    private static string[] Segmentations(string folder) =>
        Directory.GetFiles(folder, "*.nii.gz").Select(f => Path.GetFileName(f)!).Order(StringComparer.Ordinal).ToArray();

    [Fact]
    public void ShardsTogether_WriteTheSameFilesAsOneRun_AndTheMergeWritesTheManifestWithoutPredictingAgain()
    {
        var options = Options();
        for (int i = 1; i <= 7; i++) _fx.WriteInput($"case_{i:00}", i);
        string whole = Path.Combine(_fx.Root, "whole"), sharded = Path.Combine(_fx.Root, "sharded");
        Predict(options, whole);

        var perShard = new List<string[]>();
        for (int k = 0; k < 3; k++)
        {
            var run = Predict(options with { Resume = true, Shard = k, Shards = 3 }, sharded);
            Assert.Equal(0, run.Failed);
            perShard.Add(run.Cases.Select(c => c.CaseId).ToArray());
        }
        // ordinal order, round robin: every case in exactly one shard
        Assert.Equal(["case_01", "case_04", "case_07"], perShard[0]);
        Assert.Equal(["case_02", "case_05"], perShard[1]);
        Assert.Equal(["case_03", "case_06"], perShard[2]);
        Assert.False(File.Exists(PredictionManifest.PathIn(sharded)));

        var started = new List<string>();
        var merge = Predict(options with { Resume = true, WriteManifest = true, OnCaseStart = (id, _, _) => started.Add(id) }, sharded);
        Assert.Empty(started);                                    // every case was complete: nothing predicted again
        Assert.Equal(7, merge.Reused);
        Assert.Equal(Segmentations(whole), Segmentations(sharded));
        foreach (string name in Segmentations(whole))
            Assert.True(File.ReadAllBytes(Path.Combine(whole, name)).AsSpan().SequenceEqual(File.ReadAllBytes(Path.Combine(sharded, name))), name);
        var manifest = PredictionManifest.Read(sharded);
        Assert.Equal(Enumerable.Range(1, 7).Select(i => $"case_{i:00}"), manifest.Cases.Select(c => c.CaseId));
        Assert.Equal(merge.ModelKey, manifest.ModelKey);
        Assert.Equal(new FileInfo(Path.Combine(sharded, "case_03.nii.gz")).Length, manifest.Cases.Single(c => c.CaseId == "case_03").Bytes);
        Assert.Null(PredictionManifest.Missing(sharded));
    }

    [Fact]
    public void AResumedRun_SkipsCompleteCases_RedoesOnesRewrittenOrOfAnotherModel_AndTheMergePredictsWhatIsMissing()
    {
        var options = Options() with { Resume = true };
        for (int i = 1; i <= 5; i++) _fx.WriteInput($"case_{i}", i);
        string output = Path.Combine(_fx.Root, "out");
        var first = Predict(options with { Shard = 0, Shards = 2 }, output);   // cases 1, 3, 5
        string case1 = Path.Combine(output, "case_1.nii.gz"), case3 = Path.Combine(output, "case_3.nii.gz"), case5 = Path.Combine(output, "case_5.nii.gz");
        var written1 = File.GetLastWriteTimeUtc(case1);
        // case 3 rewritten after its receipt (a half-written copy, someone's edit): not complete any more
        File.WriteAllBytes(case3, [1, 2, 3]);
        // case 5's receipt names another model (the model was retrained since): not complete for this one
        string receipt5 = PredictionRecords.ReceiptPath(output, "case_5");
        File.WriteAllText(receipt5, File.ReadAllText(receipt5).Replace(first.ModelKey, "another-model"));

        var started = new List<string>();
        var merge = Predict(options with { WriteManifest = true, OnCaseStart = (id, _, _) => started.Add(id) }, output);
        Assert.Equal(0, merge.Failed);
        Assert.Equal(["case_2", "case_3", "case_4", "case_5"], started.Order(StringComparer.Ordinal));
        Assert.Equal(written1, File.GetLastWriteTimeUtc(case1));   // the complete case was not written again
        Assert.True(merge.Cases.Single(c => c.CaseId == "case_1").Reused);
        Assert.Equal(5, PredictionManifest.Read(output).Cases.Count);
        Assert.True(new FileInfo(case3).Length > 3);
    }

    [Fact]
    public void CasesWithoutAReceipt_AreNeverTakenAsDone_AndALocalRunWithoutResumeWritesNoRecords()
    {
        var options = Options();
        for (int i = 1; i <= 2; i++) _fx.WriteInput($"case_{i}", i);
        string output = Path.Combine(_fx.Root, "out");
        Predict(options, output);                                  // the plain `nnunet predict`: no receipts, no manifest
        Assert.False(Directory.Exists(Path.Combine(output, PredictionRecords.FolderName)));
        Assert.False(File.Exists(PredictionManifest.PathIn(output)));
        var started = new List<string>();
        var resumed = Predict(options with { Resume = true, OnCaseStart = (id, _, _) => started.Add(id) }, output);
        Assert.Equal(["case_1", "case_2"], started.Order(StringComparer.Ordinal)); // files without receipts may be half-written
        Assert.Equal(0, resumed.Reused);
    }
}
