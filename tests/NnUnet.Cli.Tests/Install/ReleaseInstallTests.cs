using System.Diagnostics;
using System.Text;
using System.Text.RegularExpressions;
using NnUnet.Core.Demo;

namespace NnUnet.Cli.Tests.Install;

/// <summary>
/// Installs the release once (<c>scripts/install.sh --prefix TEMP</c>: a real self-contained linux-x64 publish of the
/// CLI) and keeps it for the tests of <see cref="ReleaseInstallTests"/>. Also builds the clean environment the release
/// runs in: no <c>dotnet</c> on the PATH (the PATH is a folder mirroring the machine's PATH without it), HOME an empty
/// folder, no DOTNET_* variables.
/// </summary>
public sealed class InstalledReleaseFixture : IDisposable
{
    public string Root { get; } = Directory.CreateTempSubdirectory("nnunet-install-").FullName;
    public string Prefix => Path.Combine(Root, "prefix");
    public string Launcher => Path.Combine(Prefix, "bin", "nnunet");
    public string CleanPath => Path.Combine(Root, "path-without-dotnet");
    public string CleanHome => Path.Combine(Root, "home");
    public ProcessResult FirstInstall { get; }
    public string Release { get; }

    public InstalledReleaseFixture()
    {
        FirstInstall = Install();
        if (FirstInstall.ExitCode != 0)
            throw new InvalidOperationException($"scripts/install.sh failed ({FirstInstall.ExitCode}):\n{FirstInstall.All}");
        string[] releases = Directory.GetDirectories(Prefix, "nnunet-*");
        if (releases.Length != 1) throw new InvalidOperationException($"expected one release in {Prefix}, found {releases.Length}");
        Release = releases[0];

        Directory.CreateDirectory(CleanHome);
        Directory.CreateDirectory(CleanPath);
        foreach (string dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            if (!Directory.Exists(dir)) continue;
            foreach (string entry in Directory.EnumerateFileSystemEntries(dir))
            {
                string name = Path.GetFileName(entry);
                string link = Path.Combine(CleanPath, name);
                if (name == "dotnet" || Path.Exists(link)) continue;
                File.CreateSymbolicLink(link, entry);
            }
        }
    }

    public ProcessResult Install() =>
        ProcessResult.Run("bash", [Path.Combine(Repository.Root, "scripts", "install.sh"), "--prefix", Prefix], environment: null, TimeSpan.FromMinutes(15));

    /// <summary>The clean environment: only PATH (without dotnet), HOME (empty) and the given variables.</summary>
    public Dictionary<string, string> CleanEnvironment(params (string Name, string Value)[] extra)
    {
        var environment = new Dictionary<string, string> { ["PATH"] = CleanPath, ["HOME"] = CleanHome, ["LANG"] = "C.UTF-8" };
        foreach (var (name, value) in extra) environment[name] = value;
        return environment;
    }

    public ProcessResult RunLauncher(string[] args, params (string Name, string Value)[] extra) =>
        ProcessResult.Run(Launcher, args, CleanEnvironment(extra), TimeSpan.FromMinutes(5));

    public void Dispose()
    {
        try { Directory.Delete(Root, recursive: true); } catch (IOException) { }
    }
}

public sealed record ProcessResult(int ExitCode, string Out, string Error)
{
    public string All => Out + Error;

    /// <param name="environment">null: inherit this process's environment; else exactly these variables.</param>
    public static ProcessResult Run(string file, IEnumerable<string> args, IReadOnlyDictionary<string, string>? environment, TimeSpan timeout)
    {
        var info = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string arg in args) info.ArgumentList.Add(arg);
        if (environment is not null)
        {
            info.Environment.Clear();
            foreach (var (name, value) in environment) info.Environment[name] = value;
        }
        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(timeout))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{file} {string.Join(' ', info.ArgumentList)} did not finish in {timeout}");
        }
        process.WaitForExit();
        return new ProcessResult(process.ExitCode, stdout.Result, stderr.Result);
    }
}

/// <summary>
/// The installed release (scripts/install.sh, PREFIX/bin/nnunet) run the way a cluster node runs it: no .NET on the
/// node, a launcher that checks the native libraries first, and the real pipeline (verify, a one-epoch training).
/// </summary>
public sealed class ReleaseInstallTests(InstalledReleaseFixture release) : IClassFixture<InstalledReleaseFixture>
{
    private static string RepoFile(params string[] parts) => File.ReadAllText(Path.Combine([Repository.Root, .. parts]));

    private static string PackageVersion(string package) =>
        Regex.Match(RepoFile("Directory.Packages.props"), $"Include=\"{Regex.Escape(package)}\" Version=\"([^\"]+)\"").Groups[1].Value;

