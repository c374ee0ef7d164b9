using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using GridArtifacts.Core.Stores;
using GridArtifacts.Model;

namespace GridArtifacts.Core.Sharing;

/// <summary>
/// One store's HTTP server in this process, on 127.0.0.1 by default. It serves two things:
/// <list type="bullet">
/// <item>the artifacts page at <c>/</c> and its API, for any store, only to whoever holds the server's
/// random access token (given in the page URL once, or traded for a one-time code from an entry file,
/// then kept in an HttpOnly, SameSite=Strict cookie);</item>
/// <item>a folder store's expiring links at <c>/a/</c>, signed with HMAC-SHA256 over the artifact and
/// its expiry with a per-store secret (created once, readable only by its owner). An expired,
/// altered or foreign link, or one ending more than 7 days ahead, gets 403 and no data; Range requests work. S3 stores need no such
/// route: their links are presigned by S3.</item>
/// </list>
/// Every request is checked for a Host this server answers to (no DNS rebinding), and nothing
/// outside the store's artifacts and the page's own files is ever served.
/// </summary>
public sealed partial class ArtifactServer : IDisposable
{
    private const string SecretFile = ".link-secret";
    /// <summary>How far a link's signer's clock may run ahead of this server's.</summary>
    private static readonly TimeSpan ClockSkew = TimeSpan.FromMinutes(5);
    private static readonly ConcurrentDictionary<string, ArtifactServer> Running = new(StringComparer.Ordinal);
    private readonly HttpListener _listener = new();
    private readonly GridCatalog _catalog;
    private readonly byte[]? _secret;
    private readonly byte[] _token;
    private readonly HashSet<string>? _hosts;

    private ArtifactServer(GridCatalog catalog, string address, int port)
    {
        _catalog = catalog;
        if (catalog.Store is ILocalFolder folder) _secret = LoadOrCreateSecret(folder.Root);
        _token = Encoding.ASCII.GetBytes(Base64Url(RandomNumberGenerator.GetBytes(32)));
        Port = port == 0 ? FreePort(address) : port;
        // On every address, links and the page name this machine; elsewhere, the address itself.
        var wildcard = IsWildcard(address);
        var host = wildcard ? Dns.GetHostName() : address.Contains(':') && !address.StartsWith('[') ? $"[{address}]" : address;
        BaseUrl = new Uri($"http://{host}:{Port}/");
        _hosts = wildcard ? null : new HashSet<string>(StringComparer.OrdinalIgnoreCase)
        {
            $"{host}:{Port}",
            $"127.0.0.1:{Port}",
            $"localhost:{Port}",
            $"[::1]:{Port}",
        };
        _listener.Prefixes.Add(wildcard ? $"http://*:{Port}/" : BaseUrl.ToString());
        // HttpListener answers only the host names of its prefixes (others get its own 404), so
        // "localhost" needs one too. It listens where the name resolves first, so the prefix is added
        // only where that is the address already listened on: it must open nothing new.
        if (!wildcard && IPAddress.TryParse(address, out var ip) && IPAddress.IsLoopback(ip) && ResolvesFirstTo("localhost", ip))
        {
            _listener.Prefixes.Add($"http://localhost:{Port}/");
        }
        _listener.Start();
        _ = Task.Run(LoopAsync);
    }

    public int Port { get; }
    public Uri BaseUrl { get; }
    /// <summary>The page, with the access token: whoever has this URL can browse the store.</summary>
    public Uri PageUrl => new(BaseUrl, "?token=" + Encoding.ASCII.GetString(_token));
    public string Store => _catalog.Location;
    public bool SignsLinks => _secret is not null;
    private string CookieName => "grid_token_" + Port.ToString(CultureInfo.InvariantCulture);

    /// <summary>Starts (or returns the running) server of a store in this process.</summary>
    public static ArtifactServer Start(GridCatalog catalog, string address = "127.0.0.1", int port = 0)
    {
        // One listener per store: two runspaces starting it at once must not both bind a port.
        lock (Running)
        {
            return Running.TryGetValue(catalog.Location, out var running)
                ? running
                : Running[catalog.Location] = new ArtifactServer(catalog, address, port);
        }
    }

    public static ArtifactServer? For(string storeLocation) => Running.TryGetValue(storeLocation, out var s) ? s : null;

    /// <summary>The stores whose servers run in this process, in name order.</summary>
    public static IReadOnlyList<string> RunningStores
    {
        get { lock (Running) return Running.Keys.OrderBy(k => k, StringComparer.Ordinal).ToList(); }
    }

    public static bool Stop(string storeLocation)
    {
        ArtifactServer? s;
        lock (Running) { if (!Running.TryRemove(storeLocation, out s)) return false; }
        s.Dispose();
        return true;
    }

