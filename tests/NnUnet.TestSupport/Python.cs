using System.Diagnostics;

namespace NnUnet.TestSupport;

/// <summary>
/// Debian's python3 (numpy, scipy, nibabel) as the independent judge of files we write: the script comes on stdin,
/// its arguments after it; a non-zero exit fails the test with python's stderr.
/// </summary>
public static class Python
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
        if (process.ExitCode != 0) throw new InvalidOperationException($"python failed (exit {process.ExitCode}): {stderr}");
        return stdout.Result;
    }
}
