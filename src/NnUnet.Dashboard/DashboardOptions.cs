using System.Net;
using System.Security.Cryptography;

namespace NnUnet.Dashboard;

/// <summary>
/// Where the dashboard listens and what it shows. <see cref="Host"/> defaults to loopback: the read-only pages carry
/// no secrets but the actions do, so exposing it on another interface is an explicit choice (<c>--dashboard 0.0.0.0:5080</c>).
/// </summary>
/// <param name="Host">IP address or host name to bind (default 127.0.0.1).</param>
/// <param name="Port">TCP port; 0 = any free port (tests).</param>
/// <param name="Token">Secret every POST action must carry (header <c>X-Dashboard-Token</c> or form field <c>token</c>).</param>
/// <param name="ResultsRoot">nnUNet_results folder: the final selection is read from <c>ResultsRoot/Dataset/best_configuration.json</c>.</param>
/// <param name="DatasetName">dataset folder name of the sweep (for the final selection).</param>
/// <param name="InsecureTransport">the cluster runs over plain TCP without admission (<c>--insecure</c>): the pages and
/// <c>/api/cluster</c> say so.</param>
/// <param name="TokenForReading">whether reading (pages, API, events, metrics) needs the token too; default: when bound
/// beyond loopback (see <see cref="ReadNeedsToken"/>).</param>
public sealed record DashboardOptions(string Host, int Port, string Token, string? ResultsRoot = null, string? DatasetName = null,
    bool InsecureTransport = false, bool? TokenForReading = null)
{
    /// <summary>What the dashboard shows while <see cref="InsecureTransport"/>.</summary>
    public const string InsecureWarning = "This cluster runs with --insecure: plain TCP without admission. Any process that reaches " +
                                          "the coordinator's port can join, take jobs and send commands.";

    /// <summary>Cookie that carries the token of a dashboard bound beyond loopback (set when a page is opened with <c>?token=</c>).</summary>
    public const string TokenCookie = "nnunet-dashboard-token";

    public const string DefaultHost = "127.0.0.1";
    public const int DefaultPort = 5080;
    public const string TokenHeader = "X-Dashboard-Token";

    /// <summary>Parses <c>HOST:PORT</c>, <c>:PORT</c> or <c>PORT</c> (host 127.0.0.1), or <c>[v6]:PORT</c>.</summary>
    public static (string Host, int Port) ParseEndpoint(string text)
    {
        if (string.IsNullOrWhiteSpace(text)) throw new ArgumentException("--dashboard: expected HOST:PORT, got an empty value");
        text = text.Trim();
        string host = DefaultHost, portText = text;
        int colon = text.LastIndexOf(':');
        if (colon >= 0)
        {
            host = text[..colon].Trim('[', ']');
            portText = text[(colon + 1)..];
            if (host.Length == 0) host = DefaultHost;
        }
        if (!int.TryParse(portText, out int port) || port < 0 || port > 65535)
            throw new ArgumentException($"--dashboard: '{text}' is not HOST:PORT (port 0-65535)");
        return (host, port);
    }

    /// <summary>A fresh random token (128 bits, URL-safe hex).</summary>
    public static string NewToken() => Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));

    /// <summary>True when <see cref="Host"/> binds only the loopback interface; otherwise reading needs the token too.</summary>
    public bool IsLoopback => Host == "localhost" || (IPAddress.TryParse(Host, out var ip) && IPAddress.IsLoopback(ip));

    /// <summary>Reading needs the token: bound beyond loopback, unless <see cref="TokenForReading"/> says otherwise.</summary>
    public bool ReadNeedsToken => TokenForReading ?? !IsLoopback;
}