    /// <summary>A folder store's expiring link to one artifact.</summary>
    public (Uri Url, DateTimeOffset ExpiresAt) Sign(string run, string experiment, string path, TimeSpan lifetime)
    {
        if (_secret is null) throw new InvalidOperationException("Only a folder store's server signs links.");
        var expires = _catalog.Clock.GetUtcNow().Add(lifetime);
        var e = expires.ToUnixTimeSeconds();
        var sig = Convert.ToHexString(Mac(run, experiment, path, e)).ToLowerInvariant();
        var url = new Uri(BaseUrl, $"a/{run}/{experiment}/{Uri.EscapeDataString(path)}?e={e}&s={sig}");
        return (url, DateTimeOffset.FromUnixTimeSeconds(e));
    }

    private byte[] Mac(string run, string experiment, string path, long expires) =>
        HMACSHA256.HashData(_secret!, Encoding.UTF8.GetBytes($"v1\n{run}\n{experiment}\n{path}\n{expires}"));

    private static byte[] LoadOrCreateSecret(string root)
    {
        var file = Path.Combine(root, SecretFile);
        Directory.CreateDirectory(root);
        if (!File.Exists(file))
        {
            try
            {
                var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
                if (!OperatingSystem.IsWindows()) options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
                using var fs = new FileStream(file, options);
                fs.Write(RandomNumberGenerator.GetBytes(32));
            }
            catch (IOException) when (File.Exists(file))
            {
                // Another process created it first: use theirs.
            }
        }
        return File.ReadAllBytes(file);
    }

    private async Task LoopAsync()
    {
        while (_listener.IsListening)
        {
            HttpListenerContext ctx;
            try { ctx = await _listener.GetContextAsync().ConfigureAwait(false); }
            catch (Exception) { return; }
            _ = Task.Run(() => ServeAsync(ctx));
        }
    }

    private async Task ServeAsync(HttpListenerContext ctx)
    {
        var res = ctx.Response;
        try
        {
            res.Headers["X-Content-Type-Options"] = "nosniff";
            res.Headers["Referrer-Policy"] = "same-origin"; // same-origin POSTs keep their Origin; nothing goes elsewhere
            res.Headers["Cache-Control"] = "no-store";
            res.Headers["X-Frame-Options"] = "DENY";
            if (_hosts is not null && !_hosts.Contains(ctx.Request.Headers["Host"] ?? ""))
            {
                // A name that resolves here but is not ours: a DNS-rebinding page, or a mistake.
                res.StatusCode = 421;
                return;
            }
            var path = ctx.Request.Url!.AbsolutePath;
            if (path.StartsWith("/a/", StringComparison.Ordinal)) await ServeSignedLinkAsync(ctx).ConfigureAwait(false);
            else await ServePageAsync(ctx, path).ConfigureAwait(false);
        }
        catch (Exception)
        {
            try { res.StatusCode = 500; } catch (InvalidOperationException) { }
        }
        finally
        {
            try { res.Close(); } catch (Exception) { }
        }
    }

    private async Task ServeSignedLinkAsync(HttpListenerContext ctx)
    {
        var res = ctx.Response;
        if (ctx.Request.HttpMethod is not ("GET" or "HEAD")) { res.StatusCode = 405; return; }
        var segments = ctx.Request.Url!.AbsolutePath.Split('/', StringSplitOptions.RemoveEmptyEntries);
        var query = ctx.Request.QueryString;
        if (_secret is null || segments.Length != 4 || !long.TryParse(query["e"], NumberStyles.None, CultureInfo.InvariantCulture, out var expires) || query["s"] is not { Length: 64 } sigText)
        {
            res.StatusCode = 403;
            return;
        }
        var (run, experiment, path) = (segments[1], segments[2], Uri.UnescapeDataString(segments[3]));
        byte[] given;
        try { given = Convert.FromHexString(sigText); } catch (FormatException) { res.StatusCode = 403; return; }
        var valid = ArtifactFromQuery(run, experiment, path) is not null;
        var expected = Mac(run, experiment, path, expires);
        // Compare in constant time whatever else is wrong, so timing says nothing about the signature.
        var signed = CryptographicOperations.FixedTimeEquals(expected, given);
        // A link says only when it ends, not when it was signed: one that ends further ahead than any
        // link may live (one signed by an older version, or forged with the secret) is refused.
        var now = _catalog.Clock.GetUtcNow().ToUnixTimeSeconds();
        var latest = now + (long)(ArtifactLinks.MaxLifetime + ClockSkew).TotalSeconds;
        if (!valid || !signed || now > expires || expires > latest)
        {
            res.StatusCode = 403;
            return;
        }
        await ServeArtifactAsync(ctx, StoreLayout.ArtifactKey(run, experiment, path), Path.GetFileName(path), ArtifactDisposition.Download).ConfigureAwait(false);
    }

    private enum ArtifactDisposition { Download, Inline, Preview }

