using NnUnet.Training.Devices;
using TorchSharp;
using static TorchSharp.torch;

namespace NnUnet.Training.Tests;

/// <summary>Catches a broken native set-up (libtorch / libLibTorchSharp / libstdc++) before anything else does.</summary>
public class TorchNativeTests
{
    [Fact]
    public void Conv3dForwardAndBackwardRunOnCpu()
    {
        using var scope = NewDisposeScope();
        manual_seed(1);
        var conv = nn.Conv3d(2, 4, 3, padding: 1);
        var input = randn(new long[] { 1, 2, 6, 6, 6 });
        var output = conv.forward(input);
        Assert.Equal(new long[] { 1, 4, 6, 6, 6 }, output.shape);
        output.square().mean().backward();
        var grad = conv.weight!.grad!;
        Assert.Equal(conv.weight.shape, grad.shape);
        Assert.True(grad.abs().sum().item<float>() > 0f, "Conv3d backward produced an all-zero gradient");
    }

    [Fact]
    public void AutoDeviceFallsBackToCpuWithoutCuda()
    {
        var device = TorchDevices.Resolve("auto");
        Assert.Equal(cuda.is_available() ? DeviceType.CUDA : DeviceType.CPU, device.type);
        Assert.Throws<ArgumentException>(() => TorchDevices.Resolve("tpu"));
    }
}
