using System.Diagnostics;

namespace NnUnet.Tests.Shared;

/// <summary>
/// Debian's python3 (numpy, scipy, nibabel) as the independent judge of files we write: the script comes on stdin,
/// its arguments after it; a non-zero exit fails the test with python's stderr. Linked into the test projects that
/// check interoperability (one helper, not one per project).
/// </summary>
internal static class Python
{
    public static string Run(string script, params string[] args)
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