    /// <summary>Bytes of one artifact: whole, a Range, or (preview) the first 64 KiB as text.</summary>
    private async Task ServeArtifactAsync(HttpListenerContext ctx, string key, string name, ArtifactDisposition disposition)
    {
        var res = ctx.Response;
        // Someone else's bytes: never a document that can run script here, whatever they contain.
        res.Headers["Content-Security-Policy"] = "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; sandbox";
        res.Headers["Cross-Origin-Resource-Policy"] = "same-origin";
        // One read of the whole object: its size decides the response, and when the whole object is
        // what is asked (a download, an image) its body is sent; otherwise the range is read.
        ObjectRead whole;
        try { whole = await _catalog.Store.ReadRangeAsync(key, 0, 0, null, CancellationToken.None).ConfigureAwait(false); }
        catch (GridException) { res.StatusCode = 404; return; }
        long from = 0, length;
        using (whole)
        {
            var size = whole.TotalLength;
            var to = size - 1;
            var range = disposition == ArtifactDisposition.Preview ? null : ctx.Request.Headers["Range"];
            if (disposition == ArtifactDisposition.Preview)
            {
                to = Math.Min(to, PreviewBytes - 1);
                res.Headers["X-Grid-Size"] = size.ToString(CultureInfo.InvariantCulture);
            }
            if (range is not null)
            {
                var m = System.Text.RegularExpressions.Regex.Match(range, @"^bytes=([0-9]*)-([0-9]*)$");
                if (!m.Success || (m.Groups[1].Length == 0 && m.Groups[2].Length == 0)) { res.StatusCode = 416; return; }
                // Numbers past what a long holds are past any object's end: a first byte there cannot be
                // served (416); a last byte or a suffix that long means "to the end" (RFC 9110, 14.1.2).
                if (m.Groups[1].Length == 0) { from = Math.Max(0, size - ParseOrMax(m.Groups[2].Value)); }
                else
                {
                    from = ParseOrMax(m.Groups[1].Value);
                    if (m.Groups[2].Length > 0) to = Math.Min(to, ParseOrMax(m.Groups[2].Value));
                }
                if (from >= size || from > to) { res.StatusCode = 416; res.Headers["Content-Range"] = $"bytes */{size}"; return; }
                res.StatusCode = 206;
                res.Headers["Content-Range"] = $"bytes {from}-{to}/{size}";
            }
            length = Math.Max(0, to - from + 1);
            var inlineType = disposition == ArtifactDisposition.Inline ? ArtifactKinds.ImageContentType(name) : null;
            res.ContentType = inlineType ?? (disposition == ArtifactDisposition.Preview ? "text/plain; charset=utf-8" : "application/octet-stream");
            res.Headers["Accept-Ranges"] = "bytes";
            res.Headers["Content-Disposition"] = (inlineType is null ? "attachment" : "inline") + $"; filename*=UTF-8''{Uri.EscapeDataString(name)}";
            res.ContentLength64 = length;
            if (ctx.Request.HttpMethod == "HEAD" || length == 0) return;
            if (from == 0 && length == size)
            {
                await whole.Body.CopyToAsync(res.OutputStream).ConfigureAwait(false);
                return;
            }
        }
        using var read = await _catalog.Store.ReadRangeAsync(key, from, length, null, CancellationToken.None).ConfigureAwait(false);
        await read.Body.CopyToAsync(res.OutputStream).ConfigureAwait(false);
    }

    private static bool ResolvesFirstTo(string name, IPAddress ip)
    {
        try { return Dns.GetHostAddresses(name) is [var first, ..] && first.Equals(ip); }
        catch (System.Net.Sockets.SocketException) { return false; }
    }

    /// <summary>Digits as a long; long.MaxValue when there are too many.</summary>
    private static long ParseOrMax(string digits) =>
        long.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n : long.MaxValue;

    private static bool IsWildcard(string address) =>
        address is "*" or "+" || (IPAddress.TryParse(address, out var ip) && (ip.Equals(IPAddress.Any) || ip.Equals(IPAddress.IPv6Any)));

    private static string Base64Url(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    private static int FreePort(string address)
    {
        var ip = IsWildcard(address) ? IPAddress.Any : IPAddress.Parse(address);
        var l = new System.Net.Sockets.TcpListener(ip, 0);
        l.Start();
        var port = ((IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        return port;
    }

    public void Dispose()
    {
        SweepEntryCodes(all: true);
        // .NET's HttpListener removes each prefix by resolving its host again, and where "localhost"
        // now resolves elsewhere it tries to open a listener there, which can fail (seen: "Address
        // already in use" from Close in a test run). The server has stopped answering either way
        // (its loop ends with Stop); at worst the socket stays bound until the process ends.
        try { _listener.Stop(); _listener.Close(); } catch (Exception ex) when (ex is ObjectDisposedException or HttpListenerException) { }
    }
}
