using NnUnet.Core.Imaging;

namespace NnUnet.Core.Evaluation;

/// <summary>
/// A label map (segmentation) in the project's axis order (z, y, x), x fastest; a 2D map has <see cref="SizeZ"/> = 1.
/// Values are held as int whatever the file's voxel type, so metrics and connected components have one code path.
/// </summary>
public sealed class LabelVolume
{
    public LabelVolume(int sizeZ, int sizeY, int sizeX, int[] labels)
    {
        if (sizeZ < 1 || sizeY < 1 || sizeX < 1)
            throw new ArgumentException($"label volume dimensions must be positive, got z={sizeZ} y={sizeY} x={sizeX}");
        if (labels.LongLength != (long)sizeZ * sizeY * sizeX)
            throw new ArgumentException($"label array holds {labels.LongLength} values, shape ({sizeZ}, {sizeY}, {sizeX}) needs {(long)sizeZ * sizeY * sizeX}");
        SizeZ = sizeZ; SizeY = sizeY; SizeX = sizeX; Labels = labels;
    }

    public int SizeZ { get; }
    public int SizeY { get; }
    public int SizeX { get; }
    public int[] Labels { get; }
    public int Length => Labels.Length;
    public int[] Shape => [SizeZ, SizeY, SizeX];

    public bool SameShape(LabelVolume other) => other.SizeZ == SizeZ && other.SizeY == SizeY && other.SizeX == SizeX;

    public LabelVolume Clone() => new(SizeZ, SizeY, SizeX, (int[])Labels.Clone());

    /// <summary>Takes the single channel of a label image. Non-integral values (a float file holding 1.5) are an error
    /// naming <paramref name="source"/>.</summary>
    public static LabelVolume FromImage(MedicalImage image, string source)
    {
        if (image.Channels != 1)
            throw new InvalidDataException($"{source}: a segmentation must have one channel, this one has {image.Channels}");
        var labels = new int[checked((int)image.VoxelsPerChannel)];
        switch (image.Voxels)
        {
            case byte[] a: Widen(a, labels); break;
            case sbyte[] a: Widen(a, labels); break;
            case short[] a: Widen(a, labels); break;
            case ushort[] a: Widen(a, labels); break;
            case int[] a: a.AsSpan().CopyTo(labels); break;
            case uint[] a: WidenChecked(a, labels, source); break;
            case long[] a: WidenChecked(a, labels, source); break;
            case float[] a: FromFloating(a, labels, source); break;
            case double[] a: FromFloating(a, labels, source); break;
            default: throw new InvalidDataException($"{source}: unsupported voxel array {image.Voxels.GetType().Name}");
        }
        return new LabelVolume(image.SizeZ, image.SizeY, image.SizeX, labels);
    }

    /// <summary>Writes the labels into an image of <paramref name="type"/> with <paramref name="geometry"/>
    /// (the caller keeps the prediction's original type, as nnU-Net's writer does).</summary>
    public MedicalImage ToImage(VoxelType type, ImageGeometry geometry)
    {
        Array voxels = type switch
        {
            VoxelType.UInt8 => Narrow<byte>(),
            VoxelType.Int8 => Narrow<sbyte>(),
            VoxelType.Int16 => Narrow<short>(),
            VoxelType.UInt16 => Narrow<ushort>(),
            VoxelType.Int32 => (int[])Labels.Clone(),
            VoxelType.UInt32 => Narrow<uint>(),
            VoxelType.Int64 => Narrow<long>(),
            VoxelType.Float32 => Narrow<float>(),
            VoxelType.Float64 => Narrow<double>(),
            _ => throw new ArgumentOutOfRangeException(nameof(type), type, "unsupported voxel type"),
        };
        return new MedicalImage(1, SizeZ, SizeY, SizeX, type, voxels, geometry);
    }

    private T[] Narrow<T>() where T : unmanaged, System.Numerics.INumberBase<T>
    {
        var result = new T[Labels.Length];
        var source = Labels.AsSpan();
        for (int i = 0; i < source.Length; i++) result[i] = T.CreateChecked(source[i]);
        return result;
    }

    private static void Widen<T>(ReadOnlySpan<T> source, Span<int> destination) where T : unmanaged, System.Numerics.IBinaryInteger<T>
    {
        for (int i = 0; i < source.Length; i++) destination[i] = int.CreateTruncating(source[i]);
    }

    private static void WidenChecked<T>(ReadOnlySpan<T> source, Span<int> destination, string fileName) where T : unmanaged, System.Numerics.IBinaryInteger<T>
    {
        for (int i = 0; i < source.Length; i++)
        {
            long v = long.CreateSaturating(source[i]);
            if (v < int.MinValue || v > int.MaxValue)
                throw new InvalidDataException($"{fileName}: label value {source[i]} at voxel {i} does not fit a label");
            destination[i] = (int)v;
        }
    }

    private static void FromFloating<T>(ReadOnlySpan<T> source, Span<int> destination, string fileName) where T : unmanaged, System.Numerics.IFloatingPoint<T>
    {
        for (int i = 0; i < source.Length; i++)
        {
            double value = double.CreateTruncating(source[i]);
            if (value != Math.Floor(value) || value < int.MinValue || value > int.MaxValue)
                throw new InvalidDataException($"{fileName}: voxel {i} holds {value}, not an integer label");
            destination[i] = (int)value;
        }
    }
}
