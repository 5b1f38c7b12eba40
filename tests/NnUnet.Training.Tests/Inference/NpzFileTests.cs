using System.Diagnostics;
using NnUnet.Training.Inference;

namespace NnUnet.Training.Tests.Inference;

public sealed class NpzFileTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("npz-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void NumpyLoadsTheArchiveAndTheReaderRoundTrips()
    {
        string path = Path.Combine(_dir, "case_001.npz");
        var data = new float[2 * 3 * 4 * 5];
        for (int i = 0; i < data.Length; i++) data[i] = i * 0.5f - 7;
        NpzFile.Write(path, "probabilities", data, [2, 3, 4, 5]);
        Assert.Equal(data, NpzFile.ReadFloat32(path, "probabilities", out var shape));
        Assert.Equal([2, 3, 4, 5], shape);
        Assert.Empty(Directory.GetFiles(_dir, ".tmp-*"));

        string output = RunPython("import numpy as np, sys\nf = np.load(sys.argv[1])\na = f['probabilities']\n" +
                                  "print(a.dtype, a.shape, float(a[1, 2, 3, 4]), float(a.sum()))", path);
        Assert.Equal($"float32 (2, 3, 4, 5) {data[^1]:0.0} {data.Sum():0.0}", output.Trim());

        var ex = Assert.Throws<InvalidDataException>(() => NpzFile.ReadFloat32(path, "softmax", out _));
        Assert.Contains("probabilities", ex.Message);
    }

    private static string RunPython(string script, params string[] args)
    {
        var psi = new ProcessStartInfo("/usr/bin/python3") { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true };
        psi.ArgumentList.Add("-");
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var process = Process.Start(psi)!;
        process.StandardInput.Write(script);
        process.StandardInput.Close();
        var stdout = process.StandardOutput.ReadToEndAsync();
        string stderr = process.StandardError.ReadToEnd();
        process.WaitForExit();
        Assert.True(process.ExitCode == 0, $"python failed: {stderr}");
        return stdout.Result;
    }
}
