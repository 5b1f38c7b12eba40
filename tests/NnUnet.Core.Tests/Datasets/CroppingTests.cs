using NnUnet.Core.Imaging;
using NnUnet.Core.Preprocessing;

namespace NnUnet.Core.Tests.Datasets;

public class CroppingTests
{
    private static int Index(int[] shape, int z, int y, int x) => (z * shape[1] + y) * shape[2] + x;

    /// <summary>A hollow box shell (walls 1 voxel) occupying [lo, hi] on every axis.</summary>
    private static float[] HollowBox(int[] shape, int lo, int hi, float value = 5f)
    {
        var data = new float[shape[0] * shape[1] * shape[2]];
        for (int z = lo; z <= hi; z++)
            for (int y = lo; y <= hi; y++)
                for (int x = lo; x <= hi; x++)
                    if (z == lo || z == hi || y == lo || y == hi || x == lo || x == hi) data[Index(shape, z, y, x)] = value;
        return data;
    }

    [Fact]
    public void EnclosedCavityIsFilledAndCropKeepsBoundingBox()
    {
        int[] shape = [9, 10, 11];
        var data = HollowBox(shape, 2, 6);
        var mask = Cropping.CreateNonzeroMask(data, 1, shape);
        Assert.True(mask[Index(shape, 4, 4, 4)]);
        Assert.False(mask[Index(shape, 1, 4, 4)]);

        var seg = new float[data.Length];
        seg[Index(shape, 4, 4, 4)] = 2;
        seg[Index(shape, 0, 0, 0)] = 1; // foreground outside the mask is kept, not cropped away... only if inside the bbox
        var result = Cropping.CropToNonzero(data, 1, shape, seg);
        Assert.Equal([[2, 7], [2, 7], [2, 7]], result.Bbox);
        Assert.Equal([5, 5, 5], result.Shape);
        Assert.Equal([9, 10, 11], result.ShapeBeforeCropping);
        Assert.Equal(125.0 / 990.0, result.RelativeSize, 12);
        Assert.Equal(2, result.Seg[(2 * 5 + 2) * 5 + 2]);
        Assert.DoesNotContain(Cropping.OutsideMaskLabel, result.Seg); // the whole box is mask after filling
        Assert.Equal(5f, result.Data[0]);
    }

    [Fact]
    public void CavityOpenToTheBorderIsNotFilledAndItsBackgroundBecomesMinusOne()
    {
        int[] shape = [9, 9, 9];
        var data = HollowBox(shape, 2, 6);
        // Tunnel from the cavity to the outside through the x = 6 wall at (4, 4).
        data[Index(shape, 4, 4, 6)] = 0;
        var result = Cropping.CropToNonzero(data, 1, shape, ReadOnlySpan<float>.Empty);
        Assert.Equal([[2, 7], [2, 7], [2, 7]], result.Bbox);
        // Cavity voxel (4,4,4) -> cropped (2,2,2): outside the mask.
        Assert.Equal(Cropping.OutsideMaskLabel, result.Seg[(2 * 5 + 2) * 5 + 2]);
        Assert.Equal(0, result.Seg[0]);
    }

    [Fact]
    public void DiagonalOnlyLeakIsStillAHoleUnderSixConnectivity()
    {
        int[] shape = [7, 7, 7];
        var data = new float[343];
        for (int i = 0; i < data.Length; i++) data[i] = 1;
        data[Index(shape, 3, 3, 3)] = 0; // cavity
        data[Index(shape, 2, 2, 2)] = 0; // touches the cavity only by a corner
        data[Index(shape, 1, 1, 1)] = 0;
        data[Index(shape, 0, 0, 0)] = 0; // on the border
        var mask = Cropping.CreateNonzeroMask(data, 1, shape);
        Assert.True(mask[Index(shape, 3, 3, 3)]);
        Assert.True(mask[Index(shape, 2, 2, 2)]);
        Assert.False(mask[Index(shape, 0, 0, 0)]);
    }

