using System.Collections;
using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using NnUnet.Core.IO;

namespace NnUnet.Core.Evaluation;

/// <summary>
/// JSON exactly as nnU-Net writes it (batchgenerators' <c>save_json</c>: Python's <c>json.dump(obj, indent=4,
/// sort_keys=...)</c>): four-space indent, <c>", "</c>-free item separators, floats in Python's <c>repr</c> form
/// (<c>1.0</c>, <c>0.5</c>, <c>1e-05</c>), NaN and infinities as the bare literals <c>NaN</c>, <c>Infinity</c>,
/// <c>-Infinity</c>, non-ASCII escaped. Values: <see cref="IDictionary{TKey,TValue}"/> with string keys, lists,
/// string, bool, integers, double, null. <see cref="Parse"/> reads such files back (System.Text.Json rejects bare NaN).
/// </summary>
public static class PythonJson
{
    public static string Serialize(object? value, bool sortKeys = true)
    {
        var sb = new StringBuilder();
        Write(sb, value, 0, sortKeys);
        return sb.ToString();
    }

    /// <summary>Writes atomically (temp file + rename) so a reader never sees half a file.</summary>
    public static void Save(object? value, string path, bool sortKeys = true)
    {
        AtomicFile.WriteAllText(path, Serialize(value, sortKeys));
    }

    /// <summary>Parses JSON that may hold bare NaN / Infinity / -Infinity (Python's json output); those become the
    /// strings "NaN", "Infinity", "-Infinity", which <see cref="ToDouble"/> turns back into doubles.</summary>
    public static JsonNode? Parse(string json, string source)
    {
        try
        {
            return JsonNode.Parse(QuoteNamedNumbers(json));
        }
        catch (System.Text.Json.JsonException ex)
        {
            throw new InvalidDataException($"{source}: not valid JSON ({ex.Message})", ex);
        }
    }

    public static double ToDouble(JsonNode? node, string source, string field)
    {
        if (node is JsonValue value)
        {
            if (value.TryGetValue(out double d)) return d;
            if (value.TryGetValue(out string? s))
            {
                switch (s)
                {
                    case "NaN": return double.NaN;
                    case "Infinity": return double.PositiveInfinity;
                    case "-Infinity": return double.NegativeInfinity;
                }
            }
        }
        throw new InvalidDataException($"{source}: {field} must be a number, got {node?.ToJsonString() ?? "null"}");
    }

    /// <summary>Python's <c>repr(float)</c>: shortest round-trip digits, fixed notation for 1e-4 &lt;= |v| &lt; 1e16,
    /// else d.ddde+XX.</summary>
    public static string FormatFloat(double value)
    {
        if (double.IsNaN(value)) return "NaN";
        if (double.IsPositiveInfinity(value)) return "Infinity";
        if (double.IsNegativeInfinity(value)) return "-Infinity";
        string r = value.ToString("R", CultureInfo.InvariantCulture);
        bool negative = r.StartsWith('-');
        if (negative) r = r[1..];
        int exponent = 0;
        int e = r.IndexOfAny(['E', 'e']);
        if (e >= 0)
        {
            exponent = int.Parse(r.AsSpan(e + 1), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture);
            r = r[..e];
        }
        int dot = r.IndexOf('.');
        string intPart = dot >= 0 ? r[..dot] : r;
        string fracPart = dot >= 0 ? r[(dot + 1)..] : "";
        string digits = intPart + fracPart;
        int pointPosition = intPart.Length + exponent; // value = 0.<digits> * 10^pointPosition
        int lead = 0;
        while (lead < digits.Length && digits[lead] == '0') lead++;
        digits = digits[lead..];
        pointPosition -= lead;
        digits = digits.TrimEnd('0');
        string sign = negative ? "-" : "";
        if (digits.Length == 0) return sign + "0.0";
        if (pointPosition > -4 && pointPosition <= 16)
        {
            if (pointPosition <= 0) return sign + "0." + new string('0', -pointPosition) + digits;
            if (pointPosition >= digits.Length) return sign + digits + new string('0', pointPosition - digits.Length) + ".0";
            return sign + digits[..pointPosition] + "." + digits[pointPosition..];
        }
        int sciExponent = pointPosition - 1;
        string mantissa = digits.Length == 1 ? digits : digits[..1] + "." + digits[1..];
        return sign + mantissa + "e" + (sciExponent < 0 ? "-" : "+") + Math.Abs(sciExponent).ToString("00", CultureInfo.InvariantCulture);
    }

