using System.Text;
using GridArtifacts.Core;
using GridArtifacts.Model;
using GridArtifacts.Core.Stores;
using Xunit;

namespace GridArtifacts.Tests;

/// <summary>
/// The store contract (docs/store-layout.md), written once against <see cref="IObjectStore"/> and
/// <see cref="GridCatalog"/>. Each store runs it unchanged by deriving and saying how to make a fresh,
/// empty store.
/// </summary>
public abstract class StoreContractTests : IDisposable
{
    protected readonly TempDir Temp = new();
    private readonly List<IObjectStore> _stores = new();

    /// <summary>A fresh, empty store.</summary>
    protected abstract IObjectStore NewStore();

    protected IObjectStore Store() { var s = NewStore(); _stores.Add(s); return s; }

    public void Dispose()
    {
        foreach (var s in _stores) s.Dispose();
        Temp.Dispose();
    }

    private static async Task<byte[]> ReadAll(IObjectStore store, string key)
    {
        await using var s = await store.OpenReadAsync(key, CancellationToken.None);
        using var ms = new MemoryStream();
        await s.CopyToAsync(ms);
        return ms.ToArray();
    }

    private static async Task<List<ObjectEntry>> List(IObjectStore store, string prefix, bool recursive)
    {
        var list = new List<ObjectEntry>();
        await foreach (var e in store.ListAsync(prefix, recursive, CancellationToken.None)) list.Add(e);
        return list;
    }

    [Fact]
    public async Task Put_then_read_returns_the_same_bytes()
    {
        var store = Store();
        var data = TestBytes.Random(1000, 1);
        await store.PutAsync("a/b.bin", data, default);
        Assert.Equal(TestBytes.Sha256(data), TestBytes.Sha256(await ReadAll(store, "a/b.bin")));
        Assert.Equal(TestBytes.Sha256(data), TestBytes.Sha256((await store.TryReadAllBytesAsync("a/b.bin", default))!));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(5_000_000)]
    [InlineData(17_000_001)]
    public async Task PutFile_round_trips_byte_exact_and_returns_the_hash_of_what_it_sent(int length)
    {
        var store = Store();
        var data = TestBytes.Random(length, length);
        var file = Temp.WriteFile($"src/{length}.bin", data);
        var sent = await store.PutFileAsync($"runs/r/exp0/artifacts/{length}.bin", file, default);
        var back = await ReadAll(store, $"runs/r/exp0/artifacts/{length}.bin");
        Assert.Equal(length, back.Length);
        Assert.Equal(TestBytes.Sha256(data), TestBytes.Sha256(back));
        Assert.Equal(TestBytes.Sha256(data), sent);
        var listed = Assert.Single(await List(store, "runs/r/exp0/artifacts/", recursive: true));
        Assert.Equal(length, listed.Size);
    }

    [Fact]
    public async Task A_range_of_length_zero_reads_to_the_end()
    {
        var store = Store();
        var data = TestBytes.Random(70_000, 21);
        await store.PutAsync("runs/r/exp0/artifacts/a.bin", data, default);
        foreach (var offset in new[] { 0L, 1234L })
        {
            using var read = await store.ReadRangeAsync("runs/r/exp0/artifacts/a.bin", offset, 0, null, default);
            using var ms = new MemoryStream();
            await read.Body.CopyToAsync(ms);
            Assert.Equal(data.Length, read.TotalLength);
            Assert.Equal(TestBytes.Sha256(data[(int)offset..]), TestBytes.Sha256(ms.ToArray()));
        }
    }

    [Fact]
    public async Task Missing_keys_read_as_null_or_NotFound()
    {
        var store = Store();
        Assert.Null(await store.TryReadAllBytesAsync("no/such/key.json", default));
        var ex = await Assert.ThrowsAsync<GridException>(() => store.OpenReadAsync("no/such/key.bin", default));
        Assert.Equal(GridErrorKind.NotFound, ex.Kind);
        Assert.Empty(await List(store, "no/such/", recursive: true));
        await store.DeleteAsync("no/such/key.bin", default);
    }

