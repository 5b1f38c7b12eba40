using NnUnet.Training.Augmentation;
using static TorchSharp.torch;
using Op = NnUnet.Training.Augmentation.CascadeAugmentation.BinaryOperator;

namespace NnUnet.Training.Tests.Augmentation;

public class CascadeAugmentationTests
{
    [Fact]
    public void DilatingOneVoxelGivesTheBall()
    {
        using var scope = NewDisposeScope();
        var mask = zeros(new long[] { 9, 9, 9 }, ScalarType.Bool);
        mask[4, 4, 4] = tensor(true);
        var dilated = CascadeAugmentation.Dilate(mask, 2);
        var ball = CascadeAugmentation.Ball(2, 3, CPU).gt(0.5);
        Assert.True(dilated.IsSame(Embed(ball, 9, 2)));
        Assert.Equal(33, dilated.sum().item<long>()); // skimage ball(2).sum() == 33
        Assert.Equal(13, CascadeAugmentation.Ball(2, 2, CPU).sum().item<float>()); // disk(2)
    }

    private static Tensor Embed(Tensor ball, int size, int centreOffset)
    {
        var result = zeros(new long[] { size, size, size }, ScalarType.Bool);
        int c = size / 2;
        result[(c - centreOffset)..(c + centreOffset + 1), (c - centreOffset)..(c + centreOffset + 1), (c - centreOffset)..(c + centreOffset + 1)] = ball;
        return result;
    }

    [Fact]
    public void ErosionOpeningAndClosingBehaveAsMorphology()
    {
        using var scope = NewDisposeScope();
        var cube = zeros(new long[] { 12, 12, 12 }, ScalarType.Bool);
        cube[2..10, 2..10, 2..10] = tensor(true);
        var eroded = CascadeAugmentation.Apply(Op.Erosion, cube, 1);
        // a 6-connected ball of radius 1 shaves one voxel off every face
        var inner = zeros(new long[] { 12, 12, 12 }, ScalarType.Bool);
        inner[3..9, 3..9, 3..9] = tensor(true);
        Assert.True(eroded.IsSame(inner));

        // opening removes a one-voxel-thin spike; closing fills a one-voxel hole
        var spiky = cube.clone();
        spiky[5, 5, 10..12] = tensor(true);
        var opened = CascadeAugmentation.Apply(Op.Opening, spiky, 1);
        Assert.False(opened[5, 5, 11].item<bool>());
        Assert.True(opened[5, 5, 5].item<bool>());
        var holed = cube.clone();
        holed[5, 5, 5] = tensor(false);
        Assert.True(CascadeAugmentation.Apply(Op.Closing, holed, 1)[5, 5, 5].item<bool>());
        Assert.True(CascadeAugmentation.Apply(Op.Dilation, cube, 1)[1, 5, 5].item<bool>());
    }

    [Fact]
    public void DilationClearsTheAddedVoxelsInTheOtherOneHotChannels()
    {
        using var scope = NewDisposeScope();
        var sample = zeros(new long[] { 3, 8, 8 });
        sample[1, 2..4, 2..4] = tensor(1f);
        sample[2, 4..6, 2..4] = tensor(1f);
        CascadeAugmentation.ApplyToChannel(sample, 1, [1, 2], Op.Dilation, 1);
        Assert.Equal(1f, sample[1, 4, 2].item<float>());
        Assert.Equal(0f, sample[2, 4, 2].item<float>());
        Assert.Equal(1f, sample[2, 5, 2].item<float>());
        Assert.True(sample[1].add(sample[2]).le(1).all().item<bool>(), "one-hot channels must stay exclusive");
        Assert.Equal(0f, sample[0].abs().sum().item<float>());
    }

    [Fact]
    public void DiagonalNeighboursFormOneComponent()
    {
        using var scope = NewDisposeScope();
        var sample = zeros(new long[] { 1, 4, 4, 4 });
        sample[0, 0, 0, 0] = tensor(1f);
        sample[0, 1, 1, 1] = tensor(1f); // diagonal neighbour: same component (full connectivity)
        Assert.True(CascadeAugmentation.RemoveComponent(sample, 0, 0.0, 0.15));
        Assert.Equal(0f, sample.sum().item<float>());
    }

