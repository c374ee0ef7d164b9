using System.Text;
using FsCheck;
using FsCheck.Fluent;
using GridArtifacts.Core;
using GridArtifacts.Core.Capture;
using GridArtifacts.Core.Stores;
using GridArtifacts.Model;
using Xunit;

namespace GridArtifacts.Tests;

/// <summary>
/// Schema 2's index (docs/store-layout.md): every run lists from one listing of <c>runs/</c> with
/// no record read, exactly as fresh as the records, with Lost still exact; on both stores.
/// </summary>
public abstract class CatalogIndexTests : IDisposable
{
    protected readonly TempDir Temp = new();
    protected abstract IObjectStore NewStore();
    /// <summary>Runs enough for the listing to cross several 1,000-key pages (fewer on s3rver, where seeding costs requests).</summary>
    protected abstract int PagingRuns { get; }
    public void Dispose() => Temp.Dispose();

    private static readonly DateTimeOffset T0 = new(2026, 3, 4, 5, 6, 7, TimeSpan.Zero);

    private static ExperimentRecord Exp(string run, string exp, GridStatus status, DateTimeOffset at, int files = 0) => new()
    {
        Run = run, Experiment = exp, Status = status, Created = at, Started = at, Heartbeat = at,
        Finished = status.IsFinished() ? at.AddMinutes(3) : null, ExitCode = status == GridStatus.Failed ? 2 : status.IsFinished() ? 0 : null,
        Sync = new GridSyncState { FilesSynced = files, BytesSynced = files * 10L },
    };

    [Fact]
    public async Task Every_run_lists_from_one_listing_with_no_record_read()
    {
        var counting = new CountingStore(NewStore());
        var catalog = new GridCatalog(counting, clock: new FixedClock(T0.AddHours(1)));
        var names = Enumerable.Range(0, PagingRuns).Select(i => $"paged-{i:D4}").ToList();
        // Every run is created before any experiment is written: a listing costs s3rver a look at every
        // key beside the listed prefix, so the listings creating a run makes (its claims) are cheapest
        // while the store is small. Labels are index keys too: they list with the runs.
        var parallel = new ParallelOptions { MaxDegreeOfParallelism = 16 };
        await Parallel.ForEachAsync(names, parallel, async (run, ct) =>
        {
            var i = int.Parse(run[6..]);
            await catalog.Writer.TryCreateRunAsync(new RunRecord { Name = run, Created = T0.AddSeconds(i), Command = $"python train.py --seed {i}", Parameters = { ["seed"] = i.ToString() } }, ct, TimeSpan.Zero,
                tags: i % 5 == 0 ? new[] { "keep", $"seed-{i}" } : null);
        });
        await Parallel.ForEachAsync(names, parallel, async (run, ct) =>
        {
            var i = int.Parse(run[6..]);
            await catalog.Writer.WriteExperimentRecordAsync(Exp(run, "exp0", GridStatus.Succeeded, T0, files: i), ct);
            await catalog.Writer.WriteExperimentRecordAsync(Exp(run, "exp1", i % 3 == 0 ? GridStatus.Failed : GridStatus.Succeeded, T0), ct);
            if (i % 7 == 0) await catalog.Writer.AddTagsAsync(run, "exp1", new[] { "best" }, ct);
            if (i % 11 == 0) await catalog.Remover.ProtectAsync(run, ct);
        });

        counting.Reset();
        var listed = await catalog.Runs.ListRunsAsync(default);
        Assert.Empty(listed.Errors);
        Assert.Equal(1, counting.Lists);
        Assert.Equal(0, counting.Reads);
        Assert.Equal(names, listed.Items.Select(r => r.Name).OrderBy(n => n, StringComparer.Ordinal));
        foreach (var run in listed.Items)
        {
            var i = int.Parse(run.Name[6..]);
            Assert.Equal(T0.AddSeconds(i), run.Created);
            Assert.Equal($"python train.py --seed {i}", run.Command);
            Assert.Equal(i.ToString(), run.Parameters["seed"]);
            Assert.Equal(new[] { "exp0", "exp1" }, run.Experiments);
            Assert.Equal(i % 3 == 0 ? GridStatus.Failed : GridStatus.Succeeded, run.Status);
            Assert.Equal(T0.AddMinutes(3), run.Finished);
            var tags = new List<string>();
            if (i % 7 == 0) tags.Add("best");
            if (i % 5 == 0) tags.AddRange(new[] { "keep", $"seed-{i}" });
            Assert.Equal(tags.OrderBy(t => t, StringComparer.Ordinal), run.Tags);
            Assert.Equal(i % 11 == 0, run.Protected);
            Assert.Equal(i, run.ArtifactCount);
            Assert.Equal(i * 10L, run.ArtifactBytes);
        }

        // The experiments of one run: one listing, then their records (the artifact figures come from the keys).
        counting.Reset();
        var exps = await catalog.Runs.GetExperimentsAsync("paged-0007", default);
        Assert.Equal(1, counting.Lists);
        Assert.Equal(2, counting.Reads);
        Assert.Equal(7, exps.Items[0].ArtifactCount);
        Assert.Equal(70, exps.Items[0].ArtifactBytes);
        Assert.Equal(0, exps.Items[1].ExitCode);
        Assert.Equal(new[] { "best" }, exps.Items[1].Tags);
        Assert.Empty(exps.Items[0].Tags);

        // A run tagged, with an experiment tagged and the run protected: the experiments carry both.
        exps = await catalog.Runs.GetExperimentsAsync("paged-0385", default);
        Assert.Equal(new[] { "keep", "seed-385" }, exps.Items[0].Tags);
        Assert.Empty(exps.Items[0].OwnTags);
        Assert.Equal(new[] { "best", "keep", "seed-385" }, exps.Items[1].Tags);
        Assert.Equal(new[] { "best" }, exps.Items[1].OwnTags);
        Assert.All(exps.Items, e => Assert.True(e.Protected));
    }

