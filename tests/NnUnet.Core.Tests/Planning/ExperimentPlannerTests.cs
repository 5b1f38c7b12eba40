using NnUnet.Core.Fingerprinting;
using NnUnet.Core.Planning;
using static NnUnet.Core.Tests.Planning.PlanningFixtures;

namespace NnUnet.Core.Tests.Planning;

public sealed class ExperimentPlannerTests
{
    private static readonly double[] LungSpacing = [1.245, 0.78515625, 0.78515625];
    private static readonly int[] LungShape = [252, 512, 512];

    /// <summary>
    /// The published v2 plans of MSD Task06 Lung (63 cases). Our fingerprint is synthetic: all 63 cases share the published
    /// median spacing and shape, which is all the planner reads besides numTraining and the label count, so every
    /// published number is determined and checked.
    /// </summary>
    [Fact]
    public void MsdLung_published_plans_are_reproduced()
    {
        var plans = PlanUniform(63, LungSpacing, LungShape);

        Assert.Equal(["2d", "3d_lowres", "3d_fullres", "3d_cascade_fullres"], plans.ConfigurationNames);
        var fullres = plans.GetConfiguration("3d_fullres");
        Assert.Equal([252.0, 512, 512], fullres.MedianImageSizeInVoxels);
        Assert.Equal([1.2450, 0.7852, 0.7852], Rounded(fullres.Spacing, 4));
        Assert.Equal([80, 192, 160], fullres.PatchSize);
        Assert.Equal(2, fullres.BatchSize);
        Assert.Equal(6, fullres.Architecture.ArchKwargs.NStages);
        Assert.Equal([[1, 1, 1], [2, 2, 2], [2, 2, 2], [2, 2, 2], [2, 2, 2], [1, 2, 2]], fullres.Architecture.ArchKwargs.Strides);
        Assert.Equal([32, 64, 128, 256, 320, 320], fullres.Architecture.ArchKwargs.FeaturesPerStage);
        Assert.True(fullres.BatchDice);

        var lowres = plans.GetConfiguration("3d_lowres");
        Assert.Equal([2.3855, 1.5044, 1.5044], Rounded(lowres.Spacing, 4));
        Assert.Equal([132.0, 267, 267], lowres.MedianImageSizeInVoxels);
        Assert.Equal([80, 192, 160], lowres.PatchSize);
        Assert.False(lowres.BatchDice);

        var plan2d = plans.GetConfiguration("2d");
        Assert.Equal([512, 512], plan2d.PatchSize);
        Assert.Equal(12, plan2d.BatchSize);
        Assert.Equal(8, plan2d.Architecture.ArchKwargs.NStages);
        Assert.Equal([32, 64, 128, 256, 512, 512, 512, 512], plan2d.Architecture.ArchKwargs.FeaturesPerStage);
    }

    [Fact]
    public void Isotropic_data_keeps_median_spacing_and_pools_every_axis_alike()
    {
        var plans = PlanUniform(20, [1.0, 1.0, 1.0], [160, 160, 160]);

        Assert.Equal([0, 1, 2], plans.TransposeForward);
        Assert.Equal([1.0, 1.0, 1.0], plans.OriginalMedianSpacingAfterTransp);
        Assert.Equal([160, 160, 160], plans.OriginalMedianShapeAfterTransp);
        var fullres = plans.GetConfiguration("3d_fullres");
        Assert.Equal([1.0, 1.0, 1.0], fullres.Spacing);
        Assert.Equal(fullres.PatchSize[0], fullres.PatchSize[1]);
        Assert.Equal(fullres.PatchSize[0], fullres.PatchSize[2]);
        foreach (var kernel in fullres.Architecture.ArchKwargs.KernelSizes) Assert.Equal([3, 3, 3], kernel);
        for (int s = 1; s < fullres.Architecture.ArchKwargs.NStages; s++) Assert.Equal([2, 2, 2], fullres.Architecture.ArchKwargs.Strides[s]);
        Assert.Equal("torch.nn.modules.conv.Conv3d", fullres.Architecture.ArchKwargs.ConvOp);
        Assert.Equal("torch.nn.modules.instancenorm.InstanceNorm3d", fullres.Architecture.ArchKwargs.NormOp);
        Assert.Equal("nnUNetPlans_3d_fullres", fullres.DataIdentifier);
    }

