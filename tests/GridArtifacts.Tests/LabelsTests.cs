using GridArtifacts.Core;
using GridArtifacts.Core.Stores;
using GridArtifacts.Model;
using Xunit;

namespace GridArtifacts.Tests;

/// <summary>
/// Tags (one index key per tag, docs/store-layout.md): they round-trip, follow the union rule (a run
/// carries its experiments' tags, an experiment its run's), survive sessions tagging at once, and go
/// with the run; on both stores.
/// </summary>
public abstract class LabelsTests : IDisposable
{
    protected readonly TempDir Temp = new();
    protected abstract IObjectStore NewStore();
    public void Dispose() => Temp.Dispose();

    private static readonly DateTimeOffset T0 = new(2026, 5, 6, 7, 8, 9, TimeSpan.Zero);

    private static async Task<GridCatalog> SeedAsync(IObjectStore store, string run, int experiments, IReadOnlyList<string>? tags = null)
    {
        var catalog = new GridCatalog(store);
        Assert.True(await catalog.Writer.TryCreateRunAsync(new RunRecord { Name = run, Created = T0 }, default, TimeSpan.Zero, tags));
        for (var i = 0; i < experiments; i++)
        {
            await catalog.Writer.WriteExperimentRecordAsync(new ExperimentRecord
            {
                Run = run, Experiment = GridNames.ExperimentName(i), Status = GridStatus.Succeeded, Created = T0, Started = T0, Finished = T0.AddMinutes(1),
            }, default);
        }
        return catalog;
    }

    private static async Task<GridRun> ListedAsync(GridCatalog catalog, string run) =>
        (await catalog.Runs.ListRunsAsync(default)).Items.Single(r => r.Name == run);

    [Fact]
    public async Task Tags_round_trip_on_runs_and_experiments_with_the_union_rule()
    {
        var catalog = await SeedAsync(NewStore(), "tagged", 2, new[] { "sweep" });
        Assert.Equal(new[] { "sweep" }, (await ListedAsync(catalog, "tagged")).Tags);

        Assert.Equal(new[] { "keep", "lr-0.1" }, await catalog.Writer.AddTagsAsync("tagged", null, GridNames.CheckTags(new[] { "Keep", "lr-0.1", "keep" }), default));
        Assert.Equal(new[] { "best" }, await catalog.Writer.AddTagsAsync("tagged", "exp1", new[] { "best" }, default));
        Assert.Empty(await catalog.Writer.AddTagsAsync("tagged", null, new[] { "keep" }, default)); // already there: nothing written

        var listed = await ListedAsync(catalog, "tagged");
        var read = await catalog.Runs.GetRunAsync("tagged", default);
        Assert.Equal(new[] { "best", "keep", "lr-0.1", "sweep" }, listed.Tags);
        Assert.Equal(listed.Tags, read.Tags);
        var exps = (await catalog.Runs.GetExperimentsAsync("tagged", default)).Items;
        Assert.Equal(new[] { "keep", "lr-0.1", "sweep" }, exps[0].Tags);
        Assert.Empty(exps[0].OwnTags);
        Assert.Equal(new[] { "best", "keep", "lr-0.1", "sweep" }, exps[1].Tags);
        Assert.Equal(new[] { "best" }, exps[1].OwnTags);

        // From an experiment, only its own tag goes; from the run, the tag goes from its experiments too.
        Assert.Empty(await catalog.Writer.RemoveTagsAsync("tagged", "exp0", new[] { "keep" }, default));
        Assert.Equal(new[] { "keep", "lr-0.1", "sweep" }, (await catalog.Runs.GetExperimentsAsync("tagged", default)).Items[0].Tags);
        await catalog.Writer.AddTagsAsync("tagged", "exp0", new[] { "keep" }, default);
        Assert.Equal(new[] { "keep" }, await catalog.Writer.RemoveTagsAsync("tagged", null, new[] { "keep", "absent" }, default));
        listed = await ListedAsync(catalog, "tagged");
        Assert.Equal(new[] { "best", "lr-0.1", "sweep" }, listed.Tags);
        exps = (await catalog.Runs.GetExperimentsAsync("tagged", default)).Items;
        Assert.Empty(exps[0].OwnTags);
        Assert.Equal(new[] { "best" }, await catalog.Writer.RemoveTagsAsync("tagged", "exp1", new[] { "best" }, default));
        Assert.Equal(new[] { "lr-0.1", "sweep" }, (await ListedAsync(catalog, "tagged")).Tags);
    }

