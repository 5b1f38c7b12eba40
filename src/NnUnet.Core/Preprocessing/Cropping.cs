using NnUnet.Core.Imaging;

namespace NnUnet.Core.Preprocessing;

/// <summary>A case cropped to its non-zero region. Arrays are C-order (c, z, y, x); <see cref="Seg"/> is (z, y, x) with
/// -1 marking voxels outside the non-zero mask that were background.</summary>
/// <param name="Data">Cropped image data, all channels.</param>
/// <param name="Channels">Number of channels in <paramref name="Data"/>.</param>
/// <param name="Shape">Spatial shape after cropping (z, y, x).</param>
/// <param name="Seg">Cropped segmentation (labels, -1 outside the mask where the label was 0).</param>
/// <param name="Bbox">Per axis (z, y, x) the half-open interval [start, end) that was kept.</param>
/// <param name="ShapeBeforeCropping">Spatial shape before cropping (z, y, x).</param>
public sealed record CropResult(float[] Data, int Channels, int[] Shape, sbyte[] Seg, int[][] Bbox, int[] ShapeBeforeCropping)
{
    public long VoxelsPerChannel => (long)Shape[0] * Shape[1] * Shape[2];
    /// <summary><c>prod(shape after) / prod(shape before)</c>, the fingerprint's relative size.</summary>
    public double RelativeSize => (double)VoxelsPerChannel / ((double)ShapeBeforeCropping[0] * ShapeBeforeCropping[1] * ShapeBeforeCropping[2]);
}

/// <summary>
/// nnU-Net's crop to non-zero (preprocessing/cropping/cropping.py): mask = any channel != 0, holes filled as scipy's
/// <c>binary_fill_holes</c> does (background not 6-connected to the array border becomes mask; a one-voxel-thick
/// axis means every voxel touches the border, so 2D images get no hole filling, as in nnU-Net), bounding box of the mask
/// (the whole image when the mask is empty, as acvl_utils' get_bbox_from_mask), crop data and segmentation to it, and
/// set segmentation voxels that are 0 and outside the mask to -1 (without a segmentation: 0 inside, -1 outside).
/// </summary>
public static class Cropping
{
    public const sbyte OutsideMaskLabel = -1;

    /// <summary>Crops a case read from files. Label values must be integers in 0..127 (the preprocessed seg is int8).</summary>
    public static CropResult CropToNonzero(MedicalImage image, MedicalImage? segmentation)
    {
        float[] data = image.ToFloat32();
        float[]? seg = null;
        if (segmentation is not null)
        {
            if (segmentation.Channels != 1) throw new ArgumentException($"segmentation must have one channel, has {segmentation.Channels}");
            if (segmentation.SizeZ != image.SizeZ || segmentation.SizeY != image.SizeY || segmentation.SizeX != image.SizeX)
                throw new ArgumentException($"segmentation shape ({segmentation.SizeZ}, {segmentation.SizeY}, {segmentation.SizeX}) differs from image shape ({image.SizeZ}, {image.SizeY}, {image.SizeX})");
            seg = segmentation.ToFloat32();
        }
        return CropToNonzero(data, image.Channels, image.SpatialShape, seg);
    }

    /// <summary>Crops (c, z, y, x) <paramref name="data"/> and an optional (z, y, x) <paramref name="seg"/> (empty span: none).</summary>
    public static CropResult CropToNonzero(ReadOnlySpan<float> data, int channels, int[] shape, ReadOnlySpan<float> seg)
    {
        int n = CheckShape(data.Length, channels, shape);
        if (!seg.IsEmpty && seg.Length != n) throw new ArgumentException($"segmentation has {seg.Length} voxels, the image has {n} per channel");
        bool[] mask = CreateNonzeroMask(data, channels, shape);
        int[][] bbox = GetBoundingBox(mask, shape);
        int[] cropShape = [bbox[0][1] - bbox[0][0], bbox[1][1] - bbox[1][0], bbox[2][1] - bbox[2][0]];
        int cropN = cropShape[0] * cropShape[1] * cropShape[2];

        var croppedData = new float[(long)cropN * channels];
        for (int c = 0; c < channels; c++)
            CopyBox(data.Slice(c * n, n), shape, bbox, croppedData.AsSpan(c * cropN, cropN));

        var croppedSeg = new sbyte[cropN];
        int sy = shape[1], sx = shape[2];
        int rowLength = cropShape[2];
        int croppedPlane = cropShape[1] * rowLength;
        bool hasSeg = !seg.IsEmpty;
        unsafe
        {
            fixed (float* pinnedSeg = seg)
            {
                float* segPointer = pinnedSeg;
                ForEachSlab(cropShape[0], croppedPlane, (z0, z1) =>
                {
                    for (int zc = z0; zc < z1; zc++)
                    {
                        int z = zc + bbox[0][0];
                        int o = zc * croppedPlane;
                        for (int y = bbox[1][0]; y < bbox[1][1]; y++, o += rowLength)
                        {
                            int start = (z * sy + y) * sx + bbox[2][0];
                            var maskRow = mask.AsSpan(start, rowLength);
                            var outRow = croppedSeg.AsSpan(o, rowLength);
                            if (!hasSeg)
                            {
                                for (int x = 0; x < rowLength; x++) outRow[x] = maskRow[x] ? (sbyte)0 : OutsideMaskLabel;
                                continue;
                            }
                            var segRow = new ReadOnlySpan<float>(segPointer + start, rowLength);
                            for (int x = 0; x < rowLength; x++)
                            {
                                sbyte label = ToLabel(segRow[x]);
                                outRow[x] = label == 0 && !maskRow[x] ? OutsideMaskLabel : label;
                            }
                        }
                    }
                });
            }
        }
        return new CropResult(croppedData, channels, cropShape, croppedSeg, bbox, (int[])shape.Clone());
    }