    [Fact]
    public void Anisotropic_data_uses_1_kernels_and_in_plane_pooling_until_the_spacing_catches_up()
    {
        var plans = PlanUniform(30, [3.6, 0.62, 0.62], [20, 320, 320]);

        var kwargs = plans.GetConfiguration("3d_fullres").Architecture.ArchKwargs;
        Assert.Equal([1, 3, 3], kwargs.KernelSizes[0]);
        Assert.Equal([1, 2, 2], kwargs.Strides[1]);
        Assert.Equal([3, 3, 3], kwargs.KernelSizes[^1]);
        // The z kernel turns 3 exactly when z's current spacing comes within a factor 2 of the finest axis.
        double z = 3.6, inPlane = 0.62;
        for (int s = 0; s < kwargs.NStages - 1; s++)
        {
            Assert.Equal(z / Math.Min(z, inPlane) < 2 ? 3 : 1, kwargs.KernelSizes[s][0]);
            var stride = kwargs.Strides[s + 1];
            z *= stride[0];
            inPlane *= stride[1];
        }
    }

    [Fact]
    public void Anisotropic_target_spacing_takes_the_10th_percentile_of_the_coarse_axis()
    {
        // z medians 9.5 > 3 * 1 and 10 slices * 3 < 256: the rule applies; 10th percentile of 5..10 (linear) = 5.9.
        double[] zSpacings = [5, 6, 7, 8, 9, 10, 10, 10, 10, 10];
        var fingerprint = WithZSpacings(zSpacings, inPlaneSpacing: 1.0, zSize: 10);
        var target = ExperimentPlanner.DetermineFullresTargetSpacing(fingerprint, new PlannerOptions());
        Assert.Equal(5.9, target[0], 12);
        Assert.Equal([1.0, 1.0], target[1..]);
    }

    [Fact]
    public void Anisotropic_target_spacing_never_drops_below_the_other_axes()
    {
        // 10th percentile would be 1.0 < in-plane 3.0, so z becomes 3.0 + 1e-5.
        double[] zSpacings = [1, 1, 10, 10, 10, 10, 10, 10, 10, 10];
        var fingerprint = WithZSpacings(zSpacings, inPlaneSpacing: 3.0, zSize: 10);
        var target = ExperimentPlanner.DetermineFullresTargetSpacing(fingerprint, new PlannerOptions());
        Assert.Equal(3.00001, target[0], 12);
    }

    [Fact]
    public void Anisotropic_spacing_without_few_slices_keeps_the_median()
    {
        // 100 slices * 3 >= 256: enough voxels along z, so the median (9.5) stays.
        double[] zSpacings = [5, 6, 7, 8, 9, 10, 10, 10, 10, 10];
        var fingerprint = WithZSpacings(zSpacings, inPlaneSpacing: 1.0, zSize: 100);
        var target = ExperimentPlanner.DetermineFullresTargetSpacing(fingerprint, new PlannerOptions());
        Assert.Equal(9.5, target[0], 12);
    }

    [Fact]
    public void Coarsest_axis_is_transposed_to_the_front()
    {
        var plans = PlanUniform(20, [0.8, 0.8, 4.0], [300, 300, 60]);

        Assert.Equal([2, 0, 1], plans.TransposeForward);
        Assert.Equal([1, 2, 0], plans.TransposeBackward);
        Assert.Equal([4.0, 0.8, 0.8], plans.OriginalMedianSpacingAfterTransp);
        Assert.Equal([60, 300, 300], plans.OriginalMedianShapeAfterTransp);
        Assert.Equal([4.0, 0.8, 0.8], plans.GetConfiguration("3d_fullres").Spacing);
        Assert.Equal([60.0, 300, 300], plans.GetConfiguration("3d_fullres").MedianImageSizeInVoxels);
        Assert.Equal([0.8, 0.8], plans.GetConfiguration("2d").Spacing);
    }

    [Fact]
    public void Two_dimensional_dataset_gets_only_the_2d_configuration()
    {
        var plans = PlanUniform(50, [999.0, 0.5, 0.5], [1, 512, 512]);

        Assert.Equal(["2d"], plans.ConfigurationNames);
        var plan2d = plans.GetConfiguration("2d");
        Assert.True(plan2d.BatchDice);
        Assert.Equal("nnUNetPlans_2d", plan2d.DataIdentifier);
        Assert.Equal("torch.nn.modules.conv.Conv2d", plan2d.Architecture.ArchKwargs.ConvOp);
        Assert.Equal("torch.nn.modules.instancenorm.InstanceNorm2d", plan2d.Architecture.ArchKwargs.NormOp);
        Assert.Equal(2, plan2d.PatchSize.Length);
        Assert.All(plan2d.Architecture.ArchKwargs.KernelSizes, k => Assert.Equal(2, k.Length));
    }

