using NnUnet.Core.Fingerprinting;
using NnUnet.Core.Preprocessing;

namespace NnUnet.Core.Tests.Preprocessing;

/// <summary>Checks each scheme against numpy running nnU-Net's formulas on the same float32 input (bit-exact).</summary>
public sealed class NormalizationTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("norm-tests-").FullName;
    private static readonly IntensityProperties Ct = new(Mean: 41.7, Median: 40, Std: 123.4, Min: -1000, Max: 2000, Percentile99_5: 311.3, Percentile00_5: -96.1);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void Schemes_match_numpy_bit_for_bit()
    {
        var rng = new Random(7);
        // 20011 voxels: more than numpy's 8192-element reduction block, not a multiple of 8
        int n = 20011;
        var image = new float[n];
        var seg = new sbyte[n];
        for (int i = 0; i < n; i++)
        {
            image[i] = (float)(rng.NextDouble() * 1400 - 400);
            seg[i] = (sbyte)(rng.Next(10) == 0 ? -1 : rng.Next(3));
        }
        NpyFile.Write<float>(Path.Combine(_dir, "image.npy"), image, [n]);
        NpyFile.Write<sbyte>(Path.Combine(_dir, "seg.npy"), seg, [n]);
        var rgb = new float[300];
        for (int i = 0; i < rgb.Length; i++) rgb[i] = rng.Next(256);
        NpyFile.Write<float>(Path.Combine(_dir, "rgb.npy"), rgb, [rgb.Length]);
        const string script = """
            import numpy as np, sys, os
            d = sys.argv[1]
            img = np.load(os.path.join(d, 'image.npy')); seg = np.load(os.path.join(d, 'seg.npy'))
            def save(name, a): np.save(os.path.join(d, name), a.astype(np.float32))
            a = img.copy(); mask = seg >= 0
            mean = a[mask].mean(); std = a[mask].std()
            a[mask] = (a[mask] - mean) / max(std, 1e-8); save('zscore_mask.npy', a)
            a = img.copy(); mean = a.mean(); std = a.std(); a -= mean; a /= max(std, 1e-8); save('zscore.npy', a)
            a = img.copy(); np.clip(a, -96.1, 311.3, out=a); a -= 41.7; a /= max(123.4, 1e-8); save('ct.npy', a)
            a = img.copy(); a -= a.min(); a /= np.clip(a.max(), a_min=1e-8, a_max=None); save('rescale.npy', a)
            r = np.load(os.path.join(d, 'rgb.npy')); r /= 255.; save('rgb_out.npy', r)
            """;
        Python.Run(script, _dir);

        Check("zscore_mask.npy", image, seg, ImageNormalization.Create("ZScoreNormalization", true, null));
        Check("zscore.npy", image, seg, ImageNormalization.Create("ZScoreNormalization", false, null));
        Check("ct.npy", image, seg, ImageNormalization.Create("CTNormalization", false, Ct));
        Check("rescale.npy", image, seg, ImageNormalization.Create("RescaleTo01Normalization", false, null));
        Check("rgb_out.npy", rgb, new sbyte[rgb.Length], ImageNormalization.Create("RGBTo01Normalization", false, null));
    }

    private void Check(string expectedFile, float[] input, sbyte[] seg, ImageNormalization normalization)
    {
        var expected = NpyFile.Read<float>(Path.Combine(_dir, expectedFile), out _);
        var actual = (float[])input.Clone();
        normalization.Run(actual, seg);
        int differing = 0;
        for (int i = 0; i < actual.Length; i++) if (BitConverter.SingleToInt32Bits(actual[i]) != BitConverter.SingleToInt32Bits(expected[i])) differing++;
        Assert.True(differing == 0, $"{expectedFile}: {differing} of {actual.Length} values differ from numpy");
    }

    [Fact]
    public void Zscore_with_mask_leaves_outside_untouched_and_no_norm_is_identity()
    {
        float[] image = [0, 0, 2, 4, 6, 0];
        sbyte[] seg = [-1, -1, 0, 1, 0, -1];
        new ZScoreNormalization(true, null).Run(image, seg);
        Assert.Equal(0f, image[0]); Assert.Equal(0f, image[5]);
        Assert.Equal(-MathF.Sqrt(1.5f), image[2], 5); Assert.Equal(0f, image[3], 6);
        float[] same = [1, 2, 3];
        ImageNormalization.Create("NoNormalization", false, null).Run(same, default);
        Assert.Equal([1f, 2f, 3f], same);
    }

    [Fact]
    public void Bad_configuration_and_data_are_reported()
    {
        Assert.Contains("unknown normalization scheme 'Foo'", Assert.Throws<ArgumentException>(() => ImageNormalization.Create("Foo", false, null)).Message);
        Assert.Throws<ArgumentException>(() => ImageNormalization.Create("CTNormalization", false, null));
        Assert.Throws<InvalidDataException>(() => new RGBTo01Normalization(false, null).Run(new float[] { 300 }, default));
        Assert.Throws<ArgumentException>(() => new ZScoreNormalization(true, null).Run(new float[3], new sbyte[2]));
    }
}
