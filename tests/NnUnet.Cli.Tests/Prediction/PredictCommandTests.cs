using NnUnet.Core.Imaging.Nifti;

namespace NnUnet.Cli.Tests.Prediction;

/// <summary>`nnunet predict` end to end: a real results tree (random-weight checkpoints), oblique NIfTI inputs.</summary>
[Collection(ConsoleCollection.Name)]
public sealed class PredictCommandTests : IDisposable
{
    private readonly PredictionFixture _fx = new("cli-predict-");

    public void Dispose() => _fx.Dispose();

    private (int ExitCode, string Out, string Error) Predict(params string[] extra) => PredictDataset(PredictionFixture.DatasetName, extra);

    private (int ExitCode, string Out, string Error) PredictDataset(string dataset, params string[] extra) =>
        CliRunner.Run(["predict", "-i", _fx.Input, "-o", _fx.Output, "-d", dataset, "--results", _fx.Results, "--device", "cpu", .. extra]);

    [Fact]
    public void PredictsEveryCaseInTheInputsGeometryAndExitsZero()
    {
        _fx.WriteModel("3d_fullres", 0, 1);
        _fx.WriteInput("case_001", 1);
        _fx.WriteInput("case_002", 2);

        var (code, stdout, stderr) = Predict("-c", "3d_fullres", "--folds", "0", "--folds", "1", "--save-probabilities");

        Assert.True(code == NnUnetApp.ExitOk, stdout + stderr);
        Assert.Contains("2 of 2 cases written", stdout);
        Assert.Contains("nnUNetTrainer__nnUNetPlans__3d_fullres", stdout);
        foreach (string c in new[] { "case_001", "case_002" })
        {
            var input = NiftiReader.Read(Path.Combine(_fx.Input, c + "_0000.nii.gz"));
            var output = NiftiReader.Read(Path.Combine(_fx.Output, c + ".nii.gz"));
            Assert.Equal(input.SpatialShape, output.SpatialShape);
            Assert.Equal(input.Geometry, output.Geometry);
            Assert.True(File.Exists(Path.Combine(_fx.Output, c + ".npz")));
        }
    }

    [Fact]
    public void AFailingCaseIsNamedOnStderrTheOthersAreWrittenAndTheExitCodeIsOne()
    {
        _fx.WriteModel("3d_fullres", 0);
        _fx.WriteInput("case_001", 1);
        File.WriteAllText(Path.Combine(_fx.Input, "broken_0000.nii.gz"), "not a nifti file");

        var (code, stdout, stderr) = PredictDataset("777", "-c", "3d_fullres", "-f", "0"); // the id, found in nnUNet_results

        Assert.Equal(NnUnetApp.ExitProblems, code);
        Assert.Contains("case broken failed", stderr);
        Assert.Contains("1 case(s) failed: broken", stderr);
        Assert.True(File.Exists(Path.Combine(_fx.Output, "case_001.nii.gz")));
        Assert.Contains("1 of 2 cases written", stdout);
    }

    [Fact]
    public void BestUsesBestConfigurationJsonWithItsFoldsAndPostprocessing()
    {
        _fx.WriteModel("3d_fullres", 0);
        _fx.WriteInput("case_001", 1);
        string postprocessing = _fx.WriteBestConfiguration(["3d_fullres"]);

        var (code, stdout, stderr) = Predict("--best");

        Assert.True(code == NnUnetApp.ExitOk, stdout + stderr);
        Assert.Contains("folds 0", stdout);
        Assert.Contains("keep largest component of", stdout);
        Assert.Contains(Path.GetFileName(postprocessing), stdout);
        Assert.True(File.Exists(Path.Combine(_fx.Output, "case_001.nii.gz")));

        // -c of the chosen model finds the same postprocessing; --disable-postprocessing turns it off
        (code, stdout, _) = Predict("-c", "3d_fullres", "-f", "0");
        Assert.Equal(NnUnetApp.ExitOk, code);
        Assert.Contains("keep largest component of", stdout);
        (code, stdout, _) = Predict("-c", "3d_fullres", "-f", "0", "--disable-postprocessing");
        Assert.Equal(NnUnetApp.ExitOk, code);
        Assert.Contains("postprocessing: none", stdout);
    }

