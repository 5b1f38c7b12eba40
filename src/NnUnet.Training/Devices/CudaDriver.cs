using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.RegularExpressions;

namespace NnUnet.Training.Devices;

/// <summary>One GPU as the NVIDIA driver reports it; <see cref="Index"/> is the CUDA ordinal Torch uses (cuda:N).</summary>
public sealed record CudaDeviceInfo(int Index, string Name, long TotalMemoryBytes);

/// <summary>
/// What the NVIDIA driver of this node reports. <see cref="Problem"/> says why there are no devices (no driver,
/// driver error); null when the driver answered.
/// </summary>
public sealed record CudaDriverInfo(string? DriverVersion, string? CudaVersion, IReadOnlyList<CudaDeviceInfo> Devices, string? Problem);

/// <summary>
/// Reads the GPUs through the CUDA driver API (<c>libcuda.so.1</c>, which comes with the NVIDIA driver and which
/// <c>apptainer --nv</c> / <c>docker --gpus</c> bind into containers). It does not go through Torch, so a cpu build
/// still tells which GPUs a node has, and a cuda build whose driver is too old says so instead of "no device".
/// Honours CUDA_VISIBLE_DEVICES like Torch does, so the ordinals are Torch's cuda:N.
/// </summary>
public static class CudaDriver
{
    private const string DriverProcFile = "/proc/driver/nvidia/version";

    /// <remarks>libcuda stays loaded: after cuInit the driver has threads of its own, and Torch loads the same library.</remarks>
    public static unsafe CudaDriverInfo Query()
    {
        string? driverVersion = KernelModuleVersion();
        if (!NativeLibrary.TryLoad("libcuda.so.1", out nint library))
        {
            string why = driverVersion is null
                ? "no NVIDIA driver on this node (libcuda.so.1 not found)"
                : $"the NVIDIA kernel module {driverVersion} is loaded but its libcuda.so.1 is not found (in a container: apptainer --nv, docker --gpus all)";
            return new CudaDriverInfo(driverVersion, null, [], why);
        }
        try
        {
            var cuInit = (delegate* unmanaged<uint, int>)NativeLibrary.GetExport(library, "cuInit");
            var cuDriverGetVersion = (delegate* unmanaged<int*, int>)NativeLibrary.GetExport(library, "cuDriverGetVersion");
            var cuDeviceGetCount = (delegate* unmanaged<int*, int>)NativeLibrary.GetExport(library, "cuDeviceGetCount");
            var cuDeviceGet = (delegate* unmanaged<int*, int, int>)NativeLibrary.GetExport(library, "cuDeviceGet");
            var cuDeviceGetName = (delegate* unmanaged<byte*, int, int, int>)NativeLibrary.GetExport(library, "cuDeviceGetName");
            var cuDeviceTotalMem = (delegate* unmanaged<nuint*, int, int>)NativeLibrary.GetExport(library, "cuDeviceTotalMem_v2");
            var cuGetErrorName = (delegate* unmanaged<int, byte**, int>)NativeLibrary.GetExport(library, "cuGetErrorName");

            string Error(int code)
            {
                byte* name = null;
                return cuGetErrorName(code, &name) == 0 && name != null ? Marshal.PtrToStringAnsi((nint)name) ?? $"error {code}" : $"error {code}";
            }

            int version;
            string? cudaVersion = cuDriverGetVersion(&version) == 0 ? $"{version / 1000}.{version % 1000 / 10}" : null;
            int rc = cuInit(0);
            if (rc != 0) return new CudaDriverInfo(driverVersion, cudaVersion, [], $"the CUDA driver does not start: cuInit: {Error(rc)}");
            int count;
            rc = cuDeviceGetCount(&count);
            if (rc != 0) return new CudaDriverInfo(driverVersion, cudaVersion, [], $"cuDeviceGetCount: {Error(rc)}");

            var devices = new List<CudaDeviceInfo>(count);
            byte* buffer = stackalloc byte[256];
            for (int i = 0; i < count; i++)
            {
                int device;
                nuint bytes;
                if (cuDeviceGet(&device, i) != 0) continue;
                string name = cuDeviceGetName(buffer, 256, device) == 0 ? Marshal.PtrToStringAnsi((nint)buffer) ?? "?" : "?";
                long memory = cuDeviceTotalMem(&bytes, device) == 0 ? (long)bytes : 0;
                devices.Add(new CudaDeviceInfo(i, name, memory));
            }
            return new CudaDriverInfo(driverVersion, cudaVersion, devices, count == 0 ? "the driver reports no CUDA device" : null);
        }
        catch (EntryPointNotFoundException ex)
        {
            return new CudaDriverInfo(driverVersion, null, [], $"libcuda.so.1 lacks {ex.Message}: driver too old");
        }
    }

    /// <summary>The loaded NVIDIA kernel module's version ("550.54.15"), null when no NVIDIA driver is loaded.</summary>
    public static string? KernelModuleVersion()
    {
        try
        {
            if (!File.Exists(DriverProcFile)) return null;
            var match = Regex.Match(File.ReadAllText(DriverProcFile, Encoding.ASCII), @"Kernel Module(?: for [^ ]+)?\s+([0-9][0-9.]*)");
            return match.Success ? match.Groups[1].Value : "unknown version";
        }
        catch (IOException) { return null; }
        catch (UnauthorizedAccessException) { return null; }
    }

    /// <summary>"79.2 GiB".</summary>
    public static string FormatMemory(long bytes) => string.Create(CultureInfo.InvariantCulture, $"{bytes / (1024.0 * 1024 * 1024):0.0} GiB");
}
