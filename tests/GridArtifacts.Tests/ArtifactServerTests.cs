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
        await catalog.WriteRunRecordAsync(new RunRecord { Name = "page-run", Created = created }, default);
        await catalog.WriteExperimentRecordAsync(new ExperimentRecord
        {
            Run = "page-run", Experiment = "exp0", Status = GridStatus.Succeeded, Created = created, Started = created, Finished = created.AddMinutes(1),
        }, default);
        var manifest = new ManifestRecord { Run = "page-run", Experiment = "exp0" };
        foreach (var (path, bytes) in new[] { ("ckpt/model weights.pt", _model), ("plots/evil.svg", _svg), ("page.html", "<script>alert(1)</script>"u8.ToArray()) })
        {
            manifest.Artifacts.Add(await catalog.PutArtifactFileAsync("page-run", "exp0", path, Temp.WriteFile(path, bytes), default));
        }
        await catalog.WriteManifestAsync(manifest, default);
    }

    public void Dispose()
    {
        ArtifactServer.Stop(_server.Store);
        _anonymous.Dispose();
        _store.Dispose();
        Temp.Dispose();
    }

    private Uri At(string relative) => new(_server.BaseUrl, relative);

    private string Token => _server.PageUrl.Query["?token=".Length..];

    private HttpRequestMessage Request(HttpMethod method, string relative, bool withCookie = true)
    {
        var request = new HttpRequestMessage(method, At(relative));
        if (withCookie) request.Headers.Add("Cookie", $"grid_token_{_server.Port}={Token}");
        return request;
    }

    private async Task<HttpResponseMessage> SendAsync(HttpMethod method, string relative, bool withCookie = true, Action<HttpRequestMessage>? edit = null)
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
        await _catalog.WriteExperimentRecordAsync(new ExperimentRecord { Run = "page-run", Experiment = "exp0", Status = GridStatus.Failed, Created = now, Finished = now }, default);
        await _catalog.WriteRunRecordAsync(new RunRecord { Name = "later-run", Created = now }, default);
        await _catalog.WriteExperimentRecordAsync(new ExperimentRecord { Run = "later-run", Experiment = "exp0", Status = GridStatus.Running, Created = now, Heartbeat = now }, default);

        // The list comes from the store's index each time: a change shows on the next load, from any writer.
        var second = await Runs();
        Assert.Equal("Failed", second["page-run"]);
        Assert.Equal("Running", second["later-run"]);
        Assert.Equal("Failed", (await Runs("?fresh=1"))["page-run"]);

        await _catalog.RemoveRunAsync("page-run", default);
        Assert.Equal(new[] { "later-run" }, (await Runs()).Keys);
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
            manifest.Artifacts.Add(await _catalog.PutArtifactFileAsync("page-run", "exp1", name, Temp.WriteFile("u/" + Guid.NewGuid().ToString("N"), bytes), default));
            expected[name] = TestBytes.Sha256(bytes);
        }
        await _catalog.WriteManifestAsync(manifest, default);
        await _catalog.WriteExperimentRecordAsync(new ExperimentRecord { Run = "page-run", Experiment = "exp1", Status = GridStatus.Succeeded }, default);

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