    [Fact]
    public void Tiny_dataset_batch_is_capped_at_5_percent_but_never_below_2()
    {
        var plans = PlanUniform(2, [1.0, 1.0, 1.0], [64, 64, 64]);
        var fullres = plans.GetConfiguration("3d_fullres");

        Assert.True(UncappedBatch(fullres, is2d: false, gpuGb: 8, labels: 2) > 2, "the memory budget alone would allow more");
        Assert.Equal(0, (int)Math.Round(0.05 * 2 * 64 * 64 * 64 / Product(fullres.PatchSize), MidpointRounding.ToEven));
        Assert.Equal(2, fullres.BatchSize);
    }

    [Fact]
    public void Batch_cap_binds_between_the_minimum_and_the_memory_budget()
    {
        var plans = PlanUniform(260, [1.0, 1.0, 1.0], [36, 50, 35], labels: 3);
        var fullres = plans.GetConfiguration("3d_fullres");

        int capped = (int)Math.Round(0.05 * 260 * 36 * 50 * 35 / Product(fullres.PatchSize), MidpointRounding.ToEven);
        Assert.True(capped > 2);
        Assert.True(UncappedBatch(fullres, is2d: false, gpuGb: 8, labels: 3) > capped);
        Assert.Equal(capped, fullres.BatchSize);
    }

    [Fact]
    public void Huge_dataset_batch_spends_the_memory_budget()
    {
        var plans = PlanUniform(20000, [1.0, 1.0, 1.0], [36, 50, 35], labels: 3);
        var fullres = plans.GetConfiguration("3d_fullres");
        var plan2d = plans.GetConfiguration("2d");

        Assert.Equal(UncappedBatch(fullres, is2d: false, gpuGb: 8, labels: 3), fullres.BatchSize);
        Assert.Equal(UncappedBatch(plan2d, is2d: true, gpuGb: 8, labels: 3), plan2d.BatchSize);
        Assert.True(fullres.BatchSize > 9, $"batch {fullres.BatchSize}");
    }

    [Fact]
    public void More_gpu_memory_gives_larger_patches_and_batches()
    {
        var small = PlanUniform(63, LungSpacing, LungShape, gpuMemoryGb: 4);
        var reference = PlanUniform(63, LungSpacing, LungShape, gpuMemoryGb: 8);
        var large = PlanUniform(63, LungSpacing, LungShape, gpuMemoryGb: 24);

        double smallPatch = Product(small.GetConfiguration("3d_fullres").PatchSize);
        double referencePatch = Product(reference.GetConfiguration("3d_fullres").PatchSize);
        double largePatch = Product(large.GetConfiguration("3d_fullres").PatchSize);
        Assert.True(smallPatch < referencePatch && referencePatch < largePatch, $"{smallPatch} < {referencePatch} < {largePatch}");

        foreach (var (plans, gb) in new[] { (small, 4.0), (reference, 8.0), (large, 24.0) })
        {
            var fullres = plans.GetConfiguration("3d_fullres");
            double estimate = ExperimentPlanner.EstimateFeatureMapSize(fullres, 2);
            Assert.True(estimate / 2 * 2 <= 560_000_000 * (gb / 8), $"{gb} GB: estimate {estimate} over budget");
        }

        // 2d: the patch is already the whole 512x512 image, so memory goes into the batch.
        Assert.Equal([512, 512], small.GetConfiguration("2d").PatchSize);
        Assert.Equal([512, 512], large.GetConfiguration("2d").PatchSize);
        Assert.Equal(6, small.GetConfiguration("2d").BatchSize);
        Assert.Equal(12, reference.GetConfiguration("2d").BatchSize);
        Assert.Equal(37, large.GetConfiguration("2d").BatchSize);
        Assert.Equal(37, UncappedBatch(large.GetConfiguration("2d"), is2d: true, gpuGb: 24, labels: 2));
    }

