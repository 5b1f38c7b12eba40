using System.Text.Json;
using System.Text.Json.Nodes;
using NnUnet.Core.Fingerprinting;

namespace NnUnet.Core.Planning;

/// <summary>
/// nnU-Net v2's default <c>ExperimentPlanner</c> (PlainConvUNet, nnUNetPlans) without Torch: from a dataset fingerprint it
/// derives the target spacing, axis transposition and, per configuration (2d, 3d_fullres and, when the fullres patch covers
/// too little of the median image, 3d_lowres + 3d_cascade_fullres), the patch size, network topology and batch size under a
/// GPU memory budget. The memory proxy is computed from the topology (<see cref="VramEstimator"/>) exactly as nnU-Net
/// computes it by instantiating the network.
/// </summary>
public static class ExperimentPlanner
{
    public const double AnisotropyThreshold = 3;
    public const int BaseNumFeatures = 32;
    public const int MaxFeatures3d = 320;
    public const int MaxFeatures2d = 512;
    public const int ConvsPerStage = 2;
    public const int MinFeatureMapEdge = 4;
    /// <summary>Feature-map sizes that fit the reference GPU at the reference batch size (arbitrary values chosen by nnU-Net to
    /// reproduce its v1 configurations).</summary>
    public const double ReferenceVram3d = 560_000_000;
    public const double ReferenceVram2d = 85_000_000;
    public const double ReferenceGpuMemoryGb = 8;
    public const int ReferenceBatchSize3d = 2;
    public const int ReferenceBatchSize2d = 12;
    public const int MinBatchSize = 2;
    /// <summary>A batch may cover at most this fraction of the dataset's voxels (overfitting precaution).</summary>
    public const double MaxDatasetCovered = 0.05;
    /// <summary>3d_lowres is attempted while the fullres patch holds less than this fraction of the median image.</summary>
    public const double LowresCreationThreshold = 0.25;
    public const double LowresSpacingIncreaseFactor = 1.03;
    public const string PlannerName = "ExperimentPlanner";

    public const string Configuration2d = "2d";
    public const string Configuration3dFullres = "3d_fullres";
    public const string Configuration3dLowres = "3d_lowres";
    public const string Configuration3dCascadeFullres = "3d_cascade_fullres";

