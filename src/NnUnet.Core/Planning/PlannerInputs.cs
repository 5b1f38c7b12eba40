namespace NnUnet.Core.Planning;

/// <summary>
/// What the planner needs from dataset.json.
/// </summary>
/// <param name="DatasetName">Written as <c>dataset_name</c> (e.g. <c>Dataset004_Hippocampus</c>).</param>
/// <param name="ChannelNames">Channel names by channel index ("CT", "T2", ...); they pick the normalisation schemes.</param>
/// <param name="NumLabelsIncludingBackground">
/// The number of entries of dataset.json's <c>labels</c> (nnU-Net counts every key, background and an ignore label
/// included); it sizes the segmentation head in the VRAM estimate.</param>
/// <param name="NumTraining"><c>numTraining</c>: with the median shape it gives the dataset's voxel count for the batch cap.</param>
public sealed record PlannerDatasetInfo(string DatasetName, IReadOnlyList<string> ChannelNames, int NumLabelsIncludingBackground, int NumTraining);

/// <summary>Knobs of nnU-Net's ExperimentPlanner constructor.</summary>
/// <param name="GpuMemoryGb">GPU memory target; the reference VRAM values (for 8 GB) are scaled by <c>GpuMemoryGb / 8</c>.</param>
/// <param name="PlansName">Plans identifier: <c>plans_name</c> and the prefix of every <c>data_identifier</c>.</param>
/// <param name="PreprocessorName">Written as each configuration's <c>preprocessor_name</c>.</param>
/// <param name="OverwriteTargetSpacing">Fullres target spacing in (z, y, x) of the original arrays, replacing the median rule
/// (nnU-Net's <c>overwrite_target_spacing</c>; affects 3d_fullres and, through it, 3d_lowres and 2d).</param>
public sealed record PlannerOptions(
    double GpuMemoryGb = 8,
    string PlansName = "nnUNetPlans",
    string PreprocessorName = "DefaultPreprocessor",
    IReadOnlyList<double>? OverwriteTargetSpacing = null);