    /// <summary>Mask of voxels where any channel is non-zero (NaN counts as non-zero), holes filled.</summary>
    public static bool[] CreateNonzeroMask(ReadOnlySpan<float> data, int channels, int[] shape)
    {
        int n = CheckShape(data.Length, channels, shape);
        var mask = new bool[n];
        int plane = shape[1] * shape[2];
        unsafe
        {
            fixed (float* pinned = data)
            {
                float* source = pinned;
                // Slabs of z-planes in parallel: the mask of a big volume is memory-bound work.
                ForEachSlab(shape[0], plane, (z0, z1) =>
                {
                    int start = z0 * plane, length = (z1 - z0) * plane;
                    var slabMask = mask.AsSpan(start, length);
                    for (int c = 0; c < channels; c++)
                    {
                        var channel = new ReadOnlySpan<float>(source + (long)c * n + start, length);
                        for (int i = 0; i < length; i++) slabMask[i] |= channel[i] != 0f;
                    }
                });
            }
        }
        FillHoles(mask, shape);
        return mask;
    }

    /// <summary>
    /// scipy <c>binary_fill_holes</c> with its default structure (6-connectivity in 3D): every false voxel that cannot be
    /// reached from outside the array through false voxels becomes true.
    /// </summary>
    public static void FillHoles(Span<bool> mask, int[] shape)
    {
        int sz = shape[0], sy = shape[1], sx = shape[2];
        int n = sz * sy * sx;
        if (mask.Length != n) throw new ArgumentException($"mask has {mask.Length} voxels, shape needs {n}");
        // A hole needs an interior voxel on every axis.
        if (sz < 3 || sy < 3 || sx < 3) return;

        // reached[i]: background voxel connected to the border. Scanline flood fill: a popped seed grows into its whole
        // background run along x; the rows next to the run (y +- 1, z +- 1) get one seed per background run they hold.
        var reached = new bool[n];
        var seeds = new SeedStack(1 << 12);
        for (int z = 0; z < sz; z++)
        {
            bool zFace = z == 0 || z == sz - 1;
            for (int y = 0; y < sy; y++)
            {
                int row = (z * sy + y) * sx;
                if (zFace || y == 0 || y == sy - 1) SeedRuns(mask, reached, row, 0, sx - 1, ref seeds);
                else
                {
                    if (!mask[row]) seeds.Push(row);
                    if (!mask[row + sx - 1]) seeds.Push(row + sx - 1);
                }
            }
        }
        int plane = sy * sx;
        while (seeds.Count > 0)
        {
            int i = seeds.Pop();
            if (reached[i]) continue;
            int rowStart = i - i % sx;
            int left = i, right = i;
            while (left > rowStart && !mask[left - 1] && !reached[left - 1]) left--;
            while (right < rowStart + sx - 1 && !mask[right + 1] && !reached[right + 1]) right++;
            reached.AsSpan(left, right - left + 1).Fill(true);
            int rowIndex = rowStart / sx;
            int y = rowIndex % sy, z = rowIndex / sy;
            if (y > 0) SeedRuns(mask, reached, left - sx, 0, right - left, ref seeds);
            if (y < sy - 1) SeedRuns(mask, reached, left + sx, 0, right - left, ref seeds);
            if (z > 0) SeedRuns(mask, reached, left - plane, 0, right - left, ref seeds);
            if (z < sz - 1) SeedRuns(mask, reached, left + plane, 0, right - left, ref seeds);
        }
        for (int i = 0; i < n; i++) mask[i] = !reached[i];
    }

