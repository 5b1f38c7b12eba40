using NnUnet.Core.Evaluation;
using NnUnet.Core.Postprocessing;

namespace NnUnet.Core.Tests.Postprocessing;

public class PostprocessingDecisionTests
{
    private static LabelVolume Row(int length, params (int from, int to, int label)[] runs)
    {
        var labels = new int[length];
        foreach (var (from, to, label) in runs) for (int i = from; i <= to; i++) labels[i] = label;
        return new LabelVolume(1, 1, length, labels);
    }

    private static LabelVolume With(LabelVolume v, params (int at, int label)[] voxels)
    {
        var copy = v.Clone();
        foreach (var (at, label) in voxels) copy.Labels[at] = label;
        return copy;
    }

    // independent Dice: NaN when both empty
    private static double Dice(LabelVolume reference, LabelVolume prediction, int label)
    {
        int tp = 0, fp = 0, fn = 0;
        for (int i = 0; i < reference.Length; i++)
        {
            bool r = reference.Labels[i] == label, p = prediction.Labels[i] == label;
            if (r && p) tp++; else if (p) fp++; else if (r) fn++;
        }
        return tp + fp + fn == 0 ? double.NaN : 2.0 * tp / (2 * tp + fp + fn);
    }

    [Fact]
    public void Keep_largest_foreground_is_accepted_when_it_removes_false_positives()
    {
        var reference = Row(20, (2, 6, 1));
        var prediction = With(reference, (12, 1), (15, 1));
        var cases = new List<LabeledCase> { new("r", "p", reference, prediction) };
        var result = PostprocessingDecision.Determine(cases, LabelOrRegion.Labels(1), [1], null);

        Assert.Equal(Dice(reference, prediction, 1), result.Baseline.ForegroundMean.Dice, 12); // 10/12
        Assert.Single(result.Steps);
        Assert.Equal(["1"], result.Steps[0].LabelsOrRegions.Select(l => l.Key));
        Assert.Equal(1.0, result.Postprocessed.ForegroundMean.Dice);
        Assert.Single(result.Trials); // one label: no per-label step
    }

    [Fact]
    public void Keep_largest_foreground_is_rejected_when_it_removes_true_positives()
    {
        var reference = Row(20, (2, 6, 1), (10, 12, 1));
        var cases = new List<LabeledCase> { new("r", "p", reference, reference.Clone()) };
        var result = PostprocessingDecision.Determine(cases, LabelOrRegion.Labels(1), [1], null);

        Assert.Empty(result.Steps);
        var trial = Assert.Single(result.Trials);
        Assert.False(trial.Accepted);
        Assert.Equal(1.0, trial.DiceBefore);
        var removed = reference.Clone();
        for (int i = 10; i <= 12; i++) removed.Labels[i] = 0;
        Assert.Equal(Dice(reference, removed, 1), trial.DiceAfter, 12); // 10/13
        Assert.Equal(1.0, result.Postprocessed.ForegroundMean.Dice);
    }

    [Fact]
    public void Step_one_is_rejected_when_one_class_gets_worse_even_if_the_foreground_mean_rises_then_per_label_steps_decide()
    {
        // case A: label 2 is an isolated correct voxel, so keeping the largest foreground component deletes it
        var refA = Row(30, (0, 3, 1), (4, 7, 3), (10, 10, 2));
        var predA = With(refA, (13, 1), (15, 1), (17, 1), (19, 1), (21, 3), (23, 3), (25, 3), (27, 3));
        // cases B, C: label 2 sits inside the big component; the spurious 1s and 3s are isolated
        var refB = Row(30, (0, 3, 1), (4, 4, 2), (5, 8, 3));
        var predB = With(refB, (13, 1), (15, 1), (17, 1), (19, 1), (21, 3), (23, 3), (25, 3), (27, 3));
        var cases = new List<LabeledCase> { new("a", "a", refA, predA), new("b", "b", refB, predB), new("c", "c", refB, predB.Clone()) };
        var labels = LabelOrRegion.Labels(1, 2, 3);

        var result = PostprocessingDecision.Determine(cases, labels, [1, 2, 3], null, degreeOfParallelism: 2);

        // independent numbers: before and after keep-largest-foreground
        var largestA = Row(30, (0, 3, 1), (4, 7, 3));
        var largestB = refB;
        double[] before = [0, 0, 0], after = [0, 0, 0];
        int[] labelValues = [1, 2, 3];
        for (int k = 0; k < 3; k++)
        {
            before[k] = (Dice(refA, predA, labelValues[k]) + 2 * Dice(refB, predB, labelValues[k])) / 3;
            after[k] = (Dice(refA, largestA, labelValues[k]) + 2 * Dice(refB, largestB, labelValues[k])) / 3;
        }
        Assert.True(after.Average() > before.Average());   // foreground mean rises ...
        Assert.True(after[1] < before[1]);                  // ... but label 2 gets worse
        Assert.Equal(before.Average(), result.Baseline.ForegroundMean.Dice, 12);
        Assert.False(result.Trials[0].Accepted);
        Assert.Equal(after.Average(), result.Trials[0].DiceAfter, 12);

        // step 2: labels 1 and 3 improve (spurious voxels removed), label 2 is unchanged (not strictly better)
        Assert.Equal([true, false, true], result.Trials.Skip(1).Select(t => t.Accepted));
        Assert.Equal(["1", "3"], result.Steps.Select(s => s.LabelsOrRegions.Single().Key));
        Assert.Equal(1.0, result.Postprocessed.Mean["1"].Dice);
        Assert.Equal(1.0, result.Postprocessed.Mean["2"].Dice);
        Assert.Equal(1.0, result.Postprocessed.Mean["3"].Dice);
    }