    [Fact]
    public async Task A_status_another_writer_just_wrote_lists_on_the_next_call()
    {
        var store = NewStore();
        var writer = new GridCatalog(store);
        var reader = new GridCatalog(store);
        var now = DateTimeOffset.UtcNow;
        await writer.Writer.CreateRunAsync(new RunRecord { Name = "fresh-run", Created = now }, default);
        var record = Exp("fresh-run", "exp0", GridStatus.Running, now);
        await writer.Writer.WriteExperimentRecordAsync(record, default);
        Assert.Equal(GridStatus.Running, Assert.Single((await reader.Runs.ListRunsAsync(default)).Items).Status);
        for (var beat = 1; beat <= 3; beat++)
        {
            record.Heartbeat = now.AddSeconds(beat);
            await writer.Writer.WriteExperimentRecordAsync(record, default);
        }
        record.Status = GridStatus.Succeeded;
        record.Finished = now.AddSeconds(5);
        record.ExitCode = 0;
        await writer.Writer.WriteExperimentRecordAsync(record, default);
        var run = Assert.Single((await reader.Runs.ListRunsAsync(default)).Items);
        Assert.Equal(GridStatus.Succeeded, run.Status);
        Assert.Equal(now.AddSeconds(5), run.Finished);
        Assert.Equal(GridStatus.Succeeded, (await reader.Runs.GetRunAsync("fresh-run", default)).Status);
        // One index key per experiment is left after its writes.
        var keys = new List<string>();
        await foreach (var e in store.ListAsync(CatalogIndex.ExperimentIndexPrefix("fresh-run", "exp0"), false, default)) keys.Add(e.Key);
        Assert.Single(keys);
    }

    [Fact]
    public async Task A_heartbeat_older_than_the_threshold_lists_as_Lost_and_not_a_moment_before()
    {
        var store = NewStore();
        await new GridCatalog(store).Writer.CreateRunAsync(new RunRecord { Name = "beat-run", Created = T0 }, default);
        await new GridCatalog(store).Writer.WriteExperimentRecordAsync(Exp("beat-run", "exp0", GridStatus.Running, T0), default);
        var lostAfter = TimeSpan.FromMinutes(2);
        GridStatus At(TimeSpan later) => Assert.Single(new GridCatalog(store, lostAfter, new FixedClock(T0 + later)).Runs.ListRunsAsync(default).GetAwaiter().GetResult().Items).Status;
        Assert.Equal(GridStatus.Running, At(lostAfter));
        Assert.Equal(GridStatus.Lost, At(lostAfter + TimeSpan.FromSeconds(1)));
    }

