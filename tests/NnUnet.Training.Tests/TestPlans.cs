using NnUnet.Core.Planning;

namespace NnUnet.Training.Tests;

/// <summary>Small architectures for tests (a real nnU-Net plan shape, scaled down).</summary>
internal static class TestPlans
{
    public static ArchitectureKwargs Arch3d(int stages = 3, int baseFeatures = 8, bool anisotropic = true)
    {
        var features = new int[stages];
        var kernels = new int[stages][];
        var strides = new int[stages][];
        for (int s = 0; s < stages; s++)
        {
            features[s] = baseFeatures << s;
            kernels[s] = anisotropic && s == 0 ? [1, 3, 3] : [3, 3, 3];
            strides[s] = s == 0 ? [1, 1, 1] : anisotropic && s == 1 ? [1, 2, 2] : [2, 2, 2];
        }
        return new ArchitectureKwargs
        {
            NStages = stages, FeaturesPerStage = features, ConvOp = "torch.nn.modules.conv.Conv3d",
            KernelSizes = kernels, Strides = strides,
            NConvPerStage = Enumerable.Repeat(2, stages).ToArray(), NConvPerStageDecoder = Enumerable.Repeat(2, stages - 1).ToArray(),
        };
    }

    public static ArchitectureKwargs Arch2d(int stages = 3, int baseFeatures = 8)
    {
        var features = new int[stages];
        var kernels = new int[stages][];
        var strides = new int[stages][];
        for (int s = 0; s < stages; s++)
        {
            features[s] = baseFeatures << s;
            kernels[s] = [3, 3];
            strides[s] = s == 0 ? [1, 1] : [2, 2];
        }
        return new ArchitectureKwargs
        {
            NStages = stages, FeaturesPerStage = features, ConvOp = "torch.nn.modules.conv.Conv2d",
            KernelSizes = kernels, Strides = strides, NormOp = "torch.nn.modules.instancenorm.InstanceNorm2d",
            NConvPerStage = Enumerable.Repeat(2, stages).ToArray(), NConvPerStageDecoder = Enumerable.Repeat(2, stages - 1).ToArray(),
        };
    }
}
