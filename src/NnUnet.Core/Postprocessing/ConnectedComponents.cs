using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace NnUnet.Core.Postprocessing;

/// <summary>Which neighbours touch: <see cref="Full"/> = every voxel of the 3x3x3 cube (26 in 3D, 8 in a 2D slice;
/// nnU-Net v2 and <c>scipy.ndimage.label</c> with a full structure), <see cref="Faces"/> = 6 in 3D, 4 in 2D (nnU-Net v1).</summary>
public enum Connectivity
{
    Full,
    Faces,
}

/// <summary>
/// Connected-component labelling of a binary volume (z, y, x), x fastest; a 2D image is a volume with one slice.
/// Two passes with union-find: the first pass runs over z-slabs in parallel, each giving its voxels provisional labels
/// from its own range and joining them with the already visited neighbours; the slab borders are then joined, and a
/// final pass numbers the components 1..n in the order their first voxel appears in raster order, which is the
/// numbering <c>scipy.ndimage.label</c> produces (tested against scipy fixtures).
/// </summary>
public static class ConnectedComponents
{
    private const int ParallelThreshold = 1 << 16;

    /// <summary>Labels <paramref name="mask"/> (non-zero = foreground) into <paramref name="labels"/> (0 = background)
    /// and returns the number of components.</summary>
    public static int Label(ReadOnlySpan<byte> mask, int sizeZ, int sizeY, int sizeX, Connectivity connectivity, Span<int> labels)
    {
        int n = CheckShape(mask.Length, sizeZ, sizeY, sizeX);
        if (labels.Length != n) throw new ArgumentException($"labels hold {labels.Length} values, the mask {n}");
        if (n == 0) return 0;
        var parent = GC.AllocateUninitializedArray<int>(n + 1);
        int planeSize = sizeY * sizeX;
        int slabs = n < ParallelThreshold ? 1 : Math.Min(sizeZ, Environment.ProcessorCount);
        var slabEnds = new int[slabs]; // one past the last provisional label each slab used
        unsafe
        {
            fixed (byte* maskPtr = mask)
            fixed (int* labelPtr = labels)
            fixed (int* parentPtr = parent)
            {
                var m = (IntPtr)maskPtr;
                var l = (IntPtr)labelPtr;
                var pp = (IntPtr)parentPtr;
                if (slabs == 1)
                {
                    slabEnds[0] = LabelSlab((byte*)m, (int*)l, (int*)pp, sizeY, sizeX, 0, sizeZ, connectivity);
                }
                else
                {
                    Parallel.For(0, slabs, s =>
                    {
                        var (z0, z1) = SlabBounds(s, slabs, sizeZ);
                        slabEnds[s] = LabelSlab((byte*)m, (int*)l, (int*)pp, sizeY, sizeX, z0, z1, connectivity);
                    });
                    for (int s = 1; s < slabs; s++)
                        JoinAcrossPlane((byte*)m, (int*)l, (int*)pp, sizeY, sizeX, SlabBounds(s, slabs, sizeZ).Start, connectivity);
                }
                int count = 0;
                for (int s = 0; s < slabs; s++)
                {
                    int first = SlabBounds(s, slabs, sizeZ).Start * planeSize + 1;
                    for (int label = first; label < slabEnds[s]; label++)
                    {
                        int p = parent[label];
                        // parents always point to smaller labels, which already hold their final number (negated)
                        parent[label] = p == label ? -(++count) : parent[p];
                    }
                }
                if (slabs == 1) Finish((int*)l, (int*)pp, 0, n);
                else
                {
                    Parallel.For(0, slabs, s =>
                    {
                        var (z0, z1) = SlabBounds(s, slabs, sizeZ);
                        Finish((int*)l, (int*)pp, z0 * planeSize, z1 * planeSize);
                    });
                }
                return count;
            }
        }
    }

    /// <summary>Same as the byte overload, for a bool mask.</summary>
    public static int Label(ReadOnlySpan<bool> mask, int sizeZ, int sizeY, int sizeX, Connectivity connectivity, Span<int> labels) =>
        Label(MemoryMarshal.Cast<bool, byte>(mask), sizeZ, sizeY, sizeX, connectivity, labels);

    /// <summary>Voxel count of each component: <c>sizes[k]</c> for component k (index 0 counts background).</summary>
    public static long[] ComponentSizes(ReadOnlySpan<int> labels, int componentCount)
    {
        var sizes = new long[componentCount + 1];
        foreach (int label in labels) sizes[label]++;
        return sizes;
    }