    [Fact]
    public async Task Two_keys_of_one_experiment_left_by_a_crash_read_as_the_later_and_removal_takes_every_key()
    {
        var store = NewStore();
        var catalog = new GridCatalog(store, clock: new FixedClock(T0));
        await catalog.Writer.CreateRunAsync(new RunRecord { Name = "crash-run", Created = T0 }, default);
        var done = Exp("crash-run", "exp0", GridStatus.Succeeded, T0);
        await catalog.Writer.WriteExperimentRecordAsync(done, default);
        await catalog.Writer.WriteExperimentRecordAsync(done, default);
        // A writer that died between writing its new key (sequence 1) and deleting the old one (0).
        await store.PutAsync(CatalogIndex.ExperimentKey(Exp("crash-run", "exp0", GridStatus.Running, T0), 0), ReadOnlyMemory<byte>.Empty, default);
        Assert.Equal(GridStatus.Succeeded, Assert.Single((await catalog.Runs.ListRunsAsync(default)).Items).Status);
        // The next writer reads the record, which names its key: that one goes, by name, with no listing.
        var next = (await catalog.Runs.ReadExperimentRecordAsync("crash-run", "exp0", default))!;
        Assert.Equal(CatalogIndex.ExperimentKey(next, 1), next.IndexKey);
        await catalog.Writer.WriteExperimentRecordAsync(next, default);
        var keys = new List<long>();
        await foreach (var e in store.ListAsync(CatalogIndex.ExperimentIndexPrefix("crash-run", "exp0"), false, default)) keys.Add(((CatalogIndex.ExperimentEntry)CatalogIndex.Parse(e.Key)!).Sequence);
        Assert.Equal(new long[] { 0, 2 }, keys.Order());
        Assert.Equal(GridStatus.Succeeded, Assert.Single((await catalog.Runs.ListRunsAsync(default)).Items).Status);
        await catalog.Remover.RemoveExperimentAsync("crash-run", "exp0", default);
        await foreach (var e in store.ListAsync(CatalogIndex.ExperimentIndexPrefix("crash-run", "exp0"), false, default)) Assert.Fail($"{e.Key} outlived the removal");
    }

    [Fact]
    public async Task A_command_too_long_for_a_key_is_read_from_its_record_exactly()
    {
        var counting = new CountingStore(NewStore());
        var catalog = new GridCatalog(counting);
        var command = "python train.py " + string.Concat(Enumerable.Repeat("--λ 0.5 ", 60)) + "🚀";
        await catalog.Writer.CreateRunAsync(new RunRecord { Name = "long-run", Created = T0, Command = command, Parameters = { ["note"] = "día/夜" } }, default);
        await catalog.Writer.CreateRunAsync(new RunRecord { Name = "short-run", Created = T0, Command = "python a.py", Parameters = { ["note"] = "día/夜" } }, default);
        counting.Reset();
        var runs = (await catalog.Runs.ListRunsAsync(default)).Items.ToDictionary(r => r.Name);
        Assert.Equal(command, runs["long-run"].Command);
        Assert.Equal("día/夜", runs["long-run"].Parameters["note"]);
        Assert.Equal("python a.py", runs["short-run"].Command);
        Assert.Equal("día/夜", runs["short-run"].Parameters["note"]);
        Assert.Equal(1, counting.Reads); // the long one's record only
    }

    [Fact]
    public async Task A_removed_run_leaves_no_key_and_an_unknown_one_is_RunNotFound()
    {
        var store = NewStore();
        var catalog = new GridCatalog(store);
        await catalog.Writer.CreateRunAsync(new RunRecord { Name = "gone-run", Created = T0 }, default);
        await catalog.Writer.WriteExperimentRecordAsync(Exp("gone-run", "exp0", GridStatus.Succeeded, T0), default);
        await catalog.Writer.CreateRunAsync(new RunRecord { Name = "gone-run-2", Created = T0 }, default); // its keys share the first name's start
        await catalog.Remover.RemoveRunAsync("gone-run", default);
        var left = new List<string>();
        await foreach (var e in store.ListAsync("runs/", true, default)) left.Add(e.Key);
        Assert.DoesNotContain(left, k => k.StartsWith("runs/gone-run/", StringComparison.Ordinal) || k.StartsWith("runs/gone-run~", StringComparison.Ordinal));
        Assert.Equal("gone-run-2", Assert.Single((await catalog.Runs.ListRunsAsync(default)).Items).Name);
        Assert.Equal("RunNotFound", (await Assert.ThrowsAsync<GridException>(() => catalog.Runs.GetRunAsync("gone-run", default))).ErrorId);
    }

