using System.Text.Json.Serialization;

namespace NnUnet.Core.Fingerprinting;

/// <summary>Foreground intensity statistics of one channel, pooled over sampled foreground voxels of all cases.</summary>
public sealed record IntensityProperties(
    [property: JsonPropertyName("mean")] double Mean,
    [property: JsonPropertyName("median")] double Median,
    [property: JsonPropertyName("std")] double Std,
    [property: JsonPropertyName("min")] double Min,
    [property: JsonPropertyName("max")] double Max,
    [property: JsonPropertyName("percentile_99_5")] double Percentile99_5,
    [property: JsonPropertyName("percentile_00_5")] double Percentile00_5);

/// <summary>
/// <c>dataset_fingerprint.json</c> with nnU-Net v2's keys. Spacings and shapes are per case in array order (z, y, x),
/// as nnU-Net stores them.
/// </summary>
public sealed record DatasetFingerprint(
    [property: JsonPropertyName("foreground_intensity_properties_per_channel")] Dictionary<string, IntensityProperties> ForegroundIntensityPropertiesPerChannel,
    [property: JsonPropertyName("median_relative_size_after_cropping")] double MedianRelativeSizeAfterCropping,
    [property: JsonPropertyName("shapes_after_crop")] List<int[]> ShapesAfterCrop,
    [property: JsonPropertyName("spacings")] List<double[]> Spacings);
