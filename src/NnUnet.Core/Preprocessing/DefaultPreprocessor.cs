using NnUnet.Core.Datasets;
using NnUnet.Core.Imaging;
using NnUnet.Core.Planning;
using NnUnet.Core.Resampling;

namespace NnUnet.Core.Preprocessing;

/// <summary>
/// nnU-Net v2's <c>DefaultPreprocessor.run_case_npy</c> for one configuration: transpose (plans' transpose_forward) ->
/// crop to the non-zero region -> normalise per channel -> resample data (order 3) and segmentation (order 1, label by
/// label) to the configuration's spacing (2d: the first axis keeps its spacing) -> sample foreground class locations.
/// Everything needed to invert it is recorded in <see cref="CaseProperties"/>.
/// </summary>
public sealed class DefaultPreprocessor
{
    private readonly IReadOnlyList<ClassLocations.SampledClass> _classes;
    private readonly ImageNormalization[] _normalizations;

    public DefaultPreprocessor(NnUnetPlans plans, string configurationName, DatasetJson datasetJson)
    {
        Plans = plans;
        ConfigurationName = configurationName;
        Configuration = plans.GetConfiguration(configurationName);
        Transposition.Validate(plans.TransposeForward, "plans transpose_forward");
        var c = Configuration;
        if (c.Spacing.Length is not (2 or 3))
            throw new InvalidDataException($"plans configuration '{configurationName}': spacing must have 2 or 3 entries, has {c.Spacing.Length}");
        if (c.NormalizationSchemes.Length != c.UseMaskForNorm.Length)
            throw new InvalidDataException($"plans configuration '{configurationName}': {c.NormalizationSchemes.Length} normalization_schemes but {c.UseMaskForNorm.Length} use_mask_for_norm entries");
        foreach (var (name, fn) in new[] { ("resampling_fn_data", c.ResamplingFnData), ("resampling_fn_seg", c.ResamplingFnSeg) })
            if (fn != Resampler.FunctionName)
                throw new InvalidDataException($"plans configuration '{configurationName}': {name} '{fn}' is not supported (only {Resampler.FunctionName})");
        if (c.PreprocessorName != nameof(DefaultPreprocessor))
            throw new InvalidDataException($"plans configuration '{configurationName}': preprocessor '{c.PreprocessorName}' is not supported (only DefaultPreprocessor)");
        _normalizations = new ImageNormalization[c.NormalizationSchemes.Length];
        for (int ch = 0; ch < _normalizations.Length; ch++)
        {
            plans.ForegroundIntensityPropertiesPerChannel.TryGetValue(ch.ToString(System.Globalization.CultureInfo.InvariantCulture), out var props);
            _normalizations[ch] = ImageNormalization.Create(c.NormalizationSchemes[ch], c.UseMaskForNorm[ch], props);
        }
        _classes = ClassLocations.ClassesFor(datasetJson);
    }

    public NnUnetPlans Plans { get; }
    public string ConfigurationName { get; }
    public PlansConfiguration Configuration { get; }

    /// <summary>Preprocesses a case read from files; <paramref name="segmentation"/> is null for cases without labels.</summary>
    public PreprocessedCase Run(string caseId, MedicalImage image, MedicalImage? segmentation)
    {
        float[]? seg = null;
        if (segmentation is not null)
        {
            if (segmentation.Channels != 1)
                throw new InvalidDataException($"case {caseId}: the segmentation has {segmentation.Channels} channels, expected 1");
            if (!segmentation.SpatialShape.AsSpan().SequenceEqual(image.SpatialShape))
                throw new InvalidDataException($"case {caseId}: segmentation shape ({string.Join(", ", segmentation.SpatialShape)}) differs from image shape ({string.Join(", ", image.SpatialShape)})");
            seg = segmentation.ToFloat32();
        }
        return Run(caseId, image.ToFloat32(), image.Channels, image.SpatialShape, seg, image.Geometry);
    }