    /// <summary>Plans every configuration nnU-Net's default planner would, in nnU-Net's order (2d, 3d_lowres, 3d_fullres,
    /// 3d_cascade_fullres).</summary>
    /// <exception cref="InvalidDataException">The fingerprint is inconsistent (counts, axes, non-positive values).</exception>
    /// <exception cref="ArgumentException">The dataset info or options are invalid, or the GPU budget cannot fit any patch.</exception>
    public static NnUnetPlans Plan(DatasetFingerprint fingerprint, PlannerDatasetInfo info, PlannerOptions? options = null)
    {
        options ??= new PlannerOptions();
        Validate(fingerprint, info, options);

        double[] fullresSpacing = DetermineFullresTargetSpacing(fingerprint, options);
        var (transposeForward, transposeBackward) = DetermineTranspose(fullresSpacing);
        double[] fullresSpacingT = Permute(fullresSpacing, transposeForward);

        // Median shape the cases would have at the target spacing.
        var resampledShapes = new List<double[]>(fingerprint.Spacings.Count);
        for (int c = 0; c < fingerprint.Spacings.Count; c++)
            resampledShapes.Add(ShapeAtSpacing(fingerprint.ShapesAfterCrop[c], fingerprint.Spacings[c], fullresSpacing));
        double[] medianShapeT = Permute(PlannerStatistics.MedianPerAxis(resampledShapes), transposeForward);
        double datasetVoxels = PlannerStatistics.Product(medianShapeT) * info.NumTraining;

        var context = new ConfigurationContext(info, options, DetermineNormalization(info.ChannelNames, fingerprint.MedianRelativeSizeAfterCropping));

        PlansConfiguration? fullres = null;
        PlansConfiguration? lowres = null;
        if (medianShapeT[0] != 1)
        {
            fullres = PlanConfiguration(fullresSpacingT, medianShapeT, DataIdentifier(options, Configuration3dFullres), datasetVoxels, context);
            lowres = PlanLowres(fullres, fullresSpacingT, medianShapeT, context);
            fullres = fullres with { BatchDice = lowres is not null };
        }

        var plan2d = PlanConfiguration(fullresSpacingT[1..], medianShapeT[1..], DataIdentifier(options, Configuration2d), datasetVoxels, context)
            with { BatchDice = true };

        var configurations = new Dictionary<string, JsonObject> { [Configuration2d] = ToJsonObject(plan2d) };
        if (lowres is not null)
            configurations[Configuration3dLowres] = ToJsonObject(lowres with { NextStage = [Configuration3dCascadeFullres] });
        if (fullres is not null)
        {
            configurations[Configuration3dFullres] = ToJsonObject(fullres);
            if (lowres is not null)
                configurations[Configuration3dCascadeFullres] = new JsonObject
                {
                    ["inherits_from"] = Configuration3dFullres,
                    ["previous_stage"] = Configuration3dLowres,
                };
        }

        var originalMedianShape = PlannerStatistics.MedianPerAxis(ToDoubleRows(fingerprint.ShapesAfterCrop));
        var originalMedianShapeT = new int[3];
        for (int d = 0; d < 3; d++) originalMedianShapeT[d] = PlannerStatistics.Round(originalMedianShape[transposeForward[d]]);

        var intensityProperties = new Dictionary<string, IntensityProperties>(fingerprint.ForegroundIntensityPropertiesPerChannel);
        return new NnUnetPlans
        {
            DatasetName = info.DatasetName,
            PlansName = options.PlansName,
            OriginalMedianSpacingAfterTransp = Permute(PlannerStatistics.MedianPerAxis(fingerprint.Spacings), transposeForward),
            OriginalMedianShapeAfterTransp = originalMedianShapeT,
            TransposeForward = transposeForward,
            TransposeBackward = transposeBackward,
            Configurations = configurations,
            ExperimentPlannerUsed = PlannerName,
            ForegroundIntensityPropertiesPerChannel = intensityProperties,
        };
    }

    /// <summary>
    /// Fullres target spacing in the original (z, y, x) order: the per-axis median, except for strongly anisotropic data
    /// (the coarsest axis more than 3x the next and having fewer than a third of the voxels of the others), where the coarse
    /// axis takes the 10th percentile of its spacings, but never below the other axes' spacing (+1e-5).
    /// </summary>
    public static double[] DetermineFullresTargetSpacing(DatasetFingerprint fingerprint, PlannerOptions options)
    {
        if (options.OverwriteTargetSpacing is { } overwrite) return [.. overwrite];

        double[] target = PlannerStatistics.PercentilePerAxis(fingerprint.Spacings, 50);
        double[] targetSize = PlannerStatistics.PercentilePerAxis(ToDoubleRows(fingerprint.ShapesAfterCrop), 50);
        int worstAxis = ArgMaxFirst(target);
        double maxOtherSpacing = double.NegativeInfinity, minOtherSize = double.PositiveInfinity;
        for (int d = 0; d < target.Length; d++)
        {
            if (d == worstAxis) continue;
            maxOtherSpacing = Math.Max(maxOtherSpacing, target[d]);
            minOtherSize = Math.Min(minOtherSize, targetSize[d]);
        }

        bool anisotropicSpacing = target[worstAxis] > AnisotropyThreshold * maxOtherSpacing;
        bool anisotropicVoxels = targetSize[worstAxis] * AnisotropyThreshold < minOtherSize;
        if (anisotropicSpacing && anisotropicVoxels)
        {
            // The median would interpolate the few thick-slice cases badly; a finer spacing keeps more slices.
            var axisSpacings = new double[fingerprint.Spacings.Count];
            for (int c = 0; c < axisSpacings.Length; c++) axisSpacings[c] = fingerprint.Spacings[c][worstAxis];
            double axisTarget = PlannerStatistics.Percentile(axisSpacings, 10);
            if (axisTarget < maxOtherSpacing) axisTarget = Math.Max(maxOtherSpacing, axisTarget) + 1e-5;
            target[worstAxis] = axisTarget;
        }
        return target;
    }

