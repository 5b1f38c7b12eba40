using NnUnet.Core.Imaging;

namespace NnUnet.Core.Evaluation;

/// <summary>A segmentation file as read: labels plus what is needed to write a result in the same geometry and type.</summary>
public sealed record LabelFile(LabelVolume Labels, VoxelType Type, ImageGeometry Geometry);

/// <summary>Reads and writes segmentation files (NIfTI) as <see cref="LabelVolume"/>.</summary>
public static class LabelFiles
{
    public static LabelFile Read(string path)
    {
        throw new NotImplementedException("waiting for NiftiReader");
    }

    /// <summary>nnU-Net's writer stores segmentations as uint8, or uint16 when the largest label is 255 or more.</summary>
    public static VoxelType SegmentationTypeFor(LabelVolume labels)
    {
        int max = 0;
        foreach (int v in labels.Labels) if (v > max) max = v;
        return max < 255 ? VoxelType.UInt8 : VoxelType.UInt16;
    }

    public static void Write(string path, LabelFile file)
    {
        throw new NotImplementedException("waiting for NiftiWriter");
    }
}
