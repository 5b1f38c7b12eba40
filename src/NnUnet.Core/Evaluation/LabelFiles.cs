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

    public static void Write(string path, LabelFile file)
    {
        throw new NotImplementedException("waiting for NiftiWriter");
    }
}
