using NnUnet.Core.Imaging;
using NnUnet.Core.Imaging.Nifti;

namespace NnUnet.Core.Tests.Datasets;

/// <summary>Writes small raw datasets with real image files (NiftiWriter) for the tests.</summary>
internal static class SyntheticDataset
{
    public static string DatasetJson(int channels, int labels, int numTraining, string extra = "")
    {
        var channelNames = string.Join(", ", Enumerable.Range(0, channels).Select(c => $"\"{c}\": \"{(c == 0 ? "CT" : "MR" + c)}\""));
        var labelEntries = string.Join(", ", Enumerable.Range(0, labels).Select(l => l == 0 ? "\"background\": 0" : $"\"class{l}\": {l}"));
        return $$"""{"channel_names": {{{channelNames}}}, "labels": {{{labelEntries}}}, "numTraining": {{numTraining}}, "file_ending": ".nii.gz"{{extra}}}""";
    }

    /// <summary>Float32 image of one channel whose voxel (z, y, x) is <paramref name="value"/>(z, y, x).</summary>
    public static MedicalImage Image(int[] shape, Func<int, int, int, float> value, ImageGeometry? geometry = null)
    {
        var data = new float[shape[0] * shape[1] * shape[2]];
        int i = 0;
        for (int z = 0; z < shape[0]; z++)
            for (int y = 0; y < shape[1]; y++)
                for (int x = 0; x < shape[2]; x++)
                    data[i++] = value(z, y, x);
        return MedicalImage.FromFloat(data, 1, shape[0], shape[1], shape[2], geometry ?? ImageGeometry.Identity(0.8, 0.8, 2.5));
    }

    /// <summary>UInt8 label image.</summary>
    public static MedicalImage Label(int[] shape, Func<int, int, int, int> value, ImageGeometry? geometry = null)
    {
        var data = new byte[shape[0] * shape[1] * shape[2]];
        int i = 0;
        for (int z = 0; z < shape[0]; z++)
            for (int y = 0; y < shape[1]; y++)
                for (int x = 0; x < shape[2]; x++)
                    data[i++] = (byte)value(z, y, x);
        return new MedicalImage(1, shape[0], shape[1], shape[2], VoxelType.UInt8, data, geometry ?? ImageGeometry.Identity(0.8, 0.8, 2.5));
    }

    public static void WriteImage(string datasetFolder, string caseId, int channel, MedicalImage image)
    {
        string dir = Path.Combine(datasetFolder, "imagesTr");
        Directory.CreateDirectory(dir);
        NiftiWriter.Write(Path.Combine(dir, $"{caseId}_{channel:D4}.nii.gz"), image);
    }

    public static void WriteLabel(string datasetFolder, string caseId, MedicalImage label)
    {
        string dir = Path.Combine(datasetFolder, "labelsTr");
        Directory.CreateDirectory(dir);
        NiftiWriter.Write(Path.Combine(dir, $"{caseId}.nii.gz"), label);
    }

    /// <summary>A valid dataset: <paramref name="caseIds"/> with <paramref name="channels"/> channels, a bright cube with label 1
    /// in a dark frame.</summary>
    public static string CreateValid(string root, string name, string[] caseIds, int channels = 1, int[]? shape = null)
    {
        shape ??= [6, 7, 8];
        string folder = Path.Combine(root, name);
        Directory.CreateDirectory(folder);
        File.WriteAllText(Path.Combine(folder, "dataset.json"), DatasetJson(channels, 2, caseIds.Length));
        int k = 0;
        foreach (string id in caseIds)
        {
            int offset = k++;
            for (int c = 0; c < channels; c++)
                WriteImage(folder, id, c, Image(shape, (z, y, x) => Inside(shape, z, y, x) ? 100 + 10 * c + offset + x : 1 + c));
            WriteLabel(folder, id, Label(shape, (z, y, x) => Inside(shape, z, y, x) ? 1 : 0));
        }
        return folder;
    }

    private static bool Inside(int[] shape, int z, int y, int x) =>
        z >= 1 && z < shape[0] - 1 && y >= 2 && y < shape[1] - 2 && x >= 2 && x < shape[2] - 2;
}
