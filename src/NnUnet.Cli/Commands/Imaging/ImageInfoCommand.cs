using System.ComponentModel;
using System.Globalization;
using System.Text.Json;
using NnUnet.Core.Imaging;
using NnUnet.Core.Imaging.Nifti;
using NnUnet.Cli.Commands.Datasets;
using Spectre.Console;
using Spectre.Console.Cli;
using NnUnet.Core.IO;

namespace NnUnet.Cli.Commands.Imaging;

/// <summary><c>nnunet image info PATH [--json]</c>: header, geometry (as SimpleITK reports it) and intensity summary of a NIfTI file.</summary>
internal sealed class ImageInfoCommand : Command<ImageInfoCommand.Settings>
{
    internal sealed class Settings : CommandSettings
    {
        [CommandArgument(0, "<PATH>")]
        [Description("NIfTI file (.nii or .nii.gz)")]
        public string Path { get; init; } = "";

        [CommandOption("--json")]
        [Description("Print one JSON object instead of a table")]
        public bool Json { get; init; }
    }

    public override int Execute(CommandContext context, Settings settings, CancellationToken cancellationToken)
    {
        NiftiHeader header;
        MedicalImage image;
        try
        {
            header = NiftiReader.ReadHeader(settings.Path);
            image = NiftiReader.Read(settings.Path);
        }
        catch (Exception e) when (e is InvalidDataException or FileNotFoundException or DirectoryNotFoundException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return NnUnetApp.ExitBadInput;
        }

        var stats = new ChannelStatistics[image.Channels];
        for (int c = 0; c < image.Channels; c++) stats[c] = ChannelStatistics.Of(image, c);
        var all = ChannelStatistics.Combine(stats);
        var info = new ImageInfo(settings.Path, header, image, stats, all);
        if (settings.Json) JsonStdout.Writer.WriteLine(JsonSerializer.Serialize(info.ToJson(), IndentedJson.Options));
        else PrintTable(info);
        return NnUnetApp.ExitOk;
    }

    private static void PrintTable(ImageInfo info)
    {
        // A console bound to Console.Out now (not at start-up), so redirected output (tests, pipes) gets the table.
        var console = CommandConsole.Create();
        var table = new Table().Border(TableBorder.Rounded).AddColumn("field").AddColumn("value");
        table.Title = new TableTitle(Markup.Escape(info.Path));
        foreach (var (field, value) in info.Rows()) table.AddRow(Markup.Escape(field), Markup.Escape(value));
        console.Write(table);
    }

    private sealed record ImageInfo(string Path, NiftiHeader Header, MedicalImage Image, ChannelStatistics[] Channels, ChannelStatistics All)
    {
        public IEnumerable<(string, string)> Rows()
        {
            var g = Image.Geometry;
            var ras = g.ToRasAffine();
            yield return ("format", $"NIfTI-{(int)Header.Version}{(Header.IsGzipped ? ", gzip" : "")}, {(Header.IsBigEndian ? "big" : "little")} endian");
            yield return ("shape (z, y, x)", $"{Image.SizeZ} x {Image.SizeY} x {Image.SizeX}");
            yield return ("channels", Image.Channels.ToString(CultureInfo.InvariantCulture));
            yield return ("dtype", Header.HasScaling
                ? $"{Name(Image.Type)} (stored {Name(Header.StoredType)}, scl_slope {F(Header.SclSlope)}, scl_inter {F(Header.SclInter)})"
                : Name(Image.Type));
            yield return ("geometry from", Header.GeometrySource);
            yield return ("spacing (x, y, z)", Vector(g.Spacing));
            yield return ("origin (LPS)", Vector(g.Origin));
            for (int r = 0; r < 3; r++)
                yield return (r == 0 ? "direction (LPS)" : "", Vector([g.Direction[r * 3], g.Direction[r * 3 + 1], g.Direction[r * 3 + 2]]));
            for (int r = 0; r < 4; r++)
                yield return (r == 0 ? "RAS affine" : "", Vector([ras[r, 0], ras[r, 1], ras[r, 2], ras[r, 3]]));
            yield return ("min / max / mean", $"{F(All.Min)} / {F(All.Max)} / {F(All.Mean)}");
            if (Channels.Length > 1)
                for (int c = 0; c < Channels.Length; c++)
                    yield return ($"channel {c}", $"{F(Channels[c].Min)} / {F(Channels[c].Max)} / {F(Channels[c].Mean)}");
        }

