using System.Collections.Concurrent;
using System.IO.Compression;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using GridArtifacts.Core.Metrics;
using GridArtifacts.Core.Stores;
using GridArtifacts.Model;

namespace GridArtifacts.Core.Sharing;

/// <summary>The artifacts page: its files, its JSON API, artifact bytes and zipped selections.</summary>
public sealed partial class ArtifactServer
{
    /// <summary>How much of a text artifact the page previews.</summary>
    public const int PreviewBytes = 64 * 1024;

    /// <summary>
    /// The most a zip request's body may hold: the selection of a run of some 100,000 artifacts.
    /// Larger gets 413.
    /// </summary>
    public const int MaxZipRequestBytes = 32 * 1024 * 1024;

    /// <summary>Points per metric the chart gets: more than its 640 units of width can show.</summary>
    public const int ChartPoints = 2000;

    private const string PagePolicy =
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    private static readonly Dictionary<string, (string Resource, string ContentType)> Assets = new(StringComparer.Ordinal)
    {
        ["/"] = ("index.html", "text/html; charset=utf-8"),
        ["/app.js"] = ("app.js", "text/javascript; charset=utf-8"),
        ["/app.css"] = ("app.css", "text/css; charset=utf-8"),
    };

    private async Task ServePageAsync(HttpListenerContext ctx, string path)
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
                return;
            }
            // A browser opened on an entry file: the code, once, for the cookie (and out of the address bar).
            res.Headers.Add("Set-Cookie", $"{CookieName}={Encoding.ASCII.GetString(_token)}; Path=/; HttpOnly; SameSite=Strict");
            res.StatusCode = 303;
            res.RedirectLocation = "/";
            return;
        }
        var fromQuery = req.QueryString["token"];
        if (!Authorized(fromQuery ?? req.Cookies[CookieName]?.Value))
        {
            res.StatusCode = 401;
            await WriteTextAsync(res, "text/plain; charset=utf-8",
                "This page needs the address that Start-GridArtifactServer or Show-GridArtifact printed (it carries an access token).").ConfigureAwait(false);
            return;
        }
        if (fromQuery is not null && req.HttpMethod == "GET" && path == "/")
        {
            // Trade the token in the address for a cookie, and take it out of the address bar and history.
            res.Headers.Add("Set-Cookie", $"{CookieName}={fromQuery}; Path=/; HttpOnly; SameSite=Strict");
            res.StatusCode = 303;
            res.RedirectLocation = "/";
            return;
        }
        if (req.HttpMethod == "POST" && !SameOrigin(req))
        {
            res.StatusCode = 403;
            return;
        }
        switch (req.HttpMethod, path)
        {
            case ("GET", _) when Assets.TryGetValue(path, out var asset):
                await ServeAssetAsync(res, asset.Resource, asset.ContentType).ConfigureAwait(false);
                return;
            case ("GET", "/api/store"):
                await WriteJsonAsync(res, new { location = Store, kind = _catalog.Store is ILocalFolder ? "FileSystem" : "S3" }).ConfigureAwait(false);
                return;
            case ("GET", "/api/runs"):
                await WriteBytesAsync(res, "application/json; charset=utf-8", await ListRunsAsync(req.QueryString["fresh"] == "1").ConfigureAwait(false)).ConfigureAwait(false);
                return;
            case ("GET", "/api/experiments"):
                await ServeExperimentsAsync(ctx).ConfigureAwait(false);
                return;
            case ("GET", "/api/artifacts"):
                await ServeArtifactListAsync(ctx).ConfigureAwait(false);
                return;
            case ("GET", "/api/metrics"):
                await ServeMetricsAsync(ctx).ConfigureAwait(false);
                return;
            case ("POST", "/api/link"):
                await ServeNewLinkAsync(ctx).ConfigureAwait(false);
                return;
            case ("GET" or "HEAD", "/file"):
                if (ArtifactFromQuery(req.QueryString["run"], req.QueryString["exp"], req.QueryString["path"]) is not { } a) { res.StatusCode = 400; return; }
                var disposition = req.QueryString["mode"] switch
                {
                    "inline" => ArtifactDisposition.Inline,
                    "preview" => ArtifactDisposition.Preview,
                    _ => ArtifactDisposition.Download,
                };
                await ServeArtifactAsync(ctx, StoreLayout.ArtifactKey(a.Run, a.Experiment, a.Path), Path.GetFileName(a.Path), disposition).ConfigureAwait(false);
                return;
            case ("POST", "/zip"):
                await ServeZipAsync(ctx).ConfigureAwait(false);
                return;
            default:
                res.StatusCode = 404;
                return;
        }
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

    /// <summary>The artifact a request names, or null when any of the three names is not one the store can hold.</summary>
    private static (string Run, string Experiment, string Path)? ArtifactFromQuery(string? run, string? experiment, string? path) =>
        run is not null && experiment is not null && path is not null
        && GridNames.IsValidRunName(run) && GridNames.IsValidExperimentName(experiment) && GridNames.ArtifactPathProblem(path) is null
            ? (run, experiment, path)
            : null;

    // One listing gives every run of schema 2 (its index keys). Runs written by 0.1.0 are read
    // record by record, so the page keeps those it has seen finished (they do not change; only
    // removal, which the listing shows). ?fresh=1 (the Refresh button) reads them all again.
    private readonly ConcurrentDictionary<string, GridRun> _finishedRuns = new(StringComparer.Ordinal);

    /// <summary>
    /// The run list as JSON, newest first, written field by field (a store of 100,000 runs is 100,000
    /// objects: no reflection per object).
    /// </summary>
    private async Task<byte[]> ListRunsAsync(bool fresh)
    {
        if (fresh) _finishedRuns.Clear();
        var read = await _catalog.Runs.ListRunsAsync(CancellationToken.None, _finishedRuns).ConfigureAwait(false);
        // Lost can still come back (a late heartbeat), and a run without experiments is still being written.
        foreach (var r in read.Items.Where(r => r.Status is GridStatus.Succeeded or GridStatus.Failed or GridStatus.Stopped && r.ExperimentCount > 0)) _finishedRuns[r.Name] = r;
        var buffer = new System.Buffers.ArrayBufferWriter<byte>(256 + read.Items.Count * 192);
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteStartArray("runs");
            foreach (var r in read.Items.OrderByDescending(r => r.Created))
            {
                w.WriteStartObject();
                w.WriteString("name", r.Name);
                w.WriteString("status", r.Status.ToString());
                w.WriteBoolean("active", r.Status.IsActive());
                w.WriteString("created", r.Created);
                if (r.Finished is { } finished) w.WriteString("finished", finished);
                else w.WriteNull("finished");
                w.WriteNumber("experiments", r.ExperimentCount);
                w.WriteBoolean("protected", r.Protected);
                w.WriteNumber("bytes", r.ArtifactBytes);
                w.WriteStartArray("tags");
                foreach (var t in r.Tags) w.WriteStringValue(t);
                w.WriteEndArray();
                if (r.Command is { } command) w.WriteString("command", command);
                else w.WriteNull("command");
                if (r.JobId is { } job)
                {
                    // A cluster run: its scheduler's job (and the cluster, where the scheduler names one).
                    w.WriteString("scheduler", r.Scheduler.ToString());
                    w.WriteString("job", job);
                    if (r.Cluster is { } cluster) w.WriteString("cluster", cluster);
                }
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteStartArray("errors");
            foreach (var e in read.Errors) w.WriteStringValue(e.Message);
            w.WriteEndArray();
            w.WriteEndObject();
        }
        return buffer.WrittenSpan.ToArray();
    }

    private async Task ServeExperimentsAsync(HttpListenerContext ctx)
    {
        var run = ctx.Request.QueryString["run"];
        if (run is null || !GridNames.IsValidRunName(run)) { ctx.Response.StatusCode = 400; return; }
        await WithStoreErrorsAsync(ctx.Response, async () =>
        {
            var result = await _catalog.Runs.GetExperimentsAsync(run, CancellationToken.None).ConfigureAwait(false);
            if (result.Items.Count == 0) await _catalog.Runs.ReadRunRecordAsync(run, CancellationToken.None).ConfigureAwait(false);
            return new
            {
                experiments = result.Items.Select(e => new
                {
                    id = e.Id,
                    name = e.Experiment,
                    status = e.Status.ToString(),
                    active = e.Status.IsActive(),
                    exitCode = e.ExitCode,
                    signal = e.Signal,
                    reason = e.Reason,
                    artifacts = e.ArtifactCount,
                    bytes = e.ArtifactBytes,
                    started = e.Started,
                    finished = e.Finished,
                    parameters = e.Parameters,
                    tags = e.Tags,
                    ownTags = e.OwnTags,
                    @protected = e.Protected,
                    metrics = e.Metrics,
                    metricsSource = e.MetricsSource,
                }),
                errors = result.Errors.Select(e => e.Message),
            };
        }).ConfigureAwait(false);
    }

    private async Task ServeArtifactListAsync(HttpListenerContext ctx)
    {
        var run = ctx.Request.QueryString["run"];
        var experiment = ctx.Request.QueryString["exp"];
        if (run is null || experiment is null || !GridNames.IsValidRunName(run) || !GridNames.IsValidExperimentName(experiment)) { ctx.Response.StatusCode = 400; return; }
        await WithStoreErrorsAsync(ctx.Response, async () =>
        {
            var result = await _catalog.Artifacts.GetArtifactsAsync(run, experiment, CancellationToken.None).ConfigureAwait(false);
            return new
            {
                artifacts = result.Items.Select(a => new
                {
                    path = a.Path,
                    size = a.Size,
                    modified = a.LastModified,
                    sha256 = a.Sha256,
                    kind = ArtifactKinds.Of(a.Path),
                }),
                errors = result.Errors.Select(e => e.Message),
            };
        }).ConfigureAwait(false);
    }

    /// <summary>
    /// An experiment's metrics.csv as curves for the chart: the one its record names, else (records
    /// older than metrics, or metrics.json only) the newest metrics.csv among its artifacts. Only
    /// numbers leave the server; column names leave as JSON strings, which escape &lt; and &gt;.
    /// </summary>
    private async Task ServeMetricsAsync(HttpListenerContext ctx)
    {
        var run = ctx.Request.QueryString["run"];
        var experiment = ctx.Request.QueryString["exp"];
        if (run is null || experiment is null || !GridNames.IsValidRunName(run) || !GridNames.IsValidExperimentName(experiment)) { ctx.Response.StatusCode = 400; return; }
        await WithStoreErrorsAsync(ctx.Response, async () =>
        {
            var record = await _catalog.Runs.ReadExperimentRecordAsync(run, experiment, CancellationToken.None).ConfigureAwait(false);
            // The recorded path is the store's word, not the page's: only an artifact path of this experiment is read.
            var source = record?.Metrics?.Source is { } recorded && MetricsReader.IsCsvCandidate(recorded) && GridNames.ArtifactPathProblem(recorded) is null ? recorded : null;
            if (source is null)
            {
                // Also says which of run and experiment is unknown when neither has anything stored.
                var artifacts = await _catalog.Artifacts.GetArtifactsAsync(run, experiment, CancellationToken.None).ConfigureAwait(false);
                source = MetricsReader.ChooseSource(artifacts.Items.Where(a => MetricsReader.IsCsvCandidate(a.Path)).Select(a => (a.Path, a.LastModified)));
            }
            var read = source is null ? NoSeries : await ReadSeriesAsync(StoreLayout.ArtifactKey(run, experiment, source)).ConfigureAwait(false);
            return new { source, x = read.X, columns = read.Columns, series = read.Points, rows = read.Rows, downsampled = read.Downsampled, problem = read.Problem };
        }).ConfigureAwait(false);
    }

    private static readonly MetricsSeries NoSeries = new(null, Array.Empty<string>(), new Dictionary<string, double[][]>(), 0, false, null);

    private async Task<MetricsSeries> ReadSeriesAsync(string key)
    {
        var stream = await _catalog.Store.OpenReadAsync(key, CancellationToken.None).ConfigureAwait(false);
        await using (stream.ConfigureAwait(false))
        {
            // The reader stops past MetricsReader.MaxCsvBytes (64 MiB). It reads synchronously: off the request's thread.
            return await Task.Run(() => MetricsReader.ReadSeries(stream, ChartPoints)).ConfigureAwait(false);
        }
    }

    private async Task ServeNewLinkAsync(HttpListenerContext ctx)
    {
        var q = ctx.Request.QueryString;
        if (ArtifactFromQuery(q["run"], q["exp"], q["path"]) is not { } a) { ctx.Response.StatusCode = 400; return; }
        await WithStoreErrorsAsync(ctx.Response, async () =>
        {
            var warnings = new List<string>();
            var (url, expires) = await ArtifactLinks.CreateAsync(_catalog.Store, a.Run, a.Experiment, a.Path, ArtifactLinks.DefaultLifetime, warnings.Add).ConfigureAwait(false);
            return new { url, expiresAt = expires, warnings };
        }).ConfigureAwait(false);
    }

    /// <summary>The selected artifacts as one zip, streamed as it is read (entries <c>run/expN/path</c>).</summary>
    private async Task ServeZipAsync(HttpListenerContext ctx)
    {
        var res = ctx.Response;
        if (await ReadBodyAsync(ctx.Request, MaxZipRequestBytes).ConfigureAwait(false) is not { } body)
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
            foreach (var raw in JsonSerializer.Deserialize<string[][]>(form["items"] ?? "[]") ?? Array.Empty<string[]>())
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
            try { source = await _catalog.Store.OpenReadAsync(StoreLayout.ArtifactKey(run, experiment, path), CancellationToken.None).ConfigureAwait(false); }
            catch (GridException) { continue; } // Removed since it was listed: the zip holds the rest.
            await using (source.ConfigureAwait(false))
            {
                var entry = zip.CreateEntry($"{run}/{experiment}/{path}", CompressionLevel.Fastest);
                await using var target = entry.Open();
                await source.CopyToAsync(target).ConfigureAwait(false);
            }
        }
    }

    /// <summary>A request's body as UTF-8, or null when it is longer than <paramref name="limit"/> bytes (nothing past that is kept).</summary>
    private static async Task<string?> ReadBodyAsync(HttpListenerRequest req, int limit)
    {
        if (req.ContentLength64 > limit) return null;
        using var body = new MemoryStream();
        var buffer = new byte[64 * 1024];
        int n;
        while ((n = await req.InputStream.ReadAsync(buffer).ConfigureAwait(false)) > 0)
        {
            if (body.Length + n > limit) return null;
            body.Write(buffer, 0, n);
        }
        return Encoding.UTF8.GetString(body.GetBuffer(), 0, (int)body.Length);
    }

    private static async Task WithStoreErrorsAsync(HttpListenerResponse res, Func<Task<object>> body)
    {
        object result;
        try { result = await body().ConfigureAwait(false); }
        catch (GridException ex)
        {
            res.StatusCode = ex.Kind switch
            {
                GridErrorKind.NotFound => 404,
                GridErrorKind.InvalidName or GridErrorKind.InvalidArgument => 400,
                GridErrorKind.AccessDenied => 403,
                _ => 502,
            };
            result = new { error = ex.Message, errorId = ex.ErrorId };
        }
        await WriteJsonAsync(res, result).ConfigureAwait(false);
    }

    private static Task WriteJsonAsync(HttpListenerResponse res, object value) =>
        WriteBytesAsync(res, "application/json; charset=utf-8", JsonSerializer.SerializeToUtf8Bytes(value, Json));

    private static Task WriteTextAsync(HttpListenerResponse res, string contentType, string text) =>
        WriteBytesAsync(res, contentType, Encoding.UTF8.GetBytes(text));

    private static async Task WriteBytesAsync(HttpListenerResponse res, string contentType, byte[] bytes)
    {
        res.ContentType = contentType;
        res.ContentLength64 = bytes.Length;
        await res.OutputStream.WriteAsync(bytes).ConfigureAwait(false);
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
}
