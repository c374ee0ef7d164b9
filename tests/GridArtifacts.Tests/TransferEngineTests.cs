using GridArtifacts.Core;
using GridArtifacts.Model;
using GridArtifacts.Core.Stores;
using GridArtifacts.Core.Transfer;
using Xunit;

namespace GridArtifacts.Tests;

public class TransferEngineTests : IDisposable
{
    private readonly TempDir _temp = new();
    private readonly GridCatalog _catalog;

    public TransferEngineTests() => _catalog = new GridCatalog(new FileSystemStore(_temp.Sub("store")));

    public void Dispose() => _temp.Dispose();

    private async Task<GridArtifact> Stored(string path, byte[] data)
    {
        var entry = await _catalog.Artifacts.PutArtifactFileAsync("run", "exp0", path, _temp.WriteFile("src/" + path, data), default);
        var manifest = await _catalog.Manifests.ReadManifestAsync("run", "exp0", default) ?? new ManifestRecord { Run = "run", Experiment = "exp0" };
        manifest.Artifacts.RemoveAll(a => a.Path == path);
        manifest.Artifacts.Add(entry);
        await _catalog.Manifests.WriteManifestAsync(manifest, default);
        await _catalog.Writer.WriteExperimentRecordAsync(new ExperimentRecord { Run = "run", Experiment = "exp0", Status = GridStatus.Succeeded }, default);
        return (await _catalog.Artifacts.GetArtifactsAsync("run", "exp0", default)).Items.Single(a => a.Path == path);
    }

    /// <summary>An engine with small ranges, so modest files take the ranged path.</summary>
    private readonly TransferEngine _engine = new(new TransferOptions { RangedThreshold = 1 << 20, PartSize = 256 << 10, PartsPerFile = 4 });

    private async Task<(List<GridSaveResult> Done, List<GridException> Errors)> Save(bool force, params SaveItem[] items) =>
        await SaveWith(_catalog, force, default, items);

    private async Task<(List<GridSaveResult> Done, List<GridException> Errors)> SaveWith(GridCatalog catalog, bool force, CancellationToken ct, params SaveItem[] items)
    {
        var done = new List<GridSaveResult>();
        var errors = new List<GridException>();
        await _engine.DownloadAsync(items, _ => catalog, force, 4, new TransferProgress(items.Length, items.Sum(i => i.Artifact.Size)),
            r => { lock (done) done.Add(r); }, e => { lock (errors) errors.Add(e); }, ct);
        return (done, errors);
    }

    [Fact]
    public void The_request_window_halves_once_per_window_when_throttled_and_climbs_back_by_one_per_window()
    {
        var clock = new ManualClock();
        var limiter = new ConcurrencyLimiter(16, clock);
        Assert.Equal(16, limiter.Window);
        limiter.Throttled();
        Assert.Equal(8, limiter.Window);
        limiter.Throttled(); // the other requests that were in flight under 16 fail too: no second halving
        Assert.Equal(8, limiter.Window);
        for (var i = 0; i < 8; i++) limiter.Succeeded(); // a window of requests since the halving
        Assert.Equal(9, limiter.Window);
        limiter.Throttled(); // 8 requests since the halving: not yet a window of 9
        Assert.Equal(9, limiter.Window);
        limiter.Succeeded();
        limiter.Throttled();
        Assert.Equal(4, limiter.Window);
        for (var i = 0; i < 100; i++) limiter.Throttled(); // many failures, no successes, no time passing
        Assert.Equal(4, limiter.Window);
        clock.Advance(TimeSpan.FromSeconds(2)); // a second later, still throttled
        limiter.Throttled();
        Assert.Equal(2, limiter.Window);
        for (var n = 0; n < 1_000; n++) limiter.Succeeded();
        Assert.Equal(16, limiter.Window); // back to the limit, never above it
        limiter.Limit = 6; // a new limit is the window too
        Assert.Equal(6, limiter.Window);
        for (var i = 0; i < 20; i++) { clock.Advance(TimeSpan.FromSeconds(2)); limiter.Throttled(); }
        Assert.Equal(1, limiter.Window); // never below one
    }

