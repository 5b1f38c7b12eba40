using NnUnet.Core.Preprocessing;

namespace NnUnet.Core.Tests.Preprocessing;

public class TranspositionTests
{
    [Fact]
    public void Transpose_moves_every_voxel_like_numpy_and_backward_undoes_it()
    {
        int[] shape = [2, 3, 4];
        var data = new int[2 * 24];
        for (int i = 0; i < data.Length; i++) data[i] = i;
        int[] axes = [2, 0, 1];
        var t = Transposition.Transpose(data, 2, shape, axes);
        int[] tShape = Transposition.Permute(shape, axes);
        Assert.Equal([4, 2, 3], tShape);
        for (int c = 0; c < 2; c++)
        for (int z = 0; z < 2; z++)
        for (int y = 0; y < 3; y++)
        for (int x = 0; x < 4; x++)
        {
            // numpy: t[c, x, z, y] == data[c, z, y, x]
            Assert.Equal(data[c * 24 + (z * 3 + y) * 4 + x], t[c * 24 + (x * 2 + z) * 3 + y]);
        }
        var back = Transposition.Transpose(t, 2, tShape, PreprocessingInverse.Backward(axes));
        Assert.Equal(data, back);
        Assert.Same(data, Transposition.Transpose(data, 2, shape, [0, 1, 2]));
        Assert.Throws<InvalidDataException>(() => Transposition.Transpose(data, 2, shape, [0, 0, 1]));
    }
}
