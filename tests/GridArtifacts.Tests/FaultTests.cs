using System.Collections.Concurrent;
using GridArtifacts.Core;
using GridArtifacts.Core.Stores;
using GridArtifacts.Core.Transfer;
using GridArtifacts.Model;
using Xunit;
using Xunit.Abstractions;

namespace GridArtifacts.Tests;

/// <summary>
/// Downloads from s3rver through a proxy that answers 500 and 503, resets connections, cuts bodies
/// short and stalls. Every download completes byte-exact or fails with a clear error; nothing corrupt
/// is ever left at a final path; attempts stay within the known bound.
/// </summary>
[Collection(S3Collection.Name)]
public sealed class FaultTests : IDisposable
{
    private const int PartSize = 256 << 10;
    private readonly S3ServerFixture _s3;
    private readonly TempDir _temp = new();
    private readonly FaultProxy _proxy;
    private readonly string _bucket;
    private readonly string _prefix = "faults-" + Guid.NewGuid().ToString("N");
    private readonly TransferEngine _engine = new(new TransferOptions { RangedThreshold = 1 << 20, PartSize = PartSize, PartsPerFile = 4 });

    private readonly ITestOutputHelper _output;

    public FaultTests(S3ServerFixture s3, ITestOutputHelper output)
    {
        _s3 = s3;
        _output = output;
        _bucket = s3.NewBucket();
        _proxy = new FaultProxy(s3.Endpoint);
    }

    public void Dispose()
    {
        _proxy.Dispose();
        _temp.Dispose();
    }

    [Fact]
    public async Task A_throttling_server_gets_fewer_requests_as_concurrency_backs_off_and_every_file_arrives_byte_exact()
    {
        // The server allows 4 requests in flight and answers 503 SlowDown beyond them. The same 160
        // files are saved at 16 in flight with the window fixed and with it adaptive.
        var (catalog, items) = await SeedAsync(Enumerable.Repeat(24_000, 160).ToArray());
        _proxy.ThrottleAbove = 4;
        async Task<(int Throttled, int Errors, int Window, string Why)> Save(bool adaptive)
        {
            var engine = new TransferEngine(new TransferOptions { MaxConcurrency = 16, AdaptiveConcurrency = adaptive });
            var dest = _temp.Sub("throttled-" + adaptive);
            var saves = items.Select(i => new SaveItem(i.Artifact, Path.Combine(dest, i.Artifact.Path))).ToList();
            var before = _proxy.Log.Count(l => l.Fault == Fault.SlowDown503);
            var errors = new ConcurrentBag<GridException>();
            await engine.DownloadAsync(saves, _ => catalog, false, 16, new TransferProgress(saves.Count, saves.Sum(s => s.Artifact.Size)),
                _ => { }, errors.Add, default);
            foreach (var (artifact, data) in items)
            {
                var path = Path.Combine(dest, artifact.Path);
                if (File.Exists(path)) Assert.Equal(TestBytes.Sha256(data), TestBytes.Sha256(path));
            }
            if (adaptive) Assert.True(engine.ConcurrencyDecreases > 0);
            return (_proxy.Log.Count(l => l.Fault == Fault.SlowDown503) - before, errors.Count, engine.ConcurrencyWindow, string.Join(" | ", errors.Select(e => $"{e.ErrorId}: {e.Message}")));
        }
        var fixedWindow = await Save(adaptive: false);
        var adaptive = await Save(adaptive: true);
        _output.WriteLine($"503s answered: {fixedWindow.Throttled} at a fixed 16 ({fixedWindow.Errors} files failed), {adaptive.Throttled} adaptive ({adaptive.Errors} failed, window {adaptive.Window} at the end)");
        Assert.True(adaptive.Errors == 0, $"{adaptive.Errors} file(s) failed: {adaptive.Why}"); // every file arrived, byte-exact (checked above)
        Assert.True(adaptive.Throttled < fixedWindow.Throttled, $"{adaptive.Throttled} throttled requests adaptive, {fixedWindow.Throttled} fixed");
        Assert.InRange(adaptive.Window, 1, 16);
    }