    [Fact]
    public void SingleSliceImagesGetNoHoleFillingLikeScipyIn3D()
    {
        int[] shape = [1, 7, 7];
        var data = new float[49];
        for (int y = 1; y <= 5; y++) for (int x = 1; x <= 5; x++) data[y * 7 + x] = (y == 1 || y == 5 || x == 1 || x == 5) ? 3 : 0;
        var mask = Cropping.CreateNonzeroMask(data, 1, shape);
        Assert.False(mask[3 * 7 + 3]);
    }

    [Fact]
    public void AnyChannelCountsAndNegativeValuesAreNonZero()
    {
        int[] shape = [4, 4, 4];
        var data = new float[2 * 64];
        data[Index(shape, 1, 1, 1)] = -3;          // channel 0
        data[64 + Index(shape, 2, 3, 2)] = 0.5f;   // channel 1
        var result = Cropping.CropToNonzero(data, 2, shape, ReadOnlySpan<float>.Empty);
        Assert.Equal([[1, 3], [1, 4], [1, 3]], result.Bbox);
        Assert.Equal(2 * 2 * 3 * 2, result.Data.Length);
        Assert.Equal(-3f, result.Data[0]);
        Assert.Equal(0.5f, result.Data[12 + (1 * 3 + 2) * 2 + 1]);
    }

    [Fact]
    public void EmptyImageKeepsEverythingAndMarksAllBackgroundOutside()
    {
        int[] shape = [3, 4, 5];
        var seg = new float[60];
        seg[7] = 1;
        var result = Cropping.CropToNonzero(new float[60], 1, shape, seg);
        Assert.Equal([[0, 3], [0, 4], [0, 5]], result.Bbox);
        Assert.Equal(1, result.Seg[7]);
        Assert.Equal(59, result.Seg.Count(v => v == -1));
    }

    [Fact]
    public void MatchesABruteForceReferenceOnRandomVolumes()
    {
        var random = new Random(17);
        for (int trial = 0; trial < 20; trial++)
        {
            int[] shape = [random.Next(1, 9), random.Next(1, 9), random.Next(1, 9)];
            int n = shape[0] * shape[1] * shape[2];
            var data = new float[n];
            double density = random.NextDouble();
            for (int i = 0; i < n; i++) data[i] = random.NextDouble() < density ? 1 : 0;
            var expectedMask = BruteForceFill(data, shape);
            Assert.Equal(expectedMask, Cropping.CreateNonzeroMask(data, 1, shape));
            var seg = new float[n];
            for (int i = 0; i < n; i++) seg[i] = random.Next(0, 3);
            var result = Cropping.CropToNonzero(data, 1, shape, seg);
            var bbox = result.Bbox;
            for (int z = 0; z < shape[0]; z++)
                for (int y = 0; y < shape[1]; y++)
                    for (int x = 0; x < shape[2]; x++)
                    {
                        int i = Index(shape, z, y, x);
                        bool inside = z >= bbox[0][0] && z < bbox[0][1] && y >= bbox[1][0] && y < bbox[1][1] && x >= bbox[2][0] && x < bbox[2][1];
                        Assert.True(inside || !expectedMask[i], "bbox misses a mask voxel");
                        if (!inside) continue;
                        int o = Index(result.Shape, z - bbox[0][0], y - bbox[1][0], x - bbox[2][0]);
                        int expectedLabel = seg[i] == 0 && !expectedMask[i] ? -1 : (int)seg[i];
                        Assert.Equal(expectedLabel, result.Seg[o]);
                        Assert.Equal(data[i], result.Data[o]);
                    }
        }
    }

    [Fact]
    public void WorksOnMedicalImagesOfIntegerTypes()
    {
        var geometry = ImageGeometry.Identity();
        var image = new MedicalImage(1, 3, 3, 3, VoxelType.Int16, new short[27] { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 }, geometry);
        var label = new MedicalImage(1, 3, 3, 3, VoxelType.UInt8, new byte[27], geometry);
        var result = Cropping.CropToNonzero(image, label);
        Assert.Equal([1, 1, 1], result.Shape);
        Assert.Equal(4f, result.Data[0]);
        Assert.Equal(0, result.Seg[0]);
    }