    private static void Write(StringBuilder sb, object? value, int depth, bool sortKeys)
    {
        switch (value)
        {
            case null: sb.Append("null"); break;
            case string s: WriteString(sb, s); break;
            case bool b: sb.Append(b ? "true" : "false"); break;
            case double d: sb.Append(FormatFloat(d)); break;
            case float f: sb.Append(FormatFloat(f)); break;
            case int or long or short or byte or sbyte or ushort or uint or ulong:
                sb.Append(Convert.ToString(value, CultureInfo.InvariantCulture)); break;
            case IDictionary dictionary: WriteObject(sb, dictionary, depth, sortKeys); break;
            case IEnumerable list: WriteArray(sb, list, depth, sortKeys); break;
            default: throw new ArgumentException($"cannot write {value.GetType().Name} as JSON");
        }
    }

    private static void WriteObject(StringBuilder sb, IDictionary dictionary, int depth, bool sortKeys)
    {
        if (dictionary.Count == 0) { sb.Append("{}"); return; }
        var keys = new List<string>(dictionary.Count);
        foreach (var key in dictionary.Keys) keys.Add(key as string ?? throw new ArgumentException("JSON object keys must be strings"));
        if (sortKeys) keys.Sort(StringComparer.Ordinal);
        sb.Append('{');
        for (int i = 0; i < keys.Count; i++)
        {
            sb.Append(i == 0 ? "\n" : ",\n");
            Indent(sb, depth + 1);
            WriteString(sb, keys[i]);
            sb.Append(": ");
            Write(sb, dictionary[keys[i]], depth + 1, sortKeys);
        }
        sb.Append('\n');
        Indent(sb, depth);
        sb.Append('}');
    }

    private static void WriteArray(StringBuilder sb, IEnumerable list, int depth, bool sortKeys)
    {
        bool any = false;
        foreach (var item in list)
        {
            sb.Append(any ? ",\n" : "[\n");
            any = true;
            Indent(sb, depth + 1);
            Write(sb, item, depth + 1, sortKeys);
        }
        if (!any) { sb.Append("[]"); return; }
        sb.Append('\n');
        Indent(sb, depth);
        sb.Append(']');
    }

    private static void Indent(StringBuilder sb, int depth) => sb.Append(' ', 4 * depth);

    private static void WriteString(StringBuilder sb, string s)
    {
        sb.Append('"');
        foreach (char c in s)
        {
            switch (c)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                case '\b': sb.Append("\\b"); break;
                case '\f': sb.Append("\\f"); break;
                default:
                    if (c < 0x20 || c > 0x7e) sb.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                    else sb.Append(c);
                    break;
            }
        }
        sb.Append('"');
    }

    /// <summary>Quotes bare NaN / Infinity / -Infinity tokens outside strings.</summary>
    private static string QuoteNamedNumbers(string json)
    {
        if (!json.Contains("NaN", StringComparison.Ordinal) && !json.Contains("Infinity", StringComparison.Ordinal)) return json;
        var sb = new StringBuilder(json.Length + 64);
        bool inString = false;
        for (int i = 0; i < json.Length; i++)
        {
            char c = json[i];
            if (inString)
            {
                sb.Append(c);
                if (c == '\\' && i + 1 < json.Length) sb.Append(json[++i]);
                else if (c == '"') inString = false;
                continue;
            }
            if (c == '"') { inString = true; sb.Append(c); continue; }
            string? token = null;
            if (string.CompareOrdinal(json, i, "NaN", 0, 3) == 0) token = "NaN";
            else if (string.CompareOrdinal(json, i, "-Infinity", 0, 9) == 0) token = "-Infinity";
            else if (string.CompareOrdinal(json, i, "Infinity", 0, 8) == 0) token = "Infinity";
            if (token is null) { sb.Append(c); continue; }
            sb.Append('"').Append(token).Append('"');
            i += token.Length - 1;
        }
        return sb.ToString();
    }
}
