using NnUnet.Core.Ensembling;
using NnUnet.Training.Inference;

namespace NnUnet.Training.Tests.Prediction;

/// <summary>
/// <see cref="Predictor.PredictFolder"/> with the cases pipelined (preprocessing and export threads around the device)
/// against the sequential path, and with memory limits, on a real results tree and NIfTI inputs.
/// </summary>
public sealed class PredictionPipelineTests : IDisposable
{
    private readonly PredictionFixture _fx = new("pipeline-");

    public void Dispose() => _fx.Dispose();

    /// <summary>Three preparing and three exporting threads around queues of one: every stage overlaps and waits.</summary>
    private static readonly PipelineOptions Busy = new() { PreprocessWorkers = 3, ExportWorkers = 3, PreparedQueueCapacity = 1, PredictedQueueCapacity = 1 };

    private PredictionRun Predict(PredictionOptions options, string output, CancellationToken ct = default) =>
        Predictor.PredictFolder(_fx.Paths, _fx.Input, output, options with { Device = "cpu" }, ct);

    private static void AssertSameFiles(string expectedFolder, string actualFolder)
    {
        var expected = Directory.GetFiles(expectedFolder).Select(f => Path.GetFileName(f)).Order(StringComparer.Ordinal).ToArray();
        var actual = Directory.GetFiles(actualFolder).Select(f => Path.GetFileName(f)).Order(StringComparer.Ordinal).ToArray();
        Assert.Equal(expected, actual);
        Assert.NotEmpty(expected);
        foreach (string name in expected)
        {
            string a = Path.Combine(expectedFolder, name), b = Path.Combine(actualFolder, name);
            if (name.EndsWith(".npz", StringComparison.Ordinal))
            {
                // the zip entry carries its write time: compare the arrays, bit for bit
                var p = ProbabilityMap.Load(a);
                var q = ProbabilityMap.Load(b);
                Assert.Equal(p.Classes, q.Classes);
                Assert.True(p.Values.AsSpan().SequenceEqual(q.Values), $"{name}: probabilities differ");
            }
            else Assert.True(File.ReadAllBytes(a).AsSpan().SequenceEqual(File.ReadAllBytes(b)), $"{name} differs between the sequential and the pipelined run");
        }
    }

    [Fact]
    public void PipelinedCasesWriteTheSameFilesByteForByteAsTheSequentialPath()
    {
        _fx.WriteModel("3d_fullres", 0, 1);
        for (int i = 1; i <= 8; i++) _fx.WriteInput($"case_{i:000}", i);
        var options = new PredictionOptions { Dataset = PredictionFixture.DatasetName, Configuration = "3d_fullres", Folds = [0, 1], SaveProbabilities = true };

        string sequential = Path.Combine(_fx.Root, "sequential"), pipelined = Path.Combine(_fx.Root, "pipelined");
        var done = new List<int>();
        var first = Predict(options with { Pipeline = PipelineOptions.Sequential }, sequential);
        var second = Predict(options with { Pipeline = Busy, OnCaseDone = (_, count, _) => done.Add(count) }, pipelined);

        Assert.Equal(0, first.Failed);
        Assert.Equal(0, second.Failed);
        Assert.Equal(first.Cases.Select(c => c.CaseId), second.Cases.Select(c => c.CaseId)); // results in case order
        Assert.Equal(Enumerable.Range(1, 8), done); // one call at a time, counting up
        Assert.Equal(8 * 3, Directory.GetFiles(pipelined).Length); // .nii.gz, .npz, .pkl.json
        AssertSameFiles(sequential, pipelined);
    }

    [Fact]
    public void PipelinedCascadeAndEnsembleEqualTheSequentialPath()
    {
        _fx.WriteModel("3d_fullres", 0);
        _fx.WriteModel("3d_lowres", 0);
        _fx.WriteModel("3d_cascade_fullres", 0);
        for (int i = 1; i <= 4; i++) _fx.WriteInput($"case_{i:000}", 10 + i);
        _fx.WriteBestConfiguration(["3d_fullres", "3d_lowres"]);

        foreach (var options in new[]
                 {
                     new PredictionOptions { Dataset = PredictionFixture.DatasetName, Configuration = "3d_cascade_fullres", Folds = [0] },
                     new PredictionOptions { Dataset = PredictionFixture.DatasetName, UseBest = true, SaveProbabilities = true },
                 })
        {
            string name = options.UseBest ? "best" : "cascade";
            string sequential = Path.Combine(_fx.Root, name + "-sequential"), pipelined = Path.Combine(_fx.Root, name + "-pipelined");
            Assert.Equal(0, Predict(options with { Pipeline = PipelineOptions.Sequential }, sequential).Failed);
            Assert.Equal(0, Predict(options with { Pipeline = Busy }, pipelined).Failed);
            AssertSameFiles(sequential, pipelined);
        }
    }

