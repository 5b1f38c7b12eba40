using System.Text.Json;
using System.Text.Json.Nodes;
using NnUnet.Core.IO;

namespace NnUnet.Core.Planning;

/// <summary>Where plans live and how they are written (nnU-Net's <c>ExperimentPlanner.save_plans</c>).</summary>
public static class PlansFile
{
    /// <summary><c>nnUNet_preprocessed/DatasetXXX/{plansName}.json</c>.</summary>
    public static string PathFor(string preprocessedDatasetFolder, string plansName = "nnUNetPlans") =>
        Path.Combine(preprocessedDatasetFolder, plansName + ".json");

    /// <summary>
    /// Writes <paramref name="plans"/> to <paramref name="path"/> atomically (temp file + rename). Like nnU-Net, configurations
    /// of an existing file that the new plans do not define (hand-made ones such as <c>3d_fullres_bs4</c>) are kept; the
    /// planner's own configurations are replaced. Returns the names of the configurations kept.
    /// </summary>
    /// <exception cref="InvalidDataException">The existing file is not a JSON object with a <c>configurations</c> object.</exception>
    public static IReadOnlyList<string> SaveKeepingCustomConfigurations(NnUnetPlans plans, string path)
    {
        var kept = new List<string>();
        var configurations = new Dictionary<string, JsonObject>(plans.Configurations);
        if (File.Exists(path))
        {
            JsonObject? existing;
            try
            {
                existing = JsonNode.Parse(File.ReadAllText(path)) as JsonObject;
            }
            catch (JsonException ex)
            {
                throw new InvalidDataException($"{path}: the existing plans file is not valid JSON ({ex.Message}); fix or delete it", ex);
            }
            if (existing?["configurations"] is not JsonObject existingConfigurations)
                throw new InvalidDataException($"{path}: the existing plans file has no \"configurations\" object; fix or delete it");
            foreach (var (name, node) in existingConfigurations)
            {
                if (configurations.ContainsKey(name)) continue;
                if (node is not JsonObject configuration)
                    throw new InvalidDataException($"{path}: configuration '{name}' is not a JSON object; fix or delete it");
                configurations[name] = (JsonObject)configuration.DeepClone();
                kept.Add(name);
            }
        }

        var merged = plans with { Configurations = configurations };
        AtomicFile.WriteAllText(path, merged.ToJson() + "\n");
        return kept;
    }
}
