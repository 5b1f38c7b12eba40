using NnUnet.Core.Imaging;

namespace NnUnet.Core.Tests.Imaging;

public class ImageGeometryTests
{
    [Fact]
    public void IdentityLpsIsRasWithXAndYFlipped()
    {
        var ras = ImageGeometry.Identity(0.5, 2, 3).ToRasAffine();
        double[,] expected = { { -0.5, 0, 0, 0 }, { 0, -2, 0, 0 }, { 0, 0, 3, 0 }, { 0, 0, 0, 1 } };
        Assert.Equal(expected, ras);
    }

    [Fact]
    public void OriginIsNegatedInXAndY()
    {
        var g = new ImageGeometry([1, 1, 1], [10, -20, 30], [1, 0, 0, 0, 1, 0, 0, 0, 1]);
        var ras = g.ToRasAffine();
        Assert.Equal((-10.0, 20.0, 30.0, 1.0), (ras[0, 3], ras[1, 3], ras[2, 3], ras[3, 3]));
    }

    [Fact]
    public void AffineRoundTripsAnObliqueGeometry()
    {
        var g = NiftiRoundTripTests.Oblique();
        var back = ImageGeometry.FromRasAffine(g.ToRasAffine());
        NiftiRoundTripTests.AssertGeometryClose(g, back, 1e-14);
    }

    [Fact]
    public void SpacingIsTheColumnNormAndDirectionTheNormalisedColumn()
    {
        // Column 0 points along RAS (3, 4, 0): spacing 5, LPS direction (-0.6, -0.8, 0).
        double[,] ras = { { 3, 0, 0, 1 }, { 4, 0, 2, 2 }, { 0, 7, 0, 3 }, { 0, 0, 0, 1 } };
        var g = ImageGeometry.FromRasAffine(ras);
        Assert.Equal([5.0, 7, 2], g.Spacing);
        Assert.Equal([-0.6, 0, 0, -0.8, 0, -1, 0, 1, 0], g.Direction);
        Assert.Equal([-1.0, -2, 3], g.Origin);
    }

    [Fact]
    public void DegenerateAffinesAreRefused()
    {
        Assert.Contains("zero length", Assert.Throws<ArgumentException>(() =>
            ImageGeometry.FromRasAffine(new double[,] { { 0, 0, 0, 0 }, { 0, 1, 0, 0 }, { 0, 0, 1, 0 }, { 0, 0, 0, 1 } })).Message);
        Assert.Contains("parallel", Assert.Throws<ArgumentException>(() =>
            ImageGeometry.FromRasAffine(new double[,] { { 1, 2, 0, 0 }, { 0, 0, 0, 0 }, { 0, 0, 1, 0 }, { 0, 0, 0, 1 } })).Message);
        Assert.Contains("not finite", Assert.Throws<ArgumentException>(() =>
            ImageGeometry.FromRasAffine(new double[,] { { 1, 0, 0, double.NaN }, { 0, 1, 0, 0 }, { 0, 0, 1, 0 }, { 0, 0, 0, 1 } })).Message);
    }

    [Fact]
    public void CopyChannelToConvertsUnsignedAndSignedTypesCorrectly()
    {
        // The runtime lets sbyte[] pass as byte[] (and ushort[] as short[]); conversion must follow the declared type.
        var g = ImageGeometry.Identity();
        Assert.Equal([-1f, 127f], new MedicalImage(1, 1, 1, 2, VoxelType.Int8, new sbyte[] { -1, 127 }, g).ToFloat32());
        Assert.Equal([65535f, 1f], new MedicalImage(1, 1, 1, 2, VoxelType.UInt16, new ushort[] { 65535, 1 }, g).ToFloat32());
        Assert.Equal([4294967295f, 0f], new MedicalImage(1, 1, 1, 2, VoxelType.UInt32, new uint[] { uint.MaxValue, 0 }, g).ToFloat32());
    }
}