    /// <summary>Puts the axis with the largest target spacing first (the others keep their order) and returns the inverse too.</summary>
    public static (int[] Forward, int[] Backward) DetermineTranspose(ReadOnlySpan<double> targetSpacing)
    {
        int axes = targetSpacing.Length;
        int coarsest = ArgMaxFirst(targetSpacing);
        var forward = new int[axes];
        forward[0] = coarsest;
        for (int d = 0, k = 1; d < axes; d++)
            if (d != coarsest) forward[k++] = d;
        var backward = new int[axes];
        for (int k = 0; k < axes; k++) backward[forward[k]] = k;
        return (forward, backward);
    }

    /// <summary>Per channel: <c>CTNormalization</c> for "CT" (any case), the explicit scheme names nnU-Net maps
    /// ("noNorm", "zscore", "rescale_to_0_1", "rgb_to_0_1"), else <c>ZScoreNormalization</c>. The non-zero mask is used for
    /// Z-score channels when cropping removed more than a quarter of the median image (relative size &lt; 0.75).</summary>
    public static (string[] Schemes, bool[] UseMaskForNorm) DetermineNormalization(IReadOnlyList<string> channelNames, double medianRelativeSizeAfterCropping)
    {
        var schemes = new string[channelNames.Count];
        var useMask = new bool[channelNames.Count];
        bool croppingRemovedMuch = medianRelativeSizeAfterCropping < 3 / 4.0;
        for (int c = 0; c < schemes.Length; c++)
        {
            schemes[c] = channelNames[c].ToLowerInvariant() switch
            {
                "ct" => "CTNormalization",
                "nonorm" => "NoNormalization",
                "zscore" => "ZScoreNormalization",
                "rescale_to_0_1" => "RescaleTo01Normalization",
                "rgb_to_0_1" => "RGBTo01Normalization",
                _ => "ZScoreNormalization",
            };
            // Only Z-score leaves the voxels outside the mask at zero, so only it may use the mask.
            useMask[c] = croppingRemovedMuch && schemes[c] == "ZScoreNormalization";
        }
        return (schemes, useMask);
    }

    /// <summary>The planner's memory proxy for a configuration's network and patch (see <see cref="VramEstimator"/>).</summary>
    public static long EstimateFeatureMapSize(PlansConfiguration configuration, int numLabelsIncludingBackground)
    {
        var kwargs = configuration.Architecture.ArchKwargs;
        return VramEstimator.FeatureMapSize(configuration.PatchSize, kwargs.Strides, kwargs.FeaturesPerStage,
            kwargs.NConvPerStage, kwargs.NConvPerStageDecoder, numLabelsIncludingBackground);
    }

    /// <summary><c>{plans name}_{configuration}</c>, e.g. <c>nnUNetPlans_3d_fullres</c>.</summary>
    public static string DataIdentifier(PlannerOptions options, string configurationName) => options.PlansName + "_" + configurationName;

    private sealed record ConfigurationContext(PlannerDatasetInfo Info, PlannerOptions Options, (string[] Schemes, bool[] UseMask) Normalization);

    /// <summary>
    /// Coarsens the spacing by 3% per step (only the axes more than 2x finer than the coarsest, while there are such, else all)
    /// until the lowres patch covers a quarter of the lowres median image. Kept only if the lowres median image has at most
    /// half the voxels of the fullres one.
    /// </summary>
    private static PlansConfiguration? PlanLowres(PlansConfiguration fullres, double[] fullresSpacingT, double[] medianShapeT, ConfigurationContext context)
    {
        const int maxSteps = 10_000; // 1.03^10000 overflows any spacing: reaching it means the loop cannot end
        int axes = fullresSpacingT.Length;
        double medianVoxels = PlannerStatistics.Product(medianShapeT);
        double patchVoxels = PlannerStatistics.Product(fullres.PatchSize);
        var lowresSpacing = (double[])fullresSpacingT.Clone();
        var lowresMedian = new double[axes];
        var roundedLowresMedian = new double[axes];
        var coarsen = new bool[axes];
        PlansConfiguration? lowres = null;
        int steps = 0;
        while (patchVoxels / medianVoxels < LowresCreationThreshold)
        {
            if (++steps > maxSteps) throw new InvalidOperationException("3d_lowres search did not converge");
            double maxSpacing = double.NegativeInfinity;
            foreach (double s in lowresSpacing) maxSpacing = Math.Max(maxSpacing, s);
            bool anyFineAxis = false;
            for (int d = 0; d < axes; d++)
            {
                coarsen[d] = maxSpacing / lowresSpacing[d] > 2;
                anyFineAxis |= coarsen[d];
            }
            for (int d = 0; d < axes; d++)
                if (!anyFineAxis || coarsen[d]) lowresSpacing[d] *= LowresSpacingIncreaseFactor;

            for (int d = 0; d < axes; d++)
            {
                lowresMedian[d] = fullresSpacingT[d] / lowresSpacing[d] * medianShapeT[d];
                roundedLowresMedian[d] = PlannerStatistics.Round(lowresMedian[d]);
            }
            medianVoxels = PlannerStatistics.Product(lowresMedian);
            lowres = PlanConfiguration((double[])lowresSpacing.Clone(), (double[])roundedLowresMedian.Clone(),
                DataIdentifier(context.Options, Configuration3dLowres), medianVoxels * context.Info.NumTraining, context);
            patchVoxels = PlannerStatistics.Product(lowres.PatchSize);
        }
        if (PlannerStatistics.Product(medianShapeT) / medianVoxels < 2) return null;
        return lowres! with { BatchDice = false };
    }

