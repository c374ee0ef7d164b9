using System.IO.Compression;
using System.Net;
using System.Text.Json;
using GridArtifacts.Core;
using GridArtifacts.Core.Sharing;
using GridArtifacts.Core.Stores;
using GridArtifacts.Model;
using Xunit;

namespace GridArtifacts.Tests;

/// <summary>
/// The artifacts page's server over HTTP, on both stores: who gets in, what it serves and how.
/// (tests/browser drives the page itself in a real browser.)
/// </summary>
public abstract class ArtifactServerTests : IDisposable
{
    protected readonly TempDir Temp = new();
    private readonly IObjectStore _store;
    private readonly GridCatalog _catalog;
    private readonly ArtifactServer _server;
    /// <summary>$BROWSER is the process's: one test at a time sets it.</summary>
    private static readonly SemaphoreSlim BrowserGate = new(1, 1);
    private readonly HttpClient _anonymous = new(new HttpClientHandler { AllowAutoRedirect = false, UseCookies = false });
    private readonly byte[] _model = TestBytes.Random(1_234_567, 11);
    private readonly byte[] _svg = "<svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(1)</script></svg>"u8.ToArray();

    protected ArtifactServerTests(Func<TempDir, IObjectStore> open)
    {
        _store = open(Temp);
        _catalog = new GridCatalog(_store);
        SeedAsync(_catalog).GetAwaiter().GetResult();
        _server = ArtifactServer.Start(_catalog);
    }

    private async Task SeedAsync(GridCatalog catalog)
    {
        var created = DateTimeOffset.UtcNow.AddMinutes(-5);
        await catalog.Writer.WriteRunRecordAsync(new RunRecord { Name = "page-run", Created = created }, default);
        await catalog.Writer.WriteExperimentRecordAsync(new ExperimentRecord
        {
            Run = "page-run", Experiment = "exp0", Status = GridStatus.Succeeded, Created = created, Started = created, Finished = created.AddMinutes(1),
        }, default);
        var manifest = new ManifestRecord { Run = "page-run", Experiment = "exp0" };
        foreach (var (path, bytes) in new[] { ("ckpt/model weights.pt", _model), ("plots/evil.svg", _svg), ("page.html", "<script>alert(1)</script>"u8.ToArray()) })
        {
            manifest.Artifacts.Add(await catalog.Artifacts.PutArtifactFileAsync("page-run", "exp0", path, Temp.WriteFile(path, bytes), default));
        }
        await catalog.Manifests.WriteManifestAsync(manifest, default);
    }

    public void Dispose()
    {
        ArtifactServer.Stop(_server.Store);
        _anonymous.Dispose();
        _store.Dispose();
        Temp.Dispose();
    }

    protected ArtifactServer Server => _server;

    protected Uri At(string relative) => new(_server.BaseUrl, relative);

    private string Token => _server.PageUrl.Query["?token=".Length..];

    private HttpRequestMessage Request(HttpMethod method, string relative, bool withCookie = true)
    {
        var request = new HttpRequestMessage(method, At(relative));
        if (withCookie) request.Headers.Add("Cookie", $"grid_token_{_server.Port}={Token}");
        return request;
    }

    protected async Task<HttpResponseMessage> SendAsync(HttpMethod method, string relative, bool withCookie = true, Action<HttpRequestMessage>? edit = null)
    {
        var request = Request(method, relative, withCookie);
        edit?.Invoke(request);
        return await _anonymous.SendAsync(request);
    }

    [Fact]
    public async Task Without_the_token_nothing_is_served()
    {
        foreach (var path in new[] { "", "app.js", "api/runs", "api/artifacts?run=page-run&exp=exp0", "file?run=page-run&exp=exp0&path=ckpt/model%20weights.pt" })
        {
            using var res = await SendAsync(HttpMethod.Get, path, withCookie: false);
            Assert.Equal(HttpStatusCode.Unauthorized, res.StatusCode);
            Assert.DoesNotContain("page-run", await res.Content.ReadAsStringAsync());
        }
        using var wrong = await SendAsync(HttpMethod.Get, "api/runs?token=" + new string('A', Token.Length), withCookie: false);
        Assert.Equal(HttpStatusCode.Unauthorized, wrong.StatusCode);
    }