    [Fact]
    public async Task Listing_is_ordinal_and_folds_deeper_keys_into_prefixes()
    {
        var store = Store();
        foreach (var k in new[] { "runs/b/run.json", "runs/a/run.json", "runs/a/exp0/experiment.json", "runs/a/exp10/x", "runs/ab/run.json", "top.json" })
        {
            await store.PutAsync(k, Encoding.UTF8.GetBytes(k), default);
        }
        var shallow = await List(store, "runs/", recursive: false);
        Assert.Equal(new[] { "runs/a/", "runs/ab/", "runs/b/" }, shallow.Select(e => e.Key));
        Assert.All(shallow, e => Assert.True(e.IsPrefix));

        var inRun = await List(store, "runs/a/", recursive: false);
        Assert.Equal(new[] { "runs/a/exp0/", "runs/a/exp10/", "runs/a/run.json" }, inRun.Select(e => e.Key));
        Assert.False(inRun[2].IsPrefix);

        var deep = await List(store, "runs/a/", recursive: true);
        Assert.Equal(new[] { "runs/a/exp0/experiment.json", "runs/a/exp10/x", "runs/a/run.json" }, deep.Select(e => e.Key));

        // A prefix that ends inside a name: "runs/a" matches a/ and ab/, not b/.
        var partial = await List(store, "runs/a", recursive: false);
        Assert.Equal(new[] { "runs/a/", "runs/ab/" }, partial.Select(e => e.Key));
    }

    [Fact]
    public async Task Unicode_and_odd_names_round_trip_exactly()
    {
        var store = Store();
        var names = new[] { "naïve résumé.txt", "日本語/ファイル.bin", "emoji 🎉/x y.txt", "a+b=c&d%20e.txt", "-dash/.hidden" };
        foreach (var n in names) await store.PutAsync("runs/r/exp0/artifacts/" + n, Encoding.UTF8.GetBytes(n), default);
        var listed = await List(store, "runs/r/exp0/artifacts/", recursive: true);
        Assert.Equal(names.OrderBy(n => n, StringComparer.Ordinal), listed.Select(e => e.Key["runs/r/exp0/artifacts/".Length..]));
        foreach (var n in names)
        {
            Assert.Equal(n, Encoding.UTF8.GetString(await ReadAll(store, "runs/r/exp0/artifacts/" + n)));
        }
    }

    [Fact]
    public async Task Overwrites_are_atomic_for_readers()
    {
        var store = Store();
        var a = TestBytes.Random(2_000_000, 7);
        var b = TestBytes.Random(2_000_000, 8);
        var hashes = new HashSet<string> { TestBytes.Sha256(a), TestBytes.Sha256(b) };
        await store.PutAsync("k.bin", a, default);
        using var stop = new CancellationTokenSource();
        var writer = Task.Run(async () =>
        {
            for (var i = 0; i < 20; i++) await store.PutAsync("k.bin", i % 2 == 0 ? b : a, default);
            stop.Cancel();
        });
        var reads = 0;
        while (!stop.IsCancellationRequested || reads == 0)
        {
            var bytes = await store.TryReadAllBytesAsync("k.bin", default);
            Assert.NotNull(bytes);
            Assert.Contains(TestBytes.Sha256(bytes!), hashes);
            reads++;
        }
        await writer;
        Assert.True(reads > 0);
    }

    [Fact]
    public async Task Delete_removes_the_object()
    {
        var store = Store();
        await store.PutAsync("runs/r/run.json", new byte[] { 1 }, default);
        await store.DeleteAsync("runs/r/run.json", default);
        Assert.Null(await store.TryReadAllBytesAsync("runs/r/run.json", default));
        Assert.Empty(await List(store, "runs/", recursive: false));
    }

    // ---- the catalog over the store ----

    private static readonly DateTimeOffset T0 = new(2026, 1, 2, 3, 4, 5, TimeSpan.Zero);

