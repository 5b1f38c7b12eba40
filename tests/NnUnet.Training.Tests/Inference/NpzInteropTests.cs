using NnUnet.Core.Ensembling;
using NnUnet.Training.Inference;
using static TorchSharp.torch;

namespace NnUnet.Training.Tests.Inference;

public sealed class NpzInteropTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("npz-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void ExportedProbabilitiesLoadInNumpyAndInTheEnsembler()
    {
        using var scope = NewDisposeScope();
        var plans = InferenceTestData.Plans([0, 1, 2], new() { ["3d_fullres"] = ([1, 1, 1], [4, 4, 4], null, null) });
        var properties = InferenceTestData.Properties([3, 4, 5], [[0, 3], [1, 4], [0, 5]], [1, 1, 1], [0, 1, 2]);
        manual_seed(3);
        var logits = randn(new long[] { 3, 3, 3, 5 });
        var exporter = new PredictionExporter(plans, plans.GetConfiguration("3d_fullres"), InferenceTestData.Labels(3));
        string truncated = Path.Combine(_dir, "case_001");
        var exported = exporter.Export(logits, properties, truncated, saveProbabilities: true);

        var map = ProbabilityMap.Load(truncated + ".npz");
        Assert.Equal(exported.Probabilities, map.Values);
        string output = Python.Run("import numpy as np, sys\na = np.load(sys.argv[1])['probabilities']\n" +
                                  "print(a.dtype, a.shape, round(float(a.sum(0).min()), 4), round(float(a.sum(0).max()), 4))", truncated + ".npz");
        Assert.Equal("float32 (3, 3, 4, 5) 1.0 1.0", output.Trim());
        Assert.Empty(Directory.GetFiles(_dir, "*.tmp-*"));
    }
}
