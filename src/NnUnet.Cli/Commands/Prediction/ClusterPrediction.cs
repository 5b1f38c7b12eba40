using System.Globalization;
using Akka.Actor;
using NnUnet.Cli.Commands.Cluster;
using NnUnet.Cluster.Hosting;
using NnUnet.Cluster.Messages;
using NnUnet.Cluster.Sweeps;
using NnUnet.Core.Datasets;
using NnUnet.Core.Results;

namespace NnUnet.Cli.Commands.Prediction;

/// <summary>
/// <c>nnunet predict ... --cluster SEED</c>: joins the cluster as a client node (no worker), sends the prediction to
/// the running coordinator (<see cref="SubmitPrediction"/>), which splits it into shard jobs for its idle workers and a
/// merge job, and follows it until the merge job wrote the manifest. Ctrl-C cancels the submission's jobs; the same
/// command again (same submission id: it comes from the inputs) retries them, and they skip the cases already written.
/// Paths go to the workers as they are: input, output and model folders must be on storage every node mounts at the
/// same path (as the sweep's results).
/// </summary>
internal static class ClusterPrediction
{
    private static readonly TimeSpan AskTimeout = TimeSpan.FromSeconds(5);

    public static async Task<int> RunAsync(PredictCommand.Settings settings, CancellationToken outer)
    {
        var seeds = ClusterCommandSupport.SplitList(settings.Cluster!).ToArray();
        var request = Request(settings);
        using var cts = ClusterCommandSupport.CancelOnCtrlC(outer);
        var credential = await ClusterAdmission.ResolveAsync(settings, null, ClusterAdmission.Role.Reads, cts.Token);
        // an operator node: it submits work and cancels it on Ctrl-C (a client node may only read). Akka's CLR exit hook
        // leaves the cluster on Ctrl-C (SIGINT): this node must stay to cancel its jobs first
        var config = ClusterConfig.Build(new NodeOptions(NodeKind.Operator, settings.Host, 0, seeds, CredentialFolder: credential,
            ExtraHocon: "akka.coordinated-shutdown.run-by-clr-shutdown-hook = off"));
        var system = NnUnetClusterHost.StartSystem(config);
        try
        {
            var view = await AskUntilAnswered<SweepView>(system, GetSweepView.Instance, seeds, cts.Token);
            if (view is null) return NnUnetApp.ExitInterrupted;
            // default split: one shard per worker registered now (the journal keeps the first split of a submission)
            int shards = settings.Shards ?? Math.Max(1, view.Workers.Length);
            var answer = await AskUntilAnswered<PredictionSubmissionResult>(system, new SubmitPrediction(request with { Shards = shards }), seeds, cts.Token);
            if (answer is null) return NnUnetApp.ExitInterrupted;
            if (!answer.Ok)
            {
                Console.Error.WriteLine($"error: the coordinator refused the prediction: {answer.Message}");
                return NnUnetApp.ExitBadInput;
            }
            Console.Out.WriteLine($"prediction {answer.SubmissionId}: {answer.Message}; {request.InputFolder} -> {request.OutputFolder}");
            return await FollowAsync(system, answer, request.OutputFolder, cts.Token);
        }
        finally
        {
            await ClusterCommandSupport.ShutdownAsync(system);
        }
    }

    /// <summary>The request as every node reads it: absolute paths, the dataset's full name.</summary>
    private static PredictionRequest Request(PredictCommand.Settings s)
    {
        string? dataset = null;
        if (s.ModelFolder is null)
        {
            var paths = NnUnetPaths.FromEnvironment(s.Raw, s.Preprocessed, s.Results);
            dataset = DatasetLocator.ResolveName(s.Dataset, paths);
        }
        string? Full(string? path) => path is null ? null : Path.TrimEndingDirectorySeparator(Path.GetFullPath(path));
        if (!Directory.Exists(s.Input)) throw new DirectoryNotFoundException($"input folder {s.Input} does not exist");
        return new PredictionRequest(Full(s.Input)!, Full(s.Output)!, Full(s.ModelFolder), dataset, s.Configuration, s.Best,
            s.FoldList?.ToArray(), s.Trainer, s.Plans, s.Checkpoint, s.DisableTta, s.SaveProbabilities, Full(s.PostprocessingFile),
            s.DisablePostprocessing, Shards: 1);
    }

