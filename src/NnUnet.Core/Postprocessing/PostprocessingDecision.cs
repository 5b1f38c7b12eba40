using NnUnet.Core.Datasets;
using NnUnet.Core.Evaluation;

namespace NnUnet.Core.Postprocessing;

/// <summary>One candidate step tried by the decision, with the numbers it was judged on.</summary>
/// <param name="Kind">"all_foreground" (step 1) or "per_label_or_region" (step 2).</param>
/// <param name="Target">For step 2 the label or region key; for step 1 "foreground".</param>
/// <param name="DiceBefore">Step 1: foreground-mean Dice of the baseline; step 2: that label's mean Dice of the current best.</param>
/// <param name="DiceAfter">The same number with the step applied.</param>
public sealed record PostprocessingTrial(PostprocessingStep Step, string Kind, string Target, double DiceBefore, double DiceAfter, bool Accepted);

/// <summary>Outcome of <see cref="PostprocessingDecision"/>: the accepted steps in order and the numbers before and after.</summary>
public sealed class PostprocessingResult
{
    public PostprocessingResult(EvaluationSummary baseline, EvaluationSummary postprocessed, IReadOnlyList<PostprocessingStep> steps, IReadOnlyList<PostprocessingTrial> trials)
    {
        Baseline = baseline; Postprocessed = postprocessed; Steps = steps; Trials = trials;
    }

    public EvaluationSummary Baseline { get; }
    public EvaluationSummary Postprocessed { get; }
    public IReadOnlyList<PostprocessingStep> Steps { get; }
    public IReadOnlyList<PostprocessingTrial> Trials { get; }

    public PostprocessingPlan Plan => new(Steps);

    /// <summary>nnU-Net's postprocessing.json (input_folder / postprocessed means, postprocessing_fns,
    /// postprocessing_kwargs) plus our <c>trials</c>: every candidate with the Dice it was judged on.</summary>
    public void Save(string path)
    {
        var document = Plan.ToPython();
        document["input_folder"] = MeansOf(Baseline);
        document["postprocessed"] = MeansOf(Postprocessed);
        var trials = new List<object?>();
        foreach (var t in Trials)
        {
            trials.Add(new Dictionary<string, object?>
            {
                ["kind"] = t.Kind, ["target"] = t.Target, ["kwargs"] = t.Step.KwargsToPython(),
                ["dice_before"] = t.DiceBefore, ["dice_after"] = t.DiceAfter, ["accepted"] = t.Accepted,
            });
        }
        document["trials"] = trials;
        PythonJson.Save(document, path);
    }

    private static Dictionary<string, object?> MeansOf(EvaluationSummary s) => new()
    {
        ["foreground_mean"] = EvaluationSummary.MeansToPython(s.ForegroundMean),
        ["mean"] = EvaluationSummary.MeansToPython(s.Mean),
    };
}

/// <summary>
/// nnU-Net v2's determine_postprocessing. Step 1: keep only the largest connected component of all foreground labels
/// together; accepted iff the foreground-mean Dice strictly increases and no label's (region's) mean Dice decreases.
/// Step 2 (more than one label or region): for each in dataset order, starting from the current best, keep only that
/// one's largest component; accepted iff its mean Dice strictly increases. Comparisons follow IEEE rules as Python's do
/// (a NaN Dice never counts as an increase nor as a decrease). Components use full connectivity.
/// Instead of writing each candidate's predictions to temporary folders, as nnU-Net does: with plain labels every case is
/// read once and all candidates' metrics are computed from it (see DetermineInOnePass); with regions each evaluation
/// re-applies the accepted steps to the original prediction in memory. The numbers are the same.
/// </summary>
public static class PostprocessingDecision
{
    public const string FileName = "postprocessing.json";
    public const string PostprocessedFolder = "postprocessed";

    /// <summary>Decides on cases held in memory.</summary>
    /// <param name="foregroundLabels">Step 1's labels: the dataset's foreground label values (nnU-Net's
    /// <c>foreground_labels</c>, also with regions).</param>
    public static PostprocessingResult Determine(IReadOnlyList<LabeledCase> cases, IReadOnlyList<LabelOrRegion> labelsOrRegions,
        IReadOnlyList<int> foregroundLabels, int? ignoreLabel, int degreeOfParallelism = 0) =>
        Determine(cases.Count, i => cases[i], labelsOrRegions, foregroundLabels, ignoreLabel, degreeOfParallelism);