    /// <summary>Pushes the first voxel of every unreached background run in <c>[start + from, start + to]</c>.</summary>
    private static void SeedRuns(ReadOnlySpan<bool> mask, bool[] reached, int start, int from, int to, ref SeedStack seeds)
    {
        bool inRun = false;
        for (int x = from; x <= to; x++)
        {
            int i = start + x;
            bool open = !mask[i] && !reached[i];
            if (open && !inRun) seeds.Push(i);
            inRun = open;
        }
    }

    /// <summary>Growable stack of voxel indices.</summary>
    private struct SeedStack(int capacity)
    {
        private int[] _items = new int[capacity];
        public int Count { get; private set; }

        public void Push(int index)
        {
            if (Count == _items.Length) Array.Resize(ref _items, _items.Length * 2);
            _items[Count++] = index;
        }

        public int Pop() => _items[--Count];
    }

    /// <summary>Half-open bounding box [start, end) per axis (z, y, x) of the true voxels; the whole array when none is true.</summary>
    public static int[][] GetBoundingBox(ReadOnlySpan<bool> mask, int[] shape)
    {
        int sz = shape[0], sy = shape[1], sx = shape[2];
        if (mask.Length != sz * sy * sx) throw new ArgumentException($"mask has {mask.Length} voxels, shape needs {sz * sy * sx}");
        int minZ = int.MaxValue, maxZ = -1, minY = int.MaxValue, maxY = -1, minX = int.MaxValue, maxX = -1;
        for (int z = 0; z < sz; z++)
        {
            for (int y = 0; y < sy; y++)
            {
                var row = mask.Slice((z * sy + y) * sx, sx);
                int first = row.IndexOf(true);
                if (first < 0) continue;
                int last = row.LastIndexOf(true);
                if (z < minZ) minZ = z;
                maxZ = z;
                if (y < minY) minY = y;
                if (y > maxY) maxY = y;
                if (first < minX) minX = first;
                if (last > maxX) maxX = last;
            }
        }
        if (maxZ < 0) return [[0, sz], [0, sy], [0, sx]];
        return [[minZ, maxZ + 1], [minY, maxY + 1], [minX, maxX + 1]];
    }

    /// <summary>Copies the box <paramref name="bbox"/> of one (z, y, x) volume into <paramref name="destination"/>.</summary>
    public static void CopyBox<T>(ReadOnlySpan<T> source, int[] shape, int[][] bbox, Span<T> destination)
    {
        int sy = shape[1], sx = shape[2];
        int rowLength = bbox[2][1] - bbox[2][0];
        int o = 0;
        for (int z = bbox[0][0]; z < bbox[0][1]; z++)
        {
            for (int y = bbox[1][0]; y < bbox[1][1]; y++)
            {
                source.Slice((z * sy + y) * sx + bbox[2][0], rowLength).CopyTo(destination.Slice(o, rowLength));
                o += rowLength;
            }
        }
    }

    /// <summary>Runs <paramref name="body"/>(zStart, zEnd) over slabs of z-planes, in parallel when the volume is large.</summary>
    private static void ForEachSlab(int planes, int planeSize, Action<int, int> body)
    {
        const int parallelThreshold = 1 << 20;
        if ((long)planes * planeSize < parallelThreshold || planes < 2 || Environment.ProcessorCount == 1)
        {
            body(0, planes);
            return;
        }
        int slabs = Math.Min(planes, Environment.ProcessorCount * 4);
        try
        {
            Parallel.For(0, slabs, s => body((int)((long)planes * s / slabs), (int)((long)planes * (s + 1) / slabs)));
        }
        catch (AggregateException ex) when (ex.InnerExceptions.Count > 0)
        {
            // Callers see the same exception as in the serial case (e.g. the ArgumentException of a bad label).
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(ex.InnerExceptions[0]).Throw();
        }
    }

    private static sbyte ToLabel(float value)
    {
        if (value >= 0f && value <= 127f && value == MathF.Floor(value)) return (sbyte)value;
        throw new ArgumentException($"segmentation value {value} is not a label (integers 0..127 are supported)");
    }

    private static int CheckShape(int dataLength, int channels, int[] shape)
    {
        if (shape.Length != 3 || shape[0] < 1 || shape[1] < 1 || shape[2] < 1 || channels < 1)
            throw new ArgumentException($"expected a (z, y, x) shape of positive sizes and at least one channel, got [{string.Join(", ", shape)}] with {channels} channels");
        long n = (long)shape[0] * shape[1] * shape[2];
        if (n > int.MaxValue) throw new ArgumentException($"volume of {n} voxels per channel is too large");
        if (dataLength != n * channels) throw new ArgumentException($"data has {dataLength} values, shape [{string.Join(", ", shape)}] x {channels} channels needs {n * channels}");
        return (int)n;
    }
}
