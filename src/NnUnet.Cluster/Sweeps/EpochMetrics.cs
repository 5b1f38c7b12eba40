namespace NnUnet.Cluster.Sweeps;

/// <summary>
/// One finished epoch of a training job as the cluster carries it: the backend reports it, the worker sends it
/// (<see cref="Messages.JobProgressReport"/>, also the job's heartbeat), the coordinator decides on it
/// (<see cref="RecordProgress"/>) and journals it (<see cref="JobProgressed"/>). The trainer's own, richer record is
/// <c>NnUnet.Training.Trainer.EpochProgress</c> (per-class pseudo-Dice, learning rate).
/// On the wire and in the journal its members are written inline in the message that holds it, as they were before
/// this record existed (<see cref="Serialization.EpochMetricsFormatters"/>).
/// </summary>
/// <param name="Epoch">epochs finished so far (1-based).</param>
/// <param name="PseudoDice">mean foreground pseudo-Dice of this epoch's validation iterations.</param>
/// <param name="EmaPseudoDice">its exponential moving average (nnU-Net's model-selection signal).</param>
/// <param name="EpochSeconds">wall time of the epoch (drives the duration estimates).</param>
public readonly record struct EpochMetrics(int Epoch, int TotalEpochs, double TrainLoss, double ValidationLoss, double PseudoDice,
    double EmaPseudoDice, double EpochSeconds);
