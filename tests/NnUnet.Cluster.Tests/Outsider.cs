using System.Diagnostics;

namespace NnUnet.Cluster.Tests;

/// <summary>
/// Another Unix user on this machine (<c>nnunet-outsider</c>, a system user made here when missing) for the tests of a
/// rogue process: the tests run as root and start its processes through <c>setpriv</c> with its ids and no groups.
/// </summary>
public static class Outsider
{
    public const string UserName = "nnunet-outsider";
    private static readonly Lock Gate = new();
    private static int? _uid;

    /// <summary>The outsider's user id (also its group id), creating the user first when needed; a clear failure without root.</summary>
    public static int Ensure()
    {
        lock (Gate)
        {
            if (_uid is { } known) return known;
            if (Environment.UserName != "root" && Run("id", "-u").Trim() != "0")
                throw new InvalidOperationException("the tests of another user's process need root (useradd, setpriv, chown)");
            if (!int.TryParse(Run("id", "-u", UserName).Trim(), out int uid))
            {
                Run("useradd", "--system", "--user-group", "--no-create-home", "--shell", "/usr/sbin/nologin", UserName);
                uid = int.Parse(Run("id", "-u", UserName).Trim(), System.Globalization.CultureInfo.InvariantCulture);
            }
            _uid = uid;
            return uid;
        }
    }

    public static int GroupId => int.Parse(Run("id", "-g", UserName).Trim(), System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>Runs <paramref name="info"/>'s program as the outsider: <c>setpriv --reuid --regid --clear-groups</c> in front of it.</summary>
    public static ProcessStartInfo AsOutsider(ProcessStartInfo info)
    {
        int uid = Ensure();
        var wrapped = new ProcessStartInfo("setpriv")
        {
            RedirectStandardOutput = info.RedirectStandardOutput, RedirectStandardError = info.RedirectStandardError, UseShellExecute = false,
        };
        foreach (var (key, value) in info.Environment) wrapped.Environment[key] = value;
        wrapped.ArgumentList.Add($"--reuid={uid}");
        wrapped.ArgumentList.Add($"--regid={GroupId}");
        wrapped.ArgumentList.Add("--clear-groups");
        wrapped.ArgumentList.Add(info.FileName);
        foreach (var a in info.ArgumentList) wrapped.ArgumentList.Add(a);
        return wrapped;
    }

    private static string Run(string file, params string[] args)
    {
        var info = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) info.ArgumentList.Add(a);
        using var p = Process.Start(info)!;
        string output = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        return output;
    }
}
