using System.Diagnostics;
using System.Text;
using System.Text.RegularExpressions;

namespace NnUnet.Cluster.Tests;

/// <summary>
/// The SLURM scripts (issue 13) run as SLURM would run them, with `srun` and `scontrol` stand-ins: the batch script
/// on the allocation's "first node" (127.0.0.2), `srun` starting one task per node of SLURM_JOB_NODELIST, each "node"
/// on its own loopback address (127.0.0.2, 127.0.0.3). The real `nnunet` (simulated backend) does the rest.
/// </summary>
[Collection(ProcessTests.Collection)]
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class SlurmScriptTests : IDisposable
{
    private readonly Faults.ProcessCluster _cluster = new();
    private readonly string _bin;

    public SlurmScriptTests()
    {
        _bin = Directory.CreateDirectory(Path.Combine(_cluster.Root, "slurm-bin")).FullName;
        // scontrol show job ID -o: the submitted script's path (sbatch itself runs a copy of it)
        Write("scontrol", """
            #!/usr/bin/env bash
            [[ $1 == show && $2 == job ]] || { echo "scontrol stand-in: $*" >&2; exit 1; }
            echo "JobId=$3 JobName=nnunet Command=$SUBMITTED_SCRIPT WorkDir=$PWD"
            """);
        // srun [options] COMMAND...: one task per node of the allocation, each with its node's name and address
        Write("srun", """
            #!/usr/bin/env bash
            while [[ $# -gt 0 && $1 == -* ]]; do shift; done
            IFS=, read -ra nodes <<<"$SLURM_JOB_NODELIST"
            pids=()
            for i in "${!nodes[@]}"; do
              SLURMD_NODENAME=${nodes[$i]} SLURM_NODEID=$i SLURM_PROCID=$i NNUNET_HOST=127.0.0.$((2 + i)) "$@" &
              pids+=($!)
            done
            rc=0
            for p in "${pids[@]}"; do wait "$p" || rc=$?; done
            exit $rc
            """);
    }

    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    private void Write(string name, string script)
    {
        var path = Path.Combine(_bin, name);
        File.WriteAllText(path, script.Replace("\r\n", "\n") + "\n");
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
    }

    public void Dispose() => _cluster.Dispose();

    private static string Script(string name) => Path.Combine(Repository.Root, "scripts", "slurm", name);

    private (int ExitCode, string Output) RunBatch(string script, Dictionary<string, string> env, TimeSpan timeout, params string[] args)
    {
        var info = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        info.ArgumentList.Add(script);
        foreach (var a in args) info.ArgumentList.Add(a);
        info.Environment["PATH"] = _bin + ":" + Environment.GetEnvironmentVariable("PATH");
        info.Environment["SUBMITTED_SCRIPT"] = script;
        info.Environment["SLURM_JOB_ID"] = "4242";
        info.Environment["SLURM_JOB_NODELIST"] = "gpu-a,gpu-b";
        info.Environment["nnUNet_results"] = _cluster.Results;
        info.Environment["nnUNet_preprocessed"] = Path.Combine(_cluster.Root, "preprocessed");
        info.Environment["nnUNet_raw"] = _cluster.Raw;
        info.Environment["NNUNET"] = "dotnet " + Repository.CliDll();
        info.Environment["NNUNET_RESTART_DELAY"] = "0";
        info.Environment.Remove("CUDA_VISIBLE_DEVICES");
        foreach (var (k, v) in env) info.Environment[k] = v;
        var output = new StringBuilder();
        using var process = new Process { StartInfo = info };
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.AppendLine(e.Data); };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        if (!process.WaitForExit(timeout))
        {
            process.Kill(entireProcessTree: true);
            lock (output) Assert.Fail($"{script} did not end in {timeout.TotalSeconds} s:\n{output}");
        }
        process.WaitForExit();
        lock (output) return (process.ExitCode, output.ToString());
    }

    [Fact]
    public void SweepScript_RunsTheCoordinatorOnTheFirstNode_AndAWorkerOnEveryNode_ToTheEnd()
    {
        int port = Faults.ProcessCluster.FreePort(), dashboardPort = Faults.ProcessCluster.FreePort();
        var (rc, output) = RunBatch(Script("nnunet-sweep.sbatch"), new()
        {
            ["NNUNET_HOST"] = "127.0.0.2", // the batch step runs on the first node
            ["COORDINATOR_PORT"] = port.ToString(),
            ["DASHBOARD"] = $"127.0.0.2:{dashboardPort}",
            ["CONFIG"] = _cluster.Hocon,
            ["WORKER_ARGS"] = "--simulate --sim-epoch-ms 100 --cpu 1",
        }, TimeSpan.FromMinutes(3), Faults.ProcessCluster.Dataset, "-c", "2d", "--folds", "0,1,2", "--epochs", "4", "--simulate", "--linger", "3");

        Assert.True(rc == 0, output);
        Assert.Contains($"coordinator at akka.tcp://nnunet@127.0.0.2:{port}; starting a worker on every node", output);
        // the coordinator's log names the dashboard with its token
        Assert.Matches($@"dashboard: http://127\.0\.0\.2:{dashboardPort}/#token=[0-9a-f]+", output);
        // one worker process per node, each on its node's address, the --config of the coordinator
        Assert.Matches(@"worker node akka\.tcp://nnunet@127\.0\.0\.2:\d+: 1 worker\(s\) \[cpu\]", output);
        Assert.Matches(@"worker node akka\.tcp://nnunet@127\.0\.0\.3:\d+: 1 worker\(s\) \[cpu\]", output);
        Assert.Equal(2, Regex.Count(output, @"sweep \S+ finished \(Completed\); worker exits"));
        _cluster.AssertEachFoldTrainedOnce(["2d/fold_0", "2d/fold_1", "2d/fold_2"]);
    }

    [Fact]
    public void WorkerLoop_RestartsAWorkerThatDied_ButNotOneThatCannotRun()
    {
        // a stand-in for nnunet that dies (SIGKILL's 137) on its first start and finishes on its second; it records its arguments
        var calls = Path.Combine(_cluster.Root, "calls");
        Write("fake-nnunet", $"""
            #!/usr/bin/env bash
            echo "$*" >> {calls}
            [[ $(wc -l < {calls}) -ge 2 ]] && exit 0
            exit 137
            """);
        var env = new Dictionary<string, string>
        {
            ["NNUNET"] = Path.Combine(_bin, "fake-nnunet"), ["SEED"] = "akka.tcp://nnunet@127.0.0.1:4053",
            ["CONFIG"] = "/shared/cluster.hocon", ["RELEASE_IDLE_AFTER"] = "600", ["CUDA_VISIBLE_DEVICES"] = "4,5",
        };
        var (rc, output) = RunBatch(Script("nnunet-worker-loop.sh"), env, TimeSpan.FromSeconds(30));
        Assert.True(rc == 0, output);
        Assert.Contains("exited 137; starting it again", output);
        var lines = File.ReadAllLines(calls);
        Assert.Equal(2, lines.Length);
        // the seed, this node's address by route, GPUs renumbered from 0, the coordinator's --config, the idle release
        Assert.Equal("worker --seed akka.tcp://nnunet@127.0.0.1:4053 --host auto --port 0 --gpus 0,1 --config /shared/cluster.hocon --release-idle-after 600", lines[0]);

        // exit 3: the launcher found this node unfit (missing library or driver): no restart, the code is kept
        File.Delete(calls);
        Write("fake-nnunet", $"#!/usr/bin/env bash\necho \"$*\" >> {calls}\nexit 3\n");
        (rc, output) = RunBatch(Script("nnunet-worker-loop.sh"), env, TimeSpan.FromSeconds(30));
        Assert.Equal(3, rc);
        Assert.Single(File.ReadAllLines(calls));

        // a worker that keeps dying: given up after the 6th exit within 10 minutes
        File.Delete(calls);
        Write("fake-nnunet", $"#!/usr/bin/env bash\necho \"$*\" >> {calls}\nexit 139\n");
        (rc, output) = RunBatch(Script("nnunet-worker-loop.sh"), env, TimeSpan.FromSeconds(30));
        Assert.Equal(139, rc);
        Assert.Equal(6, File.ReadAllLines(calls).Length);
        Assert.Contains("giving up on this node", output);
    }
}
