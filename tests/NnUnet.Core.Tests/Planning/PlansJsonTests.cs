using System.Text.Json.Nodes;
using NnUnet.Core.Planning;
using static NnUnet.Core.Tests.Planning.PlanningFixtures;

namespace NnUnet.Core.Tests.Planning;

public sealed class PlansJsonTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("nnunet-plans-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Fact]
    public void Plans_round_trip_through_a_file_unchanged()
    {
        var plans = PlanUniform(63, [1.245, 0.78515625, 0.78515625], [252, 512, 512]);
        string path = Path.Combine(_folder, "nnUNetPlans.json");
        File.WriteAllText(path, plans.ToJson());

        var loaded = NnUnetPlans.Load(path);

        Assert.Equal(plans.ToJson(), loaded.ToJson());
        foreach (string name in plans.ConfigurationNames)
            ReferencePlannerTests.AssertJsonEqual(JsonNode.Parse(System.Text.Json.JsonSerializer.Serialize(plans.GetConfiguration(name), NnUnetPlans.JsonOptions)),
                JsonNode.Parse(System.Text.Json.JsonSerializer.Serialize(loaded.GetConfiguration(name), NnUnetPlans.JsonOptions)), name);
    }

    [Fact]
    public void Json_uses_nnUNet_key_names_and_nesting()
    {
        var plans = PlanUniform(63, [1.245, 0.78515625, 0.78515625], [252, 512, 512]);
        var json = JsonNode.Parse(plans.ToJson())!.AsObject();

        string[] topLevel = ["dataset_name", "plans_name", "original_median_spacing_after_transp", "original_median_shape_after_transp",
            "image_reader_writer", "transpose_forward", "transpose_backward", "configurations", "experiment_planner_used",
            "label_manager", "foreground_intensity_properties_per_channel"];
        Assert.Equal(topLevel, Keys(json));
        var lowres = json["configurations"]!["3d_lowres"]!.AsObject();
        Assert.Equal("3d_cascade_fullres", lowres["next_stage"]!.GetValue<string>());
        Assert.Equal(
            ["data_identifier", "preprocessor_name", "batch_size", "patch_size", "median_image_size_in_voxels", "spacing",
             "normalization_schemes", "use_mask_for_norm", "resampling_fn_data", "resampling_fn_seg", "resampling_fn_data_kwargs",
             "resampling_fn_seg_kwargs", "resampling_fn_probabilities", "resampling_fn_probabilities_kwargs", "architecture",
             "batch_dice", "next_stage"],
            Keys(lowres));
        var fullres = json["configurations"]!["3d_fullres"]!.AsObject();
        Assert.False(fullres.ContainsKey("next_stage"));
        Assert.False(fullres.ContainsKey("previous_stage"));
        var archKwargs = fullres["architecture"]!["arch_kwargs"]!.AsObject();
        Assert.Equal("torch.nn.modules.conv.Conv3d", archKwargs["conv_op"]!.GetValue<string>());
        Assert.Null(archKwargs["dropout_op"]);
        Assert.True(archKwargs.ContainsKey("dropout_op"));
        Assert.Equal(160, fullres["patch_size"]![2]!.GetValue<int>());
        var cascade = json["configurations"]!["3d_cascade_fullres"]!.AsObject();
        Assert.Equal(["inherits_from", "previous_stage"], Keys(cascade));
        Assert.Equal(100.0, json["foreground_intensity_properties_per_channel"]!["0"]!["mean"]!.GetValue<double>());
    }

    [Fact]
    public void Cascade_configuration_resolves_to_fullres_with_its_previous_stage()
    {
        var plans = PlanUniform(63, [1.245, 0.78515625, 0.78515625], [252, 512, 512]);

        var fullres = plans.GetConfiguration("3d_fullres");
        var cascade = plans.GetConfiguration("3d_cascade_fullres");

        Assert.Equal("3d_lowres", cascade.PreviousStage);
        Assert.Equal(fullres with { PreviousStage = "3d_lowres" }, cascade with { Architecture = fullres.Architecture, PatchSize = fullres.PatchSize,
            MedianImageSizeInVoxels = fullres.MedianImageSizeInVoxels, Spacing = fullres.Spacing, NormalizationSchemes = fullres.NormalizationSchemes,
            UseMaskForNorm = fullres.UseMaskForNorm });
        Assert.Equal(fullres.PatchSize, cascade.PatchSize);
        Assert.Equal(fullres.Spacing, cascade.Spacing);
        Assert.Equal(fullres.Architecture.ArchKwargs.Strides, cascade.Architecture.ArchKwargs.Strides);
        Assert.Equal(fullres.DataIdentifier, cascade.DataIdentifier);
        Assert.True(cascade.BatchDice);
    }

    [Fact]
    public void Child_keys_override_inherited_ones()
    {
        var plans = PlanUniform(63, [1.245, 0.78515625, 0.78515625], [252, 512, 512]);
        plans.Configurations["3d_fullres_bs4"] = new JsonObject { ["inherits_from"] = "3d_fullres", ["batch_size"] = 4 };

        var custom = plans.GetConfiguration("3d_fullres_bs4");

        Assert.Equal(4, custom.BatchSize);
        Assert.Equal(plans.GetConfiguration("3d_fullres").PatchSize, custom.PatchSize);
        Assert.Throws<KeyNotFoundException>(() => plans.GetConfiguration("3d_missing"));
    }

    [Fact]
    public void Next_stage_may_be_a_list_as_nnUNet_accepts()
    {
        var plans = PlanUniform(63, [1.245, 0.78515625, 0.78515625], [252, 512, 512]);
        plans.Configurations["3d_lowres"]["next_stage"] = new JsonArray("3d_cascade_fullres", "3d_cascade_other");
        string path = Path.Combine(_folder, "plans.json");
        File.WriteAllText(path, plans.ToJson());

        var lowres = NnUnetPlans.Load(path).GetConfiguration("3d_lowres");

        Assert.Equal(["3d_cascade_fullres", "3d_cascade_other"], lowres.NextStage!);
    }

    [Fact]
    public void Broken_plans_file_names_the_file()
    {
        string path = Path.Combine(_folder, "broken.json");
        File.WriteAllText(path, "{\"dataset_name\": 3");
        var error = Assert.Throws<InvalidDataException>(() => NnUnetPlans.Load(path));
        Assert.Contains(path, error.Message);
    }

    [Fact]
    public void Saving_replaces_planner_configurations_and_keeps_custom_ones()
    {
        string path = PlansFile.PathFor(_folder);
        var old = PlanUniform(10, [1.0, 1.0, 1.0], [64, 64, 64]);
        old.Configurations["3d_fullres_bs4"] = new JsonObject { ["inherits_from"] = "3d_fullres", ["batch_size"] = 4 };
        Assert.Empty(PlansFile.SaveKeepingCustomConfigurations(old, path));

        var replanned = PlanUniform(63, [1.245, 0.78515625, 0.78515625], [252, 512, 512]);
        var kept = PlansFile.SaveKeepingCustomConfigurations(replanned, path);

        Assert.Equal(["3d_fullres_bs4"], kept);
        var loaded = NnUnetPlans.Load(path);
        Assert.Equal(["2d", "3d_lowres", "3d_fullres", "3d_cascade_fullres", "3d_fullres_bs4"], loaded.ConfigurationNames);
        Assert.Equal([80, 192, 160], loaded.GetConfiguration("3d_fullres_bs4").PatchSize);
        Assert.Equal(4, loaded.GetConfiguration("3d_fullres_bs4").BatchSize);
        Assert.Equal(replanned.GetConfiguration("3d_fullres").PatchSize, loaded.GetConfiguration("3d_fullres").PatchSize);
        Assert.Empty(Directory.GetFiles(_folder, "*.tmp-*"));
    }

    [Fact]
    public void Saving_over_a_broken_plans_file_is_refused()
    {
        string path = PlansFile.PathFor(_folder, "nnUNetPlans");
        File.WriteAllText(path, "not json");
        var error = Assert.Throws<InvalidDataException>(() => PlansFile.SaveKeepingCustomConfigurations(PlanUniform(3, [1.0, 1.0, 1.0], [32, 32, 32]), path));
        Assert.Contains(path, error.Message);
        Assert.Equal("not json", File.ReadAllText(path));
    }

    private static List<string> Keys(JsonObject obj)
    {
        var keys = new List<string>();
        foreach (var (key, _) in obj) keys.Add(key);
        return keys;
    }
}