    [Fact]
    public async Task Every_record_written_is_schema_2_which_0_1_0_refuses()
    {
        var store = NewStore();
        var catalog = new GridCatalog(store);
        await catalog.Writer.CreateRunAsync(new RunRecord { Name = "new-run", Created = T0 }, default);
        await catalog.Writer.WriteExperimentRecordAsync(Exp("new-run", "exp0", GridStatus.Succeeded, T0), default);
        await catalog.Manifests.WriteManifestAsync(new ManifestRecord { Run = "new-run", Experiment = "exp0", Sealed = true }, default);
        foreach (var key in new[] { StoreLayout.RunRecordKey("new-run"), StoreLayout.ExperimentRecordKey("new-run", "exp0"), StoreLayout.ManifestKey("new-run", "exp0") })
        {
            using var doc = System.Text.Json.JsonDocument.Parse((await store.TryReadAllBytesAsync(key, default))!);
            // 0.1.0 reads schema 1 only and reports anything newer as a damaged record naming it.
            Assert.Equal(2, doc.RootElement.GetProperty("schema").GetInt32());
        }
    }

    // ---- manifests in segments ----

    private string Segment(params ManifestEntry[] entries)
    {
        var file = Path.Combine(Directory.CreateDirectory(Temp.Sub("segments")).FullName, Guid.NewGuid().ToString("N") + ".jsonl");
        File.WriteAllLines(file, entries.Select(e => System.Text.Json.JsonSerializer.Serialize(e, RecordJson.Compact)));
        return file;
    }

    private static ManifestEntry Entry(string path, int size) => new() { Path = path, Size = size, Sha256 = new string((char)('a' + size % 6), 64), Modified = T0 };

    [Fact]
    public async Task Segments_merge_in_order_after_the_folded_manifest_and_a_gap_is_never_read_as_a_whole()
    {
        var store = NewStore();
        var catalog = new GridCatalog(store);
        await catalog.Manifests.WriteManifestSegmentAsync("seg-run", "exp0", 0, Segment(Entry("a.txt", 1), Entry("b.txt", 2)), default);
        await catalog.Manifests.WriteManifestSegmentAsync("seg-run", "exp0", 1, Segment(Entry("a.txt", 3), Entry("c/d.txt", 4)), default);
        var m = (await catalog.Manifests.ReadManifestAsync("seg-run", "exp0", default))!;
        Assert.False(m.Sealed);
        Assert.Equal(new[] { ("a.txt", 3L), ("b.txt", 2L), ("c/d.txt", 4L) }, m.Artifacts.Select(a => (a.Path, a.Size)).OrderBy(x => x.Path));
        Assert.Equal(2, await catalog.Manifests.NextManifestSegmentAsync("seg-run", "exp0", default));

        // Folded through segment 1, then segment 2 beside it.
        var folded = Path.Combine(Directory.CreateDirectory(Temp.Sub("folded")).FullName, "manifest.json");
        File.WriteAllBytes(folded, RecordJson.Serialize(new ManifestRecord { Run = "seg-run", Experiment = "exp0", Through = 1, Artifacts = m.Artifacts }));
        await catalog.Manifests.WriteCompactedManifestAsync("seg-run", "exp0", folded, 1, default);
        await catalog.Manifests.WriteManifestSegmentAsync("seg-run", "exp0", 2, Segment(Entry("e.txt", 5)), default);
        m = (await catalog.Manifests.ReadManifestAsync("seg-run", "exp0", default))!;
        Assert.Equal(new[] { "a.txt", "b.txt", "c/d.txt", "e.txt" }, m.Artifacts.Select(a => a.Path).OrderBy(p => p, StringComparer.Ordinal));
        var segments = new List<string>();
        await foreach (var e in store.ListAsync(StoreLayout.ManifestSegmentsPrefix("seg-run", "exp0"), false, default)) segments.Add(e.Key);
        Assert.Equal(new[] { StoreLayout.ManifestSegmentKey("seg-run", "exp0", 2) }, segments);

        // A segment missing between the folded manifest and a later one: never merged as if whole.
        await catalog.Manifests.WriteManifestSegmentAsync("seg-run", "exp0", 4, Segment(Entry("f.txt", 6)), default);
        var error = await Assert.ThrowsAsync<GridException>(() => catalog.Manifests.ReadManifestAsync("seg-run", "exp0", default));
        Assert.Equal(GridErrorKind.DamagedRecord, error.Kind);
        Assert.Contains("00000003", error.Message);
    }

