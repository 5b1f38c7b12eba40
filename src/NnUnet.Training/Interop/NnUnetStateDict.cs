using System.Text.RegularExpressions;
using static TorchSharp.torch;

namespace NnUnet.Training.Interop;

/// <summary>
/// The state_dict names of nnU-Net's <c>PlainConvUNet</c> (dynamic_network_architectures) and ours, both ways.
/// nnU-Net's module tree: <c>encoder.stages.S</c> is a Sequential holding one StackedConvBlocks
/// (<c>encoder.stages.S.0.convs.M</c>), each ConvDropoutNormReLU registers <c>conv</c> and <c>norm</c> and again the
/// same modules as <c>all_modules.0</c> / <c>all_modules.1</c> (<c>.2</c> for the norm when a dropout sits between);
/// the decoder keeps a reference to the encoder (<c>decoder.encoder.*</c>, the same tensors again) and has
/// <c>decoder.stages.D.convs.M</c>, <c>decoder.transpconvs.D</c>, <c>decoder.seg_layers.D</c>. state_dict lists every
/// alias, so a strict load needs all of them. Ours (<see cref="Network.PlainConvUNet"/>): <c>encoder.S.M.{conv,norm}</c>,
/// <c>decoder.D.M.{conv,norm}</c>, <c>transpconvs.D</c>, <c>seg_layers.D</c>.
/// </summary>
public static partial class NnUnetStateDict
{
    [GeneratedRegex(@"^encoder\.stages\.(\d+)\.0\.convs\.(\d+)\.(conv|norm)\.(weight|bias)$")]
    private static partial Regex EncoderBlock();
    [GeneratedRegex(@"^decoder\.stages\.(\d+)\.convs\.(\d+)\.(conv|norm)\.(weight|bias)$")]
    private static partial Regex DecoderBlock();
    [GeneratedRegex(@"^decoder\.(transpconvs|seg_layers)\.(\d+)\.(weight|bias)$")]
    private static partial Regex DecoderLayer();
    [GeneratedRegex(@"^(encoder\.stages\.\d+\.0|decoder\.stages\.\d+)\.convs\.\d+\.all_modules\.\d+\.(weight|bias)$")]
    private static partial Regex AllModulesAlias();
    [GeneratedRegex(@"^(encoder|decoder)\.(\d+)\.(\d+)\.(conv|norm)\.(weight|bias)$")]
    private static partial Regex OurBlock();
    [GeneratedRegex(@"^(transpconvs|seg_layers)\.(\d+)\.(weight|bias)$")]
    private static partial Regex OurLayer();

    /// <summary>Prefixes nnU-Net itself strips when loading (DDP's <c>module.</c>, torch.compile's <c>_orig_mod.</c>).</summary>
    private static string StripWrappers(string key)
    {
        while (true)
        {
            if (key.StartsWith("module.", StringComparison.Ordinal)) key = key["module.".Length..];
            else if (key.StartsWith("_orig_mod.", StringComparison.Ordinal)) key = key["_orig_mod.".Length..];
            else return key;
        }
    }

    /// <summary>Our name for an nnU-Net key; null for an alias (<c>all_modules.*</c>, <c>decoder.encoder.*</c>); false when the key is not PlainConvUNet's.</summary>
    public static bool TryToOurs(string nnUnetKey, out string? ours)
    {
        string key = StripWrappers(nnUnetKey);
        ours = null;
        if (key.StartsWith("decoder.encoder.", StringComparison.Ordinal))
            return TryToOurs(key["decoder.".Length..], out _);   // alias of an encoder tensor
        if (AllModulesAlias().IsMatch(key)) return true;
        if (EncoderBlock().Match(key) is { Success: true } e) { ours = $"encoder.{e.Groups[1]}.{e.Groups[2]}.{e.Groups[3]}.{e.Groups[4]}"; return true; }
        if (DecoderBlock().Match(key) is { Success: true } d) { ours = $"decoder.{d.Groups[1]}.{d.Groups[2]}.{d.Groups[3]}.{d.Groups[4]}"; return true; }
        if (DecoderLayer().Match(key) is { Success: true } l) { ours = $"{l.Groups[1]}.{l.Groups[2]}.{l.Groups[3]}"; return true; }
        return false;
    }

    /// <summary>nnU-Net's canonical name for one of ours (the <c>conv</c>/<c>norm</c> spelling, not the aliases).</summary>
    public static string ToNnUnet(string ours)
    {
        if (OurBlock().Match(ours) is { Success: true } b)
            return b.Groups[1].Value == "encoder"
                ? $"encoder.stages.{b.Groups[2]}.0.convs.{b.Groups[3]}.{b.Groups[4]}.{b.Groups[5]}"
                : $"decoder.stages.{b.Groups[2]}.convs.{b.Groups[3]}.{b.Groups[4]}.{b.Groups[5]}";
        if (OurLayer().Match(ours) is { Success: true } l) return $"decoder.{l.Groups[1]}.{l.Groups[2]}.{l.Groups[3]}";
        throw new ArgumentException($"'{ours}' is not a parameter name of our PlainConvUNet");
    }

