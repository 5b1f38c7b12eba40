using NnUnet.Core.Evaluation;
using NnUnet.Core.Imaging;
using NnUnet.Core.Imaging.Nifti;
using NnUnet.Core.Preprocessing;
using NnUnet.Training.Inference;
using NnUnet.Training.Trainer;
using static TorchSharp.torch;

namespace NnUnet.Training.Tests.Inference;

/// <summary>
/// End to end on real files: preprocessed cases, gt_segmentations NIfTI, a tiny "network" that thresholds its input,
/// validation of a 3d_lowres fold (exports, npz, summary.json, next-stage predictions) and of the cascade fold that
/// reads those predictions as input channels.
/// </summary>
public sealed class FoldValidatorTests : IDisposable
{
    private static readonly int[] Transpose = [0, 2, 1];
    private readonly string _root = Directory.CreateTempSubdirectory("foldval-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    /// <summary>1x1x1 convolution whose class-1 logit is <paramref name="gain"/> times input channel
    /// <paramref name="channel"/> minus <paramref name="offset"/>, class 0 the negative.</summary>
    private static nn.Module<Tensor, Tensor> Threshold(int inChannels, int channel, float gain, float offset)
    {
        var conv = nn.Conv3d(inChannels, 2, 1);
        using (no_grad())
        {
            conv.weight!.zero_();
            conv.weight[0, channel] = tensor(-gain).reshape(1, 1, 1);
            conv.weight[1, channel] = tensor(gain).reshape(1, 1, 1);
            conv.bias!.copy_(tensor(new[] { offset, -offset }));
        }
        return conv;
    }

    [Fact]
    public async Task ValidatesALowresFoldWritesNextStageInputsAndTheCascadeUsesThem()
    {
        var plans = InferenceTestData.Plans(Transpose, new()
        {
            ["3d_lowres"] = ([1, 1, 1], [4, 8, 8], "3d_cascade_fullres", null),
            ["3d_cascade_fullres"] = ([1, 1, 1], [4, 8, 8], null, "3d_lowres"),
        });
        var dataset = InferenceTestData.Labels(2);
        string[] cases = ["case_a", "case_b"];
        string preprocessed = PrepareCases(plans, cases, "3d_lowres", "3d_cascade_fullres");
        string gt = Path.Combine(preprocessed, FoldValidator.GroundTruthFolderName);

        string results = Path.Combine(_root, "results", plans.DatasetName);
        string lowresFold = Path.Combine(results, "nnUNetTrainer__nnUNetPlans__3d_lowres", "fold_0");
        IFoldValidator validator = new FoldValidator();
        // every case is reported as it is done (a cluster worker's progress through a long validation)
        var reported = new List<(int Done, int Total)>();
        var lowres = new FoldValidationContext(plans, "3d_lowres", dataset, preprocessed, [0, 1, 2], CPU,
            CaseValidated: (done, total) => reported.Add((done, total)));
        await validator.ValidateAsync(lowresFold, Threshold(1, 0, 5, 0), lowres, cases, CancellationToken.None);
        Assert.Equal([(1, 2), (2, 2)], reported);

        string validation = Path.Combine(lowresFold, "validation");
        foreach (string c in cases)
        {
            var written = NiftiReader.Read(Path.Combine(validation, c + ".nii.gz"));
            var reference = NiftiReader.Read(Path.Combine(gt, c + ".nii.gz"));
            Assert.Equal(reference.SpatialShape, written.SpatialShape);
            Assert.Equal(reference.Geometry, written.Geometry);
            Assert.Equal((byte[])reference.Voxels, (byte[])written.Voxels);
            var probabilities = NnUnet.Core.Ensembling.NpzFile.ReadFloat32(Path.Combine(validation, c + ".npz"), "probabilities", out var probabilityShape);
            Assert.Equal([2, 6, 9, 11], probabilityShape);
            Assert.True(probabilities.All(p => p is >= 0 and <= 1));
            Assert.True(File.Exists(Path.Combine(validation, c + ".pkl.json")));
        }
        var summary = EvaluationSummary.Load(Path.Combine(validation, "summary.json"));
        Assert.Equal(2, summary.MetricPerCase.Count);
        Assert.Equal(1.0, summary.ForegroundMean.Dice, 9);

        // next stage inputs: the lowres prediction in the cascade's preprocessed shape
        string nextStage = Path.Combine(results, "nnUNetTrainer__nnUNetPlans__3d_lowres", "predicted_next_stage", "3d_cascade_fullres");
        var previous = NextStagePredictions.Load(nextStage, "case_b", out var previousShape);
        Assert.Equal([5, 9, 9], previousShape);
        var caseB = PreprocessedStore.Load(Path.Combine(preprocessed, plans.GetConfiguration("3d_cascade_fullres").DataIdentifier), "case_b");
        for (int v = 0; v < previous.Length; v++) Assert.Equal(caseB.Data[v] > 0 ? 1 : 0, previous[v]);

        // the cascade network looks only at the one-hot previous-stage channel (input channel 1)
        string cascadeFold = Path.Combine(results, "nnUNetTrainer__nnUNetPlans__3d_cascade_fullres", "fold_0");
        var cascade = lowres with { ConfigurationName = "3d_cascade_fullres", PreviousStagePredictionsFolder = nextStage, SaveProbabilities = false };
        var cascadeSummary = FoldValidator.Validate(cascadeFold, Threshold(2, 1, 10, 5), cascade, cases, CancellationToken.None);
        Assert.Equal(1.0, cascadeSummary.ForegroundMean.Dice, 9);
        Assert.False(File.Exists(Path.Combine(cascadeFold, "validation", "case_a.npz")));

        // a missing previous-stage prediction is a clear error naming the case
        File.Delete(NextStagePredictions.PathFor(nextStage, "case_a"));
        var ex = Assert.Throws<FileNotFoundException>(() => FoldValidator.Validate(cascadeFold, Threshold(2, 1, 10, 5), cascade, cases, CancellationToken.None));
        Assert.Contains("case_a", ex.Message);
    }

    /// <summary>Raw-space box objects as gt_segmentations NIfTI, and their preprocessed cases (crop, transpose; the
    /// spacing is unchanged so nothing is resampled) with intensity +1 inside and -1 outside.</summary>
    private string PrepareCases(NnUnet.Core.Planning.NnUnetPlans plans, string[] cases, params string[] configurations)
    {
        string preprocessed = Path.Combine(_root, "preprocessed", plans.DatasetName);
        string gt = Path.Combine(preprocessed, FoldValidator.GroundTruthFolderName);
        Directory.CreateDirectory(gt);
        int[] raw = [6, 9, 11];
        int[][] bbox = [[1, 6], [0, 9], [2, 11]];
        for (int i = 0; i < cases.Length; i++)
        {
            var labels = new byte[raw[0] * raw[1] * raw[2]];
            for (int z = 2; z < 5; z++)
            for (int y = 1 + i; y < 6 + i; y++)
            for (int x = 4; x < 9; x++) labels[(z * raw[1] + y) * raw[2] + x] = 1;
            var properties = InferenceTestData.Properties(raw, bbox, [1, 1, 1], Transpose);
            NiftiWriter.Write(Path.Combine(gt, cases[i] + ".nii.gz"),
                new MedicalImage(1, raw[0], raw[1], raw[2], VoxelType.UInt8, labels, properties.Geometry));
            int[] croppedRaw = [5, 9, 9];
            var cropped = new float[5 * 9 * 9];
            for (int z = 0; z < 5; z++)
            for (int y = 0; y < 9; y++)
            for (int x = 0; x < 9; x++)
                cropped[(z * 9 + y) * 9 + x] = labels[((z + 1) * raw[1] + y) * raw[2] + x + 2] == 1 ? 1f : -1f;
            var data = Transposition.Transpose(cropped, 1, croppedRaw, Transpose);
            var shape = properties.ShapeAfterCroppingAndBeforeResampling;
            foreach (string config in configurations)
                PreprocessedStore.Save(Path.Combine(preprocessed, plans.GetConfiguration(config).DataIdentifier),
                    new PreprocessedCase(cases[i], data, 1, shape, null, properties));
        }
        return preprocessed;
    }

    [Fact]
    public void LowresValidationSkipsTheNextStageExportWhereTheNextStageIsNotPreprocessed()
    {
        var plans = InferenceTestData.Plans(Transpose, new()
        {
            ["3d_lowres"] = ([1, 1, 1], [4, 8, 8], "3d_cascade_fullres", null),
            ["3d_cascade_fullres"] = ([1, 1, 1], [4, 8, 8], null, "3d_lowres"),
        });
        string[] cases = ["case_a"];
        string preprocessed = PrepareCases(plans, cases, "3d_lowres"); // the cascade's (3d_fullres') data is not preprocessed
        string lowresFold = Path.Combine(_root, "results", plans.DatasetName, "nnUNetTrainer__nnUNetPlans__3d_lowres", "fold_0");
        var context = new FoldValidationContext(plans, "3d_lowres", InferenceTestData.Labels(2), preprocessed, [], CPU, SaveProbabilities: false);
        var summary = FoldValidator.Validate(lowresFold, Threshold(1, 0, 5, 0), context, cases, CancellationToken.None);
        Assert.Equal(1.0, summary.ForegroundMean.Dice, 9); // the fold's own validation is complete
        Assert.False(File.Exists(NextStagePredictions.PathFor(NextStagePredictions.FolderFor(lowresFold, "3d_cascade_fullres"), "case_a")));
    }

    [Fact]
    public void TwoDimensionalConfigurationValidatesSliceBySlice()
    {
        var plans = InferenceTestData.Plans(Transpose, new() { ["2d"] = ([1, 1], [8, 8], null, null) });
        string[] cases = ["case_a"];
        string preprocessed = PrepareCases(plans, cases, "2d");
        var conv = nn.Conv2d(1, 2, 1);
        using (no_grad())
        {
            conv.weight!.copy_(tensor(new[] { -4f, 4f }).reshape(2, 1, 1, 1));
            conv.bias!.zero_();
        }
        var context = new FoldValidationContext(plans, "2d", InferenceTestData.Labels(2), preprocessed, [0, 1], CPU);
        var summary = FoldValidator.Validate(Path.Combine(_root, "2d", "fold_1"), conv, context, cases, CancellationToken.None);
        Assert.Equal(1.0, summary.ForegroundMean.Dice, 9);
        Assert.True(File.Exists(Path.Combine(_root, "2d", "fold_1", "validation", "case_a.nii.gz")));
    }

    [Fact]
    public void CancellationStopsBeforeTheNextCase()
    {
        var plans = InferenceTestData.Plans([0, 1, 2], new() { ["3d_fullres"] = ([1, 1, 1], [4, 4, 4], null, null) });
        using var cts = new CancellationTokenSource();
        cts.Cancel();
        var context = new FoldValidationContext(plans, "3d_fullres", InferenceTestData.Labels(2), Path.Combine(_root, "pre"), [], CPU);
        Assert.ThrowsAny<OperationCanceledException>(() =>
            FoldValidator.Validate(Path.Combine(_root, "fold_0"), Threshold(1, 0, 1, 0), context, ["x"], cts.Token));
    }
}