    protected static async Task SeedAsync(GridCatalog catalog, string run, DateTimeOffset created, params (string Exp, GridStatus Status)[] experiments)
    {
        await catalog.Writer.WriteRunRecordAsync(new RunRecord { Name = run, Created = created, Command = "python train.py" }, default);
        foreach (var (exp, status) in experiments)
        {
            await catalog.Writer.WriteExperimentRecordAsync(new ExperimentRecord
            {
                Run = run, Experiment = exp, Status = status, Created = created, Started = created,
                Finished = status.IsFinished() ? created.AddMinutes(1) : null, Heartbeat = created,
            }, default);
        }
    }

    [Fact]
    public async Task Runs_experiments_and_artifacts_read_back_with_hashes()
    {
        var catalog = new GridCatalog(Store(), clock: new FixedClock(T0.AddSeconds(30)));
        await SeedAsync(catalog, "sweep-one", T0, ("exp0", GridStatus.Succeeded), ("exp1", GridStatus.Failed), ("exp10", GridStatus.Succeeded));
        var data = TestBytes.Random(123_456, 3);
        var file = Temp.WriteFile("model.pt", data);
        var entry = await catalog.Artifacts.PutArtifactFileAsync("sweep-one", "exp1", "ckpt/model.pt", file, default);
        await catalog.Manifests.WriteManifestAsync(new ManifestRecord { Run = "sweep-one", Experiment = "exp1", Artifacts = { entry } }, default);
        // Its writer's record says what it synced (the figures the index carries).
        var record = (await catalog.Runs.ReadExperimentRecordAsync("sweep-one", "exp1", default))!;
        record.Sync = new GridSyncState { FilesSynced = 1, BytesSynced = data.Length };
        await catalog.Writer.WriteExperimentRecordAsync(record, default);

        var run = await catalog.Runs.GetRunAsync("sweep-one", default);
        Assert.Equal(GridStatus.Failed, run.Status);
        Assert.Equal(new[] { "exp0", "exp1", "exp10" }, run.Experiments);
        Assert.Equal("python train.py", run.Command);

        var exp = await catalog.Runs.GetExperimentAsync("sweep-one", "exp1", default);
        Assert.Equal("sweep-one-exp1", exp.Id);
        Assert.Equal(1, exp.ArtifactCount);
        Assert.Equal(data.Length, exp.ArtifactBytes);

        var artifacts = await catalog.Artifacts.GetArtifactsAsync("sweep-one", "exp1", default);
        var a = Assert.Single(artifacts.Items);
        Assert.Empty(artifacts.Errors);
        Assert.Equal("ckpt/model.pt", a.Path);
        Assert.Equal(data.Length, a.Size);
        Assert.Equal(TestBytes.Sha256(data), a.Sha256);
        await using var s = await catalog.Artifacts.OpenArtifactAsync(a, default);
        using var ms = new MemoryStream();
        await s.CopyToAsync(ms);
        Assert.Equal(TestBytes.Sha256(data), TestBytes.Sha256(ms.ToArray()));
    }

    [Fact]
    public async Task Unknown_run_and_experiment_are_NotFound_naming_what_was_asked()
    {
        var catalog = new GridCatalog(Store());
        await SeedAsync(catalog, "known", T0, ("exp0", GridStatus.Succeeded));
        var run = await Assert.ThrowsAsync<GridException>(() => catalog.Runs.GetRunAsync("unknown-run", default));
        Assert.Equal(GridErrorKind.NotFound, run.Kind);
        Assert.Equal("RunNotFound", run.ErrorId);
        Assert.Contains("unknown-run", run.Message);
        var exp = await Assert.ThrowsAsync<GridException>(() => catalog.Runs.GetExperimentAsync("known", "exp7", default));
        Assert.Equal("ExperimentNotFound", exp.ErrorId);
        Assert.Contains("exp7", exp.Message);
        var arts = await Assert.ThrowsAsync<GridException>(() => catalog.Artifacts.GetArtifactsAsync("unknown-run", "exp0", default));
        Assert.Equal("RunNotFound", arts.ErrorId);
    }

