using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using GridArtifacts.Core.Stores;
using GridArtifacts.Model;

namespace GridArtifacts.Core.Sharing;

/// <summary>
/// Serves a folder store's artifacts at expiring links, signed with HMAC-SHA256 over the artifact and
/// its expiry with a per-store secret (created once, readable only by its owner). An expired, altered
/// or foreign link gets 403 and no data; only the named artifact is ever served; Range requests work.
/// </summary>
public sealed class LocalLinkServer : IDisposable
{
    private const string SecretFile = ".link-secret";
    private static readonly ConcurrentDictionary<string, LocalLinkServer> Running = new(StringComparer.Ordinal);
    private readonly HttpListener _listener = new();
    private readonly FileSystemStore _store;
    private readonly byte[] _secret;

    private LocalLinkServer(FileSystemStore store, string address, int port)
    {
        _store = store;
        _secret = LoadOrCreateSecret(store.Location);
        Port = port == 0 ? FreePort(address) : port;
        BaseUrl = new Uri($"http://{address}:{Port}/");
        _listener.Prefixes.Add(BaseUrl.ToString());
        _listener.Start();
        _ = Task.Run(LoopAsync);
    }

    public int Port { get; }
    public Uri BaseUrl { get; }
    public string Store => _store.Location;

    /// <summary>Starts (or returns the running) server of a folder store in this process.</summary>
    public static LocalLinkServer Start(FileSystemStore store, string address = "127.0.0.1", int port = 0) =>
        Running.GetOrAdd(store.Location, _ => new LocalLinkServer(store, address, port));

    public static LocalLinkServer? For(string storeLocation) => Running.TryGetValue(storeLocation, out var s) ? s : null;

    public static bool Stop(string storeLocation)
    {
        if (!Running.TryRemove(storeLocation, out var s)) return false;
        s.Dispose();
        return true;
    }

    public (Uri Url, DateTimeOffset ExpiresAt) Sign(string run, string experiment, string path, TimeSpan lifetime)
    {
        var expires = DateTimeOffset.UtcNow.Add(lifetime);
        var e = expires.ToUnixTimeSeconds();
        var sig = Convert.ToHexString(Mac(run, experiment, path, e)).ToLowerInvariant();
        var url = new Uri(BaseUrl, $"a/{run}/{experiment}/{Uri.EscapeDataString(path)}?e={e}&s={sig}");
        return (url, DateTimeOffset.FromUnixTimeSeconds(e));
    }

    private byte[] Mac(string run, string experiment, string path, long expires) =>
        HMACSHA256.HashData(_secret, Encoding.UTF8.GetBytes($"v1\n{run}\n{experiment}\n{path}\n{expires}"));

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
            if (ctx.Request.HttpMethod is not ("GET" or "HEAD")) { res.StatusCode = 405; return; }
            var segments = ctx.Request.Url!.AbsolutePath.Split('/', StringSplitOptions.RemoveEmptyEntries);
            var query = ctx.Request.QueryString;
            if (segments.Length != 4 || segments[0] != "a" || !long.TryParse(query["e"], NumberStyles.None, CultureInfo.InvariantCulture, out var expires) || query["s"] is not { Length: 64 } sigText)
            {
                res.StatusCode = 403;
                return;
            }
            var (run, experiment, path) = (segments[1], segments[2], Uri.UnescapeDataString(segments[3]));
            byte[] given;
            try { given = Convert.FromHexString(sigText); } catch (FormatException) { res.StatusCode = 403; return; }
            var valid = GridNames.IsValidRunName(run) && GridNames.IsValidExperimentName(experiment) && GridNames.ArtifactPathProblem(path) is null;
            var expected = Mac(run, experiment, path, expires);
            // Compare in constant time whatever else is wrong, so timing says nothing about the signature.
            var signed = CryptographicOperations.FixedTimeEquals(expected, given);
            if (!valid || !signed || DateTimeOffset.UtcNow.ToUnixTimeSeconds() > expires)
            {
                res.StatusCode = 403;
                return;
            }
            await ServeArtifactAsync(ctx, StoreLayout.ArtifactKey(run, experiment, path), Path.GetFileName(path)).ConfigureAwait(false);
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

    private async Task ServeArtifactAsync(HttpListenerContext ctx, string key, string name)
    {
        var res = ctx.Response;
        ObjectRead head;
        try { head = await _store.ReadRangeAsync(key, 0, 0, null, CancellationToken.None).ConfigureAwait(false); }
        catch (GridException) { res.StatusCode = 404; return; }
        var size = head.TotalLength;
        head.Dispose();
        long from = 0, to = size - 1;
        var range = ctx.Request.Headers["Range"];
        if (range is not null)
        {
            var m = System.Text.RegularExpressions.Regex.Match(range, @"^bytes=(\d*)-(\d*)$");
            if (!m.Success || (m.Groups[1].Length == 0 && m.Groups[2].Length == 0)) { res.StatusCode = 416; return; }
            if (m.Groups[1].Length == 0) { from = Math.Max(0, size - long.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture)); }
            else
            {
                from = long.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
                if (m.Groups[2].Length > 0) to = Math.Min(to, long.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture));
            }
            if (from >= size || from > to) { res.StatusCode = 416; res.Headers["Content-Range"] = $"bytes */{size}"; return; }
            res.StatusCode = 206;
            res.Headers["Content-Range"] = $"bytes {from}-{to}/{size}";
        }
        var length = Math.Max(0, to - from + 1);
        res.ContentType = "application/octet-stream";
        res.Headers["Accept-Ranges"] = "bytes";
        res.Headers["Content-Disposition"] = $"attachment; filename*=UTF-8''{Uri.EscapeDataString(name)}";
        res.ContentLength64 = length;
        if (ctx.Request.HttpMethod == "HEAD" || length == 0) return;
        using var read = await _store.ReadRangeAsync(key, from, length, null, CancellationToken.None).ConfigureAwait(false);
        await read.Body.CopyToAsync(res.OutputStream).ConfigureAwait(false);
    }

    private static int FreePort(string address)
    {
        var l = new System.Net.Sockets.TcpListener(IPAddress.Parse(address), 0);
        l.Start();
        var port = ((IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        return port;
    }

    public void Dispose()
    {
        try { _listener.Stop(); _listener.Close(); } catch (ObjectDisposedException) { }
    }
}
