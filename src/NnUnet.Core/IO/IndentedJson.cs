using System.Text.Json;

namespace NnUnet.Core.IO;

/// <summary>
/// The one options instance for JSON that people read (plans, splits, fingerprints, owner and lock files, manifests, the
/// CLI's <c>--json</c> output) with System.Text.Json's defaults otherwise: indented. Shared by every such reader and
/// writer; read-only, so that nobody changes it under the others (System.Text.Json would refuse a change after its
/// first use anyway, but only then). JSON with other settings keeps its own options.
/// </summary>
public static class IndentedJson
{
    public static readonly JsonSerializerOptions Options = ReadOnly(new JsonSerializerOptions { WriteIndented = true });

    private static JsonSerializerOptions ReadOnly(JsonSerializerOptions options)
    {
        options.MakeReadOnly(populateMissingResolver: true);
        return options;
    }
}