    /// <summary>
    /// Keeps only the largest component(s) of <paramref name="mask"/>: on return <paramref name="keep"/> is 1 where a voxel
    /// belongs to a component of maximal size (all of them when several tie, as acvl_utils' remove_all_but_largest_component)
    /// and 0 elsewhere. Returns the number of components found.
    /// </summary>
    public static int KeepLargest(ReadOnlySpan<byte> mask, int sizeZ, int sizeY, int sizeX, Connectivity connectivity, Span<byte> keep)
    {
        int n = CheckShape(mask.Length, sizeZ, sizeY, sizeX);
        if (keep.Length != n) throw new ArgumentException($"keep holds {keep.Length} values, the mask {n}");
        var labels = GC.AllocateUninitializedArray<int>(n);
        int count = Label(mask, sizeZ, sizeY, sizeX, connectivity, labels);
        var sizes = ComponentSizes(labels, count);
        long largest = 0;
        for (int k = 1; k <= count; k++) largest = Math.Max(largest, sizes[k]);
        var isLargest = new bool[count + 1];
        for (int k = 1; k <= count; k++) isLargest[k] = sizes[k] == largest;
        for (int i = 0; i < n; i++) keep[i] = isLargest[labels[i]] ? (byte)1 : (byte)0;
        return count;
    }

    private static int CheckShape(int length, int sizeZ, int sizeY, int sizeX)
    {
        if (sizeZ < 0 || sizeY < 0 || sizeX < 0) throw new ArgumentException($"negative shape ({sizeZ}, {sizeY}, {sizeX})");
        long n = (long)sizeZ * sizeY * sizeX;
        if (n != length) throw new ArgumentException($"mask holds {length} values, shape ({sizeZ}, {sizeY}, {sizeX}) needs {n}");
        return (int)n;
    }

    private static (int Start, int End) SlabBounds(int slab, int slabs, int sizeZ) =>
        ((int)((long)slab * sizeZ / slabs), (int)((long)(slab + 1) * sizeZ / slabs));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe int Find(int* parent, int x)
    {
        while (parent[x] != x)
        {
            int grand = parent[parent[x]];
            parent[x] = grand; // path halving
            x = grand;
        }
        return x;
    }

    /// <summary>Joins the set of <paramref name="current"/> (0 = none yet) with the neighbour's; the smaller root wins, so
    /// every parent points to a smaller label. Returns the joint root,
    /// so the caller keeps holding a root and the next find on it is one step.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe int Join(int* parent, int current, int neighbourLabel)
    {
        if (current == neighbourLabel) return current;
        int b = Find(parent, neighbourLabel);
        if (current == 0) return b;
        int a = Find(parent, current);
        if (a == b) return a;
        if (a < b) { parent[b] = a; return a; }
        parent[a] = b;
        return b;
    }

    /// <summary>First pass over planes [z0, z1): provisional labels start at z0 * planeSize + 1, so slabs never collide.
    /// Returns one past the last label used.</summary>
    private static unsafe int LabelSlab(byte* mask, int* labels, int* parent, int sizeY, int sizeX, int z0, int z1, Connectivity connectivity)
    {
        int planeSize = sizeY * sizeX;
        int next = z0 * planeSize + 1;
        bool full = connectivity == Connectivity.Full;
        for (int z = z0; z < z1; z++)
        {
            bool hasBelow = z > z0; // the plane before, within this slab
            for (int y = 0; y < sizeY; y++)
            {
                int row = (z * sizeY + y) * sizeX;
                bool hasUp = y > 0;
                bool hasDown = y + 1 < sizeY;
                for (int x = 0; x < sizeX; x++)
                {
                    int i = row + x;
                    if (mask[i] == 0) { labels[i] = 0; continue; }
                    int current = 0;
                    bool hasLeft = x > 0, hasRight = x + 1 < sizeX;
                    if (!full)
                    {
                        if (hasLeft && mask[i - 1] != 0) current = labels[i - 1];
                        if (hasUp && mask[i - sizeX] != 0) current = Join(parent, current, labels[i - sizeX]);
                        if (hasBelow && mask[i - planeSize] != 0) current = Join(parent, current, labels[i - planeSize]);
                    }
                    else
                    {
                        current = JoinFullNeighbours(mask, labels, parent, i, sizeX, planeSize, hasLeft, hasRight, hasUp, hasDown, hasBelow);
                    }
                    if (current == 0)
                    {
                        current = next++;
                        parent[current] = current;
                    }
                    labels[i] = current;
                }
            }
        }
        return next;
    }

