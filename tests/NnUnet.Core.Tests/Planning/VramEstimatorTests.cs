using NnUnet.Core.Planning;

namespace NnUnet.Core.Tests.Planning;

/// <summary>The hand-computed values below equal what dynamic_network_architectures' PlainConvUNet.compute_conv_feature_map_size
/// returns for the same networks (checked once with torch; see Reference/make_reference_plans.py for the set-up).</summary>
public sealed class VramEstimatorTests
{
    [Fact]
    public void Two_stage_2d_network_by_hand()
    {
        // patch 8x8, strides [1,1],[2,2], features 32,64, 3 classes.
        // encoder: 2*32*64 + 2*64*16 = 4096 + 2048; decoder level 0: 2*32*64 + transposed conv 32*64 = 4096 + 2048;
        // head: 3*64 = 192.
        long estimate = VramEstimator.FeatureMapSize([8, 8], [[1, 1], [2, 2]], [32, 64], [2, 2], [2], numClasses: 3);
        Assert.Equal(12480, estimate);
    }

    [Fact]
    public void Three_stage_anisotropic_3d_network_by_hand()
    {
        // patch 4x8x8, strides [1,1,1],[1,2,2],[2,2,2]: stage sizes 256, 64, 8 voxels; features 32, 64, 128; 2 classes.
        // encoder 2*32*256 + 2*64*64 + 2*128*8 = 16384 + 8192 + 2048
        // decoder stage 1: 2*64*64 + 64*64 = 8192 + 4096; stage 0: 2*32*256 + 32*256 = 16384 + 8192; head 2*256 = 512
        long estimate = VramEstimator.FeatureMapSize([4, 8, 8], [[1, 1, 1], [1, 2, 2], [2, 2, 2]], [32, 64, 128], [2, 2, 2], [2, 2], numClasses: 2);
        Assert.Equal(64000, estimate);
    }

    [Fact]
    public void Conv_counts_per_stage_enter_linearly()
    {
        // One conv per stage instead of two removes 32*64 + 64*16 (encoder) and 32*64 (decoder).
        long two = VramEstimator.FeatureMapSize([8, 8], [[1, 1], [2, 2]], [32, 64], [2, 2], [2], 3);
        long one = VramEstimator.FeatureMapSize([8, 8], [[1, 1], [2, 2]], [32, 64], [1, 1], [1], 3);
        Assert.Equal(32 * 64 + 64 * 16 + 32 * 64, two - one);
    }

    [Fact]
    public void Estimate_of_the_lung_fullres_network_is_below_the_8GB_reference()
    {
        // 6 stages for 80x192x160: the value nnU-Net's network.compute_conv_feature_map_size returns for this topology
        // (2 classes) is what the planner compared against 560e6 when it stopped shrinking.
        int[][] strides = [[1, 1, 1], [2, 2, 2], [2, 2, 2], [2, 2, 2], [2, 2, 2], [1, 2, 2]];
        long estimate = VramEstimator.FeatureMapSize([80, 192, 160], strides, [32, 64, 128, 256, 320, 320], [2, 2, 2, 2, 2, 2], [2, 2, 2, 2, 2], 2);
        Assert.Equal(528_211_200, estimate);
        Assert.True(estimate <= 560_000_000);
    }

    [Fact]
    public void Mismatched_lengths_are_rejected()
    {
        Assert.Throws<ArgumentException>(() => VramEstimator.FeatureMapSize([8, 8], [[1, 1], [2, 2]], [32], [2, 2], [2], 3));
        Assert.Throws<ArgumentException>(() => VramEstimator.FeatureMapSize([8, 8], [[1, 1], [2, 2]], [32, 64], [2, 2], [2, 2], 3));
        Assert.Throws<ArgumentException>(() => VramEstimator.FeatureMapSize([8, 8], [[1, 1], [2, 2, 2]], [32, 64], [2, 2], [2], 3));
        Assert.Throws<ArgumentException>(() => VramEstimator.FeatureMapSize([8, 8], [[1, 1], [2, 2]], [32, 64], [2, 2], [2], 0));
    }
}
