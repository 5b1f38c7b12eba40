using NnUnet.Core.Imaging;
using NnUnet.Core.Imaging.Nifti;

namespace NnUnet.Core.Datasets;

/// <summary>
/// Reads a raw case the way nnU-Net's reader does (SimpleITKIO.read_images): every channel file is read and the
/// channels are stacked into one float32 (c, z, y, x) image carrying the first file's geometry. Channel files must agree
/// in shape and spacing (numpy allclose: |a - b| &lt;= 1e-8 + 1e-5 |b|), else the case is rejected; origin and
/// direction differences are tolerated (nnU-Net only warns; <see cref="DatasetVerifier"/> reports them).
/// Every error names the case and the file.
/// </summary>
public static class RawCaseReader
{
    /// <summary>Reads and stacks the image files of <paramref name="rawCase"/> as float32.</summary>
    public static MedicalImage ReadImages(RawCase rawCase)
    {
        var files = rawCase.ImageFiles;
        if (files.Count == 0) throw new InvalidDataException($"case {rawCase.Id}: no image files");
        var images = new MedicalImage[files.Count];
        for (int i = 0; i < files.Count; i++) images[i] = ReadFile(rawCase.Id, files[i]);
        return Stack(rawCase.Id, files, images);
    }

    /// <summary>Reads the label file of <paramref name="rawCase"/> (one channel expected).</summary>
    public static MedicalImage ReadLabel(RawCase rawCase)
    {
        string file = rawCase.LabelFile ?? throw new InvalidDataException($"case {rawCase.Id}: has no label file (test case)");
        var label = ReadFile(rawCase.Id, file);
        if (label.Channels != 1) throw new InvalidDataException($"case {rawCase.Id}: label file {file} has {label.Channels} channels, expected 1");
        return label;
    }

    /// <summary>Reads one file; reader failures become an <see cref="InvalidDataException"/> naming case and file.</summary>
    public static MedicalImage ReadFile(string caseId, string file)
    {
        if (!File.Exists(file)) throw new FileNotFoundException($"case {caseId}: file {file} does not exist", file);
        try
        {
            return NiftiReader.Read(file);
        }
        catch (Exception ex) when (ex is InvalidDataException or IOException or ArgumentException or NotSupportedException or OverflowException)
        {
            throw new InvalidDataException($"case {caseId}: cannot read {file}: {ex.Message}", ex);
        }
    }

    /// <summary>Stacks already read channel images (see <see cref="ReadImages"/>).</summary>
    public static MedicalImage Stack(string caseId, IReadOnlyList<string> files, IReadOnlyList<MedicalImage> images)
    {
        var first = images[0];
        int totalChannels = 0;
        for (int i = 0; i < images.Count; i++)
        {
            var image = images[i];
            if (image.SizeZ != first.SizeZ || image.SizeY != first.SizeY || image.SizeX != first.SizeX)
                throw new InvalidDataException($"case {caseId}: {files[i]} has shape {FormatShape(image)}, {files[0]} has {FormatShape(first)}");
            if (!AllClose(image.Geometry.Spacing, first.Geometry.Spacing))
                throw new InvalidDataException($"case {caseId}: {files[i]} has spacing {Format(image.Geometry.Spacing)}, {files[0]} has {Format(first.Geometry.Spacing)}");
            totalChannels += image.Channels;
        }
        if (images.Count == 1 && first.Type == VoxelType.Float32) return first;
        int n = checked((int)first.VoxelsPerChannel);
        var data = new float[checked((long)totalChannels * n)];
        int channel = 0;
        foreach (var image in images)
            for (int c = 0; c < image.Channels; c++, channel++)
                image.CopyChannelTo(c, data.AsSpan(channel * n, n));
        return new MedicalImage(totalChannels, first.SizeZ, first.SizeY, first.SizeX, VoxelType.Float32, data, first.Geometry);
    }

    /// <summary>
    /// The spacing nnU-Net records for an image, in array order (z, y, x): the geometry's spacing, except for 2D files
    /// (NIfTI <c>dim[0] = 2</c>), where nnU-Net's SimpleITK reader sets the z spacing to 999 x the largest in-plane
    /// spacing so that the planner never treats the single slice as a real axis.
    /// </summary>
    public static double[] SpacingForNnUnet(string imageFile, ImageGeometry geometry)
    {
        if (NiftiReader.ReadHeader(imageFile).Dim[0] == 2)
        {
            double inPlaneMax = Math.Max(Math.Abs(geometry.Spacing[0]), Math.Abs(geometry.Spacing[1]));
            return [999 * inPlaneMax, Math.Abs(geometry.Spacing[1]), Math.Abs(geometry.Spacing[0])];
        }
        return [Math.Abs(geometry.Spacing[2]), Math.Abs(geometry.Spacing[1]), Math.Abs(geometry.Spacing[0])];
    }

    /// <summary>numpy <c>allclose</c> with its defaults (rtol 1e-5, atol 1e-8); arrays of different length are not close.</summary>
    public static bool AllClose(ReadOnlySpan<double> a, ReadOnlySpan<double> b)
    {
        if (a.Length != b.Length) return false;
        for (int i = 0; i < a.Length; i++)
            if (!(Math.Abs(a[i] - b[i]) <= 1e-8 + 1e-5 * Math.Abs(b[i]))) return false;
        return true;
    }

    internal static string FormatShape(MedicalImage image) => $"(z={image.SizeZ}, y={image.SizeY}, x={image.SizeX})";

    internal static string Format(ReadOnlySpan<double> values)
    {
        var parts = new string[values.Length];
        for (int i = 0; i < values.Length; i++) parts[i] = values[i].ToString("G6", System.Globalization.CultureInfo.InvariantCulture);
        return "(" + string.Join(", ", parts) + ")";
    }
}