    [Fact]
    public void RejectsNonLabelSegmentationValuesAndMismatchedShapes()
    {
        int[] shape = [2, 2, 2];
        var data = new float[8];
        data[0] = 1;
        var seg = new float[8];
        seg[0] = 1.5f;
        Assert.Contains("1.5", Assert.Throws<ArgumentException>(() => Cropping.CropToNonzero(data, 1, shape, seg)).Message);
        Assert.Throws<ArgumentException>(() => Cropping.CropToNonzero(data, 1, shape, new float[7]));
        Assert.Throws<ArgumentException>(() => Cropping.CropToNonzero(data, 2, shape, ReadOnlySpan<float>.Empty));
    }

    [Fact]
    public void LargeVolumesTakeTheParallelPathWithTheSameResult()
    {
        int[] shape = [110, 100, 100];
        var data = HollowBox(shape, 10, 90);
        data[Index(shape, 50, 50, 90)] = 0; // tunnel: the cavity is open, so it stays background (-1)
        var seg = new float[data.Length];
        seg[Index(shape, 50, 50, 50)] = 3;
        var result = Cropping.CropToNonzero(data, 1, shape, seg);
        Assert.Equal([[10, 91], [10, 91], [10, 91]], result.Bbox);
        Assert.Equal(3, result.Seg[Index(result.Shape, 40, 40, 40)]);
        Assert.Equal(Cropping.OutsideMaskLabel, result.Seg[Index(result.Shape, 40, 40, 41)]);
        Assert.Equal(0, result.Seg[Index(result.Shape, 0, 0, 0)]);
        // cavity (79^3) minus the labelled voxel, plus the tunnel voxel
        Assert.Equal(79L * 79 * 79 - 1 + 1, result.Seg.LongCount(v => v == -1));

        seg[Index(shape, 20, 20, 20)] = -2;
        Assert.Contains("-2", Assert.Throws<ArgumentException>(() => Cropping.CropToNonzero(data, 1, shape, seg)).Message);
    }

    /// <summary>Reference: grow "outside" from border background voxels by repeated sweeps until nothing changes.</summary>
    private static bool[] BruteForceFill(float[] data, int[] shape)
    {
        int n = data.Length;
        var outside = new bool[n];
        for (int z = 0; z < shape[0]; z++)
            for (int y = 0; y < shape[1]; y++)
                for (int x = 0; x < shape[2]; x++)
                {
                    bool border = z == 0 || y == 0 || x == 0 || z == shape[0] - 1 || y == shape[1] - 1 || x == shape[2] - 1;
                    int i = Index(shape, z, y, x);
                    outside[i] = border && data[i] == 0;
                }
        bool changed = true;
        while (changed)
        {
            changed = false;
            for (int z = 0; z < shape[0]; z++)
                for (int y = 0; y < shape[1]; y++)
                    for (int x = 0; x < shape[2]; x++)
                    {
                        int i = Index(shape, z, y, x);
                        if (outside[i] || data[i] != 0) continue;
                        bool neighbour = (z > 0 && outside[Index(shape, z - 1, y, x)]) || (z < shape[0] - 1 && outside[Index(shape, z + 1, y, x)])
                                         || (y > 0 && outside[Index(shape, z, y - 1, x)]) || (y < shape[1] - 1 && outside[Index(shape, z, y + 1, x)])
                                         || (x > 0 && outside[Index(shape, z, y, x - 1)]) || (x < shape[2] - 1 && outside[Index(shape, z, y, x + 1)]);
                        if (neighbour) { outside[i] = true; changed = true; }
                    }
        }
        var mask = new bool[n];
        for (int i = 0; i < n; i++) mask[i] = !outside[i];
        return mask;
    }
}
