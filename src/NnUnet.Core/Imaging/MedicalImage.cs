namespace NnUnet.Core.Imaging;

/// <summary>Voxel data types of NIfTI files that the project reads and writes (values are NIfTI datatype codes).</summary>
public enum VoxelType : short
{
    UInt8 = 2,
    Int16 = 4,
    Int32 = 8,
    Float32 = 16,
    Float64 = 64,
    Int8 = 256,
    UInt16 = 512,
    UInt32 = 768,
    Int64 = 1024,
}

/// <summary>
/// A 3D image with one or more channels, held in the project's axis order: C-order <c>(c, z, y, x)</c>, x fastest
/// (see <see cref="ImageGeometry"/>). A 2D image is a volume with <see cref="SizeZ"/> = 1.
/// <see cref="Voxels"/> is a typed array matching <see cref="Type"/> (byte[], sbyte[], short[], ushort[], int[], uint[],
/// long[], float[] or double[]); intensity scaling from the file has already been applied.
/// </summary>
public sealed class MedicalImage
{
    public MedicalImage(int channels, int sizeZ, int sizeY, int sizeX, VoxelType type, Array voxels, ImageGeometry geometry)
    {
        if (channels < 1 || sizeZ < 1 || sizeY < 1 || sizeX < 1)
            throw new ArgumentException($"image dimensions must be positive, got c={channels} z={sizeZ} y={sizeY} x={sizeX}");
        long expected = (long)channels * sizeZ * sizeY * sizeX;
        if (voxels.LongLength != expected)
            throw new ArgumentException($"voxel array holds {voxels.LongLength} values, shape needs {expected}");
        if (voxels.GetType().GetElementType() != ElementType(type))
            throw new ArgumentException($"voxel array of {voxels.GetType().Name} does not match {type}");
        Channels = channels; SizeZ = sizeZ; SizeY = sizeY; SizeX = sizeX;
        Type = type; Voxels = voxels; Geometry = geometry;
    }

    public int Channels { get; }
    public int SizeZ { get; }
    public int SizeY { get; }
    public int SizeX { get; }
    public VoxelType Type { get; }
    public Array Voxels { get; }
    public ImageGeometry Geometry { get; }

    /// <summary>Spatial shape in array order (z, y, x).</summary>
    public int[] SpatialShape => [SizeZ, SizeY, SizeX];
    public long VoxelsPerChannel => (long)SizeZ * SizeY * SizeX;

    public static Type ElementType(VoxelType type) => type switch
    {
        VoxelType.UInt8 => typeof(byte),
        VoxelType.Int8 => typeof(sbyte),
        VoxelType.Int16 => typeof(short),
        VoxelType.UInt16 => typeof(ushort),
        VoxelType.Int32 => typeof(int),
        VoxelType.UInt32 => typeof(uint),
        VoxelType.Int64 => typeof(long),
        VoxelType.Float32 => typeof(float),
        VoxelType.Float64 => typeof(double),
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, "unsupported voxel type"),
    };

    public static MedicalImage FromFloat(float[] voxels, int channels, int sizeZ, int sizeY, int sizeX, ImageGeometry geometry) =>
        new(channels, sizeZ, sizeY, sizeX, VoxelType.Float32, voxels, geometry);

    /// <summary>Copies channel <paramref name="channel"/> into <paramref name="destination"/> as float32.</summary>
    public void CopyChannelTo(int channel, Span<float> destination)
    {
        if ((uint)channel >= (uint)Channels) throw new ArgumentOutOfRangeException(nameof(channel));
        int n = checked((int)VoxelsPerChannel);
        if (destination.Length < n) throw new ArgumentException("destination too small", nameof(destination));
        int start = channel * n;
        var dst = destination[..n];
        // Switch on Type, not on the array: the runtime lets sbyte[] pass as byte[] (ushort[] as short[], ...).
        switch (Type)
        {
            case VoxelType.Float32: ((float[])Voxels).AsSpan(start, n).CopyTo(dst); break;
            case VoxelType.Float64: Convert(((double[])Voxels).AsSpan(start, n), dst); break;
            case VoxelType.UInt8: Convert(((byte[])Voxels).AsSpan(start, n), dst); break;
            case VoxelType.Int8: Convert(((sbyte[])Voxels).AsSpan(start, n), dst); break;
            case VoxelType.Int16: Convert(((short[])Voxels).AsSpan(start, n), dst); break;
            case VoxelType.UInt16: Convert(((ushort[])Voxels).AsSpan(start, n), dst); break;
            case VoxelType.Int32: Convert(((int[])Voxels).AsSpan(start, n), dst); break;
            case VoxelType.UInt32: Convert(((uint[])Voxels).AsSpan(start, n), dst); break;
            case VoxelType.Int64: Convert(((long[])Voxels).AsSpan(start, n), dst); break;
            default: throw new InvalidOperationException($"unexpected voxel type {Type}");
        }
    }

    /// <summary>All channels as one float32 array in (c, z, y, x) order.</summary>
    public float[] ToFloat32()
    {
        if (Voxels is float[] f) return (float[])f.Clone();
        var result = new float[Voxels.LongLength];
        int n = checked((int)VoxelsPerChannel);
        for (int c = 0; c < Channels; c++) CopyChannelTo(c, result.AsSpan(c * n, n));
        return result;
    }

    private static void Convert<T>(ReadOnlySpan<T> source, Span<float> destination) where T : unmanaged, System.Numerics.INumberBase<T>
    {
        for (int i = 0; i < source.Length; i++) destination[i] = float.CreateTruncating(source[i]);
    }
}
