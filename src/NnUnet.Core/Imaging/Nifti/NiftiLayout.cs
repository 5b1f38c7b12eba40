using System.Buffers.Binary;
using System.Text;

namespace NnUnet.Core.Imaging.Nifti;

/// <summary>Byte layout of the NIfTI-1 and NIfTI-2 headers: decoding raw fields and encoding them for the writer.</summary>
internal static class NiftiLayout
{
    public const int Nifti1HeaderSize = 348;
    public const int Nifti2HeaderSize = 540;
    /// <summary>Header plus the 4-byte extension flag: where voxels start in a single-file .nii without extensions.</summary>
    public const int Nifti1DataOffset = 352;
    public const int Nifti2DataOffset = 544;

    public static int BytesPerVoxel(VoxelType type) => type switch
    {
        VoxelType.UInt8 or VoxelType.Int8 => 1,
        VoxelType.Int16 or VoxelType.UInt16 => 2,
        VoxelType.Int32 or VoxelType.UInt32 or VoxelType.Float32 => 4,
        VoxelType.Int64 or VoxelType.Float64 => 8,
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, "unsupported voxel type"),
    };

    /// <summary>Reads the first 4 bytes (sizeof_hdr) and tells the version and byte order, or null if it is neither.</summary>
    public static (NiftiVersion Version, bool BigEndian)? DetectVersion(ReadOnlySpan<byte> first4)
    {
        int le = BinaryPrimitives.ReadInt32LittleEndian(first4);
        int be = BinaryPrimitives.ReadInt32BigEndian(first4);
        if (le == Nifti1HeaderSize) return (NiftiVersion.Nifti1, false);
        if (le == Nifti2HeaderSize) return (NiftiVersion.Nifti2, false);
        if (be == Nifti1HeaderSize) return (NiftiVersion.Nifti1, true);
        if (be == Nifti2HeaderSize) return (NiftiVersion.Nifti2, true);
        return null;
    }

    /// <summary>Decodes the raw fields (no validation) of a whole header (348 or 540 bytes).</summary>
    public static NiftiHeader Decode(ReadOnlySpan<byte> h, NiftiVersion version, bool big, out string magic)
    {
        var r = new FieldReader(h, big);
        var hdr = new NiftiHeader { Version = version, IsBigEndian = big };
        if (version == NiftiVersion.Nifti1)
        {
            for (int i = 0; i < 8; i++) hdr.Dim[i] = r.I16(40 + 2 * i);
            hdr.IntentCode = r.I16(68);
            hdr.DataTypeCode = r.I16(70);
            hdr.BitPix = r.I16(72);
            for (int i = 0; i < 8; i++) hdr.Pixdim[i] = r.F32(76 + 4 * i);
            hdr.VoxOffset = r.F32(108);
            hdr.SclSlope = r.F32(112);
            hdr.SclInter = r.F32(116);
            hdr.XyztUnits = h[123];
            hdr.Description = Text(h.Slice(148, 80));
            hdr.QformCode = r.I16(252);
            hdr.SformCode = r.I16(254);
            hdr.QuaternB = r.F32(256); hdr.QuaternC = r.F32(260); hdr.QuaternD = r.F32(264);
            hdr.QoffsetX = r.F32(268); hdr.QoffsetY = r.F32(272); hdr.QoffsetZ = r.F32(276);
            for (int i = 0; i < 4; i++)
            {
                hdr.SrowX[i] = r.F32(280 + 4 * i);
                hdr.SrowY[i] = r.F32(296 + 4 * i);
                hdr.SrowZ[i] = r.F32(312 + 4 * i);
            }
            magic = Text(h.Slice(344, 4));
        }
        else
        {
            magic = Text(h.Slice(4, 8));
            hdr.DataTypeCode = r.I16(12);
            hdr.BitPix = r.I16(14);
            for (int i = 0; i < 8; i++) hdr.Dim[i] = r.I64(16 + 8 * i);
            for (int i = 0; i < 8; i++) hdr.Pixdim[i] = r.F64(104 + 8 * i);
            hdr.VoxOffset = r.I64(168);
            hdr.SclSlope = r.F64(176);
            hdr.SclInter = r.F64(184);
            hdr.Description = Text(h.Slice(240, 80));
            hdr.QformCode = r.I32(344);
            hdr.SformCode = r.I32(348);
            hdr.QuaternB = r.F64(352); hdr.QuaternC = r.F64(360); hdr.QuaternD = r.F64(368);
            hdr.QoffsetX = r.F64(376); hdr.QoffsetY = r.F64(384); hdr.QoffsetZ = r.F64(392);
            for (int i = 0; i < 4; i++)
            {
                hdr.SrowX[i] = r.F64(400 + 8 * i);
                hdr.SrowY[i] = r.F64(432 + 8 * i);
                hdr.SrowZ[i] = r.F64(464 + 8 * i);
            }
            hdr.XyztUnits = r.I32(500);
            hdr.IntentCode = r.I32(504);
        }
        return hdr;
    }

    /// <summary>Fields the writer sets; everything else is zero.</summary>
    public sealed class WriteFields
    {
        public long[] Dim = new long[8];
        public short DataTypeCode;
        public short BitPix;
        public double[] Pixdim = new double[8];
        public long VoxOffset;
        public double SclSlope = 1, SclInter;
        public int QformCode, SformCode;
        public double QuaternB, QuaternC, QuaternD, QoffsetX, QoffsetY, QoffsetZ;
        public double[] SrowX = new double[4], SrowY = new double[4], SrowZ = new double[4];
        public int XyztUnits;
        public string Description = "";
    }

    /// <summary>Encodes a little-endian header followed by the 4-byte extension flag (all zero: no extensions).</summary>
    public static byte[] Encode(WriteFields f, NiftiVersion version)
    {
        if (version == NiftiVersion.Nifti1)
        {
            var h = new byte[Nifti1DataOffset];
            var w = new FieldWriter(h);
            w.I32(0, Nifti1HeaderSize);
            h[38] = (byte)'r'; // "regular", as nibabel and ITK write it
            for (int i = 0; i < 8; i++) w.I16(40 + 2 * i, checked((short)f.Dim[i]));
            w.I16(70, f.DataTypeCode);
            w.I16(72, f.BitPix);
            for (int i = 0; i < 8; i++) w.F32(76 + 4 * i, f.Pixdim[i]);
            w.F32(108, f.VoxOffset);
            w.F32(112, f.SclSlope);
            w.F32(116, f.SclInter);
            h[123] = (byte)f.XyztUnits;
            WriteText(h.AsSpan(148, 80), f.Description);
            w.I16(252, (short)f.QformCode);
            w.I16(254, (short)f.SformCode);
            w.F32(256, f.QuaternB); w.F32(260, f.QuaternC); w.F32(264, f.QuaternD);
            w.F32(268, f.QoffsetX); w.F32(272, f.QoffsetY); w.F32(276, f.QoffsetZ);
            for (int i = 0; i < 4; i++)
            {
                w.F32(280 + 4 * i, f.SrowX[i]);
                w.F32(296 + 4 * i, f.SrowY[i]);
                w.F32(312 + 4 * i, f.SrowZ[i]);
            }
            WriteText(h.AsSpan(344, 4), "n+1");
            return h;
        }
        else
        {
            var h = new byte[Nifti2DataOffset];
            var w = new FieldWriter(h);
            w.I32(0, Nifti2HeaderSize);
            "n+2\0\r\n\u001a\n"u8.CopyTo(h.AsSpan(4, 8));
            w.I16(12, f.DataTypeCode);
            w.I16(14, f.BitPix);
            for (int i = 0; i < 8; i++) w.I64(16 + 8 * i, f.Dim[i]);
            for (int i = 0; i < 8; i++) w.F64(104 + 8 * i, f.Pixdim[i]);
            w.I64(168, f.VoxOffset);
            w.F64(176, f.SclSlope);
            w.F64(184, f.SclInter);
            WriteText(h.AsSpan(240, 80), f.Description);
            w.I32(344, f.QformCode);
            w.I32(348, f.SformCode);
            w.F64(352, f.QuaternB); w.F64(360, f.QuaternC); w.F64(368, f.QuaternD);
            w.F64(376, f.QoffsetX); w.F64(384, f.QoffsetY); w.F64(392, f.QoffsetZ);
            for (int i = 0; i < 4; i++)
            {
                w.F64(400 + 8 * i, f.SrowX[i]);
                w.F64(432 + 8 * i, f.SrowY[i]);
                w.F64(464 + 8 * i, f.SrowZ[i]);
            }
            w.I32(500, f.XyztUnits);
            return h;
        }
    }

    private static string Text(ReadOnlySpan<byte> bytes)
    {
        int end = bytes.IndexOf((byte)0);
        if (end >= 0) bytes = bytes[..end];
        return Encoding.ASCII.GetString(bytes);
    }

    private static void WriteText(Span<byte> destination, string text)
    {
        int n = Math.Min(text.Length, destination.Length - 1);
        for (int i = 0; i < n; i++) destination[i] = text[i] < 128 ? (byte)text[i] : (byte)'?';
    }

    private readonly ref struct FieldReader(ReadOnlySpan<byte> bytes, bool big)
    {
        private readonly ReadOnlySpan<byte> _b = bytes;
        public short I16(int at) => big ? BinaryPrimitives.ReadInt16BigEndian(_b[at..]) : BinaryPrimitives.ReadInt16LittleEndian(_b[at..]);
        public int I32(int at) => big ? BinaryPrimitives.ReadInt32BigEndian(_b[at..]) : BinaryPrimitives.ReadInt32LittleEndian(_b[at..]);
        public long I64(int at) => big ? BinaryPrimitives.ReadInt64BigEndian(_b[at..]) : BinaryPrimitives.ReadInt64LittleEndian(_b[at..]);
        public double F32(int at) => big ? BinaryPrimitives.ReadSingleBigEndian(_b[at..]) : BinaryPrimitives.ReadSingleLittleEndian(_b[at..]);
        public double F64(int at) => big ? BinaryPrimitives.ReadDoubleBigEndian(_b[at..]) : BinaryPrimitives.ReadDoubleLittleEndian(_b[at..]);
    }

    private readonly ref struct FieldWriter(Span<byte> bytes)
    {
        private readonly Span<byte> _b = bytes;
        public void I16(int at, short v) => BinaryPrimitives.WriteInt16LittleEndian(_b[at..], v);
        public void I32(int at, int v) => BinaryPrimitives.WriteInt32LittleEndian(_b[at..], v);
        public void I64(int at, long v) => BinaryPrimitives.WriteInt64LittleEndian(_b[at..], v);
        public void F32(int at, double v) => BinaryPrimitives.WriteSingleLittleEndian(_b[at..], (float)v);
        public void F64(int at, double v) => BinaryPrimitives.WriteDoubleLittleEndian(_b[at..], v);
    }
}