    /// <summary>
    /// Preprocesses (channels, z, y, x) <paramref name="data"/> with an optional (z, y, x) label map; arrays in the raw
    /// image's order, <paramref name="geometry"/> as read.
    /// </summary>
    public PreprocessedCase Run(string caseId, float[] data, int channels, int[] shape, float[]? seg, ImageGeometry geometry)
    {
        var c = Configuration;
        if (channels != _normalizations.Length)
            throw new InvalidDataException($"case {caseId}: has {channels} channel(s), the plans normalise {_normalizations.Length}");
        int n = shape[0] * shape[1] * shape[2];
        if (data.Length != (long)n * channels)
            throw new ArgumentException($"case {caseId}: data holds {data.Length} values, {channels} x ({string.Join(", ", shape)}) expected");
        if (seg is not null && seg.Length != n)
            throw new ArgumentException($"case {caseId}: segmentation holds {seg.Length} values, ({string.Join(", ", shape)}) expected");
        var transpose = Plans.TransposeForward;
        double[] rawSpacing = geometry.SpacingZyx;

        // transpose: arrays and spacing into the plans' axis order
        var tData = Transposition.Transpose(data, channels, shape, transpose);
        var tSeg = seg is null ? null : Transposition.Transpose(seg, 1, shape, transpose);
        int[] tShape = Transposition.Permute(shape, transpose);
        double[] originalSpacing = Transposition.Permute(rawSpacing, transpose);

        // crop to the non-zero region (seg: -1 outside the mask)
        CropResult crop;
        try { crop = Cropping.CropToNonzero(tData, channels, tShape, tSeg); }
        catch (ArgumentException ex) { throw new InvalidDataException($"case {caseId}: {ex.Message}", ex); }

        double[] targetSpacing = c.Spacing.Length == 3 ? c.Spacing : [originalSpacing[0], c.Spacing[0], c.Spacing[1]];
        int[] newShape = Resampler.ComputeNewShape(crop.Shape, originalSpacing, targetSpacing);

        // normalise before resampling (nnU-Net: resampled masks would no longer fit the images otherwise)
        int cropN = (int)crop.VoxelsPerChannel;
        for (int ch = 0; ch < channels; ch++)
            _normalizations[ch].Run(crop.Data.AsSpan(ch * cropN, cropN), crop.Seg);

        var dataKw = c.ResamplingFnDataKwargs;
        var resampled = Resampler.ResampleDataOrSegToShape(crop.Data, channels, crop.Shape, newShape, originalSpacing, targetSpacing,
            dataKw.IsSeg, dataKw.Order, dataKw.OrderZ, dataKw.ForceSeparateZ);

        var segKw = c.ResamplingFnSegKwargs;
        var segAsFloat = new float[crop.Seg.Length];
        for (int i = 0; i < segAsFloat.Length; i++) segAsFloat[i] = crop.Seg[i];
        var resampledSegFloat = Resampler.ResampleDataOrSegToShape(segAsFloat, 1, crop.Shape, newShape, originalSpacing, targetSpacing,
            segKw.IsSeg, segKw.Order, segKw.OrderZ, segKw.ForceSeparateZ);
        var resampledSeg = new sbyte[resampledSegFloat.Length];
        for (int i = 0; i < resampledSeg.Length; i++) resampledSeg[i] = (sbyte)resampledSegFloat[i];

        var classLocations = seg is null ? new Dictionary<int, int[][]>() : ClassLocations.Sample(resampledSeg, newShape, _classes);

        // the contract keeps shape-before-cropping and bbox in the raw array order
        var bboxRaw = new int[3][];
        for (int i = 0; i < 3; i++) bboxRaw[transpose[i]] = crop.Bbox[i];
        var properties = new CaseProperties
        {
            Geometry = geometry,
            Spacing = rawSpacing,
            ShapeBeforeCropping = (int[])shape.Clone(),
            BboxUsedForCropping = bboxRaw,
            ShapeAfterCroppingAndBeforeResampling = crop.Shape,
            ClassLocations = classLocations,
        };
        return new PreprocessedCase(caseId, resampled, channels, newShape, resampledSeg, properties);
    }
}
