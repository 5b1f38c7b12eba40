namespace NnUnet.Core.Datasets;

/// <summary>
/// The three roots nnU-Net works with: <c>nnUNet_raw</c>, <c>nnUNet_preprocessed</c>, <c>nnUNet_results</c>.
/// Each comes from an explicit value (a command-line option) or else from the environment variable of the same name;
/// an unset root is only an error when a step needs it (<see cref="RequireRaw"/> etc.), as in nnU-Net.
/// </summary>
public sealed record NnUnetPaths(string? Raw, string? Preprocessed, string? Results)
{
    public const string RawVariable = "nnUNet_raw";
    public const string PreprocessedVariable = "nnUNet_preprocessed";
    public const string ResultsVariable = "nnUNet_results";

    /// <summary>Explicit values win; empty or missing ones fall back to the environment variables.</summary>
    public static NnUnetPaths FromEnvironment(string? raw = null, string? preprocessed = null, string? results = null) =>
        new(Pick(raw, RawVariable), Pick(preprocessed, PreprocessedVariable), Pick(results, ResultsVariable));

    public string RequireRaw() => Require(Raw, RawVariable, "--raw", "reading raw datasets");
    public string RequirePreprocessed() => Require(Preprocessed, PreprocessedVariable, "--preprocessed", "fingerprinting, planning, preprocessing and training");
    public string RequireResults() => Require(Results, ResultsVariable, "--results", "training and inference");

    /// <summary><c>nnUNet_preprocessed/DatasetXXX_Name</c> (not created).</summary>
    public string PreprocessedDatasetFolder(string datasetName) => Path.Combine(RequirePreprocessed(), datasetName);

    /// <summary><c>nnUNet_results/DatasetXXX_Name</c> (not created).</summary>
    public string ResultsDatasetFolder(string datasetName) => Path.Combine(RequireResults(), datasetName);

    private static string? Pick(string? explicitValue, string variable)
    {
        if (!string.IsNullOrWhiteSpace(explicitValue)) return Path.GetFullPath(explicitValue);
        string? fromEnv = Environment.GetEnvironmentVariable(variable);
        return string.IsNullOrWhiteSpace(fromEnv) ? null : Path.GetFullPath(fromEnv);
    }

    private static string Require(string? value, string variable, string option, string neededFor) =>
        value ?? throw new InvalidOperationException(
            $"{variable} is not set: set the environment variable {variable} or pass {option} (needed for {neededFor})");
}
