namespace NnUnet.Core.Imaging.Nifti;

/// <summary>NIfTI format version (header layout): NIfTI-1 (348-byte header, 16-bit dims, float32 fields) or NIfTI-2
/// (540-byte header, 64-bit dims, float64 fields).</summary>
public enum NiftiVersion
{
    Nifti1 = 1,
    Nifti2 = 2,
}

/// <summary>
/// A validated NIfTI-1 or NIfTI-2 header: the raw fields (widened to one set of types for both versions) plus what the
/// reader derives from them (<see cref="VoxelType"/>, shape, <see cref="Geometry"/>, scaling). Obtained from
/// <see cref="NiftiReader.ReadHeader"/>, which reads only the header, not the voxels.
/// </summary>
public sealed class NiftiHeader
{
    internal NiftiHeader() { }

    public NiftiVersion Version { get; internal set; }
    public bool IsBigEndian { get; internal set; }
    /// <summary>True when the file is gzip-compressed (detected from its content, not its name).</summary>
    public bool IsGzipped { get; internal set; }

    /// <summary>dim[0..7]: dim[0] is the number of dimensions, dim[1..] the sizes (x, y, z, t/channels, ...).</summary>
    public long[] Dim { get; internal set; } = new long[8];
    public short DataTypeCode { get; internal set; }
    public short BitPix { get; internal set; }
    /// <summary>pixdim[0..7]: pixdim[0] is qfac, pixdim[1..3] the voxel size.</summary>
    public double[] Pixdim { get; internal set; } = new double[8];
    /// <summary>vox_offset as stored in the file.</summary>
    public double VoxOffset { get; internal set; }
    /// <summary>Byte offset where the voxels start (vox_offset, or the header size plus 4 when vox_offset is 0).</summary>
    public long DataOffset { get; internal set; }
    public double SclSlope { get; internal set; }
    public double SclInter { get; internal set; }
    public int QformCode { get; internal set; }
    public int SformCode { get; internal set; }
    public double QuaternB { get; internal set; }
    public double QuaternC { get; internal set; }
    public double QuaternD { get; internal set; }
    public double QoffsetX { get; internal set; }
    public double QoffsetY { get; internal set; }
    public double QoffsetZ { get; internal set; }
    public double[] SrowX { get; internal set; } = new double[4];
    public double[] SrowY { get; internal set; } = new double[4];
    public double[] SrowZ { get; internal set; } = new double[4];
    public int XyztUnits { get; internal set; }
    public int IntentCode { get; internal set; }
    public string Description { get; internal set; } = "";

    // ---- derived ----

    /// <summary>Voxel type stored in the file.</summary>
    public VoxelType StoredType { get; internal set; }
    /// <summary>Voxel type of the image <see cref="NiftiReader.Read"/> returns (float32/float64 when scaling applies).</summary>
    public VoxelType OutputType { get; internal set; }
    /// <summary>True when scl_slope/scl_inter change the values (slope finite and non-zero, and not exactly 1 with intercept 0).</summary>
    public bool HasScaling { get; internal set; }
    public int SizeX { get; internal set; }
    public int SizeY { get; internal set; }
    public int SizeZ { get; internal set; }
    /// <summary>dim[4] (1 for 3D files): channels, as in the Medical Segmentation Decathlon's 4D files.</summary>
    public int Channels { get; internal set; }
    /// <summary>Where the geometry came from: "sform", "qform" or "pixdim".</summary>
    public string GeometrySource { get; internal set; } = "";
    /// <summary>Spacing, origin and direction as SimpleITK reports them (LPS, x/y/z order).</summary>
    public ImageGeometry Geometry { get; internal set; } = ImageGeometry.Identity();

    /// <summary>Size in bytes of the header structure (348 or 540).</summary>
    public int HeaderSize => Version == NiftiVersion.Nifti1 ? NiftiLayout.Nifti1HeaderSize : NiftiLayout.Nifti2HeaderSize;
    public int BytesPerVoxel => NiftiLayout.BytesPerVoxel(StoredType);
    public long VoxelCount => (long)Channels * SizeZ * SizeY * SizeX;
    /// <summary>The RAS affine (voxel index i,j,k to RAS mm), as nibabel's <c>affine</c> for sform/qform files.</summary>
    public double[,] RasAffine => Geometry.ToRasAffine();
}