    [Fact]
    public async Task Sessions_tagging_at_once_all_land_and_one_tag_is_one_key()
    {
        var store = NewStore();
        await SeedAsync(store, "busy", 1);
        // 16 sessions, each its own catalog, each adding its own tag, and 16 more adding the same one.
        await Task.WhenAll(Enumerable.Range(0, 16).Select(i => Task.Run(() => new GridCatalog(store).Writer.AddTagsAsync("busy", null, new[] { $"t{i:D2}" }, default))));
        await Task.WhenAll(Enumerable.Range(0, 16).Select(_ => Task.Run(() => new GridCatalog(store).Writer.AddTagsAsync("busy", "exp0", new[] { "same" }, default))));
        var run = await ListedAsync(new GridCatalog(store), "busy");
        Assert.Equal(Enumerable.Range(0, 16).Select(i => $"t{i:D2}").Append("same").OrderBy(t => t, StringComparer.Ordinal), run.Tags);
        var keys = new List<string>();
        await foreach (var e in store.ListAsync(CatalogIndex.ExperimentIndexPrefix("busy", "exp0"), recursive: false, default)) keys.Add(e.Key);
        Assert.Single(keys, k => k.EndsWith("~tag~same", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Bad_tags_unknown_targets_and_too_many_tags_are_refused_and_write_nothing()
    {
        var catalog = await SeedAsync(NewStore(), "strict", 1);
        foreach (var bad in new[] { "a.", "a:b", "*", "a~b", "", "é", new string('a', 65) })
        {
            var ex = await Assert.ThrowsAsync<GridException>(() => catalog.Writer.AddTagsAsync("strict", null, new[] { "fine", bad }, default));
            Assert.Equal("InvalidTag", ex.ErrorId);
        }
        Assert.Equal("RunNotFound", (await Assert.ThrowsAsync<GridException>(() => catalog.Writer.AddTagsAsync("nobody", null, new[] { "x" }, default))).ErrorId);
        Assert.Equal("ExperimentNotFound", (await Assert.ThrowsAsync<GridException>(() => catalog.Writer.AddTagsAsync("strict", "exp5", new[] { "x" }, default))).ErrorId);

        await catalog.Writer.AddTagsAsync("strict", null, Enumerable.Range(0, 60).Select(i => $"t{i}"), default);
        var many = await Assert.ThrowsAsync<GridException>(() => catalog.Writer.AddTagsAsync("strict", null, Enumerable.Range(100, 5).Select(i => $"t{i}"), default));
        Assert.Equal("TooManyTags", many.ErrorId);
        Assert.Equal(Enumerable.Range(0, 60).Select(i => $"t{i}").OrderBy(t => t, StringComparer.Ordinal), (await ListedAsync(catalog, "strict")).Tags);
    }

    [Fact]
    public async Task Tags_go_with_their_run_and_keys_of_a_run_that_is_gone_list_nothing()
    {
        var store = NewStore();
        var catalog = await SeedAsync(store, "leaving", 2, new[] { "keep" });
        await catalog.Writer.AddTagsAsync("leaving", "exp1", new[] { "best" }, default);
        await catalog.Remover.RemoveRunAsync("leaving", default);
        var left = new List<string>();
        await foreach (var e in store.ListAsync(StoreLayout.RunsPrefix, recursive: true, default)) left.Add(e.Key);
        Assert.Empty(left);

        // A tag key with no run beside it (a removal cut short, or written by hand) makes no run.
        await store.PutAsync(CatalogIndex.RunTagKey("ghost", "keep"), ReadOnlyMemory<byte>.Empty, default);
        await store.PutAsync(CatalogIndex.ExperimentTagKey("ghost", "exp0", "best"), ReadOnlyMemory<byte>.Empty, default);
        Assert.Empty((await catalog.Runs.ListRunsAsync(default)).Items);
        Assert.Equal("RunNotFound", (await Assert.ThrowsAsync<GridException>(() => catalog.Runs.GetRunAsync("ghost", default))).ErrorId);
    }

    [Fact]
    public async Task Copy_brings_the_tags_but_not_the_protection()
    {
        var source = await SeedAsync(NewStore(), "copied", 2, new[] { "keep" });
        await source.Writer.AddTagsAsync("copied", "exp1", new[] { "best" }, default);
        await source.Remover.ProtectAsync("copied", default);
        var target = new GridCatalog(NewStore());
        await new Core.Sharing.RunCopier(source, target).CopyAsync("copied", Temp.Sub("copy"), ex => throw ex, default);
        var run = await ListedAsync(target, "copied");
        Assert.Equal(new[] { "best", "keep" }, run.Tags);
        Assert.False(run.Protected);
        Assert.Equal(new[] { "best" }, (await target.Runs.GetExperimentsAsync("copied", default)).Items[1].OwnTags);
    }
}

public sealed class FileSystemLabelsTests : LabelsTests
{
    protected override IObjectStore NewStore() => new FileSystemStore(Temp.Sub("store-" + Guid.NewGuid().ToString("N")));
}

[Collection(S3Collection.Name)]
public sealed class S3LabelsTests : LabelsTests
{
    private readonly S3ServerFixture _s3;
    private readonly string _bucket;
    public S3LabelsTests(S3ServerFixture s3) { _s3 = s3; _bucket = s3.NewBucket(); }
    protected override IObjectStore NewStore() => new S3Store(_s3.StoreUri(_bucket, "labels/" + Guid.NewGuid().ToString("N")));
}

/// <summary>
/// 0.2.0 reads a 0.3.0 store as before, without the additions: its key parser reads only 2 fields
/// ending in "protected", 4 with "run" second, or 10 (CatalogIndex at c0cf916), and its records are
/// read with unknown JSON members skipped (schema stays 2).
/// </summary>
public sealed class ReadersOf020Tests
{
    [Fact]
    public void Tag_keys_have_a_shape_0_2_0_passes_over()
    {
        foreach (var key in new[] { CatalogIndex.RunTagKey("my-run", "keep"), CatalogIndex.ExperimentTagKey("my-run", "exp3", "best"), CatalogIndex.RunTagKey("run", "run") })
        {
            var fields = key[StoreLayout.RunsPrefix.Length..].Split(CatalogIndex.Separator);
            var read020 = fields.Length == 10 || fields is [_, "protected"] || fields is [_, "run", _, _];
            Assert.False(read020, key);
        }
    }

    [Fact]
    public void A_record_with_metrics_reads_with_a_0_2_0_shape_and_keeps_schema_2()
    {
        var record = new ExperimentRecord
        {
            Run = "my-run", Experiment = "exp0", Status = GridStatus.Succeeded,
            Metrics = new MetricsRecord { Source = "metrics.json", Rows = 1, Values = { ["val_loss"] = 0.25 } },
        };
        var json = RecordJson.Serialize(record);
        Assert.Equal(2, StoreLayout.SchemaVersion);
        // The shape 0.2.0 knows: no metrics member. Unknown members are skipped, as 0.2.0's options skip them.
        var old = System.Text.Json.JsonSerializer.Deserialize<Shape020>(json, SourceGeneratedJsonTests.EarlierRecords)!;
        Assert.Equal((2, "my-run", "exp0", GridStatus.Succeeded), (old.Schema, old.Run, old.Experiment, old.Status));
        Assert.Contains("\"metrics\"", System.Text.Encoding.UTF8.GetString(json));
    }

    private sealed class Shape020
    {
        public int Schema { get; set; }
        public string Run { get; set; } = "";
        public string Experiment { get; set; } = "";
        public GridStatus Status { get; set; }
    }
}