    /// <summary>
    /// Joins voxel i with its 13 already visited neighbours (26-connectivity) and returns a label of its set, or 0.
    /// Fewer look-ups by covering: any two visited voxels that touch were joined when the later one was visited. So a
    /// foreground left voxel covers the up, up-left and straight-below voxels and the x-1 and x columns below (only the
    /// up-right voxel and the x+1 column below are new); a foreground voxel straight below covers the whole 3x3 below;
    /// a foreground up voxel covers up-left and up-right; the middle voxel of a column below covers its column.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe int JoinFullNeighbours(byte* mask, int* labels, int* parent, int i, int sizeX, int planeSize,
        bool hasLeft, bool hasRight, bool hasUp, bool hasDown, bool hasBelow)
    {
        int current;
        if (hasLeft && mask[i - 1] != 0)
        {
            current = labels[i - 1];
            if (!hasRight) return current;
            if (hasUp && mask[i - sizeX] == 0 && mask[i - sizeX + 1] != 0) current = Join(parent, current, labels[i - sizeX + 1]);
            if (hasBelow && mask[i - planeSize] == 0) current = JoinColumnBelow(mask, labels, parent, current, i - planeSize + 1, sizeX, hasUp, hasDown);
            return current;
        }
        current = 0;
        if (hasBelow)
        {
            int b = i - planeSize;
            if (mask[b] != 0) current = labels[b];
            else
            {
                if (hasLeft) current = JoinColumnBelow(mask, labels, parent, current, b - 1, sizeX, hasUp, hasDown);
                if (hasUp && mask[b - sizeX] != 0) current = Join(parent, current, labels[b - sizeX]);
                if (hasDown && mask[b + sizeX] != 0) current = Join(parent, current, labels[b + sizeX]);
                if (hasRight) current = JoinColumnBelow(mask, labels, parent, current, b + 1, sizeX, hasUp, hasDown);
            }
        }
        if (hasUp)
        {
            int u = i - sizeX;
            if (mask[u] != 0) current = Join(parent, current, labels[u]);
            else
            {
                if (hasLeft && mask[u - 1] != 0) current = Join(parent, current, labels[u - 1]);
                if (hasRight && mask[u + 1] != 0) current = Join(parent, current, labels[u + 1]);
            }
        }
        return current;
    }

    /// <summary>Joins a column of three voxels in the plane below (rows y-1, y, y+1 at index <paramref name="middle"/>);
    /// when its middle voxel is foreground it covers the other two.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe int JoinColumnBelow(byte* mask, int* labels, int* parent, int current, int middle, int sizeX, bool hasUp, bool hasDown)
    {
        if (mask[middle] != 0) return Join(parent, current, labels[middle]);
        if (hasUp && mask[middle - sizeX] != 0) current = Join(parent, current, labels[middle - sizeX]);
        if (hasDown && mask[middle + sizeX] != 0) current = Join(parent, current, labels[middle + sizeX]);
        return current;
    }

    /// <summary>Joins the voxels of plane <paramref name="z"/> with their neighbours in plane z-1 (slab borders).</summary>
    private static unsafe void JoinAcrossPlane(byte* mask, int* labels, int* parent, int sizeY, int sizeX, int z, Connectivity connectivity)
    {
        int planeSize = sizeY * sizeX;
        bool full = connectivity == Connectivity.Full;
        for (int y = 0; y < sizeY; y++)
        {
            int row = (z * sizeY + y) * sizeX;
            for (int x = 0; x < sizeX; x++)
            {
                int i = row + x;
                if (mask[i] == 0) continue;
                int current = labels[i];
                if (!full)
                {
                    if (mask[i - planeSize] != 0) Join(parent, current, labels[i - planeSize]);
                    continue;
                }
                int yFrom = y > 0 ? -1 : 0, yTo = y + 1 < sizeY ? 1 : 0;
                int xFrom = x > 0 ? -1 : 0, xTo = x + 1 < sizeX ? 1 : 0;
                for (int dy = yFrom; dy <= yTo; dy++)
                {
                    int b = i - planeSize + dy * sizeX;
                    for (int dx = xFrom; dx <= xTo; dx++)
                        if (mask[b + dx] != 0) Join(parent, current, labels[b + dx]);
                }
            }
        }
    }

    private static unsafe void Finish(int* labels, int* parent, int start, int end)
    {
        for (int i = start; i < end; i++)
        {
            int label = labels[i];
            if (label != 0) labels[i] = -parent[label];
        }
    }
}