    /// <summary>
    /// One configuration (nnU-Net's <c>get_plans_for_configuration</c>): initial patch with the aspect ratio of 1/spacing and
    /// the volume of 256^3 (2D: 2048^2), clipped to the median shape; topology; then while the feature-map estimate exceeds
    /// the budget at batch size 2, the axis largest relative to the median shrinks by one pooling multiple. Batch size
    /// spends the remaining budget, capped at 5% of the dataset's voxels, at least 2.
    /// </summary>
    private static PlansConfiguration PlanConfiguration(double[] spacing, double[] medianShape, string dataIdentifier,
        double datasetVoxels, ConfigurationContext context)
    {
        int dims = spacing.Length;
        bool is2d = dims == 2;
        int maxFeatures = is2d ? MaxFeatures2d : MaxFeatures3d;
        int numClasses = context.Info.NumLabelsIncludingBackground;

        var inverseSpacing = new double[dims];
        for (int d = 0; d < dims; d++) inverseSpacing[d] = 1 / spacing[d];
        double scale = is2d
            ? Math.Pow(2048.0 * 2048.0 / PlannerStatistics.Product(inverseSpacing), 1 / 2.0)
            : Math.Pow(256.0 * 256.0 * 256.0 / PlannerStatistics.Product(inverseSpacing), 1 / 3.0);
        var initialPatch = new double[dims];
        for (int d = 0; d < dims; d++) initialPatch[d] = Math.Min(PlannerStatistics.Round(inverseSpacing[d] * scale), medianShape[d]);

        var topology = NetworkTopology.Compute(spacing, initialPatch, MinFeatureMapEdge);
        long estimate = Estimate(topology, maxFeatures, numClasses);

        double reference = (is2d ? ReferenceVram2d : ReferenceVram3d) * (context.Options.GpuMemoryGb / ReferenceGpuMemoryGb);
        int referenceBatch = is2d ? ReferenceBatchSize2d : ReferenceBatchSize3d;
        var patch = new double[dims];
        while ((double)estimate / referenceBatch * 2 > reference)
        {
            // Shrink the axis that is largest relative to the median image (ties: the later axis, as numpy's argsort()[-1]).
            int axis = 0;
            double worstRatio = double.NegativeInfinity;
            for (int d = 0; d < dims; d++)
            {
                double ratio = topology.PatchSize[d] / medianShape[d];
                if (ratio >= worstRatio) { worstRatio = ratio; axis = d; }
            }

            // Subtracting the current multiple could skip valid sizes (256 - 64 skips 224), so subtract the multiple of the
            // size one step down instead.
            for (int d = 0; d < dims; d++) patch[d] = topology.PatchSize[d];
            patch[axis] -= topology.ShapeMustBeDivisibleBy[axis];
            if (patch[axis] < 1) throw TooLittleMemory(context.Options, dataIdentifier);
            int smallerMultiple = NetworkTopology.Compute(spacing, patch, MinFeatureMapEdge).ShapeMustBeDivisibleBy[axis];
            patch[axis] = topology.PatchSize[axis] - smallerMultiple;
            if (patch[axis] < 1) throw TooLittleMemory(context.Options, dataIdentifier);

            topology = NetworkTopology.Compute(spacing, patch, MinFeatureMapEdge);
            estimate = Estimate(topology, maxFeatures, numClasses);
        }

        int batchSize = PlannerStatistics.Round(reference / estimate * referenceBatch);
        int batchCoveringFivePercent = PlannerStatistics.Round(datasetVoxels * MaxDatasetCovered / PlannerStatistics.Product(topology.PatchSize));
        batchSize = Math.Max(Math.Min(batchSize, batchCoveringFivePercent), MinBatchSize);

        var (schemes, useMask) = context.Normalization;
        return new PlansConfiguration
        {
            DataIdentifier = dataIdentifier,
            PreprocessorName = context.Options.PreprocessorName,
            BatchSize = batchSize,
            PatchSize = topology.PatchSize,
            MedianImageSizeInVoxels = medianShape,
            Spacing = spacing,
            NormalizationSchemes = (string[])schemes.Clone(),
            UseMaskForNorm = (bool[])useMask.Clone(),
            Architecture = new ArchitectureSpec { ArchKwargs = ArchitectureFor(topology, is2d, maxFeatures) },
            BatchDice = false,
        };
    }

