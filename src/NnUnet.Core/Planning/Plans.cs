using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using NnUnet.Core.Fingerprinting;
using NnUnet.Core.IO;

namespace NnUnet.Core.Planning;

/// <summary>
/// <c>nnUNetPlans.json</c> in nnU-Net v2's schema. All per-axis lists are in array order after
/// <see cref="TransposeForward"/> (largest spacing first), as in nnU-Net.
/// Configurations are kept as written (a cascade entry may only say <c>inherits_from</c>);
/// <see cref="GetConfiguration"/> resolves the inheritance.
/// </summary>
public sealed record NnUnetPlans
{
    [JsonPropertyName("dataset_name")] public required string DatasetName { get; init; }
    [JsonPropertyName("plans_name")] public string PlansName { get; init; } = "nnUNetPlans";
    [JsonPropertyName("original_median_spacing_after_transp")] public required double[] OriginalMedianSpacingAfterTransp { get; init; }
    [JsonPropertyName("original_median_shape_after_transp")] public required int[] OriginalMedianShapeAfterTransp { get; init; }
    [JsonPropertyName("image_reader_writer")] public string ImageReaderWriter { get; init; } = "NiftiIO";
    [JsonPropertyName("transpose_forward")] public required int[] TransposeForward { get; init; }
    [JsonPropertyName("transpose_backward")] public required int[] TransposeBackward { get; init; }
    /// <summary>Configuration name -> JSON object as stored (partial for inheriting configurations).</summary>
    [JsonPropertyName("configurations")] public required Dictionary<string, JsonObject> Configurations { get; init; }
    [JsonPropertyName("experiment_planner_used")] public string ExperimentPlannerUsed { get; init; } = "ExperimentPlanner";
    [JsonPropertyName("label_manager")] public string LabelManager { get; init; } = "LabelManager";
    [JsonPropertyName("foreground_intensity_properties_per_channel")] public required Dictionary<string, IntensityProperties> ForegroundIntensityPropertiesPerChannel { get; init; }

    /// <summary>How plans files are written and read: the shared <see cref="IndentedJson.Options"/>.</summary>
    public static readonly JsonSerializerOptions JsonOptions = IndentedJson.Options;

    [JsonIgnore] public IEnumerable<string> ConfigurationNames => Configurations.Keys;

    /// <summary>The configuration with <c>inherits_from</c> resolved (parent keys overridden by the child's).</summary>
    public PlansConfiguration GetConfiguration(string name)
    {
        var merged = ResolveInheritance(name, depth: 0);
        return merged.Deserialize<PlansConfiguration>(JsonOptions)
               ?? throw new InvalidDataException($"plans configuration '{name}' is empty");
    }

    private JsonObject ResolveInheritance(string name, int depth)
    {
        if (!Configurations.TryGetValue(name, out var own))
            throw new KeyNotFoundException($"the plans have no configuration '{name}' (they have: {string.Join(", ", Configurations.Keys)})");
        if (depth > 8) throw new InvalidDataException($"plans configuration '{name}': inherits_from loops");
        JsonObject result;
        if (own["inherits_from"]?.GetValue<string>() is { } parent)
        {
            result = ResolveInheritance(parent, depth + 1);
            result.Remove("inherits_from");
        }
        else result = new JsonObject();
        foreach (var (key, value) in own) result[key] = value?.DeepClone();
        return result;
    }

    public static NnUnetPlans Load(string path)
    {
        try
        {
            using var stream = File.OpenRead(path);
            return JsonSerializer.Deserialize<NnUnetPlans>(stream, JsonOptions)
                   ?? throw new InvalidDataException($"{path}: empty plans file");
        }
        catch (JsonException ex)
        {
            throw new InvalidDataException($"{path}: not a valid nnU-Net plans file ({ex.Message})", ex);
        }
    }

    public string ToJson() => JsonSerializer.Serialize(this, JsonOptions);
}

