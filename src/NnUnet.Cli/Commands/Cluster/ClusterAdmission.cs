using System.ComponentModel;
using NnUnet.Cluster.Hosting;
using NnUnet.Core.Datasets;
using Spectre.Console.Cli;

namespace NnUnet.Cli.Commands.Cluster;

/// <summary>Who may join the cluster: the options of every verb that starts a cluster node.</summary>
public class ClusterAdmissionSettings : CommandSettings
{
    [CommandOption("--cluster-secret <DIR>")]
    [Description("folder of the cluster credential (default: nnUNet_results/.nnunet-cluster, made by the coordinator's first start, owner-only); only nodes holding it are admitted")]
    public string? ClusterSecret { get; init; }

    [CommandOption("--insecure")]
    [Description("plain TCP without admission: any process that reaches the port can join, take jobs and send commands; only for a trusted network")]
    public bool Insecure { get; init; }

    public override Spectre.Console.ValidationResult Validate() =>
        Insecure && ClusterSecret is not null
            ? Spectre.Console.ValidationResult.Error("--insecure and --cluster-secret exclude each other: plain TCP has no credential")
            : base.Validate();

    /// <summary>The same options as arguments of another verb (the demo runs <c>sweep</c> with them).</summary>
    public string[] AdmissionArguments() => Insecure ? ["--insecure"] : ClusterSecret is null ? [] : ["--cluster-secret", ClusterSecret];
}

/// <summary>
/// Finds (or makes) the cluster credential a node joins with, or warns about <c>--insecure</c>. The folder is
/// <c>--cluster-secret</c>, else <c>.nnunet-cluster</c> in the node's nnUNet_results: nodes of the same user that
/// mount the same results folder find the same credential with no flag.
/// </summary>
internal static class ClusterAdmission
{
    public const string InsecureWarning =
        "WARNING: --insecure: this cluster runs over plain TCP without admission; any process that reaches its port can join, " +
        "take jobs and send commands. Use it only on a trusted network.";

    /// <summary>How a node gets its credential: the coordinator (and embedded sweep) make it, a worker waits for it, a client reads it.</summary>
    public enum Role { Creates, WaitsFor, Reads }

    /// <summary>The credential folder for <see cref="NodeOptions.CredentialFolder"/>; null (after the warning) with <c>--insecure</c>.</summary>
    public static async Task<string?> ResolveAsync(ClusterAdmissionSettings settings, string? resultsRoot, Role role, CancellationToken ct)
    {
        if (settings.Insecure)
        {
            Console.Error.WriteLine(InsecureWarning);
            return null;
        }
        var root = resultsRoot ?? NnUnetPaths.FromEnvironment().Results;
        var folder = settings.ClusterSecret is { } explicitFolder ? Path.GetFullPath(explicitFolder)
            : root is not null ? ClusterCredential.DefaultFolder(root)
            : throw new ArgumentException($"the cluster credential lives in {NnUnetPaths.ResultsVariable}/{ClusterCredential.FolderName}, but {NnUnetPaths.ResultsVariable} is not set: " +
                                          "set it (the same results folder as the coordinator's), give --cluster-secret DIR, or --insecure on a trusted network");
        switch (role)
        {
            case Role.Creates:
                bool existed = ClusterCredential.Exists(folder);
                ClusterCredential.LoadOrCreate(folder).Dispose();
                Console.Error.WriteLine($"cluster credential: {folder} ({(existed ? "found" : "created")}; nodes of this user with the same " +
                                        $"{NnUnetPaths.ResultsVariable} join with it, others are refused)");
                break;
            case Role.WaitsFor:
                await WaitForAsync(folder, ct);
                break;
            case Role.Reads:
                ClusterCredential.Load(folder).Dispose();
                break;
        }
        return folder;
    }

    /// <summary>
    /// A worker started before its coordinator waits for the credential to appear (as it waits for the coordinator);
    /// a folder that is there but not usable (another user's, readable by others) fails at once.
    /// </summary>
    private static async Task WaitForAsync(string folder, CancellationToken ct)
    {
        bool told = false;
        while (true)
        {
            try
            {
                ClusterCredential.Load(folder).Dispose();
                if (told) Console.Error.WriteLine($"cluster credential found in {folder}");
                return;
            }
            catch (FileNotFoundException) when (!ct.IsCancellationRequested)
            {
                if (!told)
                    Console.Error.WriteLine($"waiting for the cluster credential in {folder}: the coordinator creates it on its first start " +
                                            "(start it with the same nnUNet_results, or give --cluster-secret DIR)");
                told = true;
            }
            await Task.Delay(TimeSpan.FromSeconds(1), ct);
        }
    }
}
