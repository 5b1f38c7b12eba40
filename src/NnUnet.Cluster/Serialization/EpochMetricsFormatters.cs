using MessagePack;
using MessagePack.Formatters;
using NnUnet.Cluster.Messages;
using NnUnet.Cluster.Sweeps;

namespace NnUnet.Cluster.Serialization;

/// <summary>
/// MessagePack formatters of the two messages that carry an <see cref="EpochMetrics"/>: its members are written inline,
/// as one map with the message's own members, exactly as the contractless resolver wrote these messages when they
/// held the seven values themselves. So journals written before <see cref="EpochMetrics"/> existed replay unchanged,
/// and a node of the previous build still reads what this one sends (SerializerTests compare the bytes).
/// Unknown keys are skipped and missing ones read as 0, as the contractless resolver does.
/// </summary>
public static class EpochMetricsFormatters
{
    public static readonly IMessagePackFormatter[] All = [new JobProgressedFormatter(), new JobProgressReportFormatter()];

    private const int MetricCount = 7;

    private static void WriteMetrics(ref MessagePackWriter writer, in EpochMetrics m)
    {
        writer.Write(nameof(EpochMetrics.Epoch)); writer.Write(m.Epoch);
        writer.Write(nameof(EpochMetrics.TotalEpochs)); writer.Write(m.TotalEpochs);
        writer.Write(nameof(EpochMetrics.TrainLoss)); writer.Write(m.TrainLoss);
        writer.Write(nameof(EpochMetrics.ValidationLoss)); writer.Write(m.ValidationLoss);
        writer.Write(nameof(EpochMetrics.PseudoDice)); writer.Write(m.PseudoDice);
        writer.Write(nameof(EpochMetrics.EmaPseudoDice)); writer.Write(m.EmaPseudoDice);
        writer.Write(nameof(EpochMetrics.EpochSeconds)); writer.Write(m.EpochSeconds);
    }

    /// <summary>Reads one of the metric keys into <paramref name="m"/>; false when the key is not one of them.</summary>
    private static bool TryReadMetric(string key, ref MessagePackReader reader, ref EpochMetrics m)
    {
        switch (key)
        {
            case nameof(EpochMetrics.Epoch): m = m with { Epoch = reader.ReadInt32() }; return true;
            case nameof(EpochMetrics.TotalEpochs): m = m with { TotalEpochs = reader.ReadInt32() }; return true;
            case nameof(EpochMetrics.TrainLoss): m = m with { TrainLoss = reader.ReadDouble() }; return true;
            case nameof(EpochMetrics.ValidationLoss): m = m with { ValidationLoss = reader.ReadDouble() }; return true;
            case nameof(EpochMetrics.PseudoDice): m = m with { PseudoDice = reader.ReadDouble() }; return true;
            case nameof(EpochMetrics.EmaPseudoDice): m = m with { EmaPseudoDice = reader.ReadDouble() }; return true;
            case nameof(EpochMetrics.EpochSeconds): m = m with { EpochSeconds = reader.ReadDouble() }; return true;
            default: return false;
        }
    }

    private sealed class JobProgressedFormatter : IMessagePackFormatter<JobProgressed?>
    {
        public void Serialize(ref MessagePackWriter writer, JobProgressed? value, MessagePackSerializerOptions options)
        {
            if (value is null) { writer.WriteNil(); return; }
            writer.WriteMapHeader(3 + MetricCount);
            writer.Write(nameof(JobProgressed.JobId)); writer.Write(value.JobId);
            writer.Write(nameof(JobProgressed.Attempt)); writer.Write(value.Attempt);
            WriteMetrics(ref writer, value.Metrics);
            writer.Write(nameof(JobProgressed.At));
            options.Resolver.GetFormatterWithVerify<DateTime>().Serialize(ref writer, value.At, options);
        }

        public JobProgressed? Deserialize(ref MessagePackReader reader, MessagePackSerializerOptions options)
        {
            if (reader.TryReadNil()) return null;
            options.Security.DepthStep(ref reader);
            string jobId = "";
            int attempt = 0;
            var metrics = default(EpochMetrics);
            var at = default(DateTime);
            int count = reader.ReadMapHeader();
            for (int i = 0; i < count; i++)
            {
                string? key = reader.ReadString();
                switch (key)
                {
                    case nameof(JobProgressed.JobId): jobId = reader.ReadString() ?? ""; break;
                    case nameof(JobProgressed.Attempt): attempt = reader.ReadInt32(); break;
                    case nameof(JobProgressed.At): at = options.Resolver.GetFormatterWithVerify<DateTime>().Deserialize(ref reader, options); break;
                    default:
                        if (key is null || !TryReadMetric(key, ref reader, ref metrics)) reader.Skip();
                        break;
                }
            }
            reader.Depth--;
            return new JobProgressed(jobId, attempt, metrics, at);
        }
    }

    private sealed class JobProgressReportFormatter : IMessagePackFormatter<JobProgressReport?>
    {
        public void Serialize(ref MessagePackWriter writer, JobProgressReport? value, MessagePackSerializerOptions options)
        {
            if (value is null) { writer.WriteNil(); return; }
            writer.WriteMapHeader(3 + MetricCount);
            writer.Write(nameof(JobProgressReport.WorkerId)); writer.Write(value.WorkerId);
            writer.Write(nameof(JobProgressReport.JobId)); writer.Write(value.JobId);
            writer.Write(nameof(JobProgressReport.Attempt)); writer.Write(value.Attempt);
            WriteMetrics(ref writer, value.Metrics);
        }

        public JobProgressReport? Deserialize(ref MessagePackReader reader, MessagePackSerializerOptions options)
        {
            if (reader.TryReadNil()) return null;
            options.Security.DepthStep(ref reader);
            string workerId = "", jobId = "";
            int attempt = 0;
            var metrics = default(EpochMetrics);
            int count = reader.ReadMapHeader();
            for (int i = 0; i < count; i++)
            {
                string? key = reader.ReadString();
                switch (key)
                {
                    case nameof(JobProgressReport.WorkerId): workerId = reader.ReadString() ?? ""; break;
                    case nameof(JobProgressReport.JobId): jobId = reader.ReadString() ?? ""; break;
                    case nameof(JobProgressReport.Attempt): attempt = reader.ReadInt32(); break;
                    default:
                        if (key is null || !TryReadMetric(key, ref reader, ref metrics)) reader.Skip();
                        break;
                }
            }
            reader.Depth--;
            return new JobProgressReport(workerId, jobId, attempt, metrics);
        }
    }
}
