using System.Text.Json.Serialization;
using NnUnet.Core.Imaging;

namespace NnUnet.Core.Preprocessing;

/// <summary>
/// What preprocessing records about a case so that every step can be inverted at export (nnU-Net's properties pkl,
/// stored as <c>CASE.json</c> beside <c>CASE.npy</c> / <c>CASE_seg.npy</c>). Shapes and spacings are (z, y, x) in the
/// original array order (before transpose) unless the name says otherwise.
/// </summary>
public sealed record CaseProperties
{
    /// <summary>Geometry of the raw image exactly as read (ITK order), restored on export.</summary>
    [JsonPropertyName("geometry")] public required ImageGeometry Geometry { get; init; }
    /// <summary>Spacing in array order (z, y, x) of the raw image.</summary>
    [JsonPropertyName("spacing")] public required double[] Spacing { get; init; }
    [JsonPropertyName("shape_before_cropping")] public required int[] ShapeBeforeCropping { get; init; }
    /// <summary>Per axis [start, end) of the non-zero bounding box, in the original (untransposed) array order.</summary>
    [JsonPropertyName("bbox_used_for_cropping")] public required int[][] BboxUsedForCropping { get; init; }
    /// <summary>Shape after cropping and before resampling, in transposed order (as nnU-Net).</summary>
    [JsonPropertyName("shape_after_cropping_and_before_resampling")] public required int[] ShapeAfterCroppingAndBeforeResampling { get; init; }
    /// <summary>Label -> sampled voxel locations (z, y, x) in the preprocessed array, for foreground oversampling.</summary>
    [JsonPropertyName("class_locations")] public Dictionary<int, int[][]> ClassLocations { get; init; } = new();
}

/// <summary>
/// One preprocessed case as training reads it: float32 data (c, z, y, x) and int8 segmentation (1, z, y, x) where
/// -1 marks voxels outside the non-zero mask (nnU-Net's convention). Shapes are in transposed order.
/// </summary>
public sealed record PreprocessedCase(string CaseId, float[] Data, int Channels, int[] Shape, sbyte[]? Seg, CaseProperties Properties)
{
    public long VoxelsPerChannel => (long)Shape[0] * Shape[1] * Shape[2];
}
