using System.Globalization;
using TorchSharp;

namespace NnUnet.Training.Devices;

/// <summary>Chooses the Torch device at run time: "auto" is the first CUDA device when one is usable, else the CPU.</summary>
public static class TorchDevices
{
    /// <param name="request">"auto", "cpu", "cuda" or "cuda:N".</param>
    public static torch.Device Resolve(string request = "auto")
    {
        request = request.Trim().ToLowerInvariant();
        if (request == "auto") return torch.cuda.is_available() ? torch.CUDA : torch.CPU;
        if (request == "cpu") return torch.CPU;
        if (request.StartsWith("cuda", StringComparison.Ordinal))
        {
            if (!torch.cuda.is_available())
                throw new ArgumentException($"device '{request}' was asked for, but CUDA is not available on this machine (this build uses the {BuildBackend} Torch backend)");
            int index = request.Length > 5 && request[4] == ':' ? int.Parse(request[5..], CultureInfo.InvariantCulture) : 0;
            if (index >= torch.cuda.device_count())
                throw new ArgumentException($"device '{request}' does not exist: {torch.cuda.device_count()} CUDA device(s) present");
            return new torch.Device(DeviceType.CUDA, index);
        }
        throw new ArgumentException($"unknown device '{request}': use auto, cpu, cuda or cuda:N");
    }

    /// <summary>
    /// The device by name for a record: <c>cpu (model, N logical cores)</c> from /proc/cpuinfo, <c>cuda:N (name, memory)</c>
    /// from the NVIDIA driver (<see cref="CudaDriver"/>; TorchSharp has no device-name call); the bare device otherwise.
    /// </summary>
    public static string Describe(string request)
    {
        string resolved = Resolve(request).ToString();
        if (resolved == "cpu")
        {
            string? model = null;
            try
            {
                if (File.Exists("/proc/cpuinfo"))
                    model = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim();
            }
            catch (IOException) { }
            return $"cpu ({model ?? "unknown model"}, {Environment.ProcessorCount} logical cores)";
        }
        int index = resolved.Contains(':') ? int.Parse(resolved[(resolved.IndexOf(':') + 1)..], System.Globalization.CultureInfo.InvariantCulture) : 0;
        var gpu = CudaDriver.Query().Devices.FirstOrDefault(d => d.Index == index);
        return gpu is null ? resolved : $"{resolved} ({gpu.Name}, {CudaDriver.FormatMemory(gpu.TotalMemoryBytes)})";
    }

    /// <summary>Number of CUDA devices, 0 when CUDA is not available.</summary>
    public static int CudaDeviceCount => torch.cuda.is_available() ? torch.cuda.device_count() : 0;

    public static string BuildBackend =>
#if TORCH_CUDA
        "cuda";
#else
        "cpu";
#endif
}