    [Fact]
    public async Task A_throttling_server_gets_fewer_uploads_as_concurrency_backs_off_and_every_file_arrives_byte_exact()
    {
        var files = Enumerable.Range(0, 150).Select(i => (Path: $"up{i:000}.bin", Data: TestBytes.Random(16_000 + i, 700 + i))).ToList();
        foreach (var f in files) _temp.WriteFile("up-src/" + f.Path, f.Data);
        var direct = new GridCatalog(new S3Store(_s3.StoreUri(_bucket, _prefix)));
        _proxy.ThrottleAbove = 4;
        async Task<(int Throttled, int Errors, int Window)> Upload(bool adaptive)
        {
            var engine = new TransferEngine(new TransferOptions { MaxConcurrency = 16, AdaptiveConcurrency = adaptive });
            var catalog = new GridCatalog(new S3Store(ViaProxyUri())) { Engine = engine };
            var run = "throttled-" + (adaptive ? "adaptive" : "fixed");
            var before = _proxy.Log.Count(l => l.Fault == Fault.SlowDown503);
            var errors = 0;
            var sent = new ConcurrentDictionary<string, string>();
            await Parallel.ForEachAsync(files, new ParallelOptions { MaxDegreeOfParallelism = 16 }, async (f, c) =>
            {
                try { sent[f.Path] = (await catalog.Artifacts.PutArtifactFileAsync(run, "exp0", f.Path, _temp.Sub("up-src", f.Path), c)).Sha256!; }
                catch (GridException) { Interlocked.Increment(ref errors); }
            });
            foreach (var f in files.Where(f => sent.ContainsKey(f.Path)))
            {
                await using var body = await direct.Store.OpenReadAsync(StoreLayout.ArtifactKey(run, "exp0", f.Path), default);
                Assert.Equal(TestBytes.Sha256(f.Data), Convert.ToHexString(await System.Security.Cryptography.SHA256.HashDataAsync(body)).ToLowerInvariant());
                Assert.Equal(TestBytes.Sha256(f.Data), sent[f.Path]);
            }
            if (adaptive) Assert.True(engine.ConcurrencyDecreases > 0);
            return (_proxy.Log.Count(l => l.Fault == Fault.SlowDown503) - before, errors, engine.ConcurrencyWindow);
        }
        var fixedWindow = await Upload(adaptive: false);
        var adaptive = await Upload(adaptive: true);
        _output.WriteLine($"503s answered to uploads: {fixedWindow.Throttled} at a fixed 16 ({fixedWindow.Errors} files failed), {adaptive.Throttled} adaptive ({adaptive.Errors} failed, window {adaptive.Window} at the end)");
        Assert.Equal(0, adaptive.Errors); // every file arrived, byte-exact (checked above)
        Assert.True(adaptive.Throttled < fixedWindow.Throttled, $"{adaptive.Throttled} throttled uploads adaptive, {fixedWindow.Throttled} fixed");
    }

    [Fact]
    public async Task A_part_that_fails_once_is_sent_again_alone_and_the_object_arrives_byte_exact()
    {
        var data = TestBytes.Random((11 << 20) + 7, 41);
        var file = _temp.WriteFile("parts/big.bin", data);
        var key = StoreLayout.ArtifactKey("parted", "exp0", "big.bin");
        var failed = 0;
        _proxy.Decide = (method, path, _) => method == "PUT" && path.Contains("partNumber=2") && Interlocked.Exchange(ref failed, 1) == 0 ? Fault.Status500 : Fault.None;
        var engine = new TransferEngine(new TransferOptions { RangedThreshold = 6L << 20, PartSize = 5L << 20 });
        await engine.UploadFileAsync(new S3Store(ViaProxyUri()), key, file, TimeProvider.System, default);
        var partPuts = _proxy.Log.Where(l => l.Method == "PUT" && l.PathAndQuery.Contains("partNumber=")).ToList();
        Assert.Equal(3 + 1, partPuts.Count); // three parts, the failed one once more
        Assert.Equal(1, partPuts.Count(l => l.Fault == Fault.Status500));
        var direct = new S3Store(_s3.StoreUri(_bucket, _prefix));
        await using var body = await direct.OpenReadAsync(key, default);
        Assert.Equal(TestBytes.Sha256(data), Convert.ToHexString(await System.Security.Cryptography.SHA256.HashDataAsync(body)).ToLowerInvariant());
        Assert.Empty(await direct.ListAsync(StoreLayout.UploadsPrefix("parted", "exp0"), true, default).ToListAsync());
    }

