using System.Globalization;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Text.Json;
using NnUnet.Training.Devices;
using TorchSharp;

namespace NnUnet.Cli;

/// <summary>
/// <c>nnunet --version</c>: the first thing to run on a new node. Product version and the commit it was built from
/// (SourceRevisionId, embedded at build time), the .NET runtime and where it lives (self-contained release or a shared
/// installation), TorchSharp and libtorch, the system (distribution, glibc), and the devices: every GPU the NVIDIA
/// driver reports (name, memory) and the CPU. Exit 0 when Torch loads, <see cref="NnUnetApp.ExitBadInput"/> when it
/// does not (the reason is printed on one line).
/// </summary>
internal static class VersionReport
{
    public static int Print(TextWriter output, TextWriter error)
    {
        var (version, commit) = ProductVersion();
        output.WriteLine($"nnunet {version} (commit {commit}, {TorchDevices.BuildBackend} build)");
        string runtimeDirectory = Path.GetDirectoryName(typeof(object).Assembly.Location) ?? "?";
        bool selfContained = Path.GetFullPath(runtimeDirectory).TrimEnd('/') == Path.GetFullPath(AppContext.BaseDirectory).TrimEnd('/');
        output.WriteLine($".NET {Environment.Version}, {(selfContained ? "self-contained" : "shared runtime")} ({runtimeDirectory})");
        output.WriteLine($"system: {OsName()}, glibc {GlibcVersion()}, {RuntimeInformation.OSArchitecture.ToString().ToLowerInvariant()}, Linux {Environment.OSVersion.Version}");

        var (torchSharp, libtorch) = TorchVersions();
        string? torchProblem = null;
        int threads = 0;
        bool torchCuda = false;
        int torchCudaDevices = 0;
        try
        {
            threads = torch.get_num_threads();
            torchCuda = torch.cuda.is_available();
            torchCudaDevices = torchCuda ? torch.cuda.device_count() : 0;
        }
        catch (Exception ex) when (ex is TypeInitializationException or DllNotFoundException or NotSupportedException or EntryPointNotFoundException)
        {
            torchProblem = NativeLoadError() ?? OneLine(ex);
        }
        output.WriteLine($"TorchSharp {torchSharp}, libtorch {libtorch}{(torchProblem is null ? "" : $": cannot load: {torchProblem}")}");

        var driver = CudaDriver.Query();
        output.WriteLine(driver.Problem is null || driver.Devices.Count > 0
            ? $"NVIDIA driver {driver.DriverVersion ?? "?"}, CUDA {driver.CudaVersion ?? "?"}"
            : $"NVIDIA driver: {driver.Problem}");
        foreach (var gpu in driver.Devices)
            output.WriteLine($"device cuda:{gpu.Index}: {gpu.Name}, {CudaDriver.FormatMemory(gpu.TotalMemoryBytes)}");
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"device cpu: {Environment.ProcessorCount} logical cores{(threads > 0 ? $", Torch uses {threads} threads" : "")}"));

        if (driver.Devices.Count > 0 && TorchDevices.BuildBackend == "cpu")
            output.WriteLine("note: this is the cpu build, Torch does not use the GPUs above (install with scripts/install.sh --backend cuda)");
        else if (driver.Devices.Count > 0 && torchProblem is null && torchCudaDevices < driver.Devices.Count)
            output.WriteLine($"note: Torch sees {torchCudaDevices} of the {driver.Devices.Count} CUDA devices (driver too old for libtorch's CUDA?)");

        if (torchProblem is not null) error.WriteLine($"error: Torch cannot load: {torchProblem}");
        return torchProblem is null ? NnUnetApp.ExitOk : NnUnetApp.ExitBadInput;
    }

    /// <summary>Version and commit from the entry assembly's InformationalVersion, "0.1.0+&lt;sha&gt;" (SourceRevisionId).</summary>
    public static (string Version, string Commit) ProductVersion()
    {
        var environment = NnUnet.Core.Reproducibility.RuntimeEnvironment.Current();
        return (environment.ProductVersion, environment.Commit ?? "unknown");
    }

    /// <summary>TorchSharp's version and the libtorch package this program was built with (also recorded in the sweep manifests).</summary>
    public static (string TorchSharp, string LibTorch) TorchVersions() =>
        (InformationalVersion(typeof(torch).Assembly).Split('+')[0], LibTorchPackage() ?? "?");

    private static string InformationalVersion(Assembly assembly) =>
        assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion
        ?? assembly.GetName().Version?.ToString() ?? "?";

    /// <summary>
    /// The libtorch package this program was built with ("2.10.0"), from its deps.json: the native libtorch has no
    /// version call, and the package is what decides which libtorch files are next to the program.
    /// </summary>
    private static string? LibTorchPackage()
    {
        if (AppContext.GetData("APP_CONTEXT_DEPS_FILES") is not string depsFiles) return null;
        foreach (string file in depsFiles.Split(';', StringSplitOptions.RemoveEmptyEntries))
        {
            if (!File.Exists(file)) continue;
            using var deps = JsonDocument.Parse(File.ReadAllText(file));
            if (!deps.RootElement.TryGetProperty("libraries", out var libraries)) continue;
            foreach (var library in libraries.EnumerateObject())
            {
                // "libtorch-cpu-linux-x64/2.10.0", "libtorch-cuda-12.8-linux-x64/2.10.0"
                string[] parts = library.Name.Split('/');
                if (parts.Length == 2 && parts[0].StartsWith("libtorch-", StringComparison.OrdinalIgnoreCase))
                    return $"{parts[1]} ({parts[0]})";
            }
        }
        return null;
    }

    private static string OsName()
    {
        try
        {
            foreach (string line in File.ReadLines("/etc/os-release"))
                if (line.StartsWith("PRETTY_NAME=", StringComparison.Ordinal)) return line["PRETTY_NAME=".Length..].Trim('"');
        }
        catch (IOException) { }
        return RuntimeInformation.OSDescription;
    }

    [DllImport("libc", EntryPoint = "gnu_get_libc_version")]
    private static extern nint GnuGetLibcVersion();

    private static string GlibcVersion()
    {
        try { return Marshal.PtrToStringAnsi(GnuGetLibcVersion()) ?? "?"; }
        catch (Exception ex) when (ex is DllNotFoundException or EntryPointNotFoundException) { return "none (not a glibc system)"; }
    }

    /// <summary>
    /// The dynamic loader's reason why TorchSharp's native library does not load ("libstdc++.so.6: version
    /// `GLIBCXX_3.4.32' not found ..."), which TorchSharp's own message leaves out; null when it loads.
    /// </summary>
    private static string? NativeLoadError()
    {
        string path = Path.Combine(AppContext.BaseDirectory, "libLibTorchSharp.so");
        if (!File.Exists(path)) return null;
        try
        {
            NativeLibrary.Load(path);
            return null;
        }
        catch (DllNotFoundException ex)
        {
            return OneLine(ex);
        }
    }

    private static string OneLine(Exception ex)
    {
        while (ex.InnerException is not null && ex is TypeInitializationException) ex = ex.InnerException;
        string message = ex.Message.ReplaceLineEndings(" ").Trim();
        return message.Length > 400 ? message[..400] + "..." : message;
    }
}
