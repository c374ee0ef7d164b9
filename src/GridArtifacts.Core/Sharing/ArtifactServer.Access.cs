using System.Collections.Concurrent;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using GridArtifacts.Core.Stores;

namespace GridArtifacts.Core.Sharing;

/// <summary>Who may use the page: its access token, the cookie it becomes, one-time entry codes, same-origin POSTs.</summary>
public sealed partial class ArtifactServer
{
    /// <summary>
    /// The gate in front of every page route: trades an entry code or a token in the address for the
    /// cookie (303 to <c>/</c>), refuses a request without the token (401) and a POST from another
    /// origin (403). True when the request may go on to its route.
    /// </summary>
    private async Task<bool> PassPageGateAsync(HttpListenerContext ctx, string path)
    {
        var req = ctx.Request;
        var res = ctx.Response;
        if (req.QueryString["code"] is { } code && req.HttpMethod == "GET" && path == "/")
        {
            if (!RedeemEntryCode(code))
            {
                res.StatusCode = 401;
                await WriteTextAsync(res, "text/plain; charset=utf-8",
                    "This entry address has been used or has expired. Run Show-GridArtifact again, or open the address it printed.").ConfigureAwait(false);
                return false;
            }
            // A browser opened on an entry file: the code, once, for the cookie (and out of the address bar).
            res.Headers.Add("Set-Cookie", $"{CookieName}={Encoding.ASCII.GetString(_token)}; Path=/; HttpOnly; SameSite=Strict");
            res.StatusCode = 303;
            res.RedirectLocation = "/";
            return false;
        }
        var fromQuery = req.QueryString["token"];
        if (!Authorized(fromQuery ?? req.Cookies[CookieName]?.Value))
        {
            res.StatusCode = 401;
            await WriteTextAsync(res, "text/plain; charset=utf-8",
                "This page needs the address that Start-GridArtifactServer or Show-GridArtifact printed (it carries an access token).").ConfigureAwait(false);
            return false;
        }
        if (fromQuery is not null && req.HttpMethod == "GET" && path == "/")
        {
            // Trade the token in the address for a cookie, and take it out of the address bar and history.
            res.Headers.Add("Set-Cookie", $"{CookieName}={fromQuery}; Path=/; HttpOnly; SameSite=Strict");
            res.StatusCode = 303;
            res.RedirectLocation = "/";
            return false;
        }
        if (req.HttpMethod == "POST" && !SameOrigin(req))
        {
            res.StatusCode = 403;
            return false;
        }
        return true;
    }

    /// <summary>How long an entry code opens the page: time for a browser to start, and no more.</summary>
    public static readonly TimeSpan DefaultEntryLifetime = TimeSpan.FromSeconds(30);

    /// <summary>How long this server's entry codes live (tests shorten it).</summary>
    internal TimeSpan EntryLifetime { get; set; } = DefaultEntryLifetime;

    // One-time codes not yet used, with when they expire and the entry file that holds each.
    private readonly ConcurrentDictionary<string, (DateTimeOffset Expires, string File)> _entryCodes = new(StringComparer.Ordinal);

    /// <summary>The folder of entry files: the user's own configuration folder.</summary>
    public static string EntryFolder => Path.Combine(StoreSettings.ConfigFolder, "page");

    /// <summary>
    /// Writes a page that sends a browser to this server once, and returns its path: a browser is opened
    /// on it, so its command line (which every local user can read, as /proc/PID/cmdline) holds no
    /// secret. Only this user can read the file (mode 0600, in a 0700 folder), and what it holds is not
    /// the access token but a one-time code, which the server trades for the token's cookie once,
    /// within <see cref="EntryLifetime"/>; the file goes when the code is used, expires or the server stops.
    /// </summary>
    /// <param name="fragment">Where the page opens (<c>#run=...</c>), or empty.</param>
    public string WriteEntryFile(string fragment)
    {
        SweepEntryCodes();
        var folder = EntryFolder;
        if (OperatingSystem.IsWindows()) Directory.CreateDirectory(folder);
        else Directory.CreateDirectory(folder, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var code = Base64Url(RandomNumberGenerator.GetBytes(32));
        var file = Path.Combine(folder, $"page-{Port.ToString(System.Globalization.CultureInfo.InvariantCulture)}-{Guid.NewGuid():N}.html");
        var target = System.Net.WebUtility.HtmlEncode(new Uri(BaseUrl, "?code=" + code) + fragment);
        var html = "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">" +
            $"<meta http-equiv=\"refresh\" content=\"0;url={target}\"><title>Artifacts</title></head>\n" +
            $"<body><p>Opening <a href=\"{target}\">the artifacts page</a>.</p></body></html>\n";
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows()) options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        using (var stream = new FileStream(file, options)) stream.Write(Encoding.UTF8.GetBytes(html));
        _entryCodes[code] = (_catalog.Clock.GetUtcNow() + EntryLifetime, file);
        return file;
    }

    /// <summary>True once for a code that has not expired; the code and its file are gone after.</summary>
    private bool RedeemEntryCode(string code)
    {
        SweepEntryCodes();
        if (!_entryCodes.TryRemove(code, out var entry)) return false;
        TryDelete(entry.File);
        return entry.Expires >= _catalog.Clock.GetUtcNow();
    }

    private void SweepEntryCodes(bool all = false)
    {
        var now = _catalog.Clock.GetUtcNow();
        foreach (var (code, entry) in _entryCodes)
        {
            if ((all || entry.Expires < now) && _entryCodes.TryRemove(code, out _)) TryDelete(entry.File);
        }
    }

    private static void TryDelete(string file)
    {
        try { File.Delete(file); }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException) { }
    }

    private bool Authorized(string? given) =>
        given is not null && CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(given), _token);

    /// <summary>A POST must come from this page (browsers always send Origin on POST).</summary>
    private bool SameOrigin(HttpListenerRequest req) =>
        Uri.TryCreate(req.Headers["Origin"], UriKind.Absolute, out var origin)
        && origin.Scheme == Uri.UriSchemeHttp
        && string.Equals(origin.Authority, req.Headers["Host"], StringComparison.OrdinalIgnoreCase)
        && (_hosts is null || _hosts.Contains(origin.Authority));

}