    [Fact]
    public void ConfigurationAndBestTogetherOrAMissingModelAreBadInput()
    {
        _fx.WriteInput("case_001", 1);
        var (code, _, _) = Predict("-c", "3d_fullres", "--best");
        Assert.Equal(NnUnetApp.ExitBadInput, code);

        Directory.CreateDirectory(Path.Combine(_fx.ResultsDataset, "nnUNetTrainer__nnUNetPlans__3d_fullres"));
        var (missing, stdout, stderr) = Predict("-c", "3d_fullres", "-f", "0");
        Assert.Equal(NnUnetApp.ExitBadInput, missing);
        Assert.Contains("plans.json", stdout + stderr);
    }

    [Fact]
    public void ExportNnUnet_ThenPredictFromTheModelFolderWithChk_MatchesPredictionFromOurFolder()
    {
        string ours = _fx.WriteModel("3d_fullres", 0, 1);
        _fx.WriteInput("case_001", 1);
        string exported = Path.Combine(_fx.Root, "nnunet", "nnUNetTrainer__nnUNetPlans__3d_fullres");

        var (code, stdout, stderr) = CliRunner.Run(["export-nnunet", ours, exported]);
        Assert.True(code == NnUnetApp.ExitOk, stdout + stderr);
        Assert.Contains("2 fold(s)", stdout);
        Assert.True(File.Exists(Path.Combine(exported, "fold_1", "checkpoint_final.pth")));

        var (c1, o1, e1) = Predict("-c", "3d_fullres", "-f", "0,1");
        Assert.True(c1 == NnUnetApp.ExitOk, o1 + e1);
        string fromPth = Path.Combine(_fx.Root, "from-pth");
        var (c2, o2, e2) = CliRunner.Run(["predict", "-i", _fx.Input, "-o", fromPth, "-m", exported, "-chk", "checkpoint_final.pth", "--device", "cpu"]);
        Assert.True(c2 == NnUnetApp.ExitOk, o2 + e2);
        Assert.Contains("folds 0, 1", o2);   // every fold of the folder, as nnU-Net's predictor with no -f
        Assert.Equal(NiftiReader.Read(Path.Combine(_fx.Output, "case_001.nii.gz")).ToFloat32(), NiftiReader.Read(Path.Combine(fromPth, "case_001.nii.gz")).ToFloat32());

        string noTta = Path.Combine(_fx.Root, "no-tta");
        var (c3, o3, e3) = CliRunner.Run(["predict", "-i", _fx.Input, "-o", noTta, "-m", exported, "--disable-tta", "--device", "cpu"]);
        Assert.True(c3 == NnUnetApp.ExitOk, o3 + e3);

        var (c4, _, e4) = CliRunner.Run(["predict", "-i", _fx.Input, "-o", noTta, "-m", exported, "-d", "777"]);
        Assert.Equal(NnUnetApp.ExitBadInput, c4);
        Assert.Contains("-m MODEL_FOLDER replaces -d/-c/--best", e4);
    }

    [Fact]
    public void PipelineAndMemoryOptionsReachThePredictorAndAHostFallbackIsReported()
    {
        _fx.WriteModel("3d_fullres", 0);
        _fx.WriteInput("case_001", 1);
        _fx.WriteInput("case_002", 2);

        // one case at a time, a device budget of 1 kB: both cases complete through host memory, and say so
        var (code, stdout, stderr) = Predict("-c", "3d_fullres", "--folds", "0", "--preprocess-workers", "0", "--device-memory", "0.000001");
        Assert.True(code == NnUnetApp.ExitOk, stdout + stderr);
        Assert.Contains("2 of 2 cases written", stdout);
        Assert.Contains("case case_001: 3d_fullres: logits accumulated in host memory", stderr);
        Assert.Contains("above the device budget of 1.0 kB", stderr);

        // pipelined with float32 logits: no fallback, nothing reported
        (code, stdout, stderr) = Predict("-c", "3d_fullres", "--folds", "0", "--preprocess-workers", "3", "--export-workers", "1", "--float32-logits");
        Assert.True(code == NnUnetApp.ExitOk, stdout + stderr);
        Assert.DoesNotContain("host memory", stderr);

        (code, _, stderr) = Predict("-c", "3d_fullres", "--preprocess-workers", "-1");
        Assert.Equal(NnUnetApp.ExitBadInput, code);
        (code, _, _) = Predict("-c", "3d_fullres", "--device-memory", "0");
        Assert.Equal(NnUnetApp.ExitBadInput, code);
    }
}
