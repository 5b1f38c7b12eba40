using System.Text.Json;
using System.Text.Json.Nodes;
using NnUnet.Core.Planning;
using NnUnet.Training.Network;
using NnUnet.Training.Trainer;
using static TorchSharp.torch;

namespace NnUnet.Training.Interop;

/// <summary>What a network checkpoint of either format holds that prediction and fine-tuning need (weights under our names).</summary>
public sealed class TrainedWeights : IDisposable
{
    public required string Path { get; init; }
    public required string TrainerName { get; init; }
    /// <summary>The configuration the checkpoint was trained for (nnU-Net: <c>init_args['configuration']</c>).</summary>
    public required string? Configuration { get; init; }
    /// <summary>nnU-Net's <c>inference_allowed_mirroring_axes</c> (empty: no mirroring).</summary>
    public required int[] MirrorAxes { get; init; }
    /// <summary>Our architecture record when the file is ours (<c>.ckpt</c>); null for nnU-Net's (the plans say it).</summary>
    public ArchitectureKwargs? Architecture { get; init; }
    public required Dictionary<string, Tensor> State { get; init; }

    /// <summary>Input channels and classes of the network these weights belong to (first conv, first head).</summary>
    public int InputChannels => (int)Get("encoder.0.0.conv.weight").shape[1];
    public int NumClasses => (int)Get("seg_layers.0.weight").shape[0];

    private Tensor Get(string name) => State.TryGetValue(name, out var t) ? t : throw new InvalidDataException($"{Path}: no weight '{name}'");

    /// <summary>Reads <c>.ckpt</c> (ours) or <c>.pth</c> (nnU-Net v2's <c>torch.save</c> of the trainer's checkpoint dict).</summary>
    public static TrainedWeights Load(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: checkpoint not found", path);
        if (path.EndsWith(Checkpoint.Extension, StringComparison.OrdinalIgnoreCase))
        {
            using var checkpoint = Checkpoint.Load(path);
            var meta = checkpoint.Metadata;
            var state = new Dictionary<string, Tensor>(StringComparer.Ordinal);
            foreach (var (name, t) in checkpoint.NetworkState) state[name] = t.clone();
            return new TrainedWeights { Path = path, TrainerName = meta.TrainerName, Configuration = meta.Configuration, MirrorAxes = meta.MirrorAxes, Architecture = meta.Architecture, State = state };
        }
        return NnUnetCheckpoint.Read(path);
    }

    /// <summary>Shapes of a network's state_dict, for the strict checks.</summary>
    public static Dictionary<string, long[]> Shapes(nn.Module network)
    {
        var shapes = new Dictionary<string, long[]>(StringComparer.Ordinal);
        foreach (var (name, t) in network.state_dict()) shapes[name] = t.shape;
        return shapes;
    }

    /// <summary>Copies every weight into <paramref name="network"/> (strict: same names, same shapes).</summary>
    public void LoadInto(PlainConvUNet network)
    {
        using var noGrad = no_grad();
        foreach (var (name, target) in network.state_dict())
        {
            if (!State.TryGetValue(name, out var source))
                throw new InvalidDataException($"{Path}: the network of trainer '{TrainerName}' differs from the plans' PlainConvUNet: no weight for '{NnUnetStateDict.ToNnUnet(name)}'");
            if (!source.shape.SequenceEqual(target.shape))
                throw new InvalidDataException($"{Path}: the network of trainer '{TrainerName}' differs from the plans' PlainConvUNet: '{NnUnetStateDict.ToNnUnet(name)}' has shape [{string.Join(", ", source.shape)}], the plans' network needs [{string.Join(", ", target.shape)}]");
            target.copy_(source);
        }
        int expected = network.state_dict().Count;
        if (State.Count != expected)
            throw new InvalidDataException($"{Path}: the network of trainer '{TrainerName}' differs from the plans' PlainConvUNet: {State.Count} weights, the plans' network has {expected}");
    }

    public void Dispose()
    {
        foreach (var t in State.Values) t.Dispose();
    }
}

/// <summary>
/// nnU-Net v2's <c>checkpoint_final.pth</c>: <c>torch.save</c> of the trainer's dict (<c>network_weights</c>,
/// <c>optimizer_state</c>, <c>grad_scaler_state</c>, <c>logging</c>, <c>_best_ema</c>, <c>current_epoch</c>,
/// <c>init_args</c>, <c>trainer_name</c>, <c>inference_allowed_mirroring_axes</c>), read with
/// <see cref="TorchPickleReader"/> and written with <see cref="TorchPickleWriter"/>.
/// </summary>
public static class NnUnetCheckpoint
{
    public const string Extension = ".pth";
    public const string PlainConvUNetClass = "dynamic_network_architectures.architectures.unet.PlainConvUNet";