    [Fact]
    public async Task A_segment_the_store_refused_goes_with_the_next_flush_even_when_nothing_was_added_meanwhile()
    {
        var store = new RefusingSegments(NewStore()) { Refuse = true };
        var catalog = new GridCatalog(store, clock: new AutoAdvancingClock()); // the retries' pauses pass on the clock
        using var journal = new ManifestJournal(catalog, "outage-run", "exp0", Temp.Sub("journal-" + Guid.NewGuid().ToString("N")));
        await journal.StartAsync(tookOver: true, _ => { }, default);
        var latest = new Dictionary<string, int>(StringComparer.Ordinal) { ["a.bin"] = journal.Add(Entry("a.bin", 1)) };
        bool IsLatest(string path, int entry) => latest.TryGetValue(path, out var n) && n == entry;
        // An outage: the segment is refused, and the pass after it has no new upload to add.
        await Assert.ThrowsAsync<GridException>(() => journal.FlushAsync(TimeSpan.Zero, IsLatest, default));
        await Assert.ThrowsAsync<GridException>(() => journal.FlushAsync(TimeSpan.Zero, IsLatest, default));
        store.Refuse = false;
        await journal.FlushAsync(TimeSpan.Zero, IsLatest, default);
        Assert.Equal(new[] { "a.bin" }, (await catalog.Manifests.ReadManifestAsync("outage-run", "exp0", default))!.Artifacts.Select(a => a.Path));
        // Later entries go on in the next segment, and the seal holds both.
        latest["b.bin"] = journal.Add(Entry("b.bin", 2));
        await journal.FlushAsync(TimeSpan.Zero, IsLatest, default);
        await journal.SealAsync(IsLatest, default);
        Assert.Equal(new[] { "a.bin", "b.bin" }, (await catalog.Manifests.ReadManifestAsync("outage-run", "exp0", default))!.Artifacts.Select(a => a.Path));
    }

    [Fact]
    public async Task During_an_outage_the_entries_of_many_passes_pile_into_one_segment_not_one_each()
    {
        var store = new RefusingSegments(NewStore()) { Refuse = true };
        var catalog = new GridCatalog(store, clock: new AutoAdvancingClock()); // the retries' pauses pass on the clock
        using var journal = new ManifestJournal(catalog, "long-outage", "exp0", Temp.Sub("journal-" + Guid.NewGuid().ToString("N")));
        await journal.StartAsync(tookOver: true, _ => { }, default);
        var latest = new Dictionary<string, int>(StringComparer.Ordinal);
        bool IsLatest(string path, int entry) => latest.TryGetValue(path, out var n) && n == entry;
        for (var pass = 0; pass < 20; pass++)
        {
            latest[$"f{pass:00}.bin"] = journal.Add(Entry($"f{pass:00}.bin", pass));
            await Assert.ThrowsAsync<GridException>(() => journal.FlushAsync(TimeSpan.Zero, IsLatest, default));
        }
        store.Refuse = false;
        await journal.FlushAsync(TimeSpan.Zero, IsLatest, default); // the segment closed first
        await journal.FlushAsync(TimeSpan.Zero, IsLatest, default); // the one the other 19 went to
        var segments = new List<string>();
        await foreach (var e in store.ListAsync(StoreLayout.ManifestSegmentsPrefix("long-outage", "exp0"), false, default)) segments.Add(e.Key);
        Assert.Equal(new[] { StoreLayout.ManifestSegmentKey("long-outage", "exp0", 0), StoreLayout.ManifestSegmentKey("long-outage", "exp0", 1) }, segments);
        Assert.Equal(latest.Keys.Order(StringComparer.Ordinal), (await catalog.Manifests.ReadManifestAsync("long-outage", "exp0", default))!.Artifacts.Select(a => a.Path));
    }