    private static ArchitectureKwargs ArchitectureFor(NetworkTopology topology, bool is2d, int maxFeatures)
    {
        int stages = topology.NumStages;
        return new ArchitectureKwargs
        {
            NStages = stages,
            FeaturesPerStage = FeaturesPerStage(stages, maxFeatures),
            ConvOp = is2d ? "torch.nn.modules.conv.Conv2d" : "torch.nn.modules.conv.Conv3d",
            KernelSizes = topology.KernelSizes,
            Strides = topology.Strides,
            NConvPerStage = Filled(stages, ConvsPerStage),
            NConvPerStageDecoder = Filled(stages - 1, ConvsPerStage),
            NormOp = is2d ? "torch.nn.modules.instancenorm.InstanceNorm2d" : "torch.nn.modules.instancenorm.InstanceNorm3d",
        };
    }

    /// <summary>32, 64, 128, ... capped at <paramref name="maxFeatures"/>.</summary>
    public static int[] FeaturesPerStage(int stages, int maxFeatures)
    {
        var features = new int[stages];
        for (int s = 0; s < stages; s++) features[s] = (int)Math.Min(maxFeatures, (long)BaseNumFeatures << Math.Min(s, 40));
        return features;
    }

    private static long Estimate(NetworkTopology topology, int maxFeatures, int numClasses)
    {
        int stages = topology.NumStages;
        return VramEstimator.FeatureMapSize(topology.PatchSize, topology.Strides, FeaturesPerStage(stages, maxFeatures),
            Filled(stages, ConvsPerStage), Filled(stages - 1, ConvsPerStage), numClasses);
    }

    private static ArgumentException TooLittleMemory(PlannerOptions options, string dataIdentifier) =>
        new($"GPU memory target {options.GpuMemoryGb} GB is too small: no patch of {dataIdentifier} fits it");

    private static double[] ShapeAtSpacing(int[] shape, double[] spacing, double[] targetSpacing)
    {
        var result = new double[shape.Length];
        for (int d = 0; d < shape.Length; d++) result[d] = PlannerStatistics.Round(spacing[d] / targetSpacing[d] * shape[d]);
        return result;
    }

    private static JsonObject ToJsonObject(PlansConfiguration configuration) =>
        JsonSerializer.SerializeToNode(configuration, NnUnetPlans.JsonOptions)!.AsObject();

    private static double[] Permute(ReadOnlySpan<double> values, int[] order)
    {
        var result = new double[order.Length];
        for (int k = 0; k < order.Length; k++) result[k] = values[order[k]];
        return result;
    }

    private static List<double[]> ToDoubleRows(List<int[]> rows)
    {
        var result = new List<double[]>(rows.Count);
        foreach (var row in rows)
        {
            var converted = new double[row.Length];
            for (int d = 0; d < row.Length; d++) converted[d] = row[d];
            result.Add(converted);
        }
        return result;
    }