    [Fact]
    public void Lowres_coarsens_only_the_fine_axes_until_within_factor_2_then_all_by_3_percent()
    {
        // (3, 1, 1) is not anisotropic enough for the 10th-percentile rule, but y and x are more than 2x finer than z, so
        // the lowres search first coarsens only them: 14 steps until 3 / 1.03^14 <= 2, then all three together.
        var plans = PlanUniform(10, [3.0, 1.0, 1.0], [200, 600, 600]);

        Assert.Equal(["2d", "3d_lowres", "3d_fullres", "3d_cascade_fullres"], plans.ConfigurationNames);
        var fullres = plans.GetConfiguration("3d_fullres");
        var lowres = plans.GetConfiguration("3d_lowres");
        Assert.Equal([3.0, 1.0, 1.0], fullres.Spacing);
        Assert.Equal(3 / Math.Pow(1.03, 14), lowres.Spacing[0] / lowres.Spacing[1], 10);
        Assert.Equal(lowres.Spacing[1], lowres.Spacing[2]);
        double steps = Math.Log(lowres.Spacing[1]) / Math.Log(1.03);
        Assert.Equal(Math.Round(steps), steps, 6);
        Assert.True(steps > 14);

        var unroundedMedian = new double[3];
        for (int d = 0; d < 3; d++)
        {
            unroundedMedian[d] = fullres.Spacing[d] / lowres.Spacing[d] * fullres.MedianImageSizeInVoxels[d];
            Assert.Equal(Math.Round(unroundedMedian[d], MidpointRounding.ToEven), lowres.MedianImageSizeInVoxels[d]);
        }
        Assert.True(Product(lowres.PatchSize) / Product(unroundedMedian) >= 0.25);
        Assert.True(Product(fullres.PatchSize) / Product(fullres.MedianImageSizeInVoxels) < 0.25);
        Assert.True(Product(fullres.MedianImageSizeInVoxels) / Product(unroundedMedian) >= 2);
        Assert.True(fullres.BatchDice);
        Assert.False(lowres.BatchDice);
        Assert.Equal(["3d_cascade_fullres"], lowres.NextStage!);
        Assert.Equal("nnUNetPlans_3d_lowres", lowres.DataIdentifier);
    }

    [Fact]
    public void Isotropic_lowres_scales_every_axis_by_the_same_power_of_1_03()
    {
        var plans = PlanUniform(63, LungSpacing, LungShape);
        var lowres = plans.GetConfiguration("3d_lowres");
        for (int d = 0; d < 3; d++) Assert.Equal(Math.Pow(1.03, 22), lowres.Spacing[d] / LungSpacing[d], 10);
    }

    [Fact]
    public void Lowres_is_dropped_when_it_would_not_halve_the_image()
    {
        // A 220^3 image: the fullres patch covers under 25%, but a few 3% steps already reach 25%, far from halving the image.
        var plans = PlanUniform(10, [1.0, 1.0, 1.0], [220, 220, 220]);
        var fullres = plans.GetConfiguration("3d_fullres");

        Assert.True(Product(fullres.PatchSize) / Product(fullres.MedianImageSizeInVoxels) < 0.25);
        Assert.Equal(["2d", "3d_fullres"], plans.ConfigurationNames);
        Assert.False(fullres.BatchDice);
        Assert.Null(fullres.NextStage);
        Assert.Null(fullres.PreviousStage);
    }

    [Fact]
    public void No_lowres_when_the_fullres_patch_covers_enough()
    {
        var plans = PlanUniform(10, [1.0, 1.0, 1.0], [128, 128, 128]);
        var fullres = plans.GetConfiguration("3d_fullres");
        Assert.True(Product(fullres.PatchSize) / Product(fullres.MedianImageSizeInVoxels) >= 0.25);
        Assert.Equal(["2d", "3d_fullres"], plans.ConfigurationNames);
    }

    public static TheoryData<double[], int[], double> VariedDatasets() => new()
    {
        { [1.245, 0.78515625, 0.78515625], [252, 512, 512], 8 },
        { [3.0, 1.0, 1.0], [200, 600, 600], 8 },
        { [0.8, 0.8, 4.0], [301, 297, 61], 11 },
        { [1.0, 1.0, 1.0], [37, 51, 35], 8 },
        { [5.0, 0.7, 0.7], [13, 333, 287], 4 },
        { [0.5, 0.5, 0.5], [801, 799, 803], 40 },
        { [999.0, 0.3, 0.3], [1, 1001, 777], 8 },
    };