    [Fact]
    public async Task A_part_the_server_refuses_aborts_the_upload_and_leaves_neither_object_nor_record()
    {
        var file = _temp.WriteFile("parts/refused.bin", TestBytes.Random((11 << 20) + 3, 42));
        var key = StoreLayout.ArtifactKey("refused", "exp0", "refused.bin");
        // A server that aborts (RADOS Gateway, AWS) is asked; s3rver 3.7.1 answers 405 to
        // AbortMultipartUpload, so there the proxy answers as AWS does (204). The proxy logs it either way.
        var fakeAbort = !_s3.AbortsUploads;
        _proxy.Decide = (method, path, _) =>
            method == "PUT" && path.Contains("partNumber=3") ? Fault.Status403
            : fakeAbort && method == "DELETE" && path.Contains("uploadId=") ? Fault.NoContent : Fault.None;
        var engine = new TransferEngine(new TransferOptions { RangedThreshold = 6L << 20, PartSize = 5L << 20 });
        var ex = await Assert.ThrowsAsync<GridException>(() => engine.UploadFileAsync(new S3Store(ViaProxyUri()), key, file, TimeProvider.System, default));
        Assert.Equal(GridErrorKind.AccessDenied, ex.Kind);
        Assert.Single(_proxy.Log, l => l.Method == "PUT" && l.PathAndQuery.Contains("partNumber=3")); // refused: not retried
        Assert.Single(_proxy.Log, l => l.Method == "DELETE" && l.PathAndQuery.Contains("uploadId="));
        var direct = new S3Store(_s3.StoreUri(_bucket, _prefix));
        Assert.Null(await direct.TryReadAllBytesAsync(key, default));
        Assert.Empty(await direct.ListAsync(StoreLayout.UploadsPrefix("refused", "exp0"), true, default).ToListAsync());
        if (!fakeAbort) Assert.Empty((await _s3.Client.ListMultipartUploadsAsync(_bucket)).MultipartUploads ?? new()); // the server dropped the parts
    }

    [Fact]
    public async Task A_PUT_without_an_answer_in_time_is_tried_again_and_arrives_byte_exact()
    {
        // The first PUT of each file is held and never answered: the client's time-out (2 s here) is
        // a transient failure, tried again like a reset, whichever way the PUT is sent. The three ways
        // are sent at once (each file has its own store and its own first PUT), so their time-outs overlap.
        var hung = new ConcurrentDictionary<string, int>();
        _proxy.Decide = (method, path, _) => method == "PUT" && path.Contains("/timeout/") && hung.AddOrUpdate(path.Split('?')[0], 1, (_, v) => v + 1) == 1 ? Fault.Hang : Fault.None;
        await Task.WhenAll(new[] { ("direct", 200_000, false), ("larger", 1_300_000, false), ("sdk", 200_000, true) }.Select(async way =>
        {
            var (name, length, sdk) = way;
            var data = TestBytes.Random(length, length + name.Length);
            var file = _temp.WriteFile(name + ".bin", data);
            using var store = new S3Store(ViaProxyUri(), null, requestTimeout: TimeSpan.FromSeconds(2));
            if (sdk) store.PutThroughSdk();
            Assert.Equal(!sdk, store.PutsDirectly);
            var sent = await _engine.UploadFileAsync(store, $"timeout/{name}.bin", file, TimeProvider.System, default);
            Assert.Equal(TestBytes.Sha256(data), sent);
            using var direct = new S3Store(_s3.StoreUri(_bucket, _prefix));
            using var back = await direct.ReadRangeAsync($"timeout/{name}.bin", 0, 0, null, default);
            using var copy = new MemoryStream();
            await back.Body.CopyToAsync(copy);
            Assert.Equal(TestBytes.Sha256(data), TestBytes.Sha256(copy.ToArray()));
            Assert.Equal(2, hung[$"/{_bucket}/{_prefix}/timeout/{name}.bin"]);
        }));
    }