        public Dictionary<string, object> ToJson()
        {
            var g = Image.Geometry;
            var ras = g.ToRasAffine();
            var affine = new double[4][];
            for (int r = 0; r < 4; r++) affine[r] = [ras[r, 0], ras[r, 1], ras[r, 2], ras[r, 3]];
            return new Dictionary<string, object>
            {
                ["path"] = Path,
                ["format"] = $"NIfTI-{(int)Header.Version}",
                ["gzipped"] = Header.IsGzipped,
                ["big_endian"] = Header.IsBigEndian,
                ["shape_zyx"] = new[] { Image.SizeZ, Image.SizeY, Image.SizeX },
                ["channels"] = Image.Channels,
                ["dtype"] = Name(Image.Type),
                ["stored_dtype"] = Name(Header.StoredType),
                ["scl_slope"] = Header.HasScaling ? Header.SclSlope : 1.0,
                ["scl_inter"] = Header.HasScaling ? Header.SclInter : 0.0,
                ["geometry_source"] = Header.GeometrySource,
                ["spacing"] = g.Spacing,
                ["origin"] = g.Origin,
                ["direction"] = g.Direction,
                ["ras_affine"] = affine,
                ["min"] = All.Min,
                ["max"] = All.Max,
                ["mean"] = All.Mean,
                ["channel_stats"] = Channels.Select(s => new Dictionary<string, double> { ["min"] = s.Min, ["max"] = s.Max, ["mean"] = s.Mean }).ToArray(),
            };
        }

        private static string Name(VoxelType type) => type.ToString().ToLowerInvariant();
        private static string F(double v) => v.ToString("G6", CultureInfo.InvariantCulture);
        private static string Vector(double[] v) => "(" + string.Join(", ", v.Select(F)) + ")";
    }

    private readonly record struct ChannelStatistics(double Min, double Max, double Mean, long Count)
    {
        public static ChannelStatistics Of(MedicalImage image, int channel)
        {
            int n = checked((int)image.VoxelsPerChannel);
            int start = channel * n;
            // By declared type: the runtime lets sbyte[] pass as byte[] in a type pattern.
            return image.Type switch
            {
                VoxelType.UInt8 => Scan(((byte[])image.Voxels).AsSpan(start, n)),
                VoxelType.Int8 => Scan(((sbyte[])image.Voxels).AsSpan(start, n)),
                VoxelType.Int16 => Scan(((short[])image.Voxels).AsSpan(start, n)),
                VoxelType.UInt16 => Scan(((ushort[])image.Voxels).AsSpan(start, n)),
                VoxelType.Int32 => Scan(((int[])image.Voxels).AsSpan(start, n)),
                VoxelType.UInt32 => Scan(((uint[])image.Voxels).AsSpan(start, n)),
                VoxelType.Int64 => Scan(((long[])image.Voxels).AsSpan(start, n)),
                VoxelType.Float32 => Scan(((float[])image.Voxels).AsSpan(start, n)),
                VoxelType.Float64 => Scan(((double[])image.Voxels).AsSpan(start, n)),
                _ => throw new InvalidOperationException($"unexpected voxel type {image.Type}"),
            };
        }

        public static ChannelStatistics Combine(ChannelStatistics[] parts)
        {
            double min = double.PositiveInfinity, max = double.NegativeInfinity, sum = 0;
            long count = 0;
            foreach (var p in parts)
            {
                min = Math.Min(min, p.Min);
                max = Math.Max(max, p.Max);
                sum += p.Mean * p.Count;
                count += p.Count;
            }
            return new ChannelStatistics(min, max, sum / count, count);
        }

        private static ChannelStatistics Scan<T>(ReadOnlySpan<T> values) where T : unmanaged, System.Numerics.INumberBase<T>
        {
            double min = double.PositiveInfinity, max = double.NegativeInfinity, sum = 0;
            foreach (var raw in values)
            {
                double v = double.CreateTruncating(raw);
                if (v < min) min = v;
                if (v > max) max = v;
                sum += v;
            }
            return new ChannelStatistics(min, max, sum / values.Length, values.Length);
        }
    }
}