    [Fact]
    public void ACorruptCaseInThePipelineIsNamedAndTheOthersAreWritten()
    {
        _fx.WriteModel("3d_fullres", 0);
        for (int i = 1; i <= 5; i++) _fx.WriteInput($"case_{i:000}", i);
        File.WriteAllBytes(Path.Combine(_fx.Input, "case_003_0000.nii.gz"), [31, 139, 8, 0, 1, 2, 3]);
        var run = Predict(new PredictionOptions { Dataset = PredictionFixture.DatasetName, Configuration = "3d_fullres", Folds = [0], Pipeline = Busy }, _fx.Output);
        var failed = Assert.Single(run.Cases, c => !c.Succeeded);
        Assert.Equal("case_003", failed.CaseId);
        Assert.Contains("case_003", failed.Error);
        Assert.Equal(4, Directory.GetFiles(_fx.Output, "*.nii.gz").Length);
    }

    [Fact]
    public void CancellingStopsEveryStageKeepsTheWrittenCasesAndLeavesNoPartialFile()
    {
        _fx.WriteModel("3d_fullres", 0);
        for (int i = 1; i <= 8; i++) _fx.WriteInput($"case_{i:000}", i);
        using var cts = new CancellationTokenSource();
        var options = new PredictionOptions
        {
            Dataset = PredictionFixture.DatasetName, Configuration = "3d_fullres", Folds = [0], Pipeline = Busy,
            OnCaseDone = (_, _, _) => cts.Cancel(),
        };
        Assert.ThrowsAny<OperationCanceledException>(() => Predict(options, _fx.Output, cts.Token));

        var written = Directory.GetFiles(_fx.Output);
        Assert.InRange(written.Length, 1, 7);
        Assert.All(written, f => Assert.EndsWith(".nii.gz", f)); // no temporary file left behind
        // the written cases are complete NIfTI files
        foreach (string file in written) Assert.Equal([5, 11, 9], NnUnet.Core.Imaging.Nifti.NiftiReader.Read(file).SpatialShape);
    }

    [Fact]
    public void AVolumeTooLargeForTheDeviceBudgetCompletesThroughTheHostFallbackWithTheSameFiles()
    {
        _fx.WriteModel("3d_fullres", 0);
        for (int i = 1; i <= 3; i++) _fx.WriteInput($"case_{i:000}", i);
        var options = new PredictionOptions { Dataset = PredictionFixture.DatasetName, Configuration = "3d_fullres", Folds = [0], SaveProbabilities = true };
        string fits = Path.Combine(_fx.Root, "fits"), fallback = Path.Combine(_fx.Root, "fallback");
        var inBudget = Predict(options, fits);
        Assert.All(inBudget.Cases, c => Assert.Null(c.Note));

        // a few kB: less than the padded volume's logits, weights and input of any case
        var run = Predict(options with { Memory = new InferenceMemoryOptions { DeviceMemoryBudgetBytes = 2_000 } }, fallback);
        Assert.Equal(0, run.Failed);
        Assert.All(run.Cases, c => Assert.Contains("3d_fullres: logits accumulated in host memory", c.Note));
        Assert.All(run.Cases, c => Assert.Contains("above the device budget of 2.0 kB", c.Note));
        AssertSameFiles(fits, fallback);
    }

    [Fact]
    public void ACaseWhoseLogitsNotEvenTheHostHoldsFailsWithTheNumbersAndTheRunGoesOn()
    {
        _fx.WriteModel("3d_fullres", 0);
        _fx.WriteInput("case_001", 1);
        _fx.WriteInput("case_002", 2);
        var run = Predict(new PredictionOptions
        {
            Dataset = PredictionFixture.DatasetName, Configuration = "3d_fullres", Folds = [0],
            Memory = new InferenceMemoryOptions { DeviceMemoryBudgetBytes = 1_000, HostMemoryBudgetBytes = 1_500 },
        }, _fx.Output);
        Assert.Equal(2, run.Failed);
        Assert.All(run.Cases, c =>
        {
            Assert.DoesNotContain('\n', c.Error!);
            Assert.Matches(@"needs [\d.]+ kB for the logits and weights of 3 classes x \(\d+x\d+x\d+\) voxels in float16 plus [\d.]+ kB for the input, but only 1.5 kB of host memory is available \(host fallback: .*device budget of 1.0 kB\)", c.Error);
        });
        Assert.Empty(Directory.GetFiles(_fx.Output));
    }
}