    [Fact]
    public async Task Downloads_verify_skip_identical_and_replace_changed_files()
    {
        var data = TestBytes.Random(3_000_000, 11);
        var artifact = await Stored("ckpt/model.pt", data);
        var target = _temp.Sub("dest", "run", "exp0", "ckpt", "model.pt");

        var first = await Save(false, new SaveItem(artifact, target));
        Assert.Empty(first.Errors);
        Assert.Equal(GridSaveAction.Downloaded, Assert.Single(first.Done).Action);
        Assert.Equal(TestBytes.Sha256(data), TestBytes.Sha256(target));
        Assert.False(File.Exists(TransferEngine.PartPathOf(new SaveItem(artifact, target))));

        var again = await Save(false, new SaveItem(artifact, target));
        Assert.Equal(GridSaveAction.Skipped, Assert.Single(again.Done).Action);

        File.WriteAllBytes(target, TestBytes.Random(3_000_000, 12));
        var changed = await Save(false, new SaveItem(artifact, target));
        Assert.Equal(GridSaveAction.Overwritten, Assert.Single(changed.Done).Action);
        Assert.Equal(TestBytes.Sha256(data), TestBytes.Sha256(target));

        var forced = await Save(true, new SaveItem(artifact, target));
        Assert.Equal(GridSaveAction.Overwritten, Assert.Single(forced.Done).Action);
    }

    [Fact]
    public async Task Content_that_does_not_match_its_recorded_hash_is_never_left_at_the_final_path()
    {
        var artifact = await Stored("metrics.csv", TestBytes.Random(10_000, 1));
        // The stored bytes change behind the manifest's back (bit rot, a torn upload): same size, other content.
        File.WriteAllBytes(_temp.Sub("store", "runs", "run", "exp0", "artifacts", "metrics.csv"), TestBytes.Random(10_000, 2));
        var target = _temp.Sub("dest", "metrics.csv");
        var result = await Save(false, new SaveItem(artifact, target));
        Assert.Empty(result.Done);
        var error = Assert.Single(result.Errors);
        Assert.Equal(GridErrorKind.IntegrityFailure, error.Kind);
        Assert.Equal("HashMismatch", error.ErrorId);
        Assert.False(File.Exists(target));
        Assert.False(File.Exists(TransferEngine.PartPathOf(new SaveItem(artifact, target))));
    }

    [Fact]
    public async Task A_truncated_object_fails_and_leaves_nothing()
    {
        var artifact = await Stored("big.bin", TestBytes.Random(100_000, 3));
        File.WriteAllBytes(_temp.Sub("store", "runs", "run", "exp0", "artifacts", "big.bin"), TestBytes.Random(50_000, 3));
        var target = _temp.Sub("dest", "big.bin");
        var result = await Save(false, new SaveItem(artifact, target));
        Assert.Equal("ObjectChanged", Assert.Single(result.Errors).ErrorId);
        Assert.False(File.Exists(target));
        Assert.False(File.Exists(TransferEngine.PartPathOf(new SaveItem(artifact, target))));
    }

    [Fact]
    public async Task One_failure_does_not_stop_the_others()
    {
        var good = await Stored("good.txt", TestBytes.Random(1000, 5));
        var missing = new GridArtifact("run", "exp0", "gone.txt", _catalog.Location) { Size = 10, Sha256 = new string('0', 64) };
        var result = await Save(false, new SaveItem(good, _temp.Sub("dest", "good.txt")), new SaveItem(missing, _temp.Sub("dest", "gone.txt")));
        Assert.Equal("good.txt", Assert.Single(result.Done).Path);
        Assert.Equal(GridErrorKind.NotFound, Assert.Single(result.Errors).Kind);
        Assert.False(File.Exists(_temp.Sub("dest", "gone.txt")));
    }

