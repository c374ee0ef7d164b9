using System.Globalization;
using System.IO.Compression;
using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using GridArtifacts.Core.Stores;
using GridArtifacts.Model;

namespace GridArtifacts.Core.Sharing;

/// <summary>Bytes the server sends: the page's own files, artifacts (whole, ranged, previewed), zips of a selection.</summary>
public sealed partial class ArtifactServer
{
    /// <summary>How much of a text artifact the page previews.</summary>
    public const int PreviewBytes = 64 * 1024;

    /// <summary>
    /// The most a zip request's body may hold: the selection of a run of some 100,000 artifacts.
    /// Larger gets 413.
    /// </summary>
    public const int MaxZipRequestBytes = 32 * 1024 * 1024;

    // Module scripts are same-origin scripts: script-src 'self' admits them as it does classic ones.
    private const string PagePolicy =
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

    private const string ResourcePrefix = "GridArtifacts.Page.";

    /// <summary>The page's files as the csproj embeds them (<c>Sharing/Page/*</c>), by the path each is served at.</summary>
    private static readonly Dictionary<string, (string Resource, string ContentType)> Assets = PageAssets();

    private static Dictionary<string, (string Resource, string ContentType)> PageAssets()
    {
        var types = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            [".html"] = "text/html; charset=utf-8",
            // Browsers run a module only when it comes with a JavaScript type (nosniff is always sent).
            [".js"] = "text/javascript; charset=utf-8",
            [".css"] = "text/css; charset=utf-8",
        };
        var assets = new Dictionary<string, (string, string)>(StringComparer.Ordinal);
        foreach (var name in typeof(ArtifactServer).Assembly.GetManifestResourceNames())
        {
            if (!name.StartsWith(ResourcePrefix, StringComparison.Ordinal)) continue;
            var resource = name[ResourcePrefix.Length..];
            if (!types.TryGetValue(Path.GetExtension(resource), out var type)) continue;
            assets[resource == "index.html" ? "/" : "/" + resource] = (resource, type);
        }
        return assets;
    }

    private static async Task ServeAssetAsync(HttpListenerContext ctx, CancellationToken cancel)
    {
        var (resource, contentType) = Assets[ctx.Request.Url!.AbsolutePath];
        await ServeAssetAsync(ctx.Response, resource, contentType).ConfigureAwait(false);
    }

    /// <summary>GET or HEAD <c>/file?run=&amp;exp=&amp;path=&amp;mode=</c>: one artifact for the page.</summary>
    private async Task ServeFileAsync(HttpListenerContext ctx, CancellationToken cancel)
    {
        var q = ctx.Request.QueryString;
        if (ArtifactFromQuery(q["run"], q["exp"], q["path"]) is not { } a) { ctx.Response.StatusCode = 400; return; }
        var disposition = q["mode"] switch
        {
            "inline" => ArtifactDisposition.Inline,
            "preview" => ArtifactDisposition.Preview,
            _ => ArtifactDisposition.Download,
        };
        await ServeArtifactAsync(ctx, StoreLayout.ArtifactKey(a.Run, a.Experiment, a.Path), Path.GetFileName(a.Path), disposition, cancel).ConfigureAwait(false);
    }

    private enum ArtifactDisposition { Download, Inline, Preview }

    /// <summary>Bytes of one artifact: whole, a Range, or (preview) the first 64 KiB as text.</summary>
    private async Task ServeArtifactAsync(HttpListenerContext ctx, string key, string name, ArtifactDisposition disposition, CancellationToken cancel)
    {
        var res = ctx.Response;
        // Someone else's bytes: never a document that can run script here, whatever they contain.
        res.Headers["Content-Security-Policy"] = "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; sandbox";
        res.Headers["Cross-Origin-Resource-Policy"] = "same-origin";
        // One read of the whole object: its size decides the response, and when the whole object is
        // what is asked (a download, an image) its body is sent; otherwise the range is read.
        ObjectRead whole;
        try { whole = await _catalog.Store.ReadRangeAsync(key, 0, 0, null, cancel).ConfigureAwait(false); }
        catch (GridException ex) { LogError(ctx, ex); res.StatusCode = 404; return; }
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
                await whole.Body.CopyToAsync(res.OutputStream, cancel).ConfigureAwait(false);
                return;
            }
        }
        using var read = await _catalog.Store.ReadRangeAsync(key, from, length, null, cancel).ConfigureAwait(false);
        await read.Body.CopyToAsync(res.OutputStream, cancel).ConfigureAwait(false);
    }

    /// <summary>The selected artifacts as one zip, streamed as it is read (entries <c>run/expN/path</c>).</summary>
    private async Task ServeZipAsync(HttpListenerContext ctx, CancellationToken cancel)
    {
        var res = ctx.Response;
        if (await ReadBodyAsync(ctx.Request, MaxZipRequestBytes, cancel).ConfigureAwait(false) is not { } body)
        {
            res.StatusCode = 413;
            return;
        }
        // Each artifact once, in the order first asked for.
        var items = new List<(string Run, string Experiment, string Path)>();
        var seen = new HashSet<(string Run, string Experiment, string Path)>();
        try
        {
            var form = System.Web.HttpUtility.ParseQueryString(body);
            foreach (var raw in JsonSerializer.Deserialize(form["items"] ?? "[]", ApiJson.Default.StringArrayArray) ?? Array.Empty<string[]>())
            {
                if (raw.Length != 3 || ArtifactFromQuery(raw[0], raw[1], raw[2]) is not { } a) { res.StatusCode = 400; return; }
                if (seen.Add(a)) items.Add(a);
            }
        }
        catch (JsonException) { res.StatusCode = 400; return; }
        if (items.Count == 0) { res.StatusCode = 400; return; }
        res.ContentType = "application/zip";
        var name = items.Select(i => i.Run).Distinct().Count() == 1 ? items[0].Run : "artifacts";
        res.Headers["Content-Disposition"] = $"attachment; filename*=UTF-8''{Uri.EscapeDataString(name)}.zip";
        res.SendChunked = true;
        using var zip = new ZipArchive(res.OutputStream, ZipArchiveMode.Create, leaveOpen: true);
        foreach (var (run, experiment, path) in items)
        {
            Stream source;
            try { source = await _catalog.Store.OpenReadAsync(StoreLayout.ArtifactKey(run, experiment, path), cancel).ConfigureAwait(false); }
            catch (GridException ex) { LogError(ctx, ex); continue; } // Removed since it was listed: the zip holds the rest.
            await using (source.ConfigureAwait(false))
            {
                var entry = zip.CreateEntry($"{run}/{experiment}/{path}", CompressionLevel.Fastest);
                await using var target = entry.Open();
                await source.CopyToAsync(target, cancel).ConfigureAwait(false);
            }
        }
    }

    /// <summary>A request's body as UTF-8, or null when it is longer than <paramref name="limit"/> bytes (nothing past that is kept).</summary>
    private static async Task<string?> ReadBodyAsync(HttpListenerRequest req, int limit, CancellationToken cancel)
    {
        if (req.ContentLength64 > limit) return null;
        using var body = new MemoryStream();
        var buffer = new byte[64 * 1024];
        int n;
        while ((n = await req.InputStream.ReadAsync(buffer, cancel).ConfigureAwait(false)) > 0)
        {
            if (body.Length + n > limit) return null;
            body.Write(buffer, 0, n);
        }
        return Encoding.UTF8.GetString(body.GetBuffer(), 0, (int)body.Length);
    }

    private static async Task ServeAssetAsync(HttpListenerResponse res, string resource, string contentType)
    {
        res.Headers["Content-Security-Policy"] = PagePolicy;
        await using var stream = typeof(ArtifactServer).Assembly.GetManifestResourceStream("GridArtifacts.Page." + resource)
            ?? throw new InvalidOperationException($"The page's {resource} is missing from the build.");
        var bytes = new byte[stream.Length];
        await stream.ReadExactlyAsync(bytes).ConfigureAwait(false);
        await WriteBytesAsync(res, contentType, bytes).ConfigureAwait(false);
    }

    private static Task WriteJsonAsync<T>(HttpListenerResponse res, T value, JsonTypeInfo<T> json) =>
        WriteBytesAsync(res, "application/json; charset=utf-8", JsonSerializer.SerializeToUtf8Bytes(value, json));

    private static Task WriteTextAsync(HttpListenerResponse res, string contentType, string text) =>
        WriteBytesAsync(res, contentType, Encoding.UTF8.GetBytes(text));

    private static async Task WriteBytesAsync(HttpListenerResponse res, string contentType, byte[] bytes)
    {
        res.ContentType = contentType;
        res.ContentLength64 = bytes.Length;
        await res.OutputStream.WriteAsync(bytes).ConfigureAwait(false);
    }

    /// <summary>Digits as a long; long.MaxValue when there are too many.</summary>
    private static long ParseOrMax(string digits) =>
        long.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n : long.MaxValue;
}