    [Fact]
    public async Task An_entry_added_while_a_segment_is_on_its_way_goes_in_the_next_one_and_is_never_lost()
    {
        var store = new HeldSegments(NewStore());
        var catalog = new GridCatalog(store);
        using var journal = new ManifestJournal(catalog, "beside-run", "exp0", Temp.Sub("journal-" + Guid.NewGuid().ToString("N")));
        await journal.StartAsync(tookOver: true, _ => { }, default);
        var latest = new Dictionary<string, int>(StringComparer.Ordinal) { ["a.bin"] = journal.Add(Entry("a.bin", 1)) };
        bool IsLatest(string path, int entry) { lock (latest) return latest.TryGetValue(path, out var n) && n == entry; }
        var flushing = journal.FlushAsync(TimeSpan.Zero, IsLatest, default);
        await store.Arrived.Task.WaitAsync(TimeSpan.FromSeconds(10));
        lock (latest) latest["b.bin"] = journal.Add(Entry("b.bin", 2));
        // A second flush waits for the first; it is not a second writer of the same segment.
        var second = journal.FlushAsync(TimeSpan.Zero, IsLatest, default);
        await Task.Delay(200);
        Assert.False(second.IsCompleted);
        store.Release.SetResult();
        await flushing;
        await second;
        var stored = new List<string>();
        await foreach (var e in store.ListAsync(StoreLayout.ManifestSegmentsPrefix("beside-run", "exp0"), false, default)) stored.Add(e.Key);
        Assert.Equal(2, stored.Count);
        Assert.Equal(new[] { "a.bin", "b.bin" }, (await catalog.Manifests.ReadManifestAsync("beside-run", "exp0", default))!.Artifacts.Select(a => a.Path).Order(StringComparer.Ordinal));
        await journal.SealAsync(IsLatest, default);
        var sealedManifest = (await catalog.Manifests.ReadManifestAsync("beside-run", "exp0", default))!;
        Assert.True(sealedManifest.Sealed);
        Assert.Equal(new[] { "a.bin", "b.bin" }, sealedManifest.Artifacts.Select(a => a.Path).Order(StringComparer.Ordinal));
    }

    /// <summary>A store that holds the first manifest segment's write until released.</summary>
    private sealed class HeldSegments(IObjectStore inner) : DelegatingStore(inner)
    {
        public readonly TaskCompletionSource Arrived = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public readonly TaskCompletionSource Release = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int _held;
        public override async Task<string> PutFileAsync(string key, LocalFile file, CancellationToken ct)
        {
            if (key.Contains("/manifest/", StringComparison.Ordinal) && Interlocked.Exchange(ref _held, 1) == 0)
            {
                Arrived.SetResult();
                await Release.Task.WaitAsync(ct);
            }
            return await Inner.PutFileAsync(key, file, ct);
        }
    }

    /// <summary>A store that refuses manifest segments (503) while <see cref="Refuse"/> is set.</summary>
    private sealed class RefusingSegments(IObjectStore inner) : DelegatingStore(inner)
    {
        public volatile bool Refuse;
        public override Task<string> PutFileAsync(string key, LocalFile file, CancellationToken ct) =>
            Refuse && key.Contains("/manifest/", StringComparison.Ordinal)
                ? throw new GridException(GridErrorKind.StoreUnavailable, "StoreUnavailable", $"503 SlowDown for '{key}'", key) { IsTransient = true }
                : Inner.PutFileAsync(key, file, ct);
    }

