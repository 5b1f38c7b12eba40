using System.Security.Cryptography;
using System.Text;
using NnUnet.Cluster.Messages;

namespace NnUnet.Cluster.Sweeps;

/// <summary>What a sweep trains: dataset x plans x trainer x configurations x folds, then the final stages.</summary>
/// <param name="DatasetName">nnU-Net dataset folder name, e.g. <c>Dataset004_Hippocampus</c>.</param>
/// <param name="PlansName">plans identifier, e.g. <c>nnUNetPlans</c>.</param>
/// <param name="TrainerName">trainer class name, e.g. <c>nnUNetTrainer</c>.</param>
/// <param name="Configurations">configurations to train, in canonical order (see <see cref="Create"/>).</param>
/// <param name="Folds">folds to train, ascending.</param>
/// <param name="Epochs">epochs per training job.</param>
/// <param name="PredictTest">whether a prediction job for <c>imagesTs</c> follows the selection job.</param>
/// <param name="MaxAttempts">how many failed attempts a job may have before it is marked failed (not part of the id).</param>
/// <param name="ItersPerEpoch">training iterations per epoch of every fold (nnU-Net: 250); carried to the workers, so
/// every fold of the sweep trains with the same budget whatever node runs it.</param>
/// <param name="ValIters">validation iterations per epoch for the online pseudo-Dice (nnU-Net: 50).</param>
/// <param name="PredictShards">with <paramref name="PredictTest"/>: the test set is predicted by this many shard jobs
/// (any free worker takes one) and a merge job; 0 (journals written before shards) = one job predicts every case. Not
/// part of the id: the split changes no output, and a resumed sweep keeps the split its journal recorded.</param>
public sealed record SweepDefinition(
    string DatasetName,
    string PlansName,
    string TrainerName,
    string[] Configurations,
    int[] Folds,
    int Epochs,
    bool PredictTest,
    int MaxAttempts,
    int ItersPerEpoch = SweepDefinition.NnUnetItersPerEpoch,
    int ValIters = SweepDefinition.NnUnetValIters,
    int PredictShards = 0) : INnUnetMessage
{
    public const int NnUnetItersPerEpoch = 250, NnUnetValIters = 50;

    public const string Lowres = "3d_lowres";
    public const string Cascade = "3d_cascade_fullres";
    public static readonly string[] CanonicalConfigurations = ["2d", "3d_fullres", Lowres, Cascade];

    /// <summary>
    /// Validates and normalises the inputs (configurations in canonical order without duplicates, folds ascending)
    /// so that the same request always gives the same <see cref="SweepId"/>.
    /// </summary>
    public static SweepDefinition Create(string datasetName, string plansName, string trainerName,
        IEnumerable<string> configurations, IEnumerable<int> folds, int epochs, bool predictTest = false, int maxAttempts = 3,
        int itersPerEpoch = NnUnetItersPerEpoch, int valIters = NnUnetValIters, int predictShards = 1)
    {
        if (predictShards < 1) throw new ArgumentException($"sweep: predict shards must be >= 1, got {predictShards}");
        if (itersPerEpoch < 1 || valIters < 1) throw new ArgumentException($"sweep: iterations per epoch must be >= 1, got {itersPerEpoch} training, {valIters} validation");
        if (string.IsNullOrWhiteSpace(datasetName)) throw new ArgumentException("sweep: dataset name is empty");
        if (string.IsNullOrWhiteSpace(plansName)) throw new ArgumentException("sweep: plans name is empty");
        if (string.IsNullOrWhiteSpace(trainerName)) throw new ArgumentException("sweep: trainer name is empty");
        if (epochs < 1) throw new ArgumentException($"sweep: epochs must be >= 1, got {epochs}");
        if (maxAttempts < 1) throw new ArgumentException($"sweep: max attempts must be >= 1, got {maxAttempts}");
        var configs = new List<string>();
        foreach (var c in configurations)
        {
            var name = c.Trim();
            if (name.Length == 0) throw new ArgumentException("sweep: empty configuration name");
            if (name.Any(ch => ch is '/' or '\\' or ' ')) throw new ArgumentException($"sweep: configuration '{name}' contains a path separator or space");
            if (!configs.Contains(name)) configs.Add(name);
        }
        if (configs.Count == 0) throw new ArgumentException("sweep: no configuration given");
        if (configs.Contains(Cascade) && !configs.Contains(Lowres))
            throw new ArgumentException($"sweep: {Cascade} needs {Lowres} in the same sweep (its folds read the low-res predictions)");
        // canonical ones first in their nnU-Net order, custom configurations after them by name
        configs.Sort((a, b) =>
        {
            int ia = Array.IndexOf(CanonicalConfigurations, a), ib = Array.IndexOf(CanonicalConfigurations, b);
            if (ia < 0) ia = int.MaxValue;
            if (ib < 0) ib = int.MaxValue;
            return ia != ib ? ia.CompareTo(ib) : string.CompareOrdinal(a, b);
        });
        var foldSet = new SortedSet<int>();
        foreach (var f in folds)
        {
            if (f < 0) throw new ArgumentException($"sweep: fold must be >= 0, got {f}");
            foldSet.Add(f);
        }
        if (foldSet.Count == 0) throw new ArgumentException("sweep: no fold given");
        return new SweepDefinition(datasetName.Trim(), plansName.Trim(), trainerName.Trim(), configs.ToArray(),
            foldSet.ToArray(), epochs, predictTest, maxAttempts, itersPerEpoch, valIters, predictTest ? predictShards : 0);
    }

    /// <summary>
    /// Deterministic id from the inputs that define the work (max attempts excluded: raising it must resume the
    /// same sweep): <c>Dataset004_Hippocampus-1a2b3c4d5e6f</c>.
    /// </summary>
    public string SweepId => _sweepId ??= ComputeSweepId();

    private string? _sweepId;

    private string ComputeSweepId()
    {
        {
            var canonical = $"{DatasetName}|{PlansName}|{TrainerName}|{string.Join(',', Configurations)}|{string.Join(',', Folds)}|{Epochs}|{(PredictTest ? 1 : 0)}";
            // nnU-Net's budget adds nothing, so sweeps defined before the budget was part of the id keep theirs
            if ((TrainingItersPerEpoch, TrainingValIters) != (NnUnetItersPerEpoch, NnUnetValIters))
                canonical += $"|{TrainingItersPerEpoch}/{TrainingValIters}";
            var hash = SHA256.HashData(Encoding.UTF8.GetBytes(canonical));
            return $"{DatasetName}-{Convert.ToHexStringLower(hash.AsSpan(0, 6))}";
        }
    }

    public bool SameWorkAs(SweepDefinition other) => SweepId == other.SweepId;

    /// <summary>
    /// This definition is the one a sweep's journal holds; <paramref name="asked"/> is the same sweep as a run that
    /// resumes it asks for. The journal's test-set split is kept (its shard jobs may have run already, and a merge
    /// checks the markers of that split), so a run asking for another one is told so in one line: both counts, which
    /// one is used, and how to get the other. Null when the splits agree.
    /// </summary>
    public string? KeptShardsNotice(SweepDefinition asked)
    {
        if (!PredictTest || PredictShards == asked.PredictShards) return null;
        static string Split(int shards) => shards == 0 ? "one prediction job (its journal is older than shards)" : $"{shards} shard job(s)";
        return $"sweep {SweepId}: predicts the test set with {Split(PredictShards)} as its journal recorded, not with the " +
               $"{asked.PredictShards} this run asks for (--predict-shards or its default), since shard jobs may have run already; " +
               $"for {asked.PredictShards} shards start it as a new sweep with another --journal FILE (every job then runs again)";
    }

    // a definition read from a journal written before the budget was recorded has 0 there: nnU-Net's budget
    internal int TrainingItersPerEpoch => ItersPerEpoch > 0 ? ItersPerEpoch : NnUnetItersPerEpoch;
    internal int TrainingValIters => ValIters > 0 ? ValIters : NnUnetValIters;
}