    [Theory]
    [MemberData(nameof(VariedDatasets))]
    public void Patch_sizes_are_divisible_by_the_pooling_product_and_fit_the_budget(double[] spacing, int[] shape, double gpuGb)
    {
        var plans = PlanUniform(20, spacing, shape, gpuGb);
        foreach (string name in plans.ConfigurationNames)
        {
            var configuration = plans.GetConfiguration(name);
            var kwargs = configuration.Architecture.ArchKwargs;
            for (int d = 0; d < configuration.PatchSize.Length; d++)
            {
                int pools = 0;
                foreach (var stride in kwargs.Strides) if (stride[d] == 2) pools++;
                Assert.True(configuration.PatchSize[d] % (1 << pools) == 0, $"{name}: patch {configuration.PatchSize[d]} on axis {d} not divisible by 2^{pools}");
                if (pools > 0) Assert.True(configuration.PatchSize[d] >> pools >= 4, $"{name}: bottleneck edge below 4 on axis {d}");
            }
            Assert.Equal(kwargs.NStages, kwargs.Strides.Length);
            Assert.Equal(kwargs.NStages, kwargs.KernelSizes.Length);
            Assert.Equal(kwargs.NStages, kwargs.NConvPerStage.Length);
            Assert.Equal(kwargs.NStages - 1, kwargs.NConvPerStageDecoder.Length);
            Assert.All(kwargs.NConvPerStage, n => Assert.Equal(2, n));
            Assert.Equal(new[] { 1, 1, 1 }[..configuration.PatchSize.Length], kwargs.Strides[0]);
            bool is2d = configuration.PatchSize.Length == 2;
            double reference = (is2d ? 85_000_000 : 560_000_000) * (gpuGb / 8);
            double estimate = ExperimentPlanner.EstimateFeatureMapSize(configuration, 2);
            Assert.True(estimate / (is2d ? 12 : 2) * 2 <= reference, $"{name}: estimate {estimate} over budget {reference}");
            Assert.True(configuration.BatchSize >= 2);
        }
    }

    [Fact]
    public void Normalisation_follows_channel_names_and_the_cropping_ratio()
    {
        var (schemes, mask) = ExperimentPlanner.DetermineNormalization(["CT", "t2", "ct", "noNorm", "rescale_to_0_1", "RGB_to_0_1", "zscore"], 0.6);
        Assert.Equal(["CTNormalization", "ZScoreNormalization", "CTNormalization", "NoNormalization", "RescaleTo01Normalization", "RGBTo01Normalization", "ZScoreNormalization"], schemes);
        Assert.Equal([false, true, false, false, false, false, true], mask);

        var (_, maskAfterLittleCropping) = ExperimentPlanner.DetermineNormalization(["T2"], 0.75);
        Assert.Equal([false], maskAfterLittleCropping);
    }

    [Fact]
    public void Plans_carry_normalisation_fingerprint_intensities_and_resampling_settings()
    {
        var fingerprint = Uniform(10, [1.0, 1.0, 1.0], [100, 100, 100], medianRelativeSize: 0.5, channels: 2);
        var info = new PlannerDatasetInfo("Dataset010_Two", ["CT", "FLAIR"], 3, 10);
        var plans = ExperimentPlanner.Plan(fingerprint, info);

        Assert.Equal("Dataset010_Two", plans.DatasetName);
        Assert.Equal("nnUNetPlans", plans.PlansName);
        Assert.Equal("ExperimentPlanner", plans.ExperimentPlannerUsed);
        Assert.Equal(fingerprint.ForegroundIntensityPropertiesPerChannel["1"], plans.ForegroundIntensityPropertiesPerChannel["1"]);
        var fullres = plans.GetConfiguration("3d_fullres");
        Assert.Equal(["CTNormalization", "ZScoreNormalization"], fullres.NormalizationSchemes);
        Assert.Equal([false, true], fullres.UseMaskForNorm);
        Assert.Equal(new ResamplingKwargs(false, 3, 0, null), fullres.ResamplingFnDataKwargs);
        Assert.Equal(new ResamplingKwargs(true, 1, 0, null), fullres.ResamplingFnSegKwargs);
        Assert.Equal(new ResamplingKwargs(false, 1, 0, null), fullres.ResamplingFnProbabilitiesKwargs);
        Assert.Equal("DefaultPreprocessor", fullres.PreprocessorName);
    }