    [Fact]
    public void The_clean_environment_has_no_dotnet()
    {
        var probe = ProcessResult.Run("/bin/bash", ["-c", "command -v dotnet; echo \"HOME=$HOME DOTNET_ROOT=${DOTNET_ROOT:-unset}\"; ls -A \"$HOME\""],
            release.CleanEnvironment(), TimeSpan.FromSeconds(30));
        Assert.Equal($"HOME={release.CleanHome} DOTNET_ROOT=unset\n", probe.Out);
    }

    [Fact]
    public void Version_names_release_commit_bundled_runtime_torch_and_devices()
    {
        var result = release.RunLauncher(["--version"]);
        Assert.True(result.ExitCode == 0, result.All);
        string[] lines = result.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries);

        string version = Regex.Match(RepoFile("Directory.Build.props"), "<Version>([^<]+)</Version>").Groups[1].Value;
        var head = ProcessResult.Run("git", ["-C", Repository.Root, "rev-parse", "HEAD"], null, TimeSpan.FromSeconds(30));
        Assert.StartsWith($"nnunet {version} (commit {head.Out.Trim()}", lines[0]);
        Assert.EndsWith(", cpu build)", lines[0]);
        // the runtime that runs is the one inside the release folder, not a machine-wide .NET
        Assert.Matches($@"^\.NET 10\.\d+\.\d+, self-contained \({Regex.Escape(release.Release)}\)$", lines[1]);
        Assert.Matches(@"^system: .+, glibc 2\.\d+, x64, Linux ", lines[2]);
        Assert.Equal($"TorchSharp {PackageVersion("TorchSharp")}, libtorch {PackageVersion("libtorch-cpu-linux-x64")} (libtorch-cpu-linux-x64)", lines[3]);
        Assert.Contains(lines, l => Regex.IsMatch(l, $@"^device cpu: {Environment.ProcessorCount} logical cores, Torch uses \d+ threads$"));
        if (File.Exists("/proc/driver/nvidia/version"))
            Assert.StartsWith("NVIDIA driver ", lines[4]);
        else
            Assert.Equal("NVIDIA driver: no NVIDIA driver on this node (libcuda.so.1 not found)", lines[4]);
    }

    [Fact]
    public void Verify_and_a_one_epoch_training_run_from_the_release_without_dotnet()
    {
        string work = Path.Combine(release.Root, "pipeline");
        string raw = Path.Combine(work, "raw"), preprocessed = Path.Combine(work, "preprocessed"), results = Path.Combine(work, "results");
        SyntheticDataset.Write(raw, 993, "Release", new SyntheticDatasetOptions(TrainingCases: 5, TestCases: 0, Shape: [8, 24, 24]));
        (string, string)[] roots = [("nnUNet_raw", raw), ("nnUNet_preprocessed", preprocessed), ("nnUNet_results", results)];

        var verify = release.RunLauncher(["verify", "993"], roots);
        Assert.True(verify.ExitCode == 0, verify.All);
        foreach (string[] step in new[] { new[] { "fingerprint", "993" }, ["plan", "993"], ["preprocess", "993", "-c", "3d_fullres"] })
        {
            var result = release.RunLauncher(step, roots);
            Assert.True(result.ExitCode == 0, $"{string.Join(' ', step)}: {result.All}");
        }
        var train = release.RunLauncher(["train", "993", "3d_fullres", "0", "--epochs", "1", "--iters-per-epoch", "2", "--val-iters", "1", "--device", "cpu"], roots);

        Assert.True(train.ExitCode == 0, train.All);
        Assert.Contains("Completed: 1 epochs", train.Out);
        string fold = Path.Combine(results, "Dataset993_Release", "nnUNetTrainer__nnUNetPlans__3d_fullres", "fold_0");
        Assert.True(File.Exists(Path.Combine(fold, "checkpoint_final.ckpt")));
        Assert.True(File.Exists(Path.Combine(fold, "validation", "summary.json")));
        Assert.False(Directory.EnumerateFileSystemEntries(release.CleanHome).Any(), "the release wrote into HOME");
    }

    /// <summary>
    /// A folder holding a copy of this machine's libstdc++ whose GLIBCXX_3.4.32 version node is renamed: for the dynamic
    /// loader it is a libstdc++ from before GCC 13 (everything older still resolves, 3.4.32 is "not found").
    /// </summary>
    private string OldLibStdCxxFolder()
    {
        string system = File.ReadLines("/proc/self/maps").Select(line => line.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Where(fields => fields.Length >= 6 && Path.GetFileName(fields[5]).StartsWith("libstdc++.so.6", StringComparison.Ordinal))
            .Select(fields => fields[5]).First();
        byte[] bytes = File.ReadAllBytes(system);
        byte[] version = Encoding.ASCII.GetBytes("GLIBCXX_3.4.32\0");
        int renamed = 0;
        for (int at = 0; ;)
        {
            int next = bytes.AsSpan(at).IndexOf(version);
            if (next < 0) break;
            at += next;
            bytes[at + version.Length - 2] = (byte)'X';                                                 // GLIBCXX_3.4.3X
            at += version.Length;
            renamed++;
        }
        Assert.True(renamed > 0, $"{system} has no GLIBCXX_3.4.32 to take away");
        string folder = Path.Combine(release.Root, "old-libstdc++");
        Directory.CreateDirectory(folder);
        File.WriteAllBytes(Path.Combine(folder, "libstdc++.so.6"), bytes);
        return folder;
    }

    [Fact]
    public void Launcher_names_a_libstdcxx_without_GLIBCXX_3_4_32_in_one_line_instead_of_a_stack_trace()
    {
        string oldLibrary = OldLibStdCxxFolder();

        // the loader really refuses TorchSharp's native library with it: the release itself, without the launcher, fails
        var direct = ProcessResult.Run(Path.Combine(release.Release, "nnunet"), ["--version"], release.CleanEnvironment(("LD_LIBRARY_PATH", oldLibrary)), TimeSpan.FromMinutes(2));
        Assert.NotEqual(0, direct.ExitCode);
        Assert.Contains("GLIBCXX_3.4.32", direct.All);

        var launched = release.RunLauncher(["train", "993", "3d_fullres", "0"], ("LD_LIBRARY_PATH", oldLibrary));
        Assert.Equal(3, launched.ExitCode);
        Assert.Equal("", launched.Out);
        string line = Assert.Single(launched.Error.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("nnunet: cannot run on ", line);
        Assert.Contains($"{oldLibrary}/libstdc++.so.6 lacks GLIBCXX_3.4.32, which libLibTorchSharp.so (TorchSharp's native library) needs", line);
        Assert.Contains("apt-get install -t trixie libstdc++6", line);
        Assert.Contains("container", line);
        Assert.DoesNotContain("Exception", line);
    }

    /// <summary>
    /// The launcher's reading of the loader's other verdicts. A glibc older than libtorch's cannot be put in front of
    /// the loader here (bash itself would not start), so an <c>ldd</c> placed first on the PATH prints what the real one
    /// prints on such a node (the format of the GLIBCXX test above, which runs the real loader).
    /// </summary>
    [Theory]
    [InlineData("\t{0}/libLibTorchSharp.so: /lib/x86_64-linux-gnu/libc.so.6: version `GLIBC_2.99' not found (required by {0}/libtorch_cpu.so)",
        @"^nnunet: cannot run on .+: its glibc is 2\.\d+ but libtorch_cpu\.so needs GLIBC_2\.99: use nodes whose OS has that glibc or newer, or run nnunet from the container instead")]
    [InlineData("{0}/libLibTorchSharp.so:\n\tlibgomp-98b21ff3.so.1 => not found",
        @"^nnunet: cannot run on .+: libgomp-98b21ff3\.so\.1, which libLibTorchSharp\.so needs, is not found by the dynamic loader: install the package that provides it")]
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    public void Launcher_names_a_glibc_or_a_library_the_loader_reports_missing(string lddReport, string expected)
    {
        string fakeBin = Path.Combine(release.Root, $"ldd-{Guid.NewGuid():N}");
        Directory.CreateDirectory(fakeBin);
        string ldd = Path.Combine(fakeBin, "ldd");
        File.WriteAllText(ldd, $"#!/bin/bash\ncat <<'EOF'\n{string.Format(lddReport, release.Release)}\nEOF\n");
        File.SetUnixFileMode(ldd, UnixFileMode.UserRead | UnixFileMode.UserExecute | UnixFileMode.UserWrite);

        var result = ProcessResult.Run(release.Launcher, ["--version"], release.CleanEnvironment(("PATH", $"{fakeBin}:{release.CleanPath}")), TimeSpan.FromMinutes(1));

        Assert.Equal(3, result.ExitCode);
        Assert.Matches(expected, Assert.Single(result.Error.Split('\n', StringSplitOptions.RemoveEmptyEntries)));
        Assert.Equal("", result.Out);
    }

    [Fact]
    public void Gpus_without_a_usable_NVIDIA_driver_get_one_line_naming_what_is_missing()
    {
        foreach (string[] args in new[] { new[] { "worker", "--seed", "akka.tcp://nnunet@127.0.0.1:1", "--gpus", "0" }, ["train", "993", "3d_fullres", "0", "--device", "cuda:0"] })
        {
            var result = release.RunLauncher(args);
            string line = Assert.Single(result.Error.Split('\n', StringSplitOptions.RemoveEmptyEntries));
            Assert.Equal("", result.Out);
            if (!File.Exists("/proc/driver/nvidia/version"))
            {
                Assert.Equal(3, result.ExitCode);
                Assert.Matches(@"^nnunet: cannot use GPUs on .+: --gpus/--device cuda was given but no NVIDIA driver is loaded \(/proc/driver/nvidia/version is missing\)", line);
            }
            else
            {
                // a GPU machine: the driver is there, so what stops it is the cpu build (or a driver without libcuda)
                Assert.NotEqual(0, result.ExitCode);
                Assert.Matches("is the cpu build: install the cuda build|libcuda.so.1 is not found", line);
            }
        }
        // --help uses no device: no driver check
        var help = release.RunLauncher(["worker", "--gpus", "0", "--help"]);
        Assert.Equal(0, help.ExitCode);
    }

    [Fact]
    public void Cuda_backend_without_a_feed_serving_TorchSharp_cuda_linux_says_so_in_one_line()
    {
        // NuGet's user configuration (under HOME) names one feed: an empty folder. Every other package comes from this
        // machine's global packages folder, seen through a folder of links that leaves out the CUDA packages (which a
        // machine with such a feed may have cached), so TorchSharp-cuda-linux is the only package nobody serves.
        string home = Path.Combine(release.Root, "home-with-empty-feed");
        string feed = Path.Combine(release.Root, "empty-feed");
        string prefix = Path.Combine(release.Root, "cuda-prefix");
        Directory.CreateDirectory(Path.Combine(home, ".nuget", "NuGet"));
        Directory.CreateDirectory(feed);
        File.WriteAllText(Path.Combine(home, ".nuget", "NuGet", "NuGet.Config"),
            $"<?xml version=\"1.0\" encoding=\"utf-8\"?><configuration><packageSources><clear /><add key=\"empty\" value=\"{feed}\" /></packageSources></configuration>");
        string cache = Environment.GetEnvironmentVariable("NUGET_PACKAGES") is { Length: > 0 } set
            ? set : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        string packages = Path.Combine(release.Root, "packages-without-cuda");
        Directory.CreateDirectory(packages);
        foreach (string package in Directory.GetDirectories(cache))
        {
            string name = Path.GetFileName(package);
            if (name.StartsWith("torchsharp-cuda", StringComparison.OrdinalIgnoreCase) || name.StartsWith("libtorch-cuda", StringComparison.OrdinalIgnoreCase)) continue;
            Directory.CreateSymbolicLink(Path.Combine(packages, name), package);
        }
        var environment = Environment.GetEnvironmentVariables().Cast<System.Collections.DictionaryEntry>()
            .ToDictionary(e => (string)e.Key, e => (string?)e.Value ?? "");
        environment["HOME"] = home;
        environment["NUGET_PACKAGES"] = packages;

        var result = ProcessResult.Run("bash", [Path.Combine(Repository.Root, "scripts", "install.sh"), "--prefix", prefix, "--backend", "cuda"],
            environment, TimeSpan.FromMinutes(10));

        Assert.Equal(1, result.ExitCode);
        string line = Assert.Single(result.Error.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Equal($"[install] ERROR: no configured NuGet feed serves TorchSharp-cuda-linux {PackageVersion("TorchSharp-cuda-linux")} (enabled feeds: {feed}): "
            + "add one that does (dotnet nuget add source URL, or a local folder holding TorchSharp-cuda-linux "
            + $"{PackageVersion("TorchSharp-cuda-linux")} and the libtorch-cuda-12.8-linux-x64 packages it depends on) and run this again, or install --backend cpu", line);
        Assert.Empty(Directory.GetFileSystemEntries(prefix, "*nnunet-*"));
        Assert.False(File.Exists(Path.Combine(prefix, "bin", "nnunet")));
    }

    [Fact]
    public void Installing_again_builds_nothing_when_the_release_is_there()
    {
        string stamp = Path.Combine(release.Release, "RELEASE");
        var before = File.GetLastWriteTimeUtc(stamp);
        var again = release.Install();
        Assert.True(again.ExitCode == 0, again.All);
        Assert.Contains($"launcher {release.Launcher} unchanged (runs {Path.GetFileName(release.Release)})", again.Out);
        if (release.Release.EndsWith("-dirty", StringComparison.Ordinal))
        {
            // uncommitted changes: what they build may differ, so the release is built again and replaced in place
            Assert.Contains($"replaced {release.Release}", again.Out);
            Assert.True(File.GetLastWriteTimeUtc(stamp) > before);
        }
        else
        {
            Assert.Contains($"{Path.GetFileName(release.Release)} is already installed in {release.Prefix}: nothing to build", again.Out);
            Assert.DoesNotContain("publishing", again.Out);
            Assert.Equal(before, File.GetLastWriteTimeUtc(stamp));
        }
        Assert.Single(Directory.GetDirectories(release.Prefix, "nnunet-*"));
        Assert.Empty(Directory.GetDirectories(release.Prefix, ".nnunet-*"));
    }
}
