using NnUnet.Core.Imaging;
using NnUnet.Core.Imaging.Nifti;

namespace NnUnet.Core.Evaluation;

/// <summary>A segmentation file as read: labels plus what is needed to write a result in the same geometry and type.</summary>
public sealed record LabelFile(LabelVolume Labels, VoxelType Type, ImageGeometry Geometry);

/// <summary>Reads and writes segmentation files as <see cref="LabelVolume"/> (NIfTI, <c>.nii</c> / <c>.nii.gz</c>).</summary>
public static class LabelFiles
{
    public static LabelFile Read(string path)
    {
        CheckEnding(path);
        var image = NiftiReader.Read(path);
        return new LabelFile(LabelVolume.FromImage(image, path), image.Type, image.Geometry);
    }

    /// <summary>nnU-Net's writer stores segmentations as uint8, or uint16 when the largest label is 255 or more.</summary>
    public static VoxelType SegmentationTypeFor(LabelVolume labels)
    {
        int max = 0;
        foreach (int v in labels.Labels) if (v > max) max = v;
        return max < 255 ? VoxelType.UInt8 : VoxelType.UInt16;
    }

    /// <summary>Writes the labels with the file's type and geometry (atomically, by the NIfTI writer).</summary>
    public static void Write(string path, LabelFile file)
    {
        CheckEnding(path);
        NiftiWriter.Write(path, file.Labels.ToImage(file.Type, file.Geometry));
    }

    private static void CheckEnding(string path)
    {
        if (!path.EndsWith(".nii.gz", StringComparison.OrdinalIgnoreCase) && !path.EndsWith(".nii", StringComparison.OrdinalIgnoreCase))
            throw new InvalidDataException($"{path}: only NIfTI segmentations (.nii, .nii.gz) are supported");
    }
}
