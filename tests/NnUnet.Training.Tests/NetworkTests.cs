using NnUnet.Core.Planning;
using NnUnet.Training.Network;
using static TorchSharp.torch;

namespace NnUnet.Training.Tests;

public class NetworkTests
{
    /// <summary>PlainConvUNet's parameter count written out from the architecture (every seg head counted, as nnU-Net builds them all).</summary>
    private static long ExpectedParameters(ArchitectureKwargs a, int inputChannels, int classes)
    {
        long Prod(int[] v) { long p = 1; foreach (int x in v) p *= x; return p; }
        long total = 0;
        int previous = inputChannels;
        for (int s = 0; s < a.NStages; s++)
        {
            int f = a.FeaturesPerStage[s];
            for (int i = 0; i < a.NConvPerStage[s]; i++)
            {
                int cin = i == 0 ? previous : f;
                total += cin * f * Prod(a.KernelSizes[s]) + f + 2 * f;
            }
            previous = f;
        }
        for (int d = 0; d < a.NStages - 1; d++)
        {
            int below = a.FeaturesPerStage[a.NStages - 1 - d], skip = a.FeaturesPerStage[a.NStages - 2 - d];
            total += below * skip * Prod(a.Strides[a.NStages - 1 - d]) + skip;
            for (int i = 0; i < a.NConvPerStageDecoder[d]; i++)
            {
                int cin = i == 0 ? 2 * skip : skip;
                total += cin * skip * Prod(a.KernelSizes[a.NStages - 2 - d]) + skip + 2 * skip;
            }
            total += skip * classes + classes;
        }
        return total;
    }

    [Fact]
    public void ParameterCountMatchesArchitectureFormula3dAnd2d()
    {
        var arch3 = TestPlans.Arch3d(stages: 4, baseFeatures: 4);
        using var net3 = new PlainConvUNet(arch3, inputChannels: 2, numClasses: 3, deepSupervision: true);
        Assert.Equal(ExpectedParameters(arch3, 2, 3), net3.ParameterCount());

        var arch2 = TestPlans.Arch2d(stages: 5, baseFeatures: 4);
        using var net2 = new PlainConvUNet(arch2, inputChannels: 1, numClasses: 2, deepSupervision: false);
        Assert.Equal(ExpectedParameters(arch2, 1, 2), net2.ParameterCount());
    }

    [Fact]
    public void DefaultNnUnet3dFullresPlanHasNnUnetsParameterCount()
    {
        // A typical 3d_fullres plan (6 stages, 32..320 features, isotropic 3x3x3): the count nnU-Net reports for
        // PlainConvUNet(1 input channel, 2 classes) is fixed by the formula above; check both agree on a real-size plan.
        var arch = new ArchitectureKwargs
        {
            NStages = 6, FeaturesPerStage = [32, 64, 128, 256, 320, 320], ConvOp = "torch.nn.modules.conv.Conv3d",
            KernelSizes = Enumerable.Repeat(new[] { 3, 3, 3 }, 6).ToArray(),
            Strides = [[1, 1, 1], [2, 2, 2], [2, 2, 2], [2, 2, 2], [2, 2, 2], [2, 2, 2]],
            NConvPerStage = [2, 2, 2, 2, 2, 2], NConvPerStageDecoder = [2, 2, 2, 2, 2],
        };
        using var net = new PlainConvUNet(arch, 1, 2, true);
        Assert.Equal(ExpectedParameters(arch, 1, 2), net.ParameterCount());
        Assert.InRange(net.ParameterCount(), 30_000_000, 32_000_000); // nnU-Net's 3d_fullres U-Net is ~31M parameters
    }

    [Fact]
    public void DeepSupervisionOutputsHighestResolutionFirst3d()
    {
        using var scope = NewDisposeScope();
        manual_seed(3);
        var arch = TestPlans.Arch3d(stages: 3, baseFeatures: 4);
        using var net = new PlainConvUNet(arch, 1, 3, deepSupervision: true);
        var x = randn(new long[] { 2, 1, 4, 16, 16 });
        var outs = net.ForwardWithDeepSupervision(x);
        Assert.Equal(2, outs.Length);
        Assert.Equal(new long[] { 2, 3, 4, 16, 16 }, outs[0].shape);
        Assert.Equal(new long[] { 2, 3, 4, 8, 8 }, outs[1].shape);
        var single = net.forward(x);
        Assert.Equal(outs[0].data<float>().ToArray(), single.data<float>().ToArray());
        net.DeepSupervision = false;
        Assert.Single(net.ForwardWithDeepSupervision(x));
    }

    [Fact]
    public void TwoDimensionalNetworkRunsAndBacksPropagates()
    {
        using var scope = NewDisposeScope();
        var arch = TestPlans.Arch2d(stages: 3, baseFeatures: 4);
        using var net = new PlainConvUNet(arch, 2, 2, deepSupervision: true);
        var outs = net.ForwardWithDeepSupervision(randn(3, 2, 32, 24));
        Assert.Equal(new long[] { 3, 2, 32, 24 }, outs[0].shape);
        Assert.Equal(new long[] { 3, 2, 16, 12 }, outs[1].shape);
        (outs[0].sum() + outs[1].sum()).backward();
        foreach (var p in net.parameters()) Assert.NotNull(p.grad);
    }

    [Fact]
    public void HeInitialisationHasKaimingStdAndZeroBias()
    {
        manual_seed(7);
        var arch = TestPlans.Arch3d(stages: 2, baseFeatures: 32, anisotropic: false);
        using var net = new PlainConvUNet(arch, 1, 2, false);
        var state = net.state_dict();
        var w = state["encoder.1.1.conv.weight"]; // stage 1, second conv: 64 -> 64, 3x3x3
        double fanIn = w.shape[1] * 27;
        double expectedStd = Math.Sqrt(2.0 / (1 + 1e-4)) / Math.Sqrt(fanIn);
        Assert.InRange(w.std().item<float>(), expectedStd * 0.95, expectedStd * 1.05);
        Assert.Equal(0f, state["encoder.1.1.conv.bias"].abs().max().item<float>());
        Assert.Equal(1f, state["encoder.1.1.norm.weight"].min().item<float>());
        Assert.True(state.ContainsKey("transpconvs.0.weight"));
        Assert.True(state.ContainsKey("seg_layers.0.weight"));
    }

    [Fact]
    public void InconsistentArchitectureIsRejectedWithClearMessage()
    {
        var arch = TestPlans.Arch3d() with { NConvPerStageDecoder = [2] };
        var ex = Assert.Throws<ArgumentException>(() => new PlainConvUNet(arch, 1, 2, true));
        Assert.Contains("n_conv_per_stage_decoder", ex.Message);
    }
}