    [Fact]
    public async Task A_damaged_record_names_its_key_and_the_rest_is_still_read()
    {
        var store = Store();
        var catalog = new GridCatalog(store);
        await SeedAsync(catalog, "good-run", T0, ("exp0", GridStatus.Succeeded));
        await SeedAsync(catalog, "bad-run", T0, ("exp0", GridStatus.Succeeded));
        // A run as 0.1.0 wrote it (no index keys) is listed from its records, so its damaged record is met.
        await foreach (var e in store.ListAsync(CatalogIndex.RunIndexPrefix("bad-run"), recursive: false, default)) await store.DeleteAsync(e.Key, default);
        await store.PutAsync(StoreLayout.RunRecordKey("bad-run"), Encoding.UTF8.GetBytes("{ not json"), default);
        var result = await catalog.Runs.ListRunsAsync(default);
        Assert.Equal("good-run", Assert.Single(result.Items).Name);
        var error = Assert.Single(result.Errors);
        Assert.Equal(GridErrorKind.DamagedRecord, error.Kind);
        Assert.Contains("runs/bad-run/run.json", error.Message);

        // An indexed run's damaged experiment record is met when its experiments are read.
        await store.PutAsync(StoreLayout.ExperimentRecordKey("good-run", "exp0"), Encoding.UTF8.GetBytes("{\"schema\": 2, "), default);
        var exps = await catalog.Runs.GetExperimentsAsync("good-run", default);
        Assert.Empty(exps.Items);
        Assert.Contains("runs/good-run/exp0/experiment.json", Assert.Single(exps.Errors).Message);
        await SeedAsync(catalog, "good-run", T0, ("exp0", GridStatus.Succeeded));

        await store.PutAsync(StoreLayout.ManifestKey("good-run", "exp0"), Encoding.UTF8.GetBytes("[]]"), default);
        await store.PutAsync(StoreLayout.ArtifactKey("good-run", "exp0", "x.txt"), new byte[] { 1, 2 }, default);
        var artifacts = await catalog.Artifacts.GetArtifactsAsync("good-run", "exp0", default);
        Assert.Equal("x.txt", Assert.Single(artifacts.Items).Path);
        Assert.Null(artifacts.Items[0].Sha256);
        Assert.Contains("manifest.json", Assert.Single(artifacts.Errors).Message);
    }

    [Fact]
    public async Task A_newer_schema_is_reported_not_misread()
    {
        var store = Store();
        var catalog = new GridCatalog(store);
        await store.PutAsync(StoreLayout.RunRecordKey("future"), Encoding.UTF8.GetBytes("{\"schema\": 99, \"name\": \"future\"}"), default);
        var ex = await Assert.ThrowsAsync<GridException>(() => catalog.Runs.GetRunAsync("future", default));
        Assert.Equal(GridErrorKind.DamagedRecord, ex.Kind);
        Assert.Contains("schema version 99", ex.Message);
    }

    [Fact]
    public async Task Run_status_is_derived_and_stale_heartbeats_read_as_Lost()
    {
        var clock = new FixedClock(T0.AddMinutes(10));
        var catalog = new GridCatalog(Store(), lostAfter: TimeSpan.FromMinutes(2), clock: clock);
        await SeedAsync(catalog, "active", T0, ("exp0", GridStatus.Succeeded), ("exp1", GridStatus.Running));
        await catalog.Writer.WriteExperimentRecordAsync(new ExperimentRecord { Run = "active", Experiment = "exp1", Status = GridStatus.Running, Created = T0, Heartbeat = T0.AddMinutes(9.5) }, default);
        await SeedAsync(catalog, "crashed", T0, ("exp0", GridStatus.Running));
        await SeedAsync(catalog, "done", T0, ("exp0", GridStatus.Succeeded), ("exp1", GridStatus.Stopped));

        Assert.Equal(GridStatus.Running, (await catalog.Runs.GetRunAsync("active", default)).Status);
        Assert.Equal(GridStatus.Lost, (await catalog.Runs.GetRunAsync("crashed", default)).Status);
        Assert.Equal(GridStatus.Lost, (await catalog.Runs.GetExperimentAsync("crashed", "exp0", default)).Status);
        var done = await catalog.Runs.GetRunAsync("done", default);
        Assert.Equal(GridStatus.Stopped, done.Status);
        Assert.Equal(T0.AddMinutes(1), done.Finished);
    }

