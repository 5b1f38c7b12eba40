using NnUnet.Core.Planning;

namespace NnUnet.Core.Tests.Planning;

public sealed class NetworkTopologyTests
{
    [Fact]
    public void Isotropic_axes_pool_together_until_the_feature_map_would_fall_below_4()
    {
        // 40,56,40 -> 20,28,20 -> 10,14,10 -> 5,7,5: no axis is 8 or more any more.
        var topology = NetworkTopology.Compute([1.0, 1.0, 1.0], [40.0, 56, 40]);
        Assert.Equal([3, 3, 3], topology.NumPoolPerAxis);
        Assert.Equal([[1, 1, 1], [2, 2, 2], [2, 2, 2], [2, 2, 2]], topology.Strides);
        Assert.Equal(4, topology.KernelSizes.Length);
        Assert.All(topology.KernelSizes, k => Assert.Equal([3, 3, 3], k));
        Assert.Equal([40, 56, 40], topology.PatchSize);
        Assert.Equal([8, 8, 8], topology.ShapeMustBeDivisibleBy);
    }

    [Fact]
    public void Coarse_axis_waits_until_the_fine_axes_reach_half_its_spacing()
    {
        // spacing (5,1,1): y/x pool alone while z is 2x coarser; z's kernel stays 1 until z/min < 2.
        var topology = NetworkTopology.Compute([5.0, 1.0, 1.0], [20.0, 160, 160]);
        Assert.Equal([[1, 1, 1], [1, 2, 2], [1, 2, 2], [2, 2, 2], [2, 2, 2], [1, 2, 2]], topology.Strides);
        Assert.Equal([[1, 3, 3], [1, 3, 3], [3, 3, 3], [3, 3, 3], [3, 3, 3], [3, 3, 3]], topology.KernelSizes);
        Assert.Equal([2, 5, 5], topology.NumPoolPerAxis);
        Assert.Equal([4, 32, 32], topology.ShapeMustBeDivisibleBy);
        Assert.Equal([20, 160, 160], topology.PatchSize);
    }

    [Fact]
    public void Patch_is_padded_up_to_a_multiple_of_the_pooling_product()
    {
        // 100 -> 50 -> 25 -> 13 -> 7 and 60 -> 30 -> 15 -> 8 -> 4: four pools each, so multiples of 16.
        var topology = NetworkTopology.Compute([1.0, 1.0], [100.0, 60]);
        Assert.Equal([4, 4], topology.NumPoolPerAxis);
        Assert.Equal([112, 64], topology.PatchSize);
        Assert.Equal(5, topology.NumStages);
    }

    [Fact]
    public void Fractional_patch_from_a_half_voxel_median_is_padded_like_nnunet()
    {
        var topology = NetworkTopology.Compute([1.0, 1.0], [100.5, 64]);
        Assert.Equal([112, 64], topology.PatchSize);
    }

    [Fact]
    public void A_lone_poolable_axis_needs_three_times_the_minimum_edge()
    {
        Assert.Equal([0, 0], NetworkTopology.Compute([1.0, 1.0], [4.0, 11]).NumPoolPerAxis);
        Assert.Equal([0, 1], NetworkTopology.Compute([1.0, 1.0], [4.0, 12]).NumPoolPerAxis);
        Assert.Equal([[1, 1]], NetworkTopology.Compute([1.0, 1.0], [4.0, 11]).Strides);
        Assert.Equal([[3, 3]], NetworkTopology.Compute([1.0, 1.0], [4.0, 11]).KernelSizes);
    }

    [Fact]
    public void Invalid_arguments_are_rejected()
    {
        Assert.Throws<ArgumentException>(() => NetworkTopology.Compute([1.0, 1.0, 1.0], [10.0, 10]));
        Assert.Throws<ArgumentException>(() => NetworkTopology.Compute([1.0, 0.0], [10.0, 10]));
        Assert.Throws<ArgumentException>(() => NetworkTopology.Compute([1.0, 1.0], [0.0, 10]));
        Assert.Throws<ArgumentException>(() => NetworkTopology.Compute([1.0], [10.0]));
    }
}