    [Fact]
    public async Task A_reader_beside_a_journal_that_folds_never_loses_an_entry()
    {
        var store = NewStore();
        var catalog = new GridCatalog(store);
        var latest = new Dictionary<string, int>(StringComparer.Ordinal);
        using var journal = new ManifestJournal(catalog, "fold-run", "exp0", Temp.Sub("journal"));
        await journal.StartAsync(tookOver: true, _ => { }, default);
        bool IsLatest(string path, int entry) { lock (latest) return latest.TryGetValue(path, out var s) && s == entry; }
        using var stop = new CancellationTokenSource();
        var seen = 0;
        var reads = 0;
        var reader = Task.Run(async () =>
        {
            // Every entry written before a read started is in what the read returns.
            while (!stop.IsCancellationRequested)
            {
                var floor = Volatile.Read(ref seen);
                var m = await catalog.Manifests.ReadManifestAsync("fold-run", "exp0", default);
                var count = m?.Artifacts.Select(a => a.Path).Distinct().Count() ?? 0;
                Assert.True(count >= floor, $"a read returned {count} entries after {floor} were stored");
                reads++;
            }
        });
        var stored = 0;
        var sizes = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var pass = 0; pass < ManifestJournal.MaxSegmentsBeforeFold + 20; pass++)
        {
            for (var i = 0; i < 5; i++)
            {
                var path = $"p{pass % 30}/f{i}.bin"; // paths come back in later passes: later entries replace earlier ones
                var number = journal.Add(Entry(path, pass));
                lock (latest) latest[path] = number;
                sizes[path] = pass;
            }
            await journal.FlushAsync(TimeSpan.Zero, IsLatest, default);
            stored = latest.Count;
            Volatile.Write(ref seen, stored);
        }
        stop.Cancel();
        await reader;
        Assert.True(reads > 0);
        var segments = 0;
        await foreach (var _ in store.ListAsync(StoreLayout.ManifestSegmentsPrefix("fold-run", "exp0"), false, default)) segments++;
        Assert.True(segments < ManifestJournal.MaxSegmentsBeforeFold, $"{segments} segments were left unfolded");
        await journal.SealAsync(IsLatest, default);
        var sealedManifest = (await catalog.Manifests.ReadManifestAsync("fold-run", "exp0", default))!;
        Assert.True(sealedManifest.Sealed);
        Assert.Equal(latest.Keys.OrderBy(k => k, StringComparer.Ordinal), sealedManifest.Artifacts.Select(a => a.Path).OrderBy(k => k, StringComparer.Ordinal));
        Assert.All(sealedManifest.Artifacts, a => Assert.Equal(sizes[a.Path], a.Size)); // each path's latest entry, once
        await foreach (var _ in store.ListAsync(StoreLayout.ManifestSegmentsPrefix("fold-run", "exp0"), false, default)) Assert.Fail("a segment outlived the seal");
    }
}

public sealed class FileSystemCatalogIndexTests : CatalogIndexTests
{
    protected override IObjectStore NewStore() => new FileSystemStore(Temp.Sub("store-" + Guid.NewGuid().ToString("N")));
    protected override int PagingRuns => 1_100;
}

[Collection(S3SecondLane.Name)]
public sealed class S3CatalogIndexTests : CatalogIndexTests
{
    private readonly S3ServerFixture _s3;
    private readonly string _bucket;
    public S3CatalogIndexTests(S3ServerFixture s3) { _s3 = s3; _bucket = s3.NewBucket(); }
    protected override IObjectStore NewStore() => new S3Store(_s3.StoreUri(_bucket, "index/" + Guid.NewGuid().ToString("N")));
    protected override int PagingRuns => 400; // 1,600 keys: two pages
}

/// <summary>Counts the requests a catalog makes of its store.</summary>
internal sealed class CountingStore : DelegatingStore
{
    public CountingStore(IObjectStore inner) : base(inner) { }
    private int _lists, _reads;
    public int Lists => _lists;
    public int Reads => _reads;
    public void Reset() { _lists = 0; _reads = 0; }
    public override IAsyncEnumerable<ObjectEntry> ListAsync(string prefix, bool recursive, CancellationToken ct) { Interlocked.Increment(ref _lists); return Inner.ListAsync(prefix, recursive, ct); }
    public override Task<byte[]?> TryReadAllBytesAsync(string key, CancellationToken ct) { Interlocked.Increment(ref _reads); return Inner.TryReadAllBytesAsync(key, ct); }
    public override Task<Stream> OpenReadAsync(string key, CancellationToken ct) { Interlocked.Increment(ref _reads); return Inner.OpenReadAsync(key, ct); }
}