    /// <summary>Asks the coordinator through the singleton proxy until it answers (it may still be starting); null on Ctrl-C.</summary>
    private static async Task<T?> AskUntilAnswered<T>(ActorSystem system, object message, string[] seeds, CancellationToken ct) where T : class
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (!ct.IsCancellationRequested)
        {
            try { return await NnUnetClusterHost.CoordinatorProxy(system).Ask<T>(message, AskTimeout, ct); }
            catch (AskTimeoutException) when (DateTime.UtcNow < deadline) { }
            catch (AskTimeoutException)
            {
                throw new TimeoutException($"no coordinator answered within 60 s via {string.Join(", ", seeds)} (is `nnunet coordinator ... --stay` running there?)");
            }
            catch (TaskCanceledException) { }
        }
        return null;
    }

    /// <summary>Prints the submission's progress until the merge job completed (exit 0), a job failed (1) or Ctrl-C (130, its jobs cancelled).</summary>
    private static async Task<int> FollowAsync(ActorSystem system, PredictionSubmissionResult submission, string output, CancellationToken ct)
    {
        var ids = new HashSet<string>(submission.JobIds, StringComparer.Ordinal);
        string merge = submission.JobIds[^1];
        string last = "";
        while (!ct.IsCancellationRequested)
        {
            SweepView view;
            try { view = await NnUnetClusterHost.GetViewAsync(system, AskTimeout); }
            catch (AskTimeoutException) { continue; }
            var jobs = view.Jobs.Where(j => ids.Contains(j.JobId)).ToList();
            var mergeJob = jobs.Single(j => j.JobId == merge);
            var shards = jobs.Where(j => j.Kind == JobKind.PredictShard).ToList();
            int cases = 0, total = 0;
            foreach (var shard in shards)
            {
                if (shard.Status == JobDisplayStatus.Completed && shard.Metrics?.GetValueOrDefault("cases") is { } n)
                {
                    cases += (int)n;
                    total += (int)n;
                }
                else if (shard.Status == JobDisplayStatus.Running && shard.Phase == JobPhase.Predicting)
                {
                    cases += shard.PhaseDone;
                    total += shard.PhaseTotal;
                }
            }
            string line = string.Create(CultureInfo.InvariantCulture,
                $"shards {shards.Count(j => j.Status == JobDisplayStatus.Completed)}/{shards.Count} done, {shards.Count(j => j.Status == JobDisplayStatus.Running)} running; cases {cases} written of {total} known; merge {mergeJob.Status.ToString().ToLowerInvariant()}");
            if (line != last) Console.Out.WriteLine(line);
            last = line;
            var failed = jobs.Where(j => j.Status is JobDisplayStatus.Failed or JobDisplayStatus.Cancelled).ToList();
            if (failed.Count > 0)
            {
                foreach (var j in failed) Console.Error.WriteLine($"{j.JobId} {j.Status.ToString().ToLowerInvariant()}: {j.LastError}");
                Console.Error.WriteLine("the prediction did not complete; fix the cause and run the same command again: it resumes from the cases written");
                return NnUnetApp.ExitProblems;
            }
            if (mergeJob.Status == JobDisplayStatus.Completed)
            {
                string manifest = PredictionManifest.PathIn(output);
                if (!File.Exists(manifest))
                {
                    Console.Error.WriteLine($"error: the merge job completed but {manifest} is not visible here (is {output} on storage this node shares with the workers?)");
                    return NnUnetApp.ExitProblems;
                }
                var written = PredictionManifest.Read(output);
                Console.Out.WriteLine($"{written.Cases.Count} cases written to {output}; manifest {manifest}");
                return NnUnetApp.ExitOk;
            }
            await Task.Delay(1000, ct).ContinueWith(_ => { }, TaskScheduler.Default);
        }
        // Ctrl-C: stop the submission's jobs (their finished cases stay; a re-run retries the jobs and skips them)
        foreach (var id in submission.JobIds)
        {
            try
            {
                var result = await NnUnetClusterHost.CoordinatorProxy(system).Ask<SweepControlResult>(new SweepControl(SweepControlAction.CancelJob, id),
                    AskTimeout, CancellationToken.None);
                Console.Error.WriteLine($"{id}: {result.Message}");
            }
            catch (AskTimeoutException)
            {
                Console.Error.WriteLine($"{id}: the coordinator did not answer the cancel within {AskTimeout.TotalSeconds:F0} s");
            }
        }
        Console.Error.WriteLine($"stopped: the jobs of {submission.SubmissionId} are cancelled; the cases written stay, run the same command again to resume");
        return NnUnetApp.ExitInterrupted;
    }
}