    [Fact]
    public async Task The_token_in_the_address_becomes_a_cookie_and_leaves_the_address()
    {
        using var res = await _anonymous.GetAsync(_server.PageUrl);
        Assert.Equal(HttpStatusCode.SeeOther, res.StatusCode);
        Assert.Equal("/", res.Headers.Location!.OriginalString);
        var cookie = Assert.Single(res.Headers.GetValues("Set-Cookie"));
        Assert.Contains($"grid_token_{_server.Port}={Token}", cookie);
        Assert.Contains("HttpOnly", cookie);
        Assert.Contains("SameSite=Strict", cookie);

        using var page = await SendAsync(HttpMethod.Get, "");
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        Assert.Contains("script-src 'self'", page.Headers.GetValues("Content-Security-Policy").Single());
        Assert.Equal("nosniff", page.Headers.GetValues("X-Content-Type-Options").Single());
        Assert.Contains("<script src=\"/app.js\"", await page.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task A_foreign_Host_is_refused_even_with_the_token()
    {
        using var res = await SendAsync(HttpMethod.Get, "api/runs", edit: r => r.Headers.Host = $"rebound.example:{_server.Port}");
        Assert.NotEqual(HttpStatusCode.OK, res.StatusCode);
        Assert.DoesNotContain("page-run", await res.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Lists_runs_and_artifacts_with_hashes()
    {
        using var runs = JsonDocument.Parse(await (await SendAsync(HttpMethod.Get, "api/runs")).Content.ReadAsStringAsync());
        var run = Assert.Single(runs.RootElement.GetProperty("runs").EnumerateArray());
        Assert.Equal("page-run", run.GetProperty("name").GetString());
        Assert.Equal("Succeeded", run.GetProperty("status").GetString());
        Assert.False(run.GetProperty("active").GetBoolean());

        using var list = JsonDocument.Parse(await (await SendAsync(HttpMethod.Get, "api/artifacts?run=page-run&exp=exp0")).Content.ReadAsStringAsync());
        var model = list.RootElement.GetProperty("artifacts").EnumerateArray().Single(a => a.GetProperty("path").GetString() == "ckpt/model weights.pt");
        Assert.Equal(_model.Length, model.GetProperty("size").GetInt64());
        Assert.Equal(TestBytes.Sha256(_model), model.GetProperty("sha256").GetString());
        Assert.Equal("other", model.GetProperty("kind").GetString());

        using var missing = await SendAsync(HttpMethod.Get, "api/experiments?run=no-such-run");
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        Assert.Contains("no-such-run", await missing.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task The_runs_list_is_fresh_on_every_load_and_new_and_removed_runs_show()
    {
        async Task<Dictionary<string, string>> Runs(string query = "")
        {
            using var doc = JsonDocument.Parse(await (await SendAsync(HttpMethod.Get, "api/runs" + query)).Content.ReadAsStringAsync());
            return doc.RootElement.GetProperty("runs").EnumerateArray().ToDictionary(r => r.GetProperty("name").GetString()!, r => r.GetProperty("status").GetString()!);
        }
        Assert.Equal("Succeeded", (await Runs())["page-run"]);
        var now = DateTimeOffset.UtcNow;
        await _catalog.Writer.WriteExperimentRecordAsync(new ExperimentRecord { Run = "page-run", Experiment = "exp0", Status = GridStatus.Failed, Created = now, Finished = now }, default);
        await _catalog.Writer.WriteRunRecordAsync(new RunRecord { Name = "later-run", Created = now }, default);
        await _catalog.Writer.WriteExperimentRecordAsync(new ExperimentRecord { Run = "later-run", Experiment = "exp0", Status = GridStatus.Running, Created = now, Heartbeat = now }, default);

        // The list comes from the store's index each time: a change shows on the next load, from any writer.
        var second = await Runs();
        Assert.Equal("Failed", second["page-run"]);
        Assert.Equal("Running", second["later-run"]);
        Assert.Equal("Failed", (await Runs("?fresh=1"))["page-run"]);

        await _catalog.Remover.RemoveRunAsync("page-run", default);
        Assert.Equal(new[] { "later-run" }, (await Runs()).Keys);
    }

    private async Task<JsonDocument> GetJsonAsync(string relative)
    {
        using var res = await SendAsync(HttpMethod.Get, relative);
        Assert.Equal(HttpStatusCode.OK, res.StatusCode);
        return JsonDocument.Parse(await res.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Runs_and_experiments_carry_tags_protection_bytes_and_metrics()
    {
        await _catalog.Writer.AddTagsAsync("page-run", null, new[] { "keep" }, default);
        await _catalog.Writer.AddTagsAsync("page-run", "exp0", new[] { "best" }, default);
        await _catalog.Remover.ProtectAsync("page-run", default);
        var record = (await _catalog.Runs.ReadExperimentRecordAsync("page-run", "exp0", default))!;
        record.Metrics = new MetricsRecord { Source = "metrics.json", Rows = 1, Values = new() { ["val_loss"] = 0.25, ["acc"] = 0.9 } };
        // The writer's figures, which the run's index keys carry (as an import or the agent writes them).
        var bytes = _model.Length + _svg.Length + "<script>alert(1)</script>".Length;
        record.Sync = new GridSyncState { FilesSynced = 3, BytesSynced = bytes };
        await _catalog.Writer.WriteExperimentRecordAsync(record, default);

        using var runs = await GetJsonAsync("api/runs");
        var run = Assert.Single(runs.RootElement.GetProperty("runs").EnumerateArray());
        Assert.Equal(new[] { "best", "keep" }, run.GetProperty("tags").EnumerateArray().Select(t => t.GetString()));
        Assert.True(run.GetProperty("protected").GetBoolean());
        Assert.Equal(bytes, run.GetProperty("bytes").GetInt64());

        using var exps = await GetJsonAsync("api/experiments?run=page-run");
        var exp = Assert.Single(exps.RootElement.GetProperty("experiments").EnumerateArray());
        Assert.Equal(new[] { "best", "keep" }, exp.GetProperty("tags").EnumerateArray().Select(t => t.GetString()));
        Assert.Equal(new[] { "best" }, exp.GetProperty("ownTags").EnumerateArray().Select(t => t.GetString()));
        Assert.True(exp.GetProperty("protected").GetBoolean());
        Assert.Equal(0.25, exp.GetProperty("metrics").GetProperty("val_loss").GetDouble());
        Assert.Equal(0.9, exp.GetProperty("metrics").GetProperty("acc").GetDouble());
        Assert.Equal("metrics.json", exp.GetProperty("metricsSource").GetString());
    }

    [Fact]
    public async Task A_cluster_run_carries_its_job_and_each_experiment_how_it_ended()
    {
        var now = DateTimeOffset.UtcNow;
        await _catalog.Writer.WriteRunRecordAsync(new RunRecord { Name = "slurm-run", Created = now }, default);
        await _catalog.Writer.SetRunJobAsync("slurm-run", new RunJob(GridScheduler.Slurm, "linux", "4242"), default);
        await _catalog.Writer.WriteExperimentRecordAsync(new ExperimentRecord { Run = "slurm-run", Experiment = "exp0", Status = GridStatus.Failed, ExitCode = 143, Signal = "SIGTERM", Created = now, Finished = now }, default);
        await _catalog.Writer.WriteExperimentRecordAsync(new ExperimentRecord { Run = "slurm-run", Experiment = "exp1", Status = GridStatus.Queued, Created = now }, default);
        var reason = "Slurm task 4242_1 ended FAILED (exit 127) before its agent started";
        Assert.True(await _catalog.Claims.EndQueuedAsync("slurm-run", "exp1", GridStatus.Failed, reason, 127, default));

        using var runs = await GetJsonAsync("api/runs");
        var list = runs.RootElement.GetProperty("runs").EnumerateArray().ToDictionary(r => r.GetProperty("name").GetString()!, r => r.Clone());
        Assert.Equal("Slurm", list["slurm-run"].GetProperty("scheduler").GetString());
        Assert.Equal("4242", list["slurm-run"].GetProperty("job").GetString());
        Assert.Equal("linux", list["slurm-run"].GetProperty("cluster").GetString());
        Assert.False(list["page-run"].TryGetProperty("job", out _), "a Local run has no job");

        using var exps = await GetJsonAsync("api/experiments?run=slurm-run");
        var byName = exps.RootElement.GetProperty("experiments").EnumerateArray().ToDictionary(e => e.GetProperty("name").GetString()!, e => e.Clone());
        Assert.Equal("SIGTERM", byName["exp0"].GetProperty("signal").GetString());
        Assert.Equal(143, byName["exp0"].GetProperty("exitCode").GetInt32());
        Assert.Equal(JsonValueKind.Null, byName["exp0"].GetProperty("reason").ValueKind);
        Assert.Equal("Failed", byName["exp1"].GetProperty("status").GetString());
        Assert.Equal(reason, byName["exp1"].GetProperty("reason").GetString());
        Assert.Equal(JsonValueKind.Null, byName["exp1"].GetProperty("signal").ValueKind);
    }

    /// <summary>A run of three experiments: a hostile metrics.csv its record names, one its record does not, and none.</summary>
    private async Task SeedChartRunAsync()
    {
        await _catalog.Writer.WriteRunRecordAsync(new RunRecord { Name = "chart-run", Created = DateTimeOffset.UtcNow }, default);
        const string hostile = "lightning_logs/version_0/metrics.csv";
        var files = new (string Experiment, string Path, string Text, MetricsRecord? Metrics)[]
        {
            ("exp0", hostile, "step,<img src=x onerror=fetch('/pwned')>,loss\n0,1.5,<script>fetch('/pwned')</script>\n1,1.25,0.9\n2,NaN,0.75\n,9,9\n3,Infinity,0.5\n",
                new MetricsRecord { Source = hostile, Rows = 5, Values = new() { ["loss"] = 0.5 } }),
            // Written before metrics were recorded (or with metrics.json beside it): the newest csv is found among the artifacts.
            ("exp1", "metrics.json", "{\"loss\": 1}", new MetricsRecord { Source = "metrics.json", Rows = 1, Values = new() { ["loss"] = 1 } }),
            ("exp1", "lightning_logs/version_0/metrics.csv", "epoch,loss\n0,9\n", null),
            ("exp1", "lightning_logs/version_1/metrics.csv", "epoch,loss\n" + string.Join("\n", Enumerable.Range(0, 5000).Select(i => $"{i},{i / 10.0}")) + "\n", null),
            ("exp2", "notes.txt", "no metrics here", null),
        };
        foreach (var group in files.GroupBy(f => f.Experiment))
        {
            var manifest = new ManifestRecord { Run = "chart-run", Experiment = group.Key, Sealed = true };
            foreach (var f in group)
            {
                manifest.Artifacts.Add(await _catalog.Artifacts.PutArtifactFileAsync("chart-run", group.Key, f.Path,
                    Temp.WriteFile($"chart/{group.Key}/{f.Path}", System.Text.Encoding.UTF8.GetBytes(f.Text)), default));
            }
            await _catalog.Manifests.WriteManifestAsync(manifest, default);
            await _catalog.Writer.WriteExperimentRecordAsync(new ExperimentRecord
            {
                Run = "chart-run", Experiment = group.Key, Status = GridStatus.Succeeded, Metrics = group.First().Metrics,
            }, default);
        }
    }

    [Fact]
    public async Task Metrics_come_as_numbers_only_and_a_hostile_csv_leaves_no_markup()
    {
        await SeedChartRunAsync();
        const string header = "<img src=x onerror=fetch('/pwned')>";
        using var res = await SendAsync(HttpMethod.Get, "api/metrics?run=chart-run&exp=exp0");
        Assert.Equal(HttpStatusCode.OK, res.StatusCode);
        var raw = await res.Content.ReadAsStringAsync();
        // Cells that are not numbers never leave the server; names leave as JSON strings with < and > escaped.
        Assert.DoesNotContain("script", raw);
        Assert.DoesNotContain("<", raw);
        Assert.DoesNotContain(">", raw);
        Assert.Contains("\\u003Cimg", raw);
        using var doc = JsonDocument.Parse(raw);
        var root = doc.RootElement;
        Assert.Equal("lightning_logs/version_0/metrics.csv", root.GetProperty("source").GetString());
        Assert.Equal("step", root.GetProperty("x").GetString());
        Assert.Equal(new[] { header, "loss" }, root.GetProperty("columns").EnumerateArray().Select(c => c.GetString()));
        Assert.Equal(5, root.GetProperty("rows").GetInt32());
        Assert.False(root.GetProperty("downsampled").GetBoolean());
        Assert.Equal(JsonValueKind.Null, root.GetProperty("problem").ValueKind);
        double[][] Points(string column) => root.GetProperty("series").GetProperty(column).EnumerateArray()
            .Select(p => p.EnumerateArray().Select(v => v.GetDouble()).ToArray()).ToArray();
        Assert.Equal(new[] { new[] { 0, 1.5 }, new[] { 1, 1.25 } }, Points(header)); // NaN, Infinity and a row without a step are left out
        Assert.Equal(new[] { new[] { 1, 0.9 }, new[] { 2, 0.75 }, new[] { 3, 0.5 } }, Points("loss"));
    }

    [Fact]
    public async Task Metrics_fall_back_to_the_newest_csv_are_thinned_and_empty_without_one()
    {
        await SeedChartRunAsync();
        using (var doc = await GetJsonAsync("api/metrics?run=chart-run&exp=exp1"))
        {
            var root = doc.RootElement;
            Assert.Equal("lightning_logs/version_1/metrics.csv", root.GetProperty("source").GetString());
            Assert.Equal("epoch", root.GetProperty("x").GetString());
            Assert.Equal(5000, root.GetProperty("rows").GetInt32());
            Assert.True(root.GetProperty("downsampled").GetBoolean());
            var loss = root.GetProperty("series").GetProperty("loss").EnumerateArray().Select(p => p[0].GetDouble()).ToList();
            Assert.InRange(loss.Count, 2, ArtifactServer.ChartPoints);
            Assert.Equal(0, loss[0]);
            Assert.Equal(4999, loss[^1]);
        }
        using (var doc = await GetJsonAsync("api/metrics?run=chart-run&exp=exp2"))
        {
            Assert.Equal(JsonValueKind.Null, doc.RootElement.GetProperty("source").ValueKind);
            Assert.Empty(doc.RootElement.GetProperty("columns").EnumerateArray());
            Assert.Empty(doc.RootElement.GetProperty("series").EnumerateObject());
        }
        using var missing = await SendAsync(HttpMethod.Get, "api/metrics?run=chart-run&exp=exp9");
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        using var unknown = await SendAsync(HttpMethod.Get, "api/metrics?run=no-such-run&exp=exp0");
        Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
        using var bad = await SendAsync(HttpMethod.Get, "api/metrics?run=..&exp=exp0");
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
    }

    [Fact]
    public async Task Downloads_are_exact_attachments_and_ranges_work()
    {
        using var res = await SendAsync(HttpMethod.Get, "file?run=page-run&exp=exp0&path=ckpt%2Fmodel%20weights.pt");
        Assert.Equal(HttpStatusCode.OK, res.StatusCode);
        Assert.Equal(TestBytes.Sha256(_model), TestBytes.Sha256(await res.Content.ReadAsByteArrayAsync()));
        Assert.Equal("application/octet-stream", res.Content.Headers.ContentType!.MediaType);
        Assert.Equal("attachment", res.Content.Headers.ContentDisposition!.DispositionType);

        using var range = await SendAsync(HttpMethod.Get, "file?run=page-run&exp=exp0&path=ckpt%2Fmodel%20weights.pt", edit: r => r.Headers.Add("Range", "bytes=1000-1999"));
        Assert.Equal(HttpStatusCode.PartialContent, range.StatusCode);
        Assert.Equal(_model[1000..2000], await range.Content.ReadAsByteArrayAsync());
    }

    [Fact]
    public async Task Artifacts_are_never_a_document_that_runs_script()
    {
        // An SVG shown inline is an image under a sandboxing policy; HTML is only ever an attachment.
        using var svg = await SendAsync(HttpMethod.Get, "file?run=page-run&exp=exp0&path=plots%2Fevil.svg&mode=inline");
        Assert.Equal("image/svg+xml", svg.Content.Headers.ContentType!.MediaType);
        var policy = svg.Headers.GetValues("Content-Security-Policy").Single();
        Assert.Contains("sandbox", policy);
        Assert.Contains("default-src 'none'", policy);
        Assert.Equal("nosniff", svg.Headers.GetValues("X-Content-Type-Options").Single());
        Assert.Equal(_svg, await svg.Content.ReadAsByteArrayAsync());

        using var html = await SendAsync(HttpMethod.Get, "file?run=page-run&exp=exp0&path=page.html&mode=inline");
        Assert.Equal("application/octet-stream", html.Content.Headers.ContentType!.MediaType);
        Assert.Equal("attachment", html.Content.Headers.ContentDisposition!.DispositionType);
        Assert.Contains("sandbox", html.Headers.GetValues("Content-Security-Policy").Single());
    }

    [Theory]
    [InlineData("../../.link-secret")]
    [InlineData("/etc/passwd")]
    [InlineData("..%2F..%2F.link-secret")]
    [InlineData("a/../../../runs/page-run/run.json")]
    public async Task Nothing_outside_the_artifacts_is_served(string path)
    {
        using var res = await SendAsync(HttpMethod.Get, "file?run=page-run&exp=exp0&path=" + Uri.EscapeDataString(Uri.UnescapeDataString(path)));
        Assert.Equal(HttpStatusCode.BadRequest, res.StatusCode);
        Assert.Empty(await res.Content.ReadAsByteArrayAsync());
        using var run = await SendAsync(HttpMethod.Get, "file?run=..&exp=exp0&path=run.json");
        Assert.Equal(HttpStatusCode.BadRequest, run.StatusCode);
    }

    [Fact]
    public async Task A_link_from_the_page_fetches_the_exact_bytes_for_24_hours()
    {
        using var refused = await SendAsync(HttpMethod.Post, "api/link?run=page-run&exp=exp0&path=ckpt%2Fmodel%20weights.pt");
        Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode); // no Origin: not from the page

        using var foreign = await SendAsync(HttpMethod.Post, "api/link?run=page-run&exp=exp0&path=ckpt%2Fmodel%20weights.pt",
            edit: r => r.Headers.Add("Origin", "http://evil.example"));
        Assert.Equal(HttpStatusCode.Forbidden, foreign.StatusCode);

        using var res = await SendAsync(HttpMethod.Post, "api/link?run=page-run&exp=exp0&path=ckpt%2Fmodel%20weights.pt",
            edit: r => r.Headers.Add("Origin", _server.BaseUrl.GetLeftPart(UriPartial.Authority)));
        Assert.Equal(HttpStatusCode.OK, res.StatusCode);
        using var link = JsonDocument.Parse(await res.Content.ReadAsStringAsync());
        var expires = link.RootElement.GetProperty("expiresAt").GetDateTimeOffset();
        Assert.InRange(expires, DateTimeOffset.UtcNow.AddHours(23.9), DateTimeOffset.UtcNow.AddHours(24).AddSeconds(2));
        using var plain = new HttpClient();
        var bytes = await plain.GetByteArrayAsync(link.RootElement.GetProperty("url").GetString());
        Assert.Equal(TestBytes.Sha256(_model), TestBytes.Sha256(bytes));
    }

    [Fact]
    public async Task Names_from_every_plane_round_trip_through_the_listing_a_download_a_link_and_the_zip()
    {
        var names = ReliabilityTests.UnicodeNames;
        var manifest = new ManifestRecord { Run = "page-run", Experiment = "exp1", Sealed = true };
        var expected = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var name in names)
        {
            var bytes = System.Text.Encoding.UTF8.GetBytes("bytes of " + name);
            manifest.Artifacts.Add(await _catalog.Artifacts.PutArtifactFileAsync("page-run", "exp1", name, Temp.WriteFile("u/" + Guid.NewGuid().ToString("N"), bytes), default));
            expected[name] = TestBytes.Sha256(bytes);
        }
        await _catalog.Manifests.WriteManifestAsync(manifest, default);
        await _catalog.Writer.WriteExperimentRecordAsync(new ExperimentRecord { Run = "page-run", Experiment = "exp1", Status = GridStatus.Succeeded }, default);

        using var list = JsonDocument.Parse(await (await SendAsync(HttpMethod.Get, "api/artifacts?run=page-run&exp=exp1")).Content.ReadAsStringAsync());
        Assert.Equal(expected, list.RootElement.GetProperty("artifacts").EnumerateArray()
            .ToDictionary(a => a.GetProperty("path").GetString()!, a => a.GetProperty("sha256").GetString()!, StringComparer.Ordinal));

        var origin = _server.BaseUrl.GetLeftPart(UriPartial.Authority);
        using var plain = new HttpClient();
        foreach (var name in names)
        {
            using var file = await SendAsync(HttpMethod.Get, "file?run=page-run&exp=exp1&path=" + Uri.EscapeDataString(name));
            Assert.Equal(HttpStatusCode.OK, file.StatusCode);
            Assert.Equal(expected[name], TestBytes.Sha256(await file.Content.ReadAsByteArrayAsync()));

            using var res = await SendAsync(HttpMethod.Post, "api/link?run=page-run&exp=exp1&path=" + Uri.EscapeDataString(name), edit: r => r.Headers.Add("Origin", origin));
            Assert.Equal(HttpStatusCode.OK, res.StatusCode);
            using var link = JsonDocument.Parse(await res.Content.ReadAsStringAsync());
            Assert.Equal(expected[name], TestBytes.Sha256(await plain.GetByteArrayAsync(link.RootElement.GetProperty("url").GetString())));
        }

        var items = JsonSerializer.Serialize(names.Select(n => new[] { "page-run", "exp1", n }));
        using var zipped = await SendAsync(HttpMethod.Post, "zip", edit: r =>
        {
            r.Headers.Add("Origin", origin);
            r.Content = new FormUrlEncodedContent(new Dictionary<string, string> { ["items"] = items });
        });
        Assert.Equal(HttpStatusCode.OK, zipped.StatusCode);
        using var zip = new ZipArchive(new MemoryStream(await zipped.Content.ReadAsByteArrayAsync()));
        Assert.Equal(expected.ToDictionary(e => "page-run/exp1/" + e.Key, e => e.Value, StringComparer.Ordinal), zip.Entries.ToDictionary(e => e.FullName, e =>
        {
            using var s = e.Open();
            using var ms = new MemoryStream();
            s.CopyTo(ms);
            return TestBytes.Sha256(ms.ToArray());
        }, StringComparer.Ordinal));
    }

    [Fact]
    public async Task Selected_artifacts_come_as_one_zip_byte_exact()
    {
        var items = JsonSerializer.Serialize(new[] { new[] { "page-run", "exp0", "ckpt/model weights.pt" }, new[] { "page-run", "exp0", "plots/evil.svg" } });
        using var res = await SendAsync(HttpMethod.Post, "zip", edit: r =>
        {
            r.Headers.Add("Origin", _server.BaseUrl.GetLeftPart(UriPartial.Authority));
            r.Content = new FormUrlEncodedContent(new Dictionary<string, string> { ["items"] = items });
        });
        Assert.Equal(HttpStatusCode.OK, res.StatusCode);
        Assert.Equal("application/zip", res.Content.Headers.ContentType!.MediaType);
        using var zip = new ZipArchive(new MemoryStream(await res.Content.ReadAsByteArrayAsync()));
        var hashes = zip.Entries.ToDictionary(e => e.FullName, e =>
        {
            using var s = e.Open();
            using var ms = new MemoryStream();
            s.CopyTo(ms);
            return TestBytes.Sha256(ms.ToArray());
        });
        Assert.Equal(new Dictionary<string, string>
        {
            ["page-run/exp0/ckpt/model weights.pt"] = TestBytes.Sha256(_model),
            ["page-run/exp0/plots/evil.svg"] = TestBytes.Sha256(_svg),
        }, hashes);

        using var traversal = await SendAsync(HttpMethod.Post, "zip", edit: r =>
        {
            r.Headers.Add("Origin", _server.BaseUrl.GetLeftPart(UriPartial.Authority));
            r.Content = new FormUrlEncodedContent(new Dictionary<string, string> { ["items"] = "[[\"page-run\",\"exp0\",\"../../run.json\"]]" });
        });
        Assert.Equal(HttpStatusCode.BadRequest, traversal.StatusCode);
    }

    [Fact]
    public async Task A_link_longer_than_seven_days_is_refused_with_InvalidExpiry_before_anything_is_signed()
    {
        var ex = await Assert.ThrowsAsync<GridException>(() => ArtifactLinks.CreateAsync(_store, "page-run", "exp0", "ckpt/model weights.pt", TimeSpan.FromDays(7).Add(TimeSpan.FromSeconds(1)), _ => { }));
        Assert.Equal("InvalidExpiry", ex.ErrorId);
        Assert.Equal(GridErrorKind.InvalidArgument, ex.Kind);

        using var host = new ModuleHost(_store.Location);
        foreach (var expiry in new[] { "([TimeSpan]::FromDays(7).Add([TimeSpan]::FromSeconds(1)))", "([TimeSpan]::FromDays(365))", "([TimeSpan]::MaxValue)" })
        {
            var (output, errors) = host.Invoke($"New-GridArtifactLink page-run -Expiry {expiry}", Array.Empty<object>(), terminatingAsError: true);
            Assert.Empty(output);
            Assert.StartsWith("InvalidExpiry", Assert.Single(errors).FullyQualifiedErrorId);
        }

        // Seven days is the bound, not past it: such a link is made, and fetches the exact bytes.
        var links = host.Run("New-GridArtifactLink page-run -Path 'ckpt/*' -Expiry ([TimeSpan]::FromDays(7))");
        var link = Assert.IsType<GridArtifactLink>(Assert.Single(links).BaseObject);
        Assert.InRange(link.ExpiresAt, DateTimeOffset.UtcNow.AddDays(7).AddMinutes(-1), DateTimeOffset.UtcNow.AddDays(7).AddSeconds(2));
        using var plain = new HttpClient();
        Assert.Equal(TestBytes.Sha256(_model), TestBytes.Sha256(await plain.GetByteArrayAsync(link.Url)));
    }

    [Theory]
    [InlineData("bytes=99999999999999999999-")]
    [InlineData("bytes=9223372036854775807-")]
    [InlineData("bytes=1234567-")]
    public async Task A_range_that_starts_past_the_end_or_past_any_number_is_416(string range)
    {
        using var res = await SendAsync(HttpMethod.Get, "file?run=page-run&exp=exp0&path=ckpt%2Fmodel%20weights.pt", edit: r => r.Headers.TryAddWithoutValidation("Range", range));
        Assert.Equal(HttpStatusCode.RequestedRangeNotSatisfiable, res.StatusCode);
        Assert.Equal($"bytes */{_model.Length}", res.Content.Headers.GetValues("Content-Range").Single());
        Assert.Empty(await res.Content.ReadAsByteArrayAsync());
    }

    [Theory]
    [InlineData("bytes=0-99999999999999999999")]
    [InlineData("bytes=-99999999999999999999")]
    [InlineData("bytes=0-")]
    public async Task A_range_that_ends_past_any_number_is_the_whole_artifact(string range)
    {
        using var res = await SendAsync(HttpMethod.Get, "file?run=page-run&exp=exp0&path=ckpt%2Fmodel%20weights.pt", edit: r => r.Headers.TryAddWithoutValidation("Range", range));
        Assert.Equal(HttpStatusCode.PartialContent, res.StatusCode);
        Assert.Equal($"bytes 0-{_model.Length - 1}/{_model.Length}", res.Content.Headers.GetValues("Content-Range").Single());
        Assert.Equal(TestBytes.Sha256(_model), TestBytes.Sha256(await res.Content.ReadAsByteArrayAsync()));
    }

    [Fact]
    public async Task Localhost_is_answered_as_127_0_0_1_is_and_other_names_are_not()
    {
        foreach (var host in new[] { $"127.0.0.1:{_server.Port}", $"localhost:{_server.Port}" })
        {
            using var res = await SendAsync(HttpMethod.Get, "api/runs", edit: r => r.Headers.Host = host);
            Assert.Equal(HttpStatusCode.OK, res.StatusCode);
            Assert.Contains("page-run", await res.Content.ReadAsStringAsync());
            // The page's POSTs come from that origin then.
            using var link = await SendAsync(HttpMethod.Post, "api/link?run=page-run&exp=exp0&path=plots%2Fevil.svg", edit: r =>
            {
                r.Headers.Host = host;
                r.Headers.Add("Origin", "http://" + host);
            });
            Assert.Equal(HttpStatusCode.OK, link.StatusCode);
        }
        // Another name or address on this port, or localhost on another port: each on a connection of
        // its own, as a rebinding page's first request comes. (.NET's HttpListener answers a name it
        // has no prefix for with its own 404, then writes a bare "200 OK, Connection: close" on that
        // connection, which a client that reuses it reads as the answer to its next request. That
        // answer holds nothing, and never reaches this server: the second check below.)
        foreach (var host in new[] { $"localhost.example:{_server.Port}", $"127.0.0.2:{_server.Port}", $"localhost:{_server.Port + 1}" })
        {
            using var res = await SendAsync(HttpMethod.Get, "api/runs", edit: r => { r.Headers.Host = host; r.Headers.ConnectionClose = true; });
            Assert.True(res.StatusCode is HttpStatusCode.NotFound or HttpStatusCode.MisdirectedRequest, $"Host {host} was answered {res.StatusCode}");
            Assert.DoesNotContain("page-run", await res.Content.ReadAsStringAsync());
        }
        // On one kept connection, whatever the client reads after such a 404 carries nothing of the store.
        foreach (var host in new[] { $"localhost.example:{_server.Port}", $"127.0.0.2:{_server.Port}", $"localhost:{_server.Port + 1}", $"localhost.example:{_server.Port}" })
        {
            using var res = await SendAsync(HttpMethod.Get, "api/runs", edit: r => r.Headers.Host = host);
            Assert.True(res.StatusCode != HttpStatusCode.OK || res.Content.Headers.ContentLength is null or 0, $"Host {host} was served {res.StatusCode}");
            Assert.DoesNotContain("page-run", await res.Content.ReadAsStringAsync());
        }
    }

    [Fact]
    public async Task A_zip_of_many_items_holds_each_artifact_once_in_the_order_first_asked()
    {
        var manifest = new ManifestRecord { Run = "page-run", Experiment = "exp2", Sealed = true };
        var expected = new Dictionary<string, string>(StringComparer.Ordinal);
        for (var i = 0; i < 100; i++)
        {
            var bytes = System.Text.Encoding.UTF8.GetBytes($"artifact {i}\n");
            var path = $"many/f-{i:d3}.txt";
            manifest.Artifacts.Add(await _catalog.Artifacts.PutArtifactFileAsync("page-run", "exp2", path, Temp.WriteFile("many/" + path, bytes), default));
            expected[path] = TestBytes.Sha256(bytes);
        }
        await _catalog.Manifests.WriteManifestAsync(manifest, default);
        // 20,000 items: each of the 100 artifacts 200 times, in a shuffled order.
        var random = new Random(3);
        var asked = Enumerable.Range(0, 20_000).Select(i => $"many/f-{i % 100:d3}.txt").OrderBy(_ => random.Next()).ToList();
        var firstOrder = asked.Distinct(StringComparer.Ordinal).Select(p => "page-run/exp2/" + p).ToList();
        using var res = await SendAsync(HttpMethod.Post, "zip", edit: r =>
        {
            r.Headers.Add("Origin", _server.BaseUrl.GetLeftPart(UriPartial.Authority));
            r.Content = new FormUrlEncodedContent(new Dictionary<string, string> { ["items"] = JsonSerializer.Serialize(asked.Select(p => new[] { "page-run", "exp2", p })) });
        });
        Assert.Equal(HttpStatusCode.OK, res.StatusCode);
        using var zip = new ZipArchive(new MemoryStream(await res.Content.ReadAsByteArrayAsync()));
        Assert.Equal(firstOrder, zip.Entries.Select(e => e.FullName));
        foreach (var e in zip.Entries)
        {
            using var s = e.Open();
            using var ms = new MemoryStream();
            s.CopyTo(ms);
            Assert.Equal(expected[e.FullName["page-run/exp2/".Length..]], TestBytes.Sha256(ms.ToArray()));
        }
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_zip_request_larger_than_the_bound_is_413_and_one_at_the_bound_is_served(bool withLength)
    {
        var items = "items=" + Uri.EscapeDataString(JsonSerializer.Serialize(new[] { new[] { "page-run", "exp0", "plots/evil.svg" } })) + "&pad=";
        HttpContent Body(int size)
        {
            var bytes = new byte[size];
            System.Text.Encoding.ASCII.GetBytes(items).CopyTo(bytes, 0);
            bytes.AsSpan(items.Length).Fill((byte)'x');
            // Without a length, the body comes chunked and is counted as it is read.
            HttpContent content = withLength ? new ByteArrayContent(bytes) : new StreamContent(new NoLengthStream(bytes));
            content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/x-www-form-urlencoded");
            return content;
        }
        var origin = _server.BaseUrl.GetLeftPart(UriPartial.Authority);
        if (withLength)
        {
            // Refused on its Content-Length, before the body is read (so a client still sending it sees the
            // connection close): the request alone, with no body after it, gets its answer.
            using var tcp = new System.Net.Sockets.TcpClient();
            await tcp.ConnectAsync(IPAddress.Loopback, _server.Port);
            var stream = tcp.GetStream();
            await stream.WriteAsync(System.Text.Encoding.ASCII.GetBytes(
                $"POST /zip HTTP/1.1\r\nHost: {_server.BaseUrl.Authority}\r\nOrigin: {origin}\r\nCookie: grid_token_{_server.Port}={Token}\r\n" +
                $"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {ArtifactServer.MaxZipRequestBytes + 1}\r\n\r\n"));
            using var reader = new StreamReader(stream, System.Text.Encoding.ASCII);
            // (A server that waits for the body never answers: fail then, rather than hang.)
            Assert.StartsWith("HTTP/1.1 413 ", await reader.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(30)));
        }
        else
        {
            using var refused = await SendAsync(HttpMethod.Post, "zip", edit: r => { r.Headers.Add("Origin", origin); r.Content = Body(ArtifactServer.MaxZipRequestBytes + 1); });
            Assert.Equal(HttpStatusCode.RequestEntityTooLarge, refused.StatusCode);
        }

        using var served = await SendAsync(HttpMethod.Post, "zip", edit: r => { r.Headers.Add("Origin", origin); r.Content = Body(ArtifactServer.MaxZipRequestBytes); });
        Assert.Equal(HttpStatusCode.OK, served.StatusCode);
        using var zip = new ZipArchive(new MemoryStream(await served.Content.ReadAsByteArrayAsync()));
        Assert.Equal("page-run/exp0/plots/evil.svg", Assert.Single(zip.Entries).FullName);
    }

    /// <summary>A stream that does not say its length, so HttpClient sends it chunked.</summary>
    private sealed class NoLengthStream(byte[] bytes) : MemoryStream(bytes)
    {
        public override bool CanSeek => false;
    }

    [Fact]
    public async Task Show_GridArtifact_gives_the_browser_no_token_only_a_private_file_whose_code_works_once()
    {
        if (OperatingSystem.IsWindows()) return; // a shell script stands in for the browser
        var argv = Temp.Sub("argv.txt");
        var browser = Temp.WriteFile("browser.sh", System.Text.Encoding.UTF8.GetBytes(
            $"#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done > '{argv}.tmp' && mv '{argv}.tmp' '{argv}'\n"));
        File.SetUnixFileMode(browser, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        string[] args;
        await BrowserGate.WaitAsync();
        try
        {
            Environment.SetEnvironmentVariable("BROWSER", browser);
            using var host = new ModuleHost(_store.Location);
            host.Run("Show-GridArtifact page-run -Experiment exp0 -InformationAction Ignore");
            var deadline = DateTime.UtcNow.AddSeconds(10);
            while (!File.Exists(argv) && DateTime.UtcNow < deadline) await Task.Delay(50);
            args = File.ReadAllLines(argv);
        }
        finally
        {
            Environment.SetEnvironmentVariable("BROWSER", null);
            BrowserGate.Release();
        }

        // What every local user can read (/proc/PID/cmdline): no token, only where a file is.
        Assert.False(args.Any(a => a.Contains(Token, StringComparison.Ordinal)), "the access token is on the browser's command line");
        var entry = new Uri(Assert.Single(args));
        Assert.True(entry.IsFile, entry.ToString());
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(entry.LocalPath));
        var html = await File.ReadAllTextAsync(entry.LocalPath);
        Assert.False(html.Contains(Token, StringComparison.Ordinal), "the entry file holds the access token");
        var target = WebUtility.HtmlDecode(System.Text.RegularExpressions.Regex.Match(html, "url=([^\"]+)\"").Groups[1].Value);
        Assert.StartsWith(_server.BaseUrl + "?code=", target);
        Assert.EndsWith("#run=page-run&exp=exp0", target);

        // The code, once, for the cookie; the file goes with it.
        using var first = await _anonymous.GetAsync(target);
        Assert.Equal(HttpStatusCode.SeeOther, first.StatusCode);
        Assert.Equal("/", first.Headers.Location!.OriginalString);
        var cookie = Assert.Single(first.Headers.GetValues("Set-Cookie"));
        Assert.Contains($"grid_token_{_server.Port}={Token}", cookie);
        Assert.Contains("HttpOnly", cookie);
        Assert.False(File.Exists(entry.LocalPath));
        using var second = await _anonymous.GetAsync(target);
        Assert.Equal(HttpStatusCode.Unauthorized, second.StatusCode);
        Assert.Empty(second.Headers.Where(h => h.Key == "Set-Cookie"));
    }

    [Fact]
    public async Task An_entry_code_expires_unused_and_its_file_goes()
    {
        _server.EntryLifetime = TimeSpan.FromSeconds(1);
        var entry = _server.WriteEntryFile("");
        var target = System.Text.RegularExpressions.Regex.Match(await File.ReadAllTextAsync(entry), "url=([^\"]+)\"").Groups[1].Value;
        await Task.Delay(TimeSpan.FromSeconds(1.5));
        using var late = await _anonymous.GetAsync(target);
        Assert.Equal(HttpStatusCode.Unauthorized, late.StatusCode);
        Assert.False(late.Headers.Contains("Set-Cookie"));
        Assert.False(File.Exists(entry));
        using var forged = await _anonymous.GetAsync(At("?code=" + new string('A', 43)));
        Assert.Equal(HttpStatusCode.Unauthorized, forged.StatusCode);
    }

    [Fact]
    public async Task Text_previews_are_the_first_64_KiB_as_plain_text()
    {
        using var res = await SendAsync(HttpMethod.Get, "file?run=page-run&exp=exp0&path=ckpt%2Fmodel%20weights.pt&mode=preview");
        Assert.Equal("text/plain", res.Content.Headers.ContentType!.MediaType);
        Assert.Equal(_model[..ArtifactServer.PreviewBytes], await res.Content.ReadAsByteArrayAsync());
        Assert.Equal(_model.Length.ToString(), res.Headers.GetValues("X-Grid-Size").Single());
    }
}

public sealed class FileSystemArtifactServerTests : ArtifactServerTests
{
    public FileSystemArtifactServerTests() : base(temp => new FileSystemStore(temp.Sub("store"))) { }

    /// <summary>A link to ckpt/model weights.pt expiring at <paramref name="expires"/>, signed with the store's own secret.</summary>
    private Uri Forge(DateTimeOffset expires)
    {
        var secret = File.ReadAllBytes(Temp.Sub("store", ".link-secret"));
        var e = expires.ToUnixTimeSeconds();
        var sig = Convert.ToHexString(System.Security.Cryptography.HMACSHA256.HashData(secret,
            System.Text.Encoding.UTF8.GetBytes($"v1\npage-run\nexp0\nckpt/model weights.pt\n{e}"))).ToLowerInvariant();
        return At($"a/page-run/exp0/{Uri.EscapeDataString("ckpt/model weights.pt")}?e={e}&s={sig}");
    }

    [Fact]
    public async Task A_correctly_signed_link_that_ends_past_seven_days_from_now_is_refused()
    {
        using var plain = new HttpClient();
        // Signed as the server signs: an hour, and seven days, are served.
        foreach (var fine in new[] { DateTimeOffset.UtcNow.AddHours(1), DateTimeOffset.UtcNow.Add(ArtifactLinks.MaxLifetime) })
        {
            using var ok = await plain.GetAsync(Forge(fine));
            Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        }
        // One made by an older version, or by whoever holds the secret, that would outlive the bound.
        foreach (var far in new[] { DateTimeOffset.UtcNow.AddYears(5), DateTimeOffset.UtcNow.AddDays(8) })
        {
            using var res = await plain.GetAsync(Forge(far));
            Assert.Equal(HttpStatusCode.Forbidden, res.StatusCode);
            Assert.Empty(await res.Content.ReadAsByteArrayAsync());
        }
    }
}

[Collection(S3Collection.Name)]
public sealed class S3ArtifactServerTests : ArtifactServerTests
{
    public S3ArtifactServerTests(S3ServerFixture s3) : base(_ => new S3Store(s3.StoreUri(s3.NewBucket(), "page"))) { }
}

public sealed class ArtifactServerAddressTests
{
    [Fact]
    public async Task On_every_address_it_answers_on_loopback_and_names_this_machine_in_its_links()
    {
        using var temp = new TempDir();
        using var store = new FileSystemStore(temp.Sub("store"));
        var server = ArtifactServer.Start(new GridCatalog(store), "0.0.0.0");
        try
        {
            Assert.Equal(System.Net.Dns.GetHostName(), server.BaseUrl.Host);
            using var client = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false });
            var loopback = new Uri($"http://127.0.0.1:{server.Port}/api/runs{server.PageUrl.Query}");
            using var res = await client.GetAsync(loopback);
            Assert.Equal(HttpStatusCode.OK, res.StatusCode);
            using var refused = await client.GetAsync(new Uri($"http://127.0.0.1:{server.Port}/api/runs"));
            Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
        }
        finally { ArtifactServer.Stop(server.Store); }
    }
}