    [Theory]
    [InlineData(1 << 20)]            // exactly the threshold: one whole read
    [InlineData((1 << 20) + 1)]      // just over: ranged, last range one byte
    [InlineData(5_000_000)]          // ranged, ragged last range
    public async Task Ranged_and_whole_downloads_are_byte_exact(int length)
    {
        var data = TestBytes.Random(length, length);
        var artifact = await Stored($"f{length}.bin", data);
        var target = _temp.Sub("dest", $"f{length}.bin");
        var result = await Save(false, new SaveItem(artifact, target));
        Assert.Empty(result.Errors);
        Assert.Equal(TestBytes.Sha256(data), TestBytes.Sha256(target));
        Assert.False(File.Exists(TransferEngine.PartPathOf(new SaveItem(artifact, target))));
        Assert.False(File.Exists(TransferEngine.StatePathOf(new SaveItem(artifact, target))));
    }

    [Fact]
    public async Task An_interrupted_ranged_download_resumes_without_reading_finished_ranges_again()
    {
        var data = TestBytes.Random(3_000_000, 21);
        var artifact = await Stored("resume.bin", data);
        var target = _temp.Sub("dest", "resume.bin");
        // A store that dies for good after four ranges: the download fails, its .part stays for later.
        var failing = new GridCatalog(new FailingAfterStore(_catalog.Store, reads: 4));
        var first = await SaveWith(failing, false, default, new SaveItem(artifact, target));
        Assert.Single(first.Errors);
        Assert.False(File.Exists(target));
        Assert.True(File.Exists(TransferEngine.PartPathOf(new SaveItem(artifact, target))));
        Assert.True(File.Exists(TransferEngine.StatePathOf(new SaveItem(artifact, target))));
        // Ranges finished before the failure are recorded (ranges still in flight when it came are not).
        using var state = System.Text.Json.JsonDocument.Parse(File.ReadAllBytes(TransferEngine.StatePathOf(new SaveItem(artifact, target))));
        var recorded = state.RootElement.GetProperty("done").GetArrayLength();
        Assert.InRange(recorded, 1, 4);

        var counting = new FailingAfterStore(_catalog.Store, reads: int.MaxValue);
        var second = await SaveWith(new GridCatalog(counting), false, default, new SaveItem(artifact, target));
        Assert.Empty(second.Errors);
        Assert.Equal(TestBytes.Sha256(data), TestBytes.Sha256(target));
        var parts = (3_000_000 + (256 << 10) - 1) / (256 << 10);
        Assert.Equal(parts - recorded, counting.Reads);
        Assert.False(File.Exists(TransferEngine.StatePathOf(new SaveItem(artifact, target))));
    }

    [Fact]
    public async Task An_object_replaced_during_a_ranged_download_is_never_stitched()
    {
        var data = TestBytes.Random(2_000_000, 31);
        var artifact = await Stored("moving.bin", data);
        var target = _temp.Sub("dest", "moving.bin");
        var key = _temp.Sub("store", "runs", "run", "exp0", "artifacts", "moving.bin");
        // After the first range, a writer replaces the object with another of the same size.
        var replacing = new FailingAfterStore(_catalog.Store, reads: int.MaxValue, afterFirstRead: () =>
        {
            File.WriteAllBytes(key + ".new", TestBytes.Random(2_000_000, 32));
            File.SetLastWriteTimeUtc(key + ".new", DateTime.UtcNow.AddMinutes(1));
            File.Move(key + ".new", key, overwrite: true);
        });
        var result = await SaveWith(new GridCatalog(replacing), false, default, new SaveItem(artifact, target));
        Assert.Equal("ObjectChanged", Assert.Single(result.Errors).ErrorId);
        Assert.False(File.Exists(target));
        Assert.False(File.Exists(TransferEngine.PartPathOf(new SaveItem(artifact, target))));
    }