    public static TrainedWeights Read(string path)
    {
        if (TorchPickleReader.Load(path) is not PickleDict root || !root.TryGet("network_weights", out var weightsObject) || weightsObject is not PickleDict weights)
            throw new InvalidDataException($"{path}: not an nnU-Net checkpoint (no 'network_weights' dict; a bare state_dict is not read)");
        string trainer = root.TryGet("trainer_name", out var t) && t is string name ? name : "unknown";
        string? configuration = root.TryGet("init_args", out var init) && init is PickleDict initArgs && initArgs.TryGet("configuration", out var c) ? c as string : null;
        int[] mirror = root.TryGet("inference_allowed_mirroring_axes", out var m) && m is PickleTuple or List<object?>
            ? (m is PickleTuple tuple ? tuple.Items : ((List<object?>)m!).ToArray()).Select(a => checked((int)(long)a!)).ToArray()
            : [];
        try
        {
            var state = NnUnetStateDict.ToOurs(weights, expected: null, path, trainer);
            return new TrainedWeights { Path = path, TrainerName = trainer, Configuration = configuration, MirrorAxes = mirror, State = state };
        }
        catch
        {
            foreach (var (_, v) in weights.Items) (v as Tensor)?.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The plans' network class of <paramref name="configuration"/> (inheritance followed); throws naming it when it is
    /// not PlainConvUNet (ResEnc U-Nets and others are not built here).
    /// </summary>
    public static void RequirePlainConvUNet(NnUnetPlans plans, string configuration, string source)
    {
        string? className = null;
        string? current = configuration;
        for (int depth = 0; current is not null && depth < 8 && className is null; depth++)
        {
            if (!plans.Configurations.TryGetValue(current, out var own)) break;
            className = own["architecture"]?["network_class_name"]?.GetValue<string>();
            current = own["inherits_from"]?.GetValue<string>();
        }
        if (className is not null && className != PlainConvUNetClass)
            throw new InvalidDataException($"{source}: configuration '{configuration}' uses the network '{className}'; only nnU-Net's PlainConvUNet ({PlainConvUNetClass}) is supported");
    }

    /// <summary>
    /// Writes our network as nnU-Net's <c>checkpoint_final.pth</c>. Only types <c>torch.load(weights_only=True)</c>
    /// accepts (no numpy scalars, and <c>init_args['device']</c> as the string <c>cpu</c> instead of a torch.device, which
    /// PyTorch before 2.4 refuses under weights_only); <c>optimizer_state</c> and <c>grad_scaler_state</c> are None
    /// (prediction and fine-tuning need neither; nnU-Net's <c>--c</c> continuation would).
    /// </summary>
    public static void Write(string path, Checkpoint checkpoint, JsonNode plans, JsonNode datasetJson)
    {
        var meta = checkpoint.Metadata;
        var ours = new List<KeyValuePair<string, Tensor>>();
        // our state_dict order (encoder, transpconvs, decoder, seg_layers), as the network registers them
        using var network = new PlainConvUNet(meta.Architecture, meta.InputChannels, meta.NumClasses, deepSupervision: false);
        checkpoint.LoadWeightsInto(network);
        foreach (var (name, t) in network.state_dict()) ours.Add(new(name, t.detach().cpu()));
        var weights = NnUnetStateDict.ToNnUnetStateDict(ours, meta.Architecture.DropoutOp is not null);

        var curves = meta.Curves;
        var logging = new PickleDict();
        logging.Set("mean_fg_dice", Doubles(curves.MeanForegroundDice));
        logging.Set("ema_fg_dice", Doubles(curves.EmaForegroundDice));
        logging.Set("dice_per_class_or_region", curves.DicePerClass.Select(d => (object?)Doubles(d)).ToList());
        logging.Set("train_losses", Doubles(curves.TrainLosses));
        logging.Set("val_losses", Doubles(curves.ValLosses));
        logging.Set("lrs", Doubles(curves.LearningRates));
        // nnU-Net logs wall-clock start and end of each epoch; we keep durations: a timeline ending now
        var starts = new List<object?>();
        var ends = new List<object?>();
        double clock = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() / 1000.0;
        for (int i = curves.EpochSeconds.Count - 1; i >= 0; i--) { ends.Insert(0, clock); clock -= curves.EpochSeconds[i]; starts.Insert(0, clock); }
        logging.Set("epoch_start_timestamps", starts);
        logging.Set("epoch_end_timestamps", ends);

        var initArgs = new PickleDict();
        initArgs.Set("plans", FromJson(plans));
        initArgs.Set("configuration", meta.Configuration);
        initArgs.Set("fold", meta.Fold == "all" ? "all" : (object)long.Parse(meta.Fold, System.Globalization.CultureInfo.InvariantCulture));
        initArgs.Set("dataset_json", FromJson(datasetJson));
        initArgs.Set("device", "cpu");

        var root = new PickleDict();
        root.Set("network_weights", new TorchPickleWriter.OrderedDict(weights));
        root.Set("optimizer_state", null);
        root.Set("grad_scaler_state", null);
        root.Set("logging", logging);
        root.Set("_best_ema", meta.BestEma);
        root.Set("current_epoch", (long)meta.Epoch);
        root.Set("init_args", initArgs);
        root.Set("trainer_name", meta.TrainerName);
        root.Set("inference_allowed_mirroring_axes", new PickleTuple(meta.MirrorAxes.Select(a => (object?)(long)a).ToArray()));
        try { TorchPickleWriter.Save(path, root); }
        finally { foreach (var (_, t) in ours) t.Dispose(); }
    }

    private static List<object?> Doubles(IEnumerable<double> values) => values.Select(v => (object?)v).ToList();

    /// <summary>A JSON document as pickle values (what nnU-Net's load_json gives: dicts, lists, str, int, float, bool, None).</summary>
    public static object? FromJson(JsonNode? node)
    {
        switch (node)
        {
            case null: return null;
            case JsonObject o:
                var dict = new PickleDict();
                foreach (var (key, value) in o) dict.Set(key, FromJson(value));
                return dict;
            case JsonArray a: return a.Select(FromJson).ToList();
            case JsonValue v:
                var element = JsonSerializer.SerializeToElement(v);
                return element.ValueKind switch
                {
                    JsonValueKind.String => element.GetString(),
                    JsonValueKind.True => true,
                    JsonValueKind.False => false,
                    JsonValueKind.Null => null,
                    JsonValueKind.Number => element.TryGetInt64(out long l) ? l : element.GetDouble(),
                    _ => throw new InvalidDataException($"unexpected JSON value {element.ValueKind}"),
                };
            default: throw new InvalidDataException("unexpected JSON node");
        }
    }
}