    [Fact]
    public void Plan_round_trips_through_postprocessing_json_in_nnunet_kwargs_form()
    {
        var reference = Row(20, (2, 6, 1), (8, 9, 2));
        var prediction = With(reference, (12, 1), (15, 2), (17, 2));
        var cases = new List<LabeledCase> { new("r", "p", reference, prediction) };
        var result = PostprocessingDecision.Determine(cases, LabelOrRegion.Labels(1, 2), [1, 2], null);
        string folder = Directory.CreateTempSubdirectory("nnunet-pp").FullName;
        try
        {
            string path = Path.Combine(folder, "postprocessing.json");
            result.Save(path);
            string text = File.ReadAllText(path);
            Assert.Contains("\"postprocessing_fns\": [\n        \"remove_all_but_largest_component_from_segmentation\"", text);
            Assert.Contains("\"input_folder\": {", text);
            var plan = PostprocessingPlan.Load(path);
            Assert.Equal(result.Steps.Count, plan.Steps.Count);
            var applied = prediction.Clone();
            plan.ApplyTo(applied);
            var expected = prediction.Clone();
            result.Plan.ApplyTo(expected);
            Assert.Equal(expected.Labels, applied.Labels);
        }
        finally { Directory.Delete(folder, true); }
    }
}

public class PostprocessingOnePassTests
{
    private static LabelVolume RandomReference(Random rng)
    {
        var v = new LabelVolume(6, 10, 10, new int[600]);
        for (int label = 1; label <= 3; label++)
        {
            int boxes = rng.Next(1, 3);
            for (int b = 0; b < boxes; b++)
            {
                int z0 = rng.Next(0, 4), y0 = rng.Next(0, 7), x0 = rng.Next(0, 7);
                int dz = rng.Next(1, 3), dy = rng.Next(1, 4), dx = rng.Next(1, 4);
                for (int z = z0; z < Math.Min(6, z0 + dz); z++)
                    for (int y = y0; y < Math.Min(10, y0 + dy); y++)
                        for (int x = x0; x < Math.Min(10, x0 + dx); x++)
                            v.Labels[(z * 10 + y) * 10 + x] = label;
            }
        }
        return v;
    }

    private static LabelVolume Noisy(LabelVolume reference, Random rng, double flip)
    {
        var p = reference.Clone();
        for (int i = 0; i < p.Length; i++) if (rng.NextDouble() < flip) p.Labels[i] = rng.Next(0, 4);
        return p;
    }

    [Fact]
    public void One_pass_decision_equals_the_sequential_decision_on_random_cases()
    {
        int acceptedSteps = 0, rejectedSteps = 0;
        for (int seed = 0; seed < 12; seed++)
        {
            var rng = new Random(seed);
            var cases = new List<LabeledCase>();
            for (int c = 0; c < 4; c++)
            {
                var reference = RandomReference(rng);
                cases.Add(new LabeledCase($"r{c}", $"p{c}", reference, Noisy(reference, rng, seed % 3 == 0 ? 0.002 : 0.02)));
            }
            var labels = LabelOrRegion.Labels(1, 2, 3);
            var onePass = PostprocessingDecision.Determine(cases.Count, i => cases[i], labels, [1, 2, 3], seed % 2 == 0 ? 3 : null, 2, allowSinglePass: true);
            var sequential = PostprocessingDecision.Determine(cases.Count, i => cases[i], labels, [1, 2, 3], seed % 2 == 0 ? 3 : null, 2, allowSinglePass: false);

            Assert.Equal(sequential.Baseline.ToJson(), onePass.Baseline.ToJson());
            Assert.Equal(sequential.Postprocessed.ToJson(), onePass.Postprocessed.ToJson());
            Assert.Equal(sequential.Trials.Count, onePass.Trials.Count);
            for (int t = 0; t < sequential.Trials.Count; t++)
            {
                Assert.Equal(sequential.Trials[t].Accepted, onePass.Trials[t].Accepted);
                Assert.Equal(sequential.Trials[t].DiceBefore, onePass.Trials[t].DiceBefore);
                Assert.Equal(sequential.Trials[t].DiceAfter, onePass.Trials[t].DiceAfter);
                if (onePass.Trials[t].Accepted) acceptedSteps++; else rejectedSteps++;
            }
        }
        Assert.True(acceptedSteps > 0 && rejectedSteps > 0, $"accepted {acceptedSteps}, rejected {rejectedSteps}: the cases should exercise both");
    }
}
