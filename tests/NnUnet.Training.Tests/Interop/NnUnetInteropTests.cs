using System.Text.Json;
using NnUnet.Core.Datasets;
using NnUnet.Core.Fingerprinting;
using NnUnet.Core.Imaging;
using NnUnet.Core.Imaging.Nifti;
using NnUnet.Core.Planning;
using NnUnet.Core.Preprocessing;
using NnUnet.Training.Inference;
using NnUnet.Training.Interop;
using NnUnet.Training.Network;
using NnUnet.Training.Trainer;
using static TorchSharp.torch;

namespace NnUnet.Training.Tests.Interop;

/// <summary>
/// Models move between nnU-Net v2 and us. PyTorch (Debian's python3-torch) runs tests/fixtures/nnunet_interop/nnunet_model.py,
/// our own stand-in for nnU-Net: a PlainConvUNet with nnU-Net's module tree (so its state_dict names), built from plans
/// our planner wrote, saved as nnU-Net's trainer saves checkpoint_final.pth, and nnU-Net's inference for inputs that
/// need no resampling. Our predict must give its segmentation; our export must load strictly in PyTorch and compute
/// our logits; a pickle with a foreign global must be refused without running it.
/// </summary>
public sealed class NnUnetInteropTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("nnunet-interop-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    private static string Script()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            string candidate = Path.Combine(dir.FullName, "tests", "fixtures", "nnunet_interop", "nnunet_model.py");
            if (File.Exists(candidate)) return File.ReadAllText(candidate);
        }
        throw new FileNotFoundException($"tests/fixtures/nnunet_interop/nnunet_model.py not found above {AppContext.BaseDirectory}");
    }

    private static string Py(params string[] args) => Python.Run(Script(), args);

    /// <summary>Plans from our planner for 10 MRI-like cases of 8 x 32 x 32 voxels at 3 x 1 x 1 mm.</summary>
    private static NnUnetPlans PlannedByUs()
    {
        var shapes = Enumerable.Range(0, 10).Select(_ => new[] { 8, 32, 32 }).ToList();
        var spacings = Enumerable.Range(0, 10).Select(_ => new[] { 3.0, 1, 1 }).ToList();
        var fingerprint = new DatasetFingerprint(new() { ["0"] = new IntensityProperties(50, 50, 20, 1, 100, 99, 2) }, 1.0, shapes, spacings);
        return ExperimentPlanner.Plan(fingerprint, new PlannerDatasetInfo("Dataset901_Interop", ["MRI"], 3, 10));
    }

    /// <summary>A model folder named as nnU-Net names it, with plans.json and dataset.json (no checkpoints yet).</summary>
    private string ModelFolder(NnUnetPlans plans, string configuration)
    {
        string folder = Path.Combine(_root, "nnUNet_results", "Dataset901_Interop", $"nnUNetTrainer__nnUNetPlans__{configuration}");
        Directory.CreateDirectory(folder);
        File.WriteAllText(Path.Combine(folder, "plans.json"), plans.ToJson());
        DatasetJson.Create(["MRI"], [new DatasetLabel("background", [0]), new DatasetLabel("a", [1]), new DatasetLabel("b", [2])], 10, ".nii.gz")
            .Save(Path.Combine(folder, DatasetJson.FileName));
        return folder;
    }

    /// <summary>Raw cases of exactly the configuration's patch (3D) or slice (2D) size in its spacing, no zero voxel: nnU-Net's
    /// preprocessing then only normalises, so the fixture's reference is nnU-Net's result.</summary>
    private string Inputs(PlansConfiguration configuration, int cases)
    {
        string folder = Path.Combine(_root, "input");
        Directory.CreateDirectory(folder);
        int[] shape = configuration.PatchSize.Length == 3 ? configuration.PatchSize : [4, .. configuration.PatchSize];
        double[] spacing = configuration.Spacing.Length == 3 ? configuration.Spacing : [3, .. configuration.Spacing];
        for (int c = 0; c < cases; c++)
        {
            var rng = new Random(c);
            var values = new float[shape[0] * shape[1] * shape[2]];
            for (int z = 0; z < shape[0]; z++)
            for (int y = 0; y < shape[1]; y++)
            for (int x = 0; x < shape[2]; x++)
            {
                bool blob = Math.Abs(y - shape[1] / 2 - c) < shape[1] / 4 && Math.Abs(x - shape[2] / 2) < shape[2] / 3;
                values[(z * shape[1] + y) * shape[2] + x] = (blob ? 80f : 20f) + (float)rng.NextDouble() * 15f;
            }
            var geometry = new ImageGeometry([spacing[2], spacing[1], spacing[0]], [1.5, -2, 4], [1, 0, 0, 0, 1, 0, 0, 0, 1]);
            NiftiWriter.Write(Path.Combine(folder, RawDataset.ImageFileName($"case_{c:D3}", 0, ".nii.gz")), MedicalImage.FromFloat(values, 1, shape[0], shape[1], shape[2], geometry));
        }
        return folder;
    }

    [Theory]
    [InlineData("2d", false)]
    [InlineData("2d", true)]
    [InlineData("3d_fullres", false)]
    public void PredictFromNnUnetModelFolder_EqualsPyTorchReference(string configurationName, bool disableTta)
    {
        var plans = PlannedByUs();
        var configuration = plans.GetConfiguration(configurationName);
        Assert.Equal(new[] { 0, 1, 2 }, plans.TransposeForward);
        string model = ModelFolder(plans, configurationName);
        Py("save", model, "0", "11");
        Py("save", model, "1", "12");
        string input = Inputs(configuration, cases: 2);
        string reference = Path.Combine(_root, "reference");
        Py(["reference", model, "0,1", input, reference, .. disableTta ? new[] { "--disable-tta" } : []]);

        string output = Path.Combine(_root, "ours");
        var run = Predictor.PredictFolder(new NnUnetPaths(null, null, null), input, output,
            new PredictionOptions { ModelFolder = model, Device = "cpu", DisableTta = disableTta });
        Assert.All(run.Cases, c => Assert.True(c.Succeeded, c.Error));
        Assert.Equal(new[] { 0, 1 }, run.Folds);

        using var comparison = JsonDocument.Parse(Py("compare", output, reference));
        Assert.Equal(2, comparison.RootElement.EnumerateObject().Count());
        foreach (var item in comparison.RootElement.EnumerateObject())
        {
            double agreement = item.Value.GetProperty("agreement").GetDouble();
            Assert.True(agreement >= 0.999, $"{configurationName} {item.Name}: {agreement:P3} of the voxels agree with PyTorch's segmentation");
            Assert.True(item.Value.GetProperty("labels").GetArrayLength() >= 2, $"{item.Name}: the reference segmentation is a single label (a vacuous comparison)");
        }
    }

    [Fact]
    public void NnUnetCheckpoint_ReadsEveryEntryOfTheTrainersDict()
    {
        var plans = PlannedByUs();
        string model = ModelFolder(plans, "3d_fullres");
        Py("save", model, "0", "5");
        string path = Path.Combine(model, "fold_0", "checkpoint_final.pth");
        var root = (PickleDict)TorchPickleReader.Load(path)!;
        Assert.Equal("nnUNetTrainer", root["trainer_name"]);
        Assert.Equal(2L, root["current_epoch"]);
        Assert.Equal(0.275, (double)root["_best_ema"]!, 12);                                   // numpy float64
        var logging = (PickleDict)root["logging"]!;
        Assert.Equal(-0.3, (double)((List<object?>)logging["train_losses"]!)[1]!, 6);         // numpy float32
        var initArgs = (PickleDict)root["init_args"]!;
        Assert.Equal(new TorchDeviceValue("cpu", null), initArgs["device"]);
        Assert.Equal("3d_fullres", initArgs["configuration"]);
        Assert.Equal(new PickleTuple([0L, 1L, 2L]), root["inference_allowed_mirroring_axes"]);
        var momentum = (PickleDict)((PickleDict)root["optimizer_state"]!)["state"]!;
        Assert.True(momentum.Items.Count > 10 && momentum.Items.All(kv => ((PickleDict)kv.Value!)["momentum_buffer"] is Tensor));

        using var weights = TrainedWeights.Load(path);
        var arch = plans.GetConfiguration("3d_fullres").Architecture.ArchKwargs;
        using var network = new PlainConvUNet(arch, weights.InputChannels, weights.NumClasses, deepSupervision: false);
        weights.LoadInto(network);  // strict: names and shapes
        Assert.Equal(network.state_dict().Count, weights.State.Count);
        Assert.Equal(new[] { 0, 1, 2 }, weights.MirrorAxes);
    }

    [Fact]
    public void ExportedModel_LoadsStrictlyInPyTorch_AndComputesOurLogits_AndPredictsAsTheOriginal()
    {
        using var fixture = new PredictionFixture("nnunet-export-");
        string ours = fixture.WriteModel("3d_fullres", 0, 1);
        fixture.WriteInput("case_a", 3);
        string exported = Path.Combine(_root, "exported", "nnUNetTrainer__nnUNetPlans__3d_fullres");
        var folds = NnUnetExport.ExportModelFolder(ours, exported);
        Assert.Equal(new[] { 0, 1 }, folds.Select(f => f.Fold));
        foreach (string json in (string[])["plans.json", "dataset.json"]) Assert.True(File.Exists(Path.Combine(exported, json)), json);

        // the network itself: PyTorch's strict load of the export computes our logits
        var config = PredictionFixture.Plans().GetConfiguration("3d_fullres");
        manual_seed(7);
        using var input = randn(new long[] { 1, 1, config.PatchSize[0], config.PatchSize[1], config.PatchSize[2] });
        string inputNpy = Path.Combine(_root, "input.npy"), outputNpy = Path.Combine(_root, "logits.npy");
        NpyFile.Write<float>(inputNpy, input.data<float>().ToArray(), input.shape.Select(s => (int)s).ToArray());
        using var summary = JsonDocument.Parse(Py("forward", exported, "0", inputNpy, outputNpy));
        Assert.Equal("nnUNetTrainer", summary.RootElement.GetProperty("trainer_name").GetString());
        Assert.Equal(new[] { 0, 1, 2 }, summary.RootElement.GetProperty("mirror_axes").EnumerateArray().Select(e => e.GetInt32()));
        using var checkpoint = Checkpoint.Load(Path.Combine(ours, "fold_0", "checkpoint_final.ckpt"));
        using var network = new PlainConvUNet(config.Architecture.ArchKwargs, 1, 3, deepSupervision: false);
        checkpoint.LoadWeightsInto(network);
        network.eval();
        using var expected = network.forward(input);
        float[] theirs = NpyFile.Read(outputNpy).As<float>();
        float[] mine = expected.data<float>().ToArray();
        Assert.Equal(mine.Length, theirs.Length);
        double maxDiff = 0;
        for (int i = 0; i < mine.Length; i++) maxDiff = Math.Max(maxDiff, Math.Abs(mine[i] - theirs[i]));
        Assert.True(maxDiff < 1e-4, $"PyTorch's logits differ from ours by up to {maxDiff}");

        // the whole model: predicting from the exported .pth folder gives the original's segmentation
        var options = new PredictionOptions { Device = "cpu" };
        Predictor.PredictFolder(fixture.Paths, fixture.Input, Path.Combine(_root, "from-ckpt"), options with { ModelFolder = ours });
        Predictor.PredictFolder(fixture.Paths, fixture.Input, Path.Combine(_root, "from-pth"), options with { ModelFolder = exported });
        var a = NiftiReader.Read(Path.Combine(_root, "from-ckpt", "case_a.nii.gz"));
        var b = NiftiReader.Read(Path.Combine(_root, "from-pth", "case_a.nii.gz"));
        Assert.Equal(a.ToFloat32(), b.ToFloat32());
    }

    [Fact]
    public void PickleWithAForeignGlobal_IsRefused_AndNothingRuns()
    {
        string path = Path.Combine(_root, "evil.pth");
        string marker = Path.Combine(_root, "executed");
        Py("evil", path, marker);
        var ex = Assert.Throws<UnsafePickleException>(() => TrainedWeights.Load(path));
        Assert.Contains("posix.system", ex.Message);   // os.system pickles as posix.system on Linux
        Assert.Contains(path, ex.Message);
        Assert.False(File.Exists(marker), "the pickle's os.system ran");
    }

    [Fact]
    public void CheckpointOfAnotherArchitecture_IsRefusedNamingTheTrainerAndTheWeights()
    {
        var weights = new PickleDict();
        using var t = zeros(new long[] { 4, 1, 3, 3, 3 });
        weights.Set("encoder.stem.convs.0.conv.weight", t);
        weights.Set("encoder.stages.0.blocks.0.conv1.conv.weight", t);
        var ex = Assert.Throws<InvalidDataException>(() => NnUnetStateDict.ToOurs(weights, null, "x.pth", "nnUNetTrainer_ResEncM"));
        Assert.Contains("nnUNetTrainer_ResEncM", ex.Message);
        Assert.Contains("encoder.stem.convs.0.conv.weight", ex.Message);

        // a model folder whose plans build a ResEnc U-Net is refused naming the network class
        var plans = PlannedByUs();
        plans.Configurations["3d_fullres"]["architecture"]!["network_class_name"] = "dynamic_network_architectures.architectures.unet.ResidualEncoderUNet";
        string model = ModelFolder(plans, "3d_fullres");
        Py("save", model, "0", "3");
        var refused = Assert.Throws<InvalidDataException>(() => PredictorModel.Load(model, [0], CPU));
        Assert.Contains("ResidualEncoderUNet", refused.Message);
        Assert.Contains("plans.json", refused.Message);
    }

    [Fact]
    public void PickleWriter_RoundTripsThroughOurReader()
    {
        using var a = arange(6, dtype: ScalarType.Float32).reshape(2, 3);
        using var h = ones(3, dtype: ScalarType.Float16);
        var state = new PickleDict();
        state.Set("a", a);
        state.Set("alias", a);
        state.Set("h", h);
        var root = new PickleDict();
        root.Set("w", new TorchPickleWriter.OrderedDict(state));
        root.Set("n", 70000L);
        root.Set("big", 1L << 40);
        root.Set("neg", -5L);
        root.Set("x", 0.25);
        root.Set("s", "é");
        root.Set("t", new PickleTuple([1L, 2L, 3L, 4L]));
        root.Set("l", new List<object?> { null, true, false });
        string path = Path.Combine(_root, "rt.pth");
        TorchPickleWriter.Save(path, root);
        var back = (PickleDict)TorchPickleReader.Load(path)!;
        var w = (PickleDict)back["w"]!;
        Assert.Equal(a.data<float>().ToArray(), ((Tensor)w["alias"]!).data<float>().ToArray());
        Assert.Equal(ScalarType.Float16, ((Tensor)w["h"]!).dtype);
        Assert.Equal(70000L, back["n"]);
        Assert.Equal(1L << 40, back["big"]);
        Assert.Equal(-5L, back["neg"]);
        Assert.Equal(0.25, back["x"]);
        Assert.Equal("é", back["s"]);
        Assert.Equal(new PickleTuple([1L, 2L, 3L, 4L]), back["t"]);
        Assert.Equal(new List<object?> { null, true, false }, (List<object?>)back["l"]!);
    }

    [Fact]
    public void PretrainedWeights_LoadEverythingButTheHeads_AndRefuseOtherShapes()
    {
        var plans = PlannedByUs();
        string model = ModelFolder(plans, "3d_fullres");
        Py("save", model, "0", "21");
        string path = Path.Combine(model, "fold_0", "checkpoint_final.pth");
        var arch = plans.GetConfiguration("3d_fullres").Architecture.ArchKwargs;
        using var source = TrainedWeights.Load(path);

        manual_seed(1);
        using var network = new PlainConvUNet(arch, 1, 5, deepSupervision: true);   // other classes: heads differ
        using var headBefore = network.state_dict()["seg_layers.0.weight"].clone();
        string line = PretrainedWeights.LoadInto(network, path);
        Assert.Contains("segmentation-head tensors kept", line);
        var state = network.state_dict();
        foreach (var (name, tensor) in state)
        {
            if (name.StartsWith("seg_layers.", StringComparison.Ordinal)) continue;
            Assert.True(tensor.eq(source.State[name]).all().item<bool>(), name);
        }
        Assert.True(state["seg_layers.0.weight"].eq(headBefore).all().item<bool>(), "the heads keep their initialisation");

        using var twoChannels = new PlainConvUNet(arch, 2, 3, deepSupervision: true);
        var ex = Assert.Throws<InvalidDataException>(() => PretrainedWeights.LoadInto(twoChannels, path));
        Assert.Contains("encoder.stages.0.0.convs.0.conv.weight", ex.Message);
        Assert.Contains("shape", ex.Message);
    }
}
