using System.Collections.Concurrent;
using NnUnet.Training.Inference;

namespace NnUnet.Training.Data;

/// <summary>
/// The cascade's previous-stage label maps (<see cref="NextStagePredictions"/>, one per case, in the shape of the
/// case's preprocessed data), read on first use and kept (one byte per voxel: a quarter of one image channel).
/// nnU-Net's <c>nnUNetDataset.load_case</c> returns them as <c>seg_prev</c>.
/// </summary>
public sealed class PreviousStageSource(string folder)
{
    private readonly ConcurrentDictionary<string, Lazy<byte[]>> cache = new(StringComparer.Ordinal);

    public string Folder { get; } = folder;

    /// <summary>The label map of <paramref name="caseId"/>, which must have <paramref name="expectedShape"/> (z, y, x).</summary>
    public byte[] Get(string caseId, int[] expectedShape)
    {
        var labels = cache.GetOrAdd(caseId, id => new Lazy<byte[]>(() =>
        {
            var map = NextStagePredictions.Load(Folder, id, out var shape);
            if (!shape.AsSpan().SequenceEqual(expectedShape))
                throw new InvalidDataException($"case {id}: the previous stage's prediction {NextStagePredictions.PathFor(Folder, id)} is ({string.Join(", ", shape)}), " +
                    $"the preprocessed case is ({string.Join(", ", expectedShape)})");
            return map;
        })).Value;
        return labels;
    }
}
