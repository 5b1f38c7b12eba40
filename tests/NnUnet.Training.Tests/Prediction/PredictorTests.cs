using NnUnet.Core.Ensembling;
using NnUnet.Core.Evaluation;
using NnUnet.Core.Imaging;
using NnUnet.Core.Imaging.Nifti;
using NnUnet.Core.Postprocessing;
using NnUnet.Core.Preprocessing;
using NnUnet.Training.Inference;
using NnUnet.Training.Network;
using NnUnet.Training.Trainer;
using static TorchSharp.torch;

namespace NnUnet.Training.Tests.Prediction;

/// <summary><see cref="Predictor"/> on a real results tree (checkpoints of random networks) and oblique NIfTI inputs.</summary>
public sealed class PredictorTests : IDisposable
{
    private readonly PredictionFixture _fx = new("predictor-");

    public void Dispose() => _fx.Dispose();

    private PredictionRun Predict(PredictionOptions options, string? output = null) =>
        Predictor.PredictFolder(_fx.Paths, _fx.Input, output ?? _fx.Output, options with { Device = "cpu" });

    [Fact]
    public void OutputHasTheInputsShapeSpacingOriginAndDirectionExactly()
    {
        _fx.WriteModel("3d_fullres", 0, 1);
        string[] inputs = [_fx.WriteInput("case_001", 1), _fx.WriteInput("case_002", 2)];
        var run = Predict(new PredictionOptions { Dataset = PredictionFixture.DatasetName, Configuration = "3d_fullres", Folds = [0, 1] });

        Assert.Equal(0, run.Failed);
        Assert.Equal(2, run.Cases.Count);
        foreach (string input in inputs)
        {
            string caseId = Path.GetFileName(input)[..^"_0000.nii.gz".Length];
            var inputImage = NiftiReader.Read(input);
            var output = NiftiReader.Read(Path.Combine(_fx.Output, caseId + ".nii.gz"));
            Assert.Equal(inputImage.SpatialShape, output.SpatialShape);
            Assert.Equal(inputImage.Geometry.Spacing, output.Geometry.Spacing);
            Assert.Equal(inputImage.Geometry.Origin, output.Geometry.Origin);
            Assert.Equal(inputImage.Geometry.Direction, output.Geometry.Direction);
            Assert.Equal(VoxelType.UInt8, output.Type);
            var inputHeader = NiftiReader.ReadHeader(input);
            var outputHeader = NiftiReader.ReadHeader(Path.Combine(_fx.Output, caseId + ".nii.gz"));
            Assert.Equal(inputHeader.Dim, outputHeader.Dim);
            Assert.All((byte[])output.Voxels, v => Assert.InRange(v, (byte)0, (byte)2));
        }
    }

    [Fact]
    public void FoldsAreAveragedAsTheMeanOfEachFoldsLogits()
    {
        _fx.WriteModel("3d_fullres", 0, 1);
        _fx.WriteInput("case_001", 1);
        // float32 accumulation: compared with a by-hand float32 computation at 1e-5
        var exact = new InferenceMemoryOptions { Precision = LogitsPrecision.Float32 };
        var run = Predict(new PredictionOptions { Dataset = PredictionFixture.DatasetName, Configuration = "3d_fullres", Folds = [0, 1], SaveProbabilities = true, Memory = exact });
        Assert.Equal(0, run.Failed);
        var predicted = ProbabilityMap.Load(Path.Combine(_fx.Output, "case_001.npz"));

        // by hand: each fold's network alone through the sliding window, logits averaged, exported
        var plans = PredictionFixture.Plans();
        var dataset = PredictionFixture.Dataset();
        var configuration = plans.GetConfiguration("3d_fullres");
        var preprocessed = new DefaultPreprocessor(plans, "3d_fullres", dataset).Run("case_001", PredictionFixture.Image(1), null);
        using var input = tensor(preprocessed.Data, [1, .. preprocessed.Shape.Select(s => (long)s)]);
        var exporter = new PredictionExporter(plans, configuration, dataset);
        Tensor? sum = null;
        foreach (int fold in new[] { 0, 1 })
        {
            using var checkpoint = Checkpoint.Load(Path.Combine(_fx.ResultsDataset, "nnUNetTrainer__nnUNetPlans__3d_fullres", $"fold_{fold}", "checkpoint_final.ckpt"));
            using var network = new PlainConvUNet(configuration.Architecture.ArchKwargs, 1, 3, deepSupervision: false);
            checkpoint.LoadWeightsInto(network);
            var logits = new SlidingWindowPredictor(network, configuration.PatchSize, 3, [0, 1, 2], CPU, memory: exact).PredictLogits(input);
            sum = sum is null ? logits : sum + logits;
        }
        var expected = exporter.Convert(sum! / 2, preprocessed.Properties, withProbabilities: true, "case_001");
        Assert.Equal(expected.Probabilities!.Length, predicted.Values.Length);
        for (int i = 0; i < predicted.Values.Length; i++) Assert.Equal(expected.Probabilities[i], predicted.Values[i], 1e-5f);

        // and one fold alone gives a different answer (the second fold is really used)
        var single = Predict(new PredictionOptions { Dataset = PredictionFixture.DatasetName, Configuration = "3d_fullres", Folds = [0], SaveProbabilities = true },
            Path.Combine(_fx.Root, "fold0"));
        Assert.Equal(0, single.Failed);
        var fold0 = ProbabilityMap.Load(Path.Combine(_fx.Root, "fold0", "case_001.npz"));
        double maxDifference = 0;
        for (int i = 0; i < fold0.Values.Length; i++) maxDifference = Math.Max(maxDifference, Math.Abs(fold0.Values[i] - predicted.Values[i]));
        Assert.True(maxDifference > 1e-4, $"fold 0 alone equals the two-fold average (max difference {maxDifference})");
    }