    /// <summary>
    /// Our state_dict (ours names, CPU tensors) as nnU-Net's, every alias included and in nnU-Net's module order:
    /// encoder, decoder.encoder, decoder.stages, decoder.transpconvs, decoder.seg_layers. Aliases are the same tensor
    /// objects, so <see cref="TorchPickleWriter"/> stores each parameter once, as torch.save does.
    /// </summary>
    public static PickleDict ToNnUnetStateDict(IReadOnlyList<KeyValuePair<string, Tensor>> ours, bool withDropout)
    {
        var encoder = new List<KeyValuePair<string, Tensor>>();
        var decoderStages = new List<KeyValuePair<string, Tensor>>();
        var transpconvs = new List<KeyValuePair<string, Tensor>>();
        var segLayers = new List<KeyValuePair<string, Tensor>>();
        foreach (var (name, tensor) in ours)
        {
            var target = name.StartsWith("encoder.", StringComparison.Ordinal) ? encoder
                : name.StartsWith("decoder.", StringComparison.Ordinal) ? decoderStages
                : name.StartsWith("transpconvs.", StringComparison.Ordinal) ? transpconvs
                : name.StartsWith("seg_layers.", StringComparison.Ordinal) ? segLayers
                : throw new ArgumentException($"'{name}' is not a parameter name of our PlainConvUNet");
            target.Add(new(ToNnUnet(name), tensor));
        }
        var result = new PickleDict();
        AddBlocksWithAliases(result, "", encoder, withDropout);
        AddBlocksWithAliases(result, "decoder.", encoder, withDropout);
        AddBlocksWithAliases(result, "", decoderStages, withDropout);
        foreach (var (key, t) in transpconvs) result.Items.Add(new(key, t));
        foreach (var (key, t) in segLayers) result.Items.Add(new(key, t));
        return result;
    }

    /// <summary>Per ConvDropoutNormReLU: conv.*, norm.*, then all_modules.0.* (conv) and all_modules.1|2.* (norm).</summary>
    private static void AddBlocksWithAliases(PickleDict result, string prefix, List<KeyValuePair<string, Tensor>> entries, bool withDropout)
    {
        int i = 0;
        while (i < entries.Count)
        {
            string block = entries[i].Key[..entries[i].Key.LastIndexOf('.', entries[i].Key.LastIndexOf('.') - 1)];
            int end = i;
            while (end < entries.Count && entries[end].Key.StartsWith(block + ".", StringComparison.Ordinal)) end++;
            for (int j = i; j < end; j++) result.Items.Add(new(prefix + entries[j].Key, entries[j].Value));
            for (int j = i; j < end; j++)
            {
                string rest = entries[j].Key[(block.Length + 1)..];                 // conv.weight / norm.bias
                string module = rest.StartsWith("conv.", StringComparison.Ordinal) ? "0" : withDropout ? "2" : "1";
                result.Items.Add(new($"{prefix}{block}.all_modules.{module}.{rest[(rest.IndexOf('.') + 1)..]}", entries[j].Value));
            }
            i = end;
        }
    }

    /// <summary>
    /// nnU-Net's network_weights renamed to ours, checked strictly against <paramref name="expected"/> (our network's
    /// state_dict shapes): every key must map, every parameter must be present with its shape. Otherwise an
    /// <see cref="InvalidDataException"/> that says the checkpoint holds another architecture and names the keys.
    /// </summary>
    public static Dictionary<string, Tensor> ToOurs(PickleDict weights, IReadOnlyDictionary<string, long[]>? expected, string source, string trainerName)
    {
        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        var unexpected = new List<string>();
        foreach (var (keyObject, value) in weights.Items)
        {
            if (keyObject is not string key || value is not Tensor tensor) throw new InvalidDataException($"{source}: network_weights holds a non-tensor entry '{keyObject}'");
            if (!TryToOurs(key, out string? ours)) { unexpected.Add(key); continue; }
            if (ours is not null) result[ours] = tensor;
        }
        string architecture = $"{source}: the network of trainer '{trainerName}' is not nnU-Net's PlainConvUNet";
        if (unexpected.Count > 0)
            throw new InvalidDataException($"{architecture} (another architecture, e.g. a residual encoder U-Net): unexpected weights " +
                                           $"{string.Join(", ", unexpected.Take(3).Select(k => $"'{k}'"))}{(unexpected.Count > 3 ? $" and {unexpected.Count - 3} more" : "")}");
        if (expected is null) return result;
        var missing = expected.Keys.Where(k => !result.ContainsKey(k)).ToList();
        if (missing.Count > 0)
            throw new InvalidDataException($"{architecture} of these plans: missing weights {string.Join(", ", missing.Take(3).Select(k => $"'{ToNnUnet(k)}'"))}" +
                                           $"{(missing.Count > 3 ? $" and {missing.Count - 3} more" : "")}");
        foreach (var (name, shape) in expected)
            if (!result[name].shape.SequenceEqual(shape))
                throw new InvalidDataException($"{architecture} of these plans: '{ToNnUnet(name)}' has shape [{string.Join(", ", result[name].shape)}], the plans' network needs [{string.Join(", ", shape)}]");
        var extra = result.Keys.Where(k => !expected.ContainsKey(k)).ToList();
        if (extra.Count > 0)
            throw new InvalidDataException($"{architecture} of these plans: weights beyond the plans' network, e.g. '{ToNnUnet(extra[0])}' (more stages than the plans say)");
        return result;
    }
}