    [Fact]
    public void RemovesOnlyComponentsSmallerThanTheLimit()
    {
        using var scope = NewDisposeScope();
        var sample = zeros(new long[] { 1, 10, 10 });
        sample[0, 0..5, 0..5] = tensor(1f); // 25% of the patch: never removed
        sample[0, 8, 8] = tensor(1f);
        sample[0, 8, 5] = tensor(1f);
        for (double pick = 0; pick < 1; pick += 0.3)
        {
            var work = sample.clone();
            Assert.True(CascadeAugmentation.RemoveComponent(work, 0, pick, 0.15));
            Assert.Equal(26f, work.sum().item<float>());
            Assert.Equal(25f, work[0, 0..5, 0..5].sum().item<float>());
        }
        var onlyLarge = zeros(new long[] { 1, 10, 10 });
        onlyLarge[0, 0..5, 0..5] = tensor(1f);
        Assert.False(CascadeAugmentation.RemoveComponent(onlyLarge, 0, 0.5, 0.15));
    }

    [Fact]
    public void CascadePipelineAppendsAugmentedOneHotChannelsDeterministically()
    {
        using var scope = NewDisposeScope();
        var options = AugmentationOptions.ForPatch([8, 8, 8]) with
        {
            Cascade = new CascadeAugmentationOptions { ForegroundLabels = [1, 2], PBinaryOperator = 1, PRemoveComponent = 1, StructureRadiusMax = 2 },
        };
        var initial = options.InitialPatchSize;
        long[] spatial = [initial[0], initial[1], initial[2]];
        manual_seed(3);
        var data = randn([3L, 1L, .. spatial]);
        var seg = randint(0, 3, [3L, 2L, .. spatial]);
        var augmenter = new NnUnetAugmenter(options);
        using var a = new Generator(9);
        using var b = new Generator(9);
        var (d1, s1) = augmenter.Apply(data, seg, a);
        var (d2, s2) = augmenter.Apply(data, seg, b);
        Assert.Equal(new long[] { 3, 3, 8, 8, 8 }, d1.shape);
        Assert.Equal(new long[] { 3, 1, 8, 8, 8 }, s1.shape);
        Assert.True(d1.IsSame(d2) && s1.IsSame(s2));
        var oneHot = d1[.., 1..3];
        Assert.True(oneHot.eq(0).logical_or(oneHot.eq(1)).all().item<bool>(), "one-hot channels hold 0/1");
        Assert.True(oneHot.sum(1).le(1).all().item<bool>(), "one-hot channels are exclusive");
        var ex = Assert.Throws<ArgumentException>(() => augmenter.Apply(data, seg[.., 0..1], a));
        Assert.Contains("previous stage", ex.Message);
    }

    /// <summary>nnU-Net v2 uses p_per_label = 1 for both cascade transforms: once a transform runs, it touches every label
    /// (with 0.5 per label about half of these 20 draws would leave the label alone).</summary>
    [Fact]
    public void OnceACascadeTransformRunsItChangesEveryLabel()
    {
        using var scope = NewDisposeScope();
        var defaults = new CascadeAugmentationOptions { ForegroundLabels = [1] };
        Assert.Equal(1.0, defaults.PBinaryOperatorPerLabel);
        Assert.Equal(1.0, defaults.PRemoveComponentPerLabel);
        // a cube with a one-voxel hole and a one-voxel spike: dilation, erosion, opening and closing all change it
        var shape = zeros(new long[] { 1, 24, 24, 24 });
        shape[0, 9..15, 9..15, 9..15] = tensor(1f);
        shape[0, 12, 12, 12] = tensor(0f);
        shape[0, 15, 12, 12] = tensor(1f);
        // two small components: removing one changes the channel
        var components = zeros(new long[] { 1, 24, 24, 24 });
        components[0, 2..4, 2..4, 2..4] = tensor(1f);
        components[0, 18..20, 18..20, 18..20] = tensor(1f);
        var operatorsOnly = defaults with { PBinaryOperator = 1, PRemoveComponent = 0 };
        var removalOnly = defaults with { PBinaryOperator = 0, PRemoveComponent = 1 };
        for (int seed = 0; seed < 20; seed++)
        {
            using var generator = new Generator((ulong)seed);
            using var random = new AugmentationRandom(generator);
            var a = shape.clone();
            CascadeAugmentation.Augment(a, [0], operatorsOnly, random);
            Assert.False(a.eq(shape).all().item<bool>(), $"seed {seed}: the binary operator left the label unchanged");
            var b = components.clone();
            CascadeAugmentation.Augment(b, [0], removalOnly, random);
            Assert.Equal(8f, b.sum().item<float>());
        }
    }
}