    [Fact]
    public async Task Run_listing_crosses_the_1000_prefix_page_boundary()
    {
        var store = Store();
        var catalog = new GridCatalog(store);
        const int count = 1_003;
        var names = Enumerable.Range(0, count).Select(i => $"run-{i:D4}").ToList();
        await Parallel.ForEachAsync(names, new ParallelOptions { MaxDegreeOfParallelism = 16 }, async (name, ct) =>
            await catalog.Writer.WriteRunRecordAsync(new RunRecord { Name = name, Created = T0 }, ct));
        Assert.Equal(names, await catalog.Runs.ListRunNamesAsync(default));
        var runs = await catalog.Runs.GetRunsAsync(names.Take(50), default);
        Assert.Equal(50, runs.Items.Count);
    }

    [Fact]
    public async Task A_walk_visits_what_the_recursive_listing_lists_past_a_page_and_each_folder_together()
    {
        // 1,200 objects in 40 run folders, 3 levels deep, beside index keys and outside the prefix.
        var store = Store();
        var keys = Enumerable.Range(0, 1_200).Select(i => $"runs/r{i % 40:D2}/exp{i % 3}/artifacts/d{i % 2}/f{i:D4}-é夜.bin")
            .Concat(Enumerable.Range(0, 40).Select(i => $"runs/r{i:D2}~run~{i}")).Append("runs.json").Append("other/runs/x").ToList();
        await Parallel.ForEachAsync(keys, new ParallelOptions { MaxDegreeOfParallelism = 16 }, async (k, ct) => await store.PutAsync(k, new byte[k.Length % 7], ct));
        var walked = new List<ObjectEntry>();
        await store.VisitObjectsAsync(StoreLayout.RunsPrefix, walked.Add, default);
        var listed = (await List(store, StoreLayout.RunsPrefix, recursive: true)).Where(e => !e.IsPrefix).ToList();
        Assert.Equal(1_240, listed.Count);
        Assert.Equal(listed.Select(e => (e.Key, e.Size)), walked.Select(e => (e.Key, e.Size)).OrderBy(e => e.Key, StringComparer.Ordinal));
        // A run's folder is walked in one stretch: its name, once left, does not come back.
        var folders = walked.Where(e => e.Key.IndexOf('/', 5) > 0).Select(e => e.Key[5..e.Key.IndexOf('/', 5)]).ToList();
        var stretches = folders.Where((f, i) => i == 0 || folders[i - 1] != f).ToList();
        Assert.Equal(stretches.Distinct().Count(), stretches.Count);
    }

    [Fact]
    public async Task Name_listing_names_what_the_listing_lists_past_a_page_and_a_batch()
    {
        // 5,000 names of which 4,500 match the prefix: more than a listing page (1,000) and a batch of
        // names (4,096); a folder among them, and names outside the prefix.
        var store = Store();
        var keys = Enumerable.Range(0, 4_500).Select(i => $"runs/r{i % 7}~{i:D5}~é夜").Append("runs/r3/run.json").Append("runs/q~1").Append("top.json").ToList();
        await Parallel.ForEachAsync(keys, new ParallelOptions { MaxDegreeOfParallelism = 16 }, async (k, ct) => await store.PutAsync(k, ReadOnlyMemory<byte>.Empty, ct));
        foreach (var prefix in new[] { "runs/", "runs/r", "runs/r3~" })
        {
            var listed = (await List(store, prefix, recursive: false)).Select(e => (Name: e.IsPrefix ? e.Key[(prefix.LastIndexOf('/') + 1)..^1] : e.Key[(prefix.LastIndexOf('/') + 1)..], e.IsPrefix)).ToList();
            var named = new List<(string Name, bool IsPrefix)>();
            await store.VisitNamesAsync(prefix, (name, folder) => named.Add((name.ToString(), folder)), default);
            Assert.Equal(listed.OrderBy(n => n.Name, StringComparer.Ordinal), named.OrderBy(n => n.Name, StringComparer.Ordinal));
        }
        var all = new List<string>();
        await store.VisitNamesAsync("runs/", (name, folder) => all.Add(folder ? name.ToString() + "/" : name.ToString()), default);
        Assert.Equal(4_502, all.Count); // 4,500 keys, runs/q~1 and the folder r3/
        Assert.Contains("r3/", all);
        Assert.Contains("r3~00003~é夜", all);
    }