    private string ViaProxyUri() => _s3.StoreUri(_bucket, _prefix).Replace(Uri.EscapeDataString(_s3.Endpoint), Uri.EscapeDataString(_proxy.Endpoint));

    /// <summary>Uploads straight to s3rver, then lists through the proxy; returns artifacts and their source bytes.</summary>
    private async Task<(GridCatalog ViaProxy, List<(GridArtifact Artifact, byte[] Data)> Items)> SeedAsync(params int[] sizes)
    {
        var direct = new GridCatalog(new S3Store(_s3.StoreUri(_bucket, _prefix)));
        var manifest = new ManifestRecord { Run = "faulty", Experiment = "exp0" };
        var data = Enumerable.Range(0, sizes.Length).ToDictionary(i => $"f{i}.bin", i => TestBytes.Random(sizes[i], i + 100));
        var entries = new ManifestEntry[sizes.Length];
        await Parallel.ForEachAsync(Enumerable.Range(0, sizes.Length), new ParallelOptions { MaxDegreeOfParallelism = 8 }, async (i, ct) =>
            entries[i] = await direct.Artifacts.PutArtifactFileAsync("faulty", "exp0", $"f{i}.bin", _temp.WriteFile($"src/f{i}.bin", data[$"f{i}.bin"]), ct));
        manifest.Artifacts.AddRange(entries);
        await direct.Manifests.WriteManifestAsync(manifest, default);
        await direct.Writer.WriteExperimentRecordAsync(new ExperimentRecord { Run = "faulty", Experiment = "exp0", Status = GridStatus.Succeeded }, default);
        var viaProxy = new GridCatalog(new S3Store(ViaProxyUri()));
        var listed = await viaProxy.Artifacts.GetArtifactsAsync("faulty", "exp0", default);
        return (viaProxy, listed.Items.Select(a => (a, data[a.Path])).ToList());
    }

    private async Task<(List<GridSaveResult> Done, List<GridException> Errors, List<SaveItem> Items)> Download(GridCatalog catalog, IEnumerable<GridArtifact> artifacts)
    {
        var items = artifacts.Select(a => new SaveItem(a, _temp.Sub("dest", a.Path))).ToList();
        var done = new List<GridSaveResult>();
        var errors = new List<GridException>();
        await _engine.DownloadAsync(items, _ => catalog, false, 8, new TransferProgress(items.Count, items.Sum(i => i.Artifact.Size)),
            r => { lock (done) done.Add(r); }, e => { lock (errors) errors.Add(e); }, default);
        return (done, errors, items);
    }

    private static bool IsArtifactGet(string method, string path) => method == "GET" && path.Contains("/artifacts/");