    [Fact]
    public void ACorruptCaseIsNamedAndTheOthersComplete()
    {
        _fx.WriteModel("3d_fullres", 0);
        _fx.WriteInput("case_001", 1);
        _fx.WriteInput("case_003", 3);
        File.WriteAllBytes(Path.Combine(_fx.Input, "case_002_0000.nii.gz"), [1, 2, 3, 4, 5]);
        File.WriteAllText(Path.Combine(_fx.Input, "notes.txt"), "not an image");

        var run = Predict(new PredictionOptions { Dataset = PredictionFixture.DatasetName, Configuration = "3d_fullres", Folds = [0] });

        Assert.Equal(1, run.Failed);
        var failed = Assert.Single(run.Cases, c => !c.Succeeded);
        Assert.Equal("case_002", failed.CaseId);
        Assert.Contains("case_002", failed.Error);
        Assert.True(File.Exists(Path.Combine(_fx.Output, "case_001.nii.gz")));
        Assert.True(File.Exists(Path.Combine(_fx.Output, "case_003.nii.gz")));
        Assert.False(File.Exists(Path.Combine(_fx.Output, "case_002.nii.gz")));
    }

    [Fact]
    public void AMissingFoldCheckpointIsAClearError()
    {
        _fx.WriteModel("3d_fullres", 0);
        _fx.WriteInput("case_001", 1);
        var ex = Assert.Throws<FileNotFoundException>(() =>
            Predict(new PredictionOptions { Dataset = PredictionFixture.DatasetName, Configuration = "3d_fullres", Folds = [0, 1] }));
        Assert.Contains("fold_1", ex.Message);
    }

    [Fact]
    public void BestEnsembleAveragesTheTwoConfigurationsProbabilitiesThenPostprocesses()
    {
        _fx.WriteModel("3d_fullres", 0);
        _fx.WriteModel("3d_lowres", 0);
        _fx.WriteInput("case_001", 1);
        string postprocessing = _fx.WriteBestConfiguration(["3d_fullres", "3d_lowres"]);

        var run = Predict(new PredictionOptions { Dataset = PredictionFixture.DatasetName, UseBest = true });
        Assert.Equal(0, run.Failed);
        Assert.Equal(postprocessing, run.PostprocessingSource);
        Assert.Equal([0], run.Folds);
        Assert.Equal(2, run.ModelFolders.Count);

        // by hand: each configuration alone, probabilities averaged, argmax, largest component of the foreground kept
        var members = new List<ProbabilityMap>();
        foreach (string configuration in new[] { "3d_fullres", "3d_lowres" })
        {
            string output = Path.Combine(_fx.Root, configuration);
            var single = Predict(new PredictionOptions { Dataset = PredictionFixture.DatasetName, Configuration = configuration, Folds = [0], SaveProbabilities = true, DisablePostprocessing = true }, output);
            Assert.Equal(0, single.Failed);
            members.Add(ProbabilityMap.Load(Path.Combine(output, "case_001.npz")));
        }
        var labels = ProbabilityEnsembler.ToSegmentation(ProbabilityEnsembler.Average(members), SegmentationHeads.Softmax);
        PostprocessingPlan.Load(postprocessing).ApplyTo(labels);
        var predicted = LabelVolume.FromImage(NiftiReader.Read(Path.Combine(_fx.Output, "case_001.nii.gz")), "prediction");
        Assert.Equal(labels.Labels, predicted.Labels);
        Assert.Equal(NiftiReader.Read(Path.Combine(_fx.Input, "case_001_0000.nii.gz")).Geometry, NiftiReader.Read(Path.Combine(_fx.Output, "case_001.nii.gz")).Geometry);
    }

    [Fact]
    public void CascadeRunsTheLowresStageFirstAndWritesTheInputsGeometry()
    {
        _fx.WriteModel("3d_lowres", 0);
        _fx.WriteModel("3d_cascade_fullres", 0);
        _fx.WriteInput("case_001", 1);
        var run = Predict(new PredictionOptions { Dataset = PredictionFixture.DatasetName, Configuration = "3d_cascade_fullres", Folds = [0] });
        Assert.Equal(0, run.Failed);
        var output = NiftiReader.Read(Path.Combine(_fx.Output, "case_001.nii.gz"));
        var input = NiftiReader.Read(Path.Combine(_fx.Input, "case_001_0000.nii.gz")); // as stored (NIfTI keeps float32 geometry)
        Assert.Equal(input.SpatialShape, output.SpatialShape);
        Assert.Equal(input.Geometry, output.Geometry);

        // without the lowres model the cascade cannot run, and says which folder is missing
        Directory.Delete(Path.Combine(_fx.ResultsDataset, "nnUNetTrainer__nnUNetPlans__3d_lowres"), recursive: true);
        var ex = Assert.Throws<DirectoryNotFoundException>(() =>
            Predict(new PredictionOptions { Dataset = PredictionFixture.DatasetName, Configuration = "3d_cascade_fullres", Folds = [0] }));
        Assert.Contains("3d_lowres", ex.Message);
    }
}
