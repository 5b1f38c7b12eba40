using System.Numerics;
using System.Runtime.InteropServices;

namespace NnUnet.Core.Resampling;

/// <summary>Row operations of the separable resampler, vectorised with <see cref="Vector{T}"/>.</summary>
internal static class VectorOps
{
    /// <summary>sum += zi * (a + zn * b), element-wise (the causal initialisation term of the spline prefilter).</summary>
    public static void AccumulateInit(Span<double> sum, ReadOnlySpan<double> a, ReadOnlySpan<double> b, double zi, double zn)
    {
        int i = 0;
        if (Vector.IsHardwareAccelerated && sum.Length >= Vector<double>.Count)
        {
            var vs = MemoryMarshal.Cast<double, Vector<double>>(sum);
            var va = MemoryMarshal.Cast<double, Vector<double>>(a);
            var vb = MemoryMarshal.Cast<double, Vector<double>>(b);
            var vzi = new Vector<double>(zi);
            var vzn = new Vector<double>(zn);
            for (int v = 0; v < vs.Length; v++) vs[v] += vzi * (va[v] + vzn * vb[v]);
            i = vs.Length * Vector<double>.Count;
        }
        for (; i < sum.Length; i++) sum[i] += zi * (a[i] + zn * b[i]);
    }

    /// <summary>dst += z * src.</summary>
    public static void AddScaled(Span<double> dst, ReadOnlySpan<double> src, double z)
    {
        int i = 0;
        if (Vector.IsHardwareAccelerated && dst.Length >= Vector<double>.Count)
        {
            var vd = MemoryMarshal.Cast<double, Vector<double>>(dst);
            var vsrc = MemoryMarshal.Cast<double, Vector<double>>(src);
            var vz = new Vector<double>(z);
            for (int v = 0; v < vd.Length; v++) vd[v] += vz * vsrc[v];
            i = vd.Length * Vector<double>.Count;
        }
        for (; i < dst.Length; i++) dst[i] += z * src[i];
    }

    /// <summary>dst = z * (next - dst).</summary>
    public static void ScaledDifference(Span<double> dst, ReadOnlySpan<double> next, double z)
    {
        int i = 0;
        if (Vector.IsHardwareAccelerated && dst.Length >= Vector<double>.Count)
        {
            var vd = MemoryMarshal.Cast<double, Vector<double>>(dst);
            var vn = MemoryMarshal.Cast<double, Vector<double>>(next);
            var vz = new Vector<double>(z);
            for (int v = 0; v < vd.Length; v++) vd[v] = vz * (vn[v] - vd[v]);
            i = vd.Length * Vector<double>.Count;
        }
        for (; i < dst.Length; i++) dst[i] = z * (next[i] - dst[i]);
    }

    public static void Scale(Span<double> dst, double factor)
    {
        int i = 0;
        if (Vector.IsHardwareAccelerated && dst.Length >= Vector<double>.Count)
        {
            var vd = MemoryMarshal.Cast<double, Vector<double>>(dst);
            var vf = new Vector<double>(factor);
            for (int v = 0; v < vd.Length; v++) vd[v] *= vf;
            i = vd.Length * Vector<double>.Count;
        }
        for (; i < dst.Length; i++) dst[i] *= factor;
    }

    /// <summary>dst = factor * src (samples to double).</summary>
    public static void WidenScaled<T>(ReadOnlySpan<T> src, Span<double> dst, double factor) where T : unmanaged, IFloatingPointIeee754<T>
    {
        for (int i = 0; i < src.Length; i++) dst[i] = double.CreateTruncating(src[i]) * factor;
    }

    /// <summary>acc = w * src (first tap) or acc += w * src.</summary>
    public static void MultiplyAdd(Span<double> acc, ReadOnlySpan<double> src, double w, bool first)
    {
        int i = 0;
        if (Vector.IsHardwareAccelerated && acc.Length >= Vector<double>.Count)
        {
            var va = MemoryMarshal.Cast<double, Vector<double>>(acc);
            var vs = MemoryMarshal.Cast<double, Vector<double>>(src);
            var vw = new Vector<double>(w);
            if (first) for (int v = 0; v < va.Length; v++) va[v] = vw * vs[v];
            else for (int v = 0; v < va.Length; v++) va[v] += vw * vs[v];
            i = va.Length * Vector<double>.Count;
        }
        if (first) for (; i < acc.Length; i++) acc[i] = w * src[i];
        else for (; i < acc.Length; i++) acc[i] += w * src[i];
    }

    /// <summary>acc = w * src (first tap) or acc += w * src, reading samples of any float type.</summary>
    public static void MultiplyAddSamples<T>(Span<double> acc, ReadOnlySpan<T> src, double w, bool first) where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (first) for (int i = 0; i < acc.Length; i++) acc[i] = w * double.CreateTruncating(src[i]);
        else for (int i = 0; i < acc.Length; i++) acc[i] += w * double.CreateTruncating(src[i]);
    }

    public static void Narrow<T>(ReadOnlySpan<double> src, Span<T> dst) where T : unmanaged, IFloatingPointIeee754<T>
    {
        for (int i = 0; i < src.Length; i++) dst[i] = T.CreateTruncating(src[i]);
    }
}