    [Theory]
    [InlineData(Fault.SlowDown503)]
    [InlineData(Fault.Status500)]
    [InlineData(Fault.Reset)]
    [InlineData(Fault.Truncate)]
    public async Task Transient_faults_on_every_other_read_still_give_byte_exact_files(Fault fault)
    {
        var (catalog, items) = await SeedAsync(100_000, 3_000_000, 1, 700_000);
        if (fault == Fault.Truncate) Assert.Equal(1, items.Single(i => i.Data.Length == 1).Artifact.Size); // cut after 0 of 1 bytes
        var seen = new System.Collections.Concurrent.ConcurrentDictionary<string, int>();
        // The first read of every object fails (ranges share a path, so for the large one, its first range); retries go through.
        _proxy.Decide = (method, path, _) =>
            IsArtifactGet(method, path) && seen.AddOrUpdate(path.Split('?')[0], 1, (_, v) => v + 1) == 1 ? fault : Fault.None;
        var result = await Download(catalog, items.Select(i => i.Artifact));
        Assert.Empty(result.Errors);
        Assert.Equal(items.Count, result.Done.Count);
        foreach (var (artifact, data) in items)
        {
            Assert.Equal(TestBytes.Sha256(data), TestBytes.Sha256(_temp.Sub("dest", artifact.Path)));
        }
        Assert.Empty(Directory.EnumerateFiles(_temp.Sub("dest"), "*.part*"));
        Assert.False(Directory.Exists(_temp.Sub("dest", TransferEngine.PartialFolder)));
        // 3,000,000 bytes in 256 KiB ranges is 12 ranges, plus 3 whole objects; each object's first read fails once.
        var requests = _proxy.PerPath.Where(p => p.Key.Contains("/artifacts/")).Sum(p => p.Value);
        Assert.Equal(12 + 3 + 4, requests);
    }

    [Theory]
    [InlineData(Fault.Status500, "500", Retry.MaxAttempts)]
    [InlineData(Fault.SlowDown503, "503", Retry.MaxThrottledAttempts)] // a busy server is given more (about 20 s of backoff, on the clock)
    public async Task A_fault_that_never_clears_fails_after_a_known_number_of_attempts_and_leaves_nothing(Fault fault, string status, int attempts)
    {
        var (seeded, items) = await SeedAsync(50_000, 60_000);
        var catalog = new GridCatalog(seeded.Store, clock: new AutoAdvancingClock()); // the backoff passes on the clock
        var doomed = items[0].Artifact;
        _proxy.Decide = (method, path, _) => IsArtifactGet(method, path) && path.Contains(doomed.Path) ? fault : Fault.None;
        var result = await Download(catalog, items.Select(i => i.Artifact));
        var error = Assert.Single(result.Errors);
        Assert.Equal("StoreBusy", error.ErrorId);
        Assert.Contains(status, error.Message);
        Assert.Single(result.Done);
        Assert.Equal(attempts, _proxy.PerPath.Single(p => p.Key.EndsWith("/" + doomed.Path)).Value);
        Assert.False(File.Exists(_temp.Sub("dest", doomed.Path)));
        Assert.False(File.Exists(TransferEngine.PartPathOf(new SaveItem(doomed, _temp.Sub("dest", doomed.Path)))));
    }

    [Fact]
    public async Task Errors_that_cannot_succeed_are_not_retried()
    {
        var (catalog, items) = await SeedAsync(40_000);
        _proxy.Decide = (method, path, _) => IsArtifactGet(method, path) ? Fault.Status403 : Fault.None;
        var result = await Download(catalog, items.Select(i => i.Artifact));
        Assert.Equal("AccessDenied", Assert.Single(result.Errors).ErrorId);
        Assert.Equal(1, _proxy.PerPath.Single(p => p.Key.Contains("/artifacts/")).Value);
        Assert.False(File.Exists(_temp.Sub("dest", items[0].Artifact.Path)));
    }

    [Fact]
    public async Task A_stalled_body_is_abandoned_and_read_again()
    {
        var (catalog, items) = await SeedAsync(500_000);
        var saved = S3Store.ReadStallTimeout;
        S3Store.ReadStallTimeout = TimeSpan.FromSeconds(1);
        _proxy.StallFor = TimeSpan.FromSeconds(5);
        try
        {
            var first = 0;
            _proxy.Decide = (method, path, _) => IsArtifactGet(method, path) && Interlocked.Increment(ref first) == 1 ? Fault.Stall : Fault.None;
            var result = await Download(catalog, items.Select(i => i.Artifact));
            Assert.Empty(result.Errors);
            Assert.Equal(TestBytes.Sha256(items[0].Data), TestBytes.Sha256(_temp.Sub("dest", items[0].Artifact.Path)));
        }
        finally
        {
            S3Store.ReadStallTimeout = saved;
        }
    }
}
