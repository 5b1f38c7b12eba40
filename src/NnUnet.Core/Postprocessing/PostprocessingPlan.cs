using System.Text.Json.Nodes;
using NnUnet.Core.Evaluation;

namespace NnUnet.Core.Postprocessing;

/// <summary>
/// The postprocessing to apply after prediction: the accepted steps in order (nnU-Net's postprocessing.pkl, stored here
/// in postprocessing.json's <c>postprocessing_fns</c> / <c>postprocessing_kwargs</c>, which nnU-Net writes too).
/// </summary>
public sealed class PostprocessingPlan
{
    public PostprocessingPlan(IReadOnlyList<PostprocessingStep> steps) { Steps = steps; }

    public IReadOnlyList<PostprocessingStep> Steps { get; }
    public bool IsEmpty => Steps.Count == 0;

    public void ApplyTo(LabelVolume segmentation)
    {
        foreach (var step in Steps) step.ApplyTo(segmentation);
    }

    /// <summary>Applies the plan to every <c>*fileEnding</c> file of <paramref name="inputFolder"/>, writing files of the
    /// same name, voxel type and geometry into <paramref name="outputFolder"/> (cases in parallel).</summary>
    public void ApplyToFolder(string inputFolder, string outputFolder, string fileEnding, int degreeOfParallelism = 0)
    {
        var files = SegmentationEvaluator.ListCases(inputFolder, fileEnding);
        Directory.CreateDirectory(outputFolder);
        SegmentationEvaluator.RunParallel(files.Count, degreeOfParallelism, i =>
        {
            var file = LabelFiles.Read(files[i]);
            ApplyTo(file.Labels);
            LabelFiles.Write(Path.Combine(outputFolder, Path.GetFileName(files[i])), file);
        });
    }

    internal Dictionary<string, object?> ToPython()
    {
        var fns = new List<object?>();
        var kwargs = new List<object?>();
        foreach (var step in Steps)
        {
            fns.Add(PostprocessingStep.FunctionName);
            kwargs.Add(step.KwargsToPython());
        }
        return new Dictionary<string, object?> { ["postprocessing_fns"] = fns, ["postprocessing_kwargs"] = kwargs };
    }

    /// <summary>Reads the steps of a postprocessing.json (ours or nnU-Net's).</summary>
    public static PostprocessingPlan Load(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path} does not exist", path);
        if (PythonJson.Parse(File.ReadAllText(path), path) is not JsonObject root)
            throw new InvalidDataException($"{path}: must be a JSON object");
        if (root["postprocessing_fns"] is not JsonArray fns || root["postprocessing_kwargs"] is not JsonArray kwargs || fns.Count != kwargs.Count)
            throw new InvalidDataException($"{path}: needs postprocessing_fns and postprocessing_kwargs lists of the same length");
        var steps = new List<PostprocessingStep>();
        for (int i = 0; i < fns.Count; i++)
        {
            string? name = fns[i]?.GetValue<string>();
            if (name != PostprocessingStep.FunctionName)
                throw new InvalidDataException($"{path}: unknown postprocessing function '{name}' (only {PostprocessingStep.FunctionName} exists)");
            steps.Add(PostprocessingStep.FromKwargs(kwargs[i], path));
        }
        return new PostprocessingPlan(steps);
    }
}