    [Fact]
    public async Task Cancellation_leaves_nothing_at_the_final_path()
    {
        var artifacts = new List<SaveItem>();
        for (var i = 0; i < 20; i++) artifacts.Add(new SaveItem(await Stored($"c{i}.bin", TestBytes.Random(200_000, i)), _temp.Sub("dest", $"c{i}.bin")));
        using var cts = new CancellationTokenSource();
        var slow = new FailingAfterStore(_catalog.Store, reads: int.MaxValue, afterFirstRead: () => cts.Cancel());
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => SaveWith(new GridCatalog(slow), false, cts.Token, artifacts.ToArray()));
        foreach (var item in artifacts)
        {
            Assert.False(File.Exists(TransferEngine.PartPathOf(item)));
            if (File.Exists(item.LocalPath)) Assert.Equal(item.Artifact.Sha256, TestBytes.Sha256(item.LocalPath));
        }
    }

    [Fact]
    public async Task Plan_counts_what_would_move()
    {
        var a = await Stored("p1.bin", TestBytes.Random(1000, 1));
        var b = await Stored("p2.bin", TestBytes.Random(3000, 2));
        await Save(false, new SaveItem(a, _temp.Sub("dest", "p1.bin")));
        var plan = await TransferEngine.PlanAsync(new[] { new SaveItem(a, _temp.Sub("dest", "p1.bin")), new SaveItem(b, _temp.Sub("dest", "p2.bin")) }, false, _ => _catalog, default);
        Assert.Equal((1, 3000L, 1), plan);
    }

    [Fact]
    public async Task A_lower_concurrency_set_while_requests_are_in_flight_is_never_exceeded()
    {
        var items = new List<SaveItem>();
        for (var i = 0; i < 24; i++)
        {
            var artifact = await Stored($"f{i:00}.bin", TestBytes.Random(1000, i));
            items.Add(new SaveItem(artifact, _temp.Sub("dest", $"f{i:00}.bin")));
        }
        var gated = new GatedStore(new FileSystemStore(_temp.Sub("store")));
        var catalog = new GridCatalog(gated);
        var engine = new TransferEngine(new TransferOptions { MaxConcurrency = 4 });
        var done = 0;
        var work = engine.DownloadAsync(items, _ => catalog, force: true, throttleLimit: 24, new TransferProgress(items.Count, 24_000),
            _ => Interlocked.Increment(ref done), e => throw e, default);
        await gated.WaitForInFlight(4);
        engine.Configure(engine.Options with { MaxConcurrency = 2 });
        gated.MarkReconfigured();
        gated.Open();
        await work.WaitAsync(TimeSpan.FromSeconds(60)); // before the fix, reads waiting on the replaced limit were never let go

        Assert.Equal(24, done);
        Assert.Equal(4, gated.MaxInFlightBefore);
        // Reads that started after the limit was lowered never had more than 2 in flight with them.
        Assert.InRange(gated.MaxInFlightAfter, 1, 2);
        foreach (var item in items) Assert.Equal(item.Artifact.Sha256, TestBytes.Sha256(item.LocalPath));
    }

    [Fact]
    public async Task Many_files_into_new_folders_at_once_all_arrive_whoever_makes_each_folder()
    {
        // Several downloads find one new folder missing at the same moment: each makes it (or finds it
        // made) and opens its part file again, whichever error the missing folder gave it.
        var items = new List<GridArtifact>();
        for (var i = 0; i < 120; i++) items.Add(await Stored($"d{i % 30:00}/sub/f{i:000}.bin", TestBytes.Random(500 + i, 3000 + i)));
        var engine = new TransferEngine(new TransferOptions());
        for (var round = 0; round < 20; round++)
        {
            var saves = items.Select(a => new SaveItem(a, _temp.Sub($"round{round}", a.Path))).ToList();
            var errors = new List<GridException>();
            await engine.DownloadAsync(saves, _ => _catalog, false, 32, new TransferProgress(saves.Count, saves.Sum(s => s.Artifact.Size)),
                _ => { }, e => { lock (errors) errors.Add(e); }, default);
            Assert.Empty(errors.Select(e => e.Message));
            foreach (var s in saves) Assert.Equal(s.Artifact.Sha256, TestBytes.Sha256(s.LocalPath));
        }
    }

    [Fact]
    public void A_stream_read_through_twice_is_hashed_once_and_one_read_out_of_order_gives_no_hash()
    {
        var data = TestBytes.Random(300_000, 5);
        var buffer = new byte[7_000];
        using (var twice = new HashingStream(new MemoryStream(data)))
        {
            for (var pass = 0; pass < 2; pass++)
            {
                twice.Position = 0;
                while (twice.Read(buffer, 0, buffer.Length) > 0) { }
            }
            Assert.Equal(TestBytes.Sha256(data), twice.Sha256);
        }
        using (var partly = new HashingStream(new MemoryStream(data)))
        {
            partly.ReadExactly(buffer, 0, 100);
            partly.Position = 50; // back over bytes already hashed: still in order
            while (partly.Read(buffer, 0, buffer.Length) > 0) { }
            Assert.Equal(TestBytes.Sha256(data), partly.Sha256);
        }
        using var skipping = new HashingStream(new MemoryStream(data));
        skipping.ReadExactly(buffer, 0, 100);
        skipping.Position = 200; // ahead of what was hashed
        while (skipping.Read(buffer, 0, buffer.Length) > 0) { }
        Assert.Null(skipping.Sha256);
    }

    [Fact]
    public async Task An_import_and_a_copy_at_once_share_the_process_wide_cap_and_every_file_arrives_byte_exact()
    {
        // Source run for the copy, imported with the default engine.
        var src = _temp.Sub("copy-src");
        for (var i = 0; i < 40; i++) _temp.WriteFile($"copy-src/c{i:00}.bin", TestBytes.Random(3000 + i, 500 + i));
        await new GridArtifacts.Core.Capture.ArtifactImporter(_catalog).ImportAsync(new GridArtifacts.Core.Capture.ImportRequest
        {
            Run = "copied", Experiment = "exp0", Files = GridArtifacts.Core.Capture.ArtifactImporter.ListFiles(src, new GridArtifacts.Core.Capture.ModuleFolders(_catalog.Store), _ => { }),
        }, e => throw e, _ => { }, default);

        // Both calls send to one store through one engine capped at 3 requests, each call with its default 32 files at once.
        var engine = new TransferEngine(new TransferOptions { MaxConcurrency = 3 });
        var counted = new CountingPutStore(new FileSystemStore(_temp.Sub("target")));
        var target = new GridCatalog(counted) { Engine = engine };
        var imp = _temp.Sub("import-src");
        for (var i = 0; i < 40; i++) _temp.WriteFile($"import-src/i{i:00}.bin", TestBytes.Random(2000 + i, 900 + i));
        var import = new GridArtifacts.Core.Capture.ArtifactImporter(target).ImportAsync(new GridArtifacts.Core.Capture.ImportRequest
        {
            Run = "imported", Experiment = "exp0", Files = GridArtifacts.Core.Capture.ArtifactImporter.ListFiles(imp, new GridArtifacts.Core.Capture.ModuleFolders(target.Store), _ => { }),
        }, e => throw e, _ => { }, default);
        var copy = new GridArtifacts.Core.Sharing.RunCopier(_catalog, target).CopyAsync("copied", _temp.Sub("copy-tmp"), e => throw e, default);
        await Task.WhenAll(import, copy);

        // Capped (never more than 3 sends at once, across both calls) yet parallel (more than one at once).
        Assert.InRange(counted.MaxInFlight, 2, 3);
        Assert.True(counted.Puts >= 80, $"{counted.Puts} files sent");
        foreach (var (run, folder) in new[] { ("imported", imp), ("copied", src) })
        {
            var stored = (await target.Artifacts.GetArtifactsAsync(run, "exp0", default)).Items;
            Assert.Equal(40, stored.Count);
            foreach (var a in stored)
            {
                await using var body = await target.Store.OpenReadAsync(StoreLayout.ArtifactKey(run, "exp0", a.Path), default);
                var hash = Convert.ToHexString(await System.Security.Cryptography.SHA256.HashDataAsync(body)).ToLowerInvariant();
                Assert.Equal(TestBytes.Sha256(Path.Combine(folder, a.Path)), hash);
                Assert.Equal(hash, a.Sha256);
            }
        }
    }

}