    private static int[] Filled(int count, int value)
    {
        var result = new int[Math.Max(count, 0)];
        Array.Fill(result, value);
        return result;
    }

    private static int ArgMaxFirst(ReadOnlySpan<double> values)
    {
        int best = 0;
        for (int d = 1; d < values.Length; d++)
            if (values[d] > values[best]) best = d;
        return best;
    }

    private static void Validate(DatasetFingerprint fingerprint, PlannerDatasetInfo info, PlannerOptions options)
    {
        if (fingerprint.Spacings is null || fingerprint.ShapesAfterCrop is null || fingerprint.ForegroundIntensityPropertiesPerChannel is null)
            throw new InvalidDataException("dataset fingerprint: spacings, shapes_after_crop and foreground_intensity_properties_per_channel are required");
        int cases = fingerprint.Spacings.Count;
        if (cases == 0) throw new InvalidDataException("dataset fingerprint: no cases (spacings is empty)");
        if (fingerprint.ShapesAfterCrop.Count != cases)
            throw new InvalidDataException($"dataset fingerprint: {cases} spacings but {fingerprint.ShapesAfterCrop.Count} shapes_after_crop; they must describe the same cases");
        for (int c = 0; c < cases; c++)
        {
            var spacing = fingerprint.Spacings[c];
            var shape = fingerprint.ShapesAfterCrop[c];
            if (spacing is null || spacing.Length != 3)
                throw new InvalidDataException($"dataset fingerprint: spacings[{c}] must have 3 entries (z, y, x); 2D images are stored as (1, y, x) with a placeholder z spacing");
            if (shape is null || shape.Length != 3)
                throw new InvalidDataException($"dataset fingerprint: shapes_after_crop[{c}] must have 3 entries (z, y, x)");
            for (int d = 0; d < 3; d++)
            {
                if (!(spacing[d] > 0) || double.IsInfinity(spacing[d]))
                    throw new InvalidDataException($"dataset fingerprint: spacings[{c}][{d}] = {spacing[d]} is not a positive number");
                if (shape[d] < 1)
                    throw new InvalidDataException($"dataset fingerprint: shapes_after_crop[{c}][{d}] = {shape[d]}; every case needs at least one voxel per axis");
            }
        }
        double relativeSize = fingerprint.MedianRelativeSizeAfterCropping;
        if (double.IsNaN(relativeSize) || relativeSize < 0)
            throw new InvalidDataException($"dataset fingerprint: median_relative_size_after_cropping = {relativeSize} is not a fraction");

        if (string.IsNullOrWhiteSpace(info.DatasetName)) throw new ArgumentException("dataset name is empty");
        if (info.ChannelNames.Count == 0) throw new ArgumentException($"{info.DatasetName}: dataset.json names no channels");
        if (fingerprint.ForegroundIntensityPropertiesPerChannel.Count != info.ChannelNames.Count)
            throw new InvalidDataException(
                $"{info.DatasetName}: the fingerprint has intensity properties for {fingerprint.ForegroundIntensityPropertiesPerChannel.Count} channel(s) but dataset.json names {info.ChannelNames.Count}; re-run the fingerprint");
        if (info.NumLabelsIncludingBackground < 2)
            throw new ArgumentException($"{info.DatasetName}: need background and at least one label, got {info.NumLabelsIncludingBackground} label(s)");
        if (info.NumTraining < 1) throw new ArgumentException($"{info.DatasetName}: numTraining must be at least 1, got {info.NumTraining}");

        if (!(options.GpuMemoryGb > 0) || double.IsInfinity(options.GpuMemoryGb))
            throw new ArgumentException($"GPU memory target must be a positive number of GB, got {options.GpuMemoryGb}");
        if (string.IsNullOrWhiteSpace(options.PlansName)) throw new ArgumentException("plans name is empty");
        if (options.OverwriteTargetSpacing is { } overwrite)
        {
            if (overwrite.Count != 3) throw new ArgumentException($"target spacing override needs 3 values (z, y, x), got {overwrite.Count}");
            foreach (double value in overwrite)
                if (!(value > 0) || double.IsInfinity(value)) throw new ArgumentException($"target spacing override must be positive, got {value}");
        }
    }
}
