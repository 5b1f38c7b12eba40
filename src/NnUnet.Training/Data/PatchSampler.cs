using NnUnet.Core.Preprocessing;

namespace NnUnet.Training.Data;

/// <summary>
/// nnU-Net's <c>nnUNetDataLoader</c>: draws <c>batchSize</c> cases with replacement and cuts a patch of the (enlarged)
/// initial size from each. Sample j is forced to contain foreground iff <c>j >= round(bs (1 - 0.33))</c>: a random
/// class among those with stored locations, a random stored voxel of it, the patch centred there (lower corner clamped
/// to the padded range). Otherwise the lower corner is uniform over the padded range. Outside the image, data is 0 and
/// seg -1. A 2D configuration samples 2D patches from the 3D arrays as (1, y, x) patches (a random slice).
/// Cascade (a <see cref="PreviousStageSource"/>): seg gets a second channel, the previous stage's prediction cut with
/// the same box (-1 outside the image), as nnU-Net's data loader appends <c>seg_prev</c>.
/// </summary>
public sealed class PatchSampler
{
    private readonly ICaseSource cases;
    private readonly PreviousStageSource? previousStage;
    private readonly int[] patch3;      // initial patch as (z, y, x); z = 1 in 2D
    private readonly int[] needToPad3;  // initial - final, per axis

    public int BatchSize { get; }
    public int Channels { get; }
    /// <summary>1, or 2 for the cascade (channel 1: the previous stage's prediction).</summary>
    public int SegChannels => previousStage is null ? 1 : 2;
    public double OversampleForegroundPercent { get; }
    /// <summary>The patch as sampled (initial size), 2 or 3 axes.</summary>
    public int[] PatchSize { get; }
    public bool IsTwoD => PatchSize.Length == 2;
    public long VoxelsPerPatch { get; }

    public PatchSampler(ICaseSource cases, int[] finalPatchSize, int[] initialPatchSize, int batchSize, double oversampleForegroundPercent = 0.33,
        PreviousStageSource? previousStage = null)
    {
        if (cases.CaseIds.Count == 0) throw new ArgumentException("the patch sampler needs at least one case");
        if (finalPatchSize.Length != initialPatchSize.Length || finalPatchSize.Length is not (2 or 3))
            throw new ArgumentException($"patch sizes must both have 2 or 3 axes: final [{string.Join(",", finalPatchSize)}], initial [{string.Join(",", initialPatchSize)}]");
        if (batchSize < 1) throw new ArgumentException($"batch size must be >= 1, got {batchSize}");
        this.cases = cases;
        this.previousStage = previousStage;
        BatchSize = batchSize;
        OversampleForegroundPercent = oversampleForegroundPercent;
        PatchSize = (int[])initialPatchSize.Clone();
        patch3 = initialPatchSize.Length == 3 ? (int[])initialPatchSize.Clone() : [1, initialPatchSize[0], initialPatchSize[1]];
        int[] final3 = finalPatchSize.Length == 3 ? finalPatchSize : [1, finalPatchSize[0], finalPatchSize[1]];
        needToPad3 = new int[3];
        for (int d = 0; d < 3; d++)
        {
            needToPad3[d] = patch3[d] - final3[d];
            if (needToPad3[d] < 0) throw new ArgumentException($"initial patch [{string.Join(",", initialPatchSize)}] is smaller than the final patch [{string.Join(",", finalPatchSize)}]");
        }
        VoxelsPerPatch = (long)patch3[0] * patch3[1] * patch3[2];
        Channels = cases.Get(cases.CaseIds[0]).Channels;
    }

    /// <summary>Whether sample <paramref name="j"/> of a batch is forced to foreground (Python's round: half to even).</summary>
    public bool ForcesForeground(int j) => !(j < Math.Round(BatchSize * (1 - OversampleForegroundPercent), MidpointRounding.ToEven));

    /// <summary>
    /// Fills one batch: <paramref name="data"/> (b, c, *patch) and <paramref name="seg"/> (b, <see cref="SegChannels"/>, *patch), C order.
    /// <paramref name="caseIds"/> receives the case drawn for each sample.
    /// </summary>
    public void SampleBatch(ref DeterministicRandom rng, Span<float> data, Span<short> seg, string[]? caseIds = null)
    {
        long perSample = VoxelsPerPatch;
        long segPerSample = SegChannels * perSample;
        if (data.Length != BatchSize * Channels * perSample || seg.Length != BatchSize * segPerSample)
            throw new ArgumentException("batch buffers do not match batch size x channels x patch");
        for (int j = 0; j < BatchSize; j++)
        {
            var c = cases.Get(cases.CaseIds[rng.NextInt(0, cases.CaseIds.Count)]);
            if (c.Channels != Channels)
                throw new InvalidDataException($"case '{c.CaseId}' has {c.Channels} channels, the first case has {Channels}");
            if (caseIds is not null) caseIds[j] = c.CaseId;
            var lower = ChooseLowerCorner(c, ForcesForeground(j), ref rng);
            byte[]? previous = previousStage?.Get(c.CaseId, c.Shape);
            Extract(c, previous, lower, data.Slice((int)(j * Channels * perSample), (int)(Channels * perSample)), seg.Slice((int)(j * segPerSample), (int)segPerSample));
        }
    }