/// <summary>A real store whose file uploads take a moment and are counted while in flight.</summary>
internal sealed class CountingPutStore : DelegatingStore
{
    private int _inFlight, _max, _puts;
    public CountingPutStore(IObjectStore inner) : base(inner) { }
    public int MaxInFlight => Volatile.Read(ref _max);
    public int Puts => Volatile.Read(ref _puts);
    public override async Task<string> PutFileAsync(string key, LocalFile file, CancellationToken ct)
    {
        var now = Interlocked.Increment(ref _inFlight);
        for (int seen; now > (seen = Volatile.Read(ref _max)) && Interlocked.CompareExchange(ref _max, now, seen) != seen;) { }
        try
        {
            await Task.Delay(15, ct); // long enough for sends to overlap
            var sha = await Inner.PutFileAsync(key, file, ct);
            if (key.Contains("/artifacts/", StringComparison.Ordinal)) Interlocked.Increment(ref _puts);
            return sha;
        }
        finally
        {
            Interlocked.Decrement(ref _inFlight);
        }
    }
}

/// <summary>
/// Our own store interface, passed through to a real folder store, that stops answering after a
/// number of ranged reads (or runs an action after the first): for resume and change tests.
/// </summary>
internal sealed class FailingAfterStore : DelegatingStore
{
    private readonly int _reads;
    private readonly Action? _afterFirstRead;
    private int _count;