    internal static PostprocessingResult Determine(int count, Func<int, LabeledCase> load, IReadOnlyList<LabelOrRegion> labelsOrRegions,
        IReadOnlyList<int> foregroundLabels, int? ignoreLabel, int degreeOfParallelism, bool allowSinglePass = true)
    {
        if (count == 0) throw new ArgumentException("no cases to determine postprocessing on");
        bool anyRegion = false;
        foreach (var target in labelsOrRegions) anyRegion |= target.IsRegion;
        if (allowSinglePass && !anyRegion) return DetermineInOnePass(count, load, labelsOrRegions, foregroundLabels, ignoreLabel, degreeOfParallelism);
        EvaluationSummary Evaluate(IReadOnlyList<PostprocessingStep> steps) =>
            SegmentationEvaluator.Evaluate(count, i =>
            {
                var c = load(i);
                if (steps.Count == 0) return c;
                var prediction = c.Prediction.Clone();
                foreach (var step in steps) step.ApplyTo(prediction);
                return c with { Prediction = prediction };
            }, labelsOrRegions, ignoreLabel, degreeOfParallelism);

        var accepted = new List<PostprocessingStep>();
        var trials = new List<PostprocessingTrial>();
        var baseline = Evaluate(accepted);
        var current = baseline;

        var allForeground = PostprocessingStep.AllForeground(foregroundLabels);
        var candidate = Evaluate([allForeground]);
        bool keep = candidate.ForegroundMean.Dice > baseline.ForegroundMean.Dice;
        if (keep)
        {
            foreach (var (key, means) in candidate.Mean)
                if (means.Dice < baseline.Mean[key].Dice) { keep = false; break; }
        }
        trials.Add(new PostprocessingTrial(allForeground, "all_foreground", "foreground", baseline.ForegroundMean.Dice, candidate.ForegroundMean.Dice, keep));
        if (keep) { accepted.Add(allForeground); current = candidate; }

        if (labelsOrRegions.Count > 1)
        {
            foreach (var target in labelsOrRegions)
            {
                var step = PostprocessingStep.Single(target);
                var steps = new List<PostprocessingStep>(accepted) { step };
                candidate = Evaluate(steps);
                double before = current.Mean[target.Key].Dice, after = candidate.Mean[target.Key].Dice;
                keep = after > before;
                trials.Add(new PostprocessingTrial(step, "per_label_or_region", target.Key, before, after, keep));
                if (keep) { accepted.Add(step); current = candidate; }
            }
        }
        return new PostprocessingResult(baseline, current, accepted, trials);
    }

    /// <summary>
    /// The same decision for plain labels, reading each case once. Keeping a label's largest component only changes that
    /// label's voxels (to background), so a label's metrics depend only on the steps that name it (and on step 1): per
    /// case the metrics of the prediction (B), of step 1 applied (S), and of each label's step applied to B and to S
    /// give every summary the sequential decision looks at. Regions overlap, so they take the general path.
    /// </summary>
    private static PostprocessingResult DetermineInOnePass(int count, Func<int, LabeledCase> load, IReadOnlyList<LabelOrRegion> labels,
        IReadOnlyList<int> foregroundLabels, int? ignoreLabel, int degreeOfParallelism)
    {
        int n = labels.Count;
        var allForeground = PostprocessingStep.AllForeground(foregroundLabels);
        var singles = new PostprocessingStep[n];
        for (int k = 0; k < n; k++) singles[k] = PostprocessingStep.Single(labels[k]);
        var names = new (string Reference, string Prediction)[count];
        var baseline = new LabelMetrics[count][];
        var afterStep1 = new LabelMetrics[count][];
        var singleOnBaseline = new LabelMetrics[count][];
        var singleOnStep1 = new LabelMetrics[count][];
        SegmentationEvaluator.RunParallel(count, degreeOfParallelism, i =>
        {
            var c = load(i);
            if (!c.Reference.SameShape(c.Prediction))
                throw new InvalidDataException($"{c.PredictionFile}: prediction shape ({string.Join(", ", c.Prediction.Shape)}) differs from reference shape ({string.Join(", ", c.Reference.Shape)})");
            names[i] = (c.ReferenceFile, c.PredictionFile);
            baseline[i] = SegmentationMetrics.Compute(c.Reference.Labels, c.Prediction.Labels, labels, ignoreLabel);
            var step1 = c.Prediction.Clone();
            allForeground.ApplyTo(step1);
            afterStep1[i] = SegmentationMetrics.Compute(c.Reference.Labels, step1.Labels, labels, ignoreLabel);
            singleOnBaseline[i] = new LabelMetrics[n];
            singleOnStep1[i] = new LabelMetrics[n];
            for (int k = 0; k < n; k++)
            {
                singleOnBaseline[i][k] = MetricsAfter(singles[k], c.Prediction, c.Reference, k, labels, ignoreLabel);
                singleOnStep1[i][k] = MetricsAfter(singles[k], step1, c.Reference, k, labels, ignoreLabel);
            }
        });

        EvaluationSummary Summarize(LabelMetrics[][] perCase)
        {
            var cases = new CaseEvaluation[count];
            for (int i = 0; i < count; i++)
            {
                var metrics = new Dictionary<string, LabelMetrics>(n);
                for (int k = 0; k < n; k++) metrics[labels[k].Key] = perCase[i][k];
                cases[i] = new CaseEvaluation(names[i].Reference, names[i].Prediction, metrics);
            }
            return EvaluationSummary.FromCases(cases, labels);
        }

        var accepted = new List<PostprocessingStep>();
        var trials = new List<PostprocessingTrial>();
        var baselineSummary = Summarize(baseline);
        var candidate = Summarize(afterStep1);
        bool keep = candidate.ForegroundMean.Dice > baselineSummary.ForegroundMean.Dice;
        if (keep)
        {
            foreach (var (key, means) in candidate.Mean)
                if (means.Dice < baselineSummary.Mean[key].Dice) { keep = false; break; }
        }
        trials.Add(new PostprocessingTrial(allForeground, "all_foreground", "foreground", baselineSummary.ForegroundMean.Dice, candidate.ForegroundMean.Dice, keep));
        var current = keep ? afterStep1 : baseline;
        var currentSummary = keep ? candidate : baselineSummary;
        var singleOnSource = keep ? singleOnStep1 : singleOnBaseline;
        if (keep) accepted.Add(allForeground);
        current = current.Select(m => (LabelMetrics[])m.Clone()).ToArray();

        if (n > 1)
        {
            for (int k = 0; k < n; k++)
            {
                var tried = current.Select(m => (LabelMetrics[])m.Clone()).ToArray();
                for (int i = 0; i < count; i++) tried[i][k] = singleOnSource[i][k];
                candidate = Summarize(tried);
                string key = labels[k].Key;
                double before = currentSummary.Mean[key].Dice, after = candidate.Mean[key].Dice;
                keep = after > before;
                trials.Add(new PostprocessingTrial(singles[k], "per_label_or_region", key, before, after, keep));
                if (keep) { accepted.Add(singles[k]); current = tried; currentSummary = candidate; }
            }
        }
        return new PostprocessingResult(baselineSummary, currentSummary, accepted, trials);
    }