    [Fact]
    public async Task Listing_crosses_the_1000_key_page_boundary()
    {
        var store = Store();
        var catalog = new GridCatalog(store);
        await SeedAsync(catalog, "many", T0, ("exp0", GridStatus.Succeeded));
        const int count = 1_205;
        await Parallel.ForEachAsync(Enumerable.Range(0, count), new ParallelOptions { MaxDegreeOfParallelism = 16 }, async (i, ct) =>
            await store.PutAsync(StoreLayout.ArtifactKey("many", "exp0", $"f/{i:D5}.txt"), Encoding.UTF8.GetBytes(i.ToString()), ct));
        var artifacts = await catalog.Artifacts.GetArtifactsAsync("many", "exp0", default);
        Assert.Equal(count, artifacts.Items.Count);
        Assert.Equal(Enumerable.Range(0, count).Select(i => $"f/{i:D5}.txt"), artifacts.Items.Select(a => a.Path));
    }

    [Fact]
    public async Task Removal_takes_exactly_its_run_or_experiment_past_1000_keys()
    {
        var store = Store();
        var catalog = new GridCatalog(store);
        await SeedAsync(catalog, "keep-me", T0, ("exp0", GridStatus.Succeeded));
        await SeedAsync(catalog, "doomed", T0, ("exp0", GridStatus.Succeeded), ("exp1", GridStatus.Succeeded));
        await SeedAsync(catalog, "doomed-too", T0, ("exp0", GridStatus.Succeeded));
        var kept = TestBytes.Random(5000, 9);
        await store.PutAsync(StoreLayout.ArtifactKey("keep-me", "exp0", "model.pt"), kept, default);
        await Parallel.ForEachAsync(Enumerable.Range(0, 1_010), new ParallelOptions { MaxDegreeOfParallelism = 16 }, async (i, ct) =>
            await store.PutAsync(StoreLayout.ArtifactKey("doomed", "exp1", $"f{i:D4}"), new byte[] { 1, 2, 3 }, ct));
        await store.PutAsync(StoreLayout.ArtifactKey("doomed", "exp0", "a.txt"), new byte[] { 7 }, default);

        var exp = await catalog.Remover.RemoveExperimentAsync("doomed", "exp1", default);
        Assert.Equal(new RemovalResult(1, 1_010, 3_030), exp);
        Assert.Equal(new[] { "exp0" }, await catalog.Runs.ListExperimentNamesAsync("doomed", default));

        var run = await catalog.Remover.RemoveRunAsync("doomed", default);
        Assert.Equal(new RemovalResult(1, 1, 1), run);
        Assert.Equal(new[] { "doomed-too", "keep-me" }, await catalog.Runs.ListRunNamesAsync(default));
        var left = new List<string>();
        await foreach (var e in store.ListAsync("runs/doomed/", recursive: true, default)) left.Add(e.Key);
        Assert.Empty(left);
        Assert.Equal(TestBytes.Sha256(kept), TestBytes.Sha256((await store.TryReadAllBytesAsync(StoreLayout.ArtifactKey("keep-me", "exp0", "model.pt"), default))!));
        Assert.Equal(GridStatus.Succeeded, (await catalog.Runs.GetRunAsync("doomed-too", default)).Status);
    }