    /// <summary>nnU-Net's get_bbox: padded range [lbs, ubs] per axis, uniform or centred on a foreground voxel.</summary>
    internal int[] ChooseLowerCorner(PreprocessedCase c, bool forceForeground, ref DeterministicRandom rng)
    {
        Span<int> lbs = stackalloc int[3];
        Span<int> ubs = stackalloc int[3];
        for (int d = 0; d < 3; d++)
        {
            int pad = needToPad3[d];
            if (pad + c.Shape[d] < patch3[d]) pad = patch3[d] - c.Shape[d];
            lbs[d] = FloorDiv(-pad, 2);
            ubs[d] = c.Shape[d] + pad / 2 + pad % 2 - patch3[d];
        }
        var lower = new int[3];
        int[]? voxel = forceForeground ? PickForegroundVoxel(c, ref rng) : null;
        for (int d = 0; d < 3; d++)
            lower[d] = voxel is null ? rng.NextInt(lbs[d], ubs[d] + 1) : Math.Max(lbs[d], voxel[d] - patch3[d] / 2);
        return lower;
    }

    private static int[]? PickForegroundVoxel(PreprocessedCase c, ref DeterministicRandom rng)
    {
        var locations = c.Properties.ClassLocations;
        Span<int> eligible = stackalloc int[locations.Count];
        int n = 0;
        foreach (var (label, voxels) in locations)
            if (label > 0 && voxels.Length > 0) eligible[n++] = label;
        if (n == 0) return null; // no foreground in this case: random crop, as nnU-Net
        eligible[..n].Sort();     // dictionary order depends on the JSON; sort so draws are reproducible
        int chosen = eligible[rng.NextInt(0, n)];
        var list = locations[chosen];
        var v = list[rng.NextInt(0, list.Length)];
        if (v.Length != 3) throw new InvalidDataException($"case '{c.CaseId}': class_locations[{chosen}] entries must be (z, y, x), got {v.Length} values");
        return v;
    }

    /// <summary>Copies the box at <paramref name="lower"/>: image channels, seg and (cascade) the previous stage's labels as seg channel 1.</summary>
    private void Extract(PreprocessedCase c, byte[]? previous, int[] lower, Span<float> data, Span<short> seg)
    {
        data.Clear();
        seg.Fill(-1);
        int pz = patch3[0], py = patch3[1], px = patch3[2];
        int sz = c.Shape[0], sy = c.Shape[1], sx = c.Shape[2];
        int x0 = Math.Max(0, lower[2]), x1 = Math.Min(sx, lower[2] + px);
        if (x1 <= x0) return;
        int runLength = x1 - x0, outX = x0 - lower[2];
        long caseVoxels = c.VoxelsPerChannel;
        var caseSeg = c.Seg!;
        for (int z = 0; z < pz; z++)
        {
            int srcZ = lower[0] + z;
            if ((uint)srcZ >= (uint)sz) continue;
            for (int y = 0; y < py; y++)
            {
                int srcY = lower[1] + y;
                if ((uint)srcY >= (uint)sy) continue;
                long srcRow = ((long)srcZ * sy + srcY) * sx + x0;
                int dstRow = (z * py + y) * px + outX;
                var segRun = caseSeg.AsSpan((int)srcRow, runLength);
                var segOut = seg.Slice(dstRow, runLength);
                for (int i = 0; i < runLength; i++) segOut[i] = segRun[i];
                if (previous is not null)
                {
                    var previousRun = previous.AsSpan((int)srcRow, runLength);
                    var previousOut = seg.Slice((int)VoxelsPerPatch + dstRow, runLength);
                    for (int i = 0; i < runLength; i++) previousOut[i] = previousRun[i];
                }
                for (int ch = 0; ch < Channels; ch++)
                    c.Data.AsSpan((int)(ch * caseVoxels + srcRow), runLength).CopyTo(data.Slice((int)(ch * VoxelsPerPatch) + dstRow, runLength));
            }
        }
    }

    private static int FloorDiv(int a, int b) => (int)Math.Floor(a / (double)b);
}