    private static LabelMetrics MetricsAfter(PostprocessingStep step, LabelVolume prediction, LabelVolume reference, int labelIndex,
        IReadOnlyList<LabelOrRegion> labels, int? ignoreLabel)
    {
        var applied = prediction.Clone();
        step.ApplyTo(applied);
        return SegmentationMetrics.Compute(reference.Labels, applied.Labels, [labels[labelIndex]], ignoreLabel)[0];
    }

    /// <summary>
    /// Decides on the predictions in <paramref name="predictionFolder"/> against <paramref name="referenceFolder"/>, then
    /// writes <c>postprocessing.json</c> and <c>summary.json</c> (the baseline) into the prediction folder and the
    /// postprocessed predictions with their <c>summary.json</c> into <c>postprocessed/</c>.
    /// </summary>
    public static PostprocessingResult DetermineForFolder(string predictionFolder, string referenceFolder, DatasetJson dataset, int degreeOfParallelism = 0)
    {
        var labelsOrRegions = LabelOrRegion.ForDataset(dataset);
        var foreground = new List<int>();
        foreach (int l in dataset.AllLabels) if (l != 0) foreground.Add(l);
        var predictions = SegmentationEvaluator.ListCases(predictionFolder, dataset.FileEnding);
        if (predictions.Count == 0) throw new InvalidDataException($"{predictionFolder}: no predictions (*{dataset.FileEnding}) to determine postprocessing on");
        var references = new string[predictions.Count];
        for (int i = 0; i < predictions.Count; i++)
        {
            references[i] = Path.Combine(Path.GetFullPath(referenceFolder), Path.GetFileName(predictions[i]));
            if (!File.Exists(references[i])) throw new InvalidDataException($"{predictions[i]}: no reference segmentation {references[i]}");
        }
        var result = Determine(predictions.Count,
            i => new LabeledCase(references[i], predictions[i], LabelFiles.Read(references[i]).Labels, LabelFiles.Read(predictions[i]).Labels),
            labelsOrRegions, foreground, dataset.IgnoreLabel, degreeOfParallelism);

        result.Baseline.Save(Path.Combine(predictionFolder, EvaluationSummary.FileName));
        string output = Path.Combine(predictionFolder, PostprocessedFolder);
        result.Plan.ApplyToFolder(predictionFolder, output, dataset.FileEnding, degreeOfParallelism);
        // the postprocessed summary names the postprocessed files, as nnU-Net's does
        var postprocessedCases = new List<CaseEvaluation>(result.Postprocessed.MetricPerCase.Count);
        foreach (var c in result.Postprocessed.MetricPerCase)
            postprocessedCases.Add(c with { PredictionFile = Path.Combine(Path.GetFullPath(output), Path.GetFileName(c.PredictionFile)) });
        new EvaluationSummary(postprocessedCases, result.Postprocessed.Mean, result.Postprocessed.ForegroundMean)
            .Save(Path.Combine(output, EvaluationSummary.FileName));
        result.Save(Path.Combine(predictionFolder, FileName));
        return result;
    }
}