    public FailingAfterStore(IObjectStore inner, int reads, Action? afterFirstRead = null) : base(inner)
    {
        _reads = reads;
        _afterFirstRead = afterFirstRead;
    }

    public int Reads => _count;
    public override async Task<ObjectRead> ReadRangeAsync(string key, long offset, long length, string? ifVersion, CancellationToken ct)
    {
        var n = Interlocked.Increment(ref _count);
        if (n > _reads) throw new GridException(GridErrorKind.AccessDenied, "Gone", "The store went away.", key);
        var read = await Inner.ReadRangeAsync(key, offset, length, ifVersion, ct);
        if (n == 1) _afterFirstRead?.Invoke();
        return read;
    }

}

/// <summary>
/// A folder store whose reads are held at a gate until it opens, counting the reads in flight (from
/// the request until its body is disposed): before and after the test marks a change of limits.
/// </summary>
internal sealed class GatedStore : DelegatingStore
{
    private readonly TaskCompletionSource _open = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _inFlight;
    private volatile bool _after;
    public GatedStore(IObjectStore inner) : base(inner) { }
    public int MaxInFlightBefore;
    public int MaxInFlightAfter;

    public async Task WaitForInFlight(int n)
    {
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (Volatile.Read(ref _inFlight) < n)
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"only {_inFlight} reads in flight");
            await Task.Delay(10);
        }
        await Task.Delay(200); // and no more than that arrive
    }

    public void MarkReconfigured() => _after = true;
    public void Open() => _open.TrySetResult();

    public override async Task<ObjectRead> ReadRangeAsync(string key, long offset, long length, string? ifVersion, CancellationToken ct)
    {
        var now = Interlocked.Increment(ref _inFlight);
        var after = _after;
        lock (this)
        {
            if (after) MaxInFlightAfter = Math.Max(MaxInFlightAfter, now);
            else MaxInFlightBefore = Math.Max(MaxInFlightBefore, now);
        }
        await _open.Task.WaitAsync(ct);
        await Task.Delay(30, ct); // long enough for requests to overlap
        var read = await Inner.ReadRangeAsync(key, offset, length, ifVersion, ct);
        return new ObjectRead(new CountedStream(read.Body, () => Interlocked.Decrement(ref _inFlight)), read.TotalLength, read.Version);
    }

    private sealed class CountedStream(Stream inner, Action disposed) : Stream
    {
        private int _disposed;
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => inner.Length;
        public override long Position { get => inner.Position; set => throw new NotSupportedException(); }
        public override int Read(byte[] buffer, int offset, int count) => inner.Read(buffer, offset, count);
        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken ct = default) => inner.ReadAsync(buffer, ct);
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        protected override void Dispose(bool disposing)
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0) { inner.Dispose(); disposed(); }
            base.Dispose(disposing);
        }
    }

}