    [Fact]
    public async Task A_protected_run_is_listed_as_such_and_neither_it_nor_its_experiments_are_removed_until_unprotected()
    {
        var store = Store();
        var catalog = new GridCatalog(store);
        await SeedAsync(catalog, "precious", T0, ("exp0", GridStatus.Succeeded), ("exp1", GridStatus.Failed));
        await SeedAsync(catalog, "plain", T0, ("exp0", GridStatus.Succeeded));
        var model = TestBytes.Random(4000, 12);
        await store.PutAsync(StoreLayout.ArtifactKey("precious", "exp0", "model.pt"), model, default);
        await catalog.Remover.ProtectAsync("precious", default);
        await catalog.Remover.ProtectAsync("precious", default); // twice: still protected, once

        var listed = (await catalog.Runs.ListRunsAsync(default)).Items.ToDictionary(r => r.Name);
        Assert.True(listed["precious"].Protected);
        Assert.False(listed["plain"].Protected);
        Assert.True((await catalog.Runs.GetRunAsync("precious", default)).Protected);
        Assert.Equal(new[] { "plain", "precious" }, await catalog.Runs.ListRunNamesAsync(default)); // the mark is not a run

        foreach (var removal in new Func<Task>[] { () => catalog.Remover.RemoveRunAsync("precious", default), () => catalog.Remover.RemoveExperimentAsync("precious", "exp1", default) })
        {
            var ex = await Assert.ThrowsAsync<GridException>(removal);
            Assert.Equal("RunProtected", ex.ErrorId);
            Assert.Equal(GridErrorKind.Protected, ex.Kind);
        }
        Assert.Equal(new[] { "exp0", "exp1" }, await catalog.Runs.ListExperimentNamesAsync("precious", default));
        Assert.Equal(TestBytes.Sha256(model), TestBytes.Sha256((await store.TryReadAllBytesAsync(StoreLayout.ArtifactKey("precious", "exp0", "model.pt"), default))!));

        var unknown = await Assert.ThrowsAsync<GridException>(() => catalog.Remover.ProtectAsync("no-such-run", default));
        Assert.Equal(GridErrorKind.NotFound, unknown.Kind);
        Assert.Null(await store.TryReadAllBytesAsync(CatalogIndex.ProtectedKey("no-such-run"), default));

        await catalog.Remover.UnprotectAsync("precious", default);
        Assert.False((await catalog.Runs.GetRunAsync("precious", default)).Protected);
        await catalog.Remover.RemoveRunAsync("precious", default);
        Assert.Equal(new[] { "plain" }, await catalog.Runs.ListRunNamesAsync(default));
        Assert.Empty(await List(store, "runs/precious", recursive: true)); // its mark went with it
    }
}

public sealed class FixedClock : TimeProvider
{
    private readonly DateTimeOffset _now;
    public FixedClock(DateTimeOffset now) => _now = now;
    public override DateTimeOffset GetUtcNow() => _now;
}

public sealed class FileSystemStoreContractTests : StoreContractTests
{
    protected override IObjectStore NewStore() => new FileSystemStore(Temp.Sub("store-" + Guid.NewGuid().ToString("N")));

    [Fact]
    public async Task A_killed_writers_day_old_temporary_file_is_removed_by_the_next_write_and_a_recent_one_is_kept()
    {
        var root = Temp.Sub("swept-store");
        var tmp = Directory.CreateDirectory(System.IO.Path.Combine(root, ".tmp")).FullName;
        var old = System.IO.Path.Combine(tmp, "left-by-a-killed-writer");
        var recent = System.IO.Path.Combine(tmp, "being-written");
        File.WriteAllBytes(old, new byte[100]);
        File.WriteAllBytes(recent, new byte[100]);
        File.SetLastWriteTimeUtc(old, DateTime.UtcNow - FileSystemStore.LeftoverAge - TimeSpan.FromHours(1));
        using var store = new FileSystemStore(root);
        await store.PutAsync("runs/r/run.json", new byte[] { 1 }, default);
        Assert.False(File.Exists(old));
        Assert.True(File.Exists(recent));
    }

    [Fact]
    public async Task Temporary_files_never_show_in_listings()
    {
        var store = Store();
        await store.PutAsync("runs/r/run.json", new byte[] { 1 }, default);
        var top = new List<ObjectEntry>();
        await foreach (var e in store.ListAsync("", recursive: false, default)) top.Add(e);
        Assert.Equal(new[] { "runs/" }, top.Select(e => e.Key));
    }
}