    [Fact]
    public void Target_spacing_override_replaces_the_median()
    {
        var fingerprint = Uniform(10, [1.0, 1.0, 1.0], [100, 100, 100]);
        var plans = ExperimentPlanner.Plan(fingerprint, Info(10), new PlannerOptions(OverwriteTargetSpacing: [1.0, 2.0, 0.5]));
        Assert.Equal([1, 0, 2], plans.TransposeForward);
        Assert.Equal([2.0, 1.0, 0.5], plans.GetConfiguration("3d_fullres").Spacing);
        Assert.Equal([50.0, 100, 200], plans.GetConfiguration("3d_fullres").MedianImageSizeInVoxels);
    }

    [Fact]
    public void Inconsistent_fingerprints_are_rejected_with_a_clear_message()
    {
        var good = Uniform(3, [1.0, 1.0, 1.0], [10, 10, 10]);

        var missingShape = good with { ShapesAfterCrop = good.ShapesAfterCrop.GetRange(0, 2) };
        Assert.Contains("3 spacings but 2 shapes_after_crop", Assert.Throws<InvalidDataException>(() => ExperimentPlanner.Plan(missingShape, Info(3))).Message);

        var twoAxes = good with { Spacings = [[1.0, 1.0], [1.0, 1.0], [1.0, 1.0]] };
        Assert.Contains("spacings[0] must have 3 entries", Assert.Throws<InvalidDataException>(() => ExperimentPlanner.Plan(twoAxes, Info(3))).Message);

        var zeroSpacing = good with { Spacings = [[1.0, 1.0, 1.0], [1.0, 0.0, 1.0], [1.0, 1.0, 1.0]] };
        Assert.Contains("spacings[1][1] = 0", Assert.Throws<InvalidDataException>(() => ExperimentPlanner.Plan(zeroSpacing, Info(3))).Message);

        Assert.Contains("no cases", Assert.Throws<InvalidDataException>(() => ExperimentPlanner.Plan(good with { Spacings = [], ShapesAfterCrop = [] }, Info(3))).Message);

        var twoChannels = new PlannerDatasetInfo("Dataset999_Test", ["CT", "PET"], 2, 3);
        Assert.Contains("1 channel(s) but dataset.json names 2", Assert.Throws<InvalidDataException>(() => ExperimentPlanner.Plan(good, twoChannels)).Message);

        Assert.Throws<ArgumentException>(() => ExperimentPlanner.Plan(good, Info(0)));
        Assert.Throws<ArgumentException>(() => ExperimentPlanner.Plan(good, Info(3, labels: 1)));
        Assert.Contains("positive number of GB", Assert.Throws<ArgumentException>(() => ExperimentPlanner.Plan(good, Info(3), new PlannerOptions(0))).Message);
    }

    [Fact]
    public void A_gpu_budget_too_small_for_any_patch_is_an_error_not_a_hang()
    {
        var fingerprint = Uniform(3, [1.0, 1.0, 1.0], [64, 64, 64]);
        var error = Assert.Throws<ArgumentException>(() => ExperimentPlanner.Plan(fingerprint, Info(3), new PlannerOptions(1e-9)));
        Assert.Contains("too small", error.Message);
    }

    private static int UncappedBatch(PlansConfiguration configuration, bool is2d, double gpuGb, int labels)
    {
        double reference = (is2d ? 85_000_000.0 : 560_000_000.0) * (gpuGb / 8);
        double estimate = ExperimentPlanner.EstimateFeatureMapSize(configuration, labels);
        return (int)Math.Round(reference / estimate * (is2d ? 12 : 2), MidpointRounding.ToEven);
    }

    private static DatasetFingerprint WithZSpacings(double[] zSpacings, double inPlaneSpacing, int zSize)
    {
        var spacings = new List<double[]>();
        var shapes = new List<int[]>();
        foreach (double z in zSpacings)
        {
            spacings.Add([z, inPlaneSpacing, inPlaneSpacing]);
            shapes.Add([zSize, 256, 256]);
        }
        return new DatasetFingerprint(Channels(1), 1.0, shapes, spacings);
    }

    private static double[] Rounded(double[] values, int digits)
    {
        var result = new double[values.Length];
        for (int i = 0; i < values.Length; i++) result[i] = Math.Round(values[i], digits);
        return result;
    }
}