/// <summary>A real store passed through whole, for test stores that change one operation and count or hold it.</summary>
internal abstract class DelegatingStore : IObjectStore
{
    protected DelegatingStore(IObjectStore inner) => Inner = inner;
    protected IObjectStore Inner { get; }
    public string Location => Inner.Location;
    public virtual Task<ObjectRead> ReadRangeAsync(string key, long offset, long length, string? ifVersion, CancellationToken ct) => Inner.ReadRangeAsync(key, offset, length, ifVersion, ct);
    public virtual IAsyncEnumerable<ObjectEntry> ListAsync(string prefix, bool recursive, CancellationToken ct) => Inner.ListAsync(prefix, recursive, ct);
    public virtual Task<byte[]?> TryReadAllBytesAsync(string key, CancellationToken ct) => Inner.TryReadAllBytesAsync(key, ct);
    public virtual Task<Stream> OpenReadAsync(string key, CancellationToken ct) => Inner.OpenReadAsync(key, ct);
    public int MaxKeyBytes => Inner.MaxKeyBytes;
    public int MaxKeyPartBytes => Inner.MaxKeyPartBytes;
    public virtual Task PutAsync(string key, ReadOnlyMemory<byte> content, CancellationToken ct) => Inner.PutAsync(key, content, ct);
    public virtual Task<string> PutFileAsync(string key, LocalFile file, CancellationToken ct) => Inner.PutFileAsync(key, file, ct);
    public virtual Task DeleteAsync(string key, CancellationToken ct) => Inner.DeleteAsync(key, ct);
    public virtual Task DeleteManyAsync(IReadOnlyList<string> keys, CancellationToken ct) => Inner.DeleteManyAsync(keys, ct);
    public void Dispose() { }
}

/// <summary>A real store whose artifact uploads of one file hang (until cut off) or fail, as an outage does.</summary>
internal sealed class StuckStore : DelegatingStore
{
    private readonly string _stuck;
    private readonly bool _fail;
    private int _attempts;
    public StuckStore(IObjectStore inner, string stuck, bool fail) : base(inner) { _stuck = stuck; _fail = fail; }
    public int Attempts => Volatile.Read(ref _attempts);
    public override async Task<string> PutFileAsync(string key, LocalFile file, CancellationToken ct)
    {
        if (!key.EndsWith("/artifacts/" + _stuck, StringComparison.Ordinal)) return await Inner.PutFileAsync(key, file, ct);
        Interlocked.Increment(ref _attempts);
        if (_fail) throw new GridException(GridErrorKind.StoreUnavailable, "StoreUnavailable", "The store is away.", key) { IsTransient = true };
        await Task.Delay(TimeSpan.FromMinutes(5), ct);
        throw new InvalidOperationException("not reached");
    }
}

/// <summary>A clock that moves only when told.</summary>
public sealed class ManualClock : TimeProvider
{
    private long _ticks;
    public override long TimestampFrequency => TimeSpan.TicksPerSecond;
    public override long GetTimestamp() => Interlocked.Read(ref _ticks);
    public override DateTimeOffset GetUtcNow() => DateTimeOffset.UnixEpoch.AddTicks(Interlocked.Read(ref _ticks));
    public void Advance(TimeSpan by) => Interlocked.Add(ref _ticks, by.Ticks);
}