/// <summary>One configuration of the plans (2d, 3d_fullres, 3d_lowres, 3d_cascade_fullres), inheritance resolved.</summary>
public sealed record PlansConfiguration
{
    [JsonPropertyName("data_identifier")] public required string DataIdentifier { get; init; }
    [JsonPropertyName("preprocessor_name")] public string PreprocessorName { get; init; } = "DefaultPreprocessor";
    [JsonPropertyName("batch_size")] public required int BatchSize { get; init; }
    [JsonPropertyName("patch_size")] public required int[] PatchSize { get; init; }
    [JsonPropertyName("median_image_size_in_voxels")] public required double[] MedianImageSizeInVoxels { get; init; }
    [JsonPropertyName("spacing")] public required double[] Spacing { get; init; }
    [JsonPropertyName("normalization_schemes")] public required string[] NormalizationSchemes { get; init; }
    [JsonPropertyName("use_mask_for_norm")] public required bool[] UseMaskForNorm { get; init; }
    [JsonPropertyName("resampling_fn_data")] public string ResamplingFnData { get; init; } = "resample_data_or_seg_to_shape";
    [JsonPropertyName("resampling_fn_seg")] public string ResamplingFnSeg { get; init; } = "resample_data_or_seg_to_shape";
    [JsonPropertyName("resampling_fn_data_kwargs")] public ResamplingKwargs ResamplingFnDataKwargs { get; init; } = new(false, 3, 0, null);
    [JsonPropertyName("resampling_fn_seg_kwargs")] public ResamplingKwargs ResamplingFnSegKwargs { get; init; } = new(true, 1, 0, null);
    [JsonPropertyName("resampling_fn_probabilities")] public string ResamplingFnProbabilities { get; init; } = "resample_data_or_seg_to_shape";
    [JsonPropertyName("resampling_fn_probabilities_kwargs")] public ResamplingKwargs ResamplingFnProbabilitiesKwargs { get; init; } = new(false, 1, 0, null);
    [JsonPropertyName("architecture")] public required ArchitectureSpec Architecture { get; init; }
    [JsonPropertyName("batch_dice")] public required bool BatchDice { get; init; }
    /// <summary>Cascade: the configuration whose predictions this one takes as extra input (absent otherwise).</summary>
    [JsonPropertyName("previous_stage"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public string? PreviousStage { get; init; }
    /// <summary>
    /// Cascade: the configurations that consume this one's predictions. nnU-Net writes a single name as a plain string
    /// (<c>"next_stage": "3d_cascade_fullres"</c>) and reads a string or a list; so do we.
    /// </summary>
    [JsonPropertyName("next_stage"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull), JsonConverter(typeof(StringOrStringArrayConverter))]
    public string[]? NextStage { get; init; }
}

/// <summary>nnU-Net's resampling kwargs: <c>is_seg</c>, spline <c>order</c>, <c>order_z</c> for separate-z, <c>force_separate_z</c>.</summary>
public sealed record ResamplingKwargs(
    [property: JsonPropertyName("is_seg")] bool IsSeg,
    [property: JsonPropertyName("order")] int Order,
    [property: JsonPropertyName("order_z")] int OrderZ,
    [property: JsonPropertyName("force_separate_z")] bool? ForceSeparateZ);

/// <summary>The network as nnU-Net v2 plans describe it (<c>PlainConvUNet</c> and its kwargs).</summary>
public sealed record ArchitectureSpec
{
    [JsonPropertyName("network_class_name")] public string NetworkClassName { get; init; } = "dynamic_network_architectures.architectures.unet.PlainConvUNet";
    [JsonPropertyName("arch_kwargs")] public required ArchitectureKwargs ArchKwargs { get; init; }
    [JsonPropertyName("_kw_requires_import")] public string[] KwRequiresImport { get; init; } = ["conv_op", "norm_op", "dropout_op", "nonlin"];
}

public sealed record ArchitectureKwargs
{
    [JsonPropertyName("n_stages")] public required int NStages { get; init; }
    [JsonPropertyName("features_per_stage")] public required int[] FeaturesPerStage { get; init; }
    /// <summary>"torch.nn.modules.conv.Conv3d" or "torch.nn.modules.conv.Conv2d".</summary>
    [JsonPropertyName("conv_op")] public required string ConvOp { get; init; }
    [JsonPropertyName("kernel_sizes")] public required int[][] KernelSizes { get; init; }
    [JsonPropertyName("strides")] public required int[][] Strides { get; init; }
    [JsonPropertyName("n_conv_per_stage")] public required int[] NConvPerStage { get; init; }
    [JsonPropertyName("n_conv_per_stage_decoder")] public required int[] NConvPerStageDecoder { get; init; }
    [JsonPropertyName("conv_bias")] public bool ConvBias { get; init; } = true;
    [JsonPropertyName("norm_op")] public string NormOp { get; init; } = "torch.nn.modules.instancenorm.InstanceNorm3d";
    [JsonPropertyName("norm_op_kwargs")] public Dictionary<string, JsonNode?> NormOpKwargs { get; init; } = new() { ["eps"] = 1e-5, ["affine"] = true };
    [JsonPropertyName("dropout_op")] public string? DropoutOp { get; init; }
    [JsonPropertyName("dropout_op_kwargs")] public Dictionary<string, JsonNode?>? DropoutOpKwargs { get; init; }
    [JsonPropertyName("nonlin")] public string Nonlin { get; init; } = "torch.nn.LeakyReLU";
    [JsonPropertyName("nonlin_kwargs")] public Dictionary<string, JsonNode?> NonlinKwargs { get; init; } = new() { ["inplace"] = true };

    /// <summary>2 for Conv2d networks, 3 for Conv3d.</summary>
    [JsonIgnore] public int SpatialDims => ConvOp.EndsWith("2d", StringComparison.Ordinal) ? 2 : 3;
}

/// <summary>Reads a JSON string or a list of strings as <c>string[]</c>; writes one element as a plain string (nnU-Net's form).</summary>
public sealed class StringOrStringArrayConverter : JsonConverter<string[]>
{
    public override string[]? Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        switch (reader.TokenType)
        {
            case JsonTokenType.Null:
                return null;
            case JsonTokenType.String:
                return [reader.GetString()!];
            case JsonTokenType.StartArray:
                var items = new List<string>();
                while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
                {
                    if (reader.TokenType != JsonTokenType.String)
                        throw new JsonException($"expected a list of configuration names, found {reader.TokenType}");
                    items.Add(reader.GetString()!);
                }
                return items.ToArray();
            default:
                throw new JsonException($"expected a configuration name or a list of names, found {reader.TokenType}");
        }
    }

    public override void Write(Utf8JsonWriter writer, string[] value, JsonSerializerOptions options)
    {
        if (value.Length == 1)
        {
            writer.WriteStringValue(value[0]);
            return;
        }
        writer.WriteStartArray();
        foreach (string item in value) writer.WriteStringValue(item);
        writer.WriteEndArray();
    }
}
