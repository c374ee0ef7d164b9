using GridArtifacts.Core;
using GridArtifacts.Core.Capture;
using GridArtifacts.Core.Metrics;
using GridArtifacts.Core.Retention;
using GridArtifacts.Core.Stores;
using GridArtifacts.Model;
using Xunit;

namespace GridArtifacts.Tests;

/// <summary>
/// A store that 0.2.0 wrote (tests/fixtures/store-v2, made by tests/fixtures/New-Schema2Store.ps1
/// from commit c0cf916) keeps working, on both stores: it lists from its index keys with the
/// statuses and protection it had, every artifact downloads byte-exact against hashes taken from
/// the files its scripts wrote, its records read without the metrics 0.2.0 never wrote, its runs
/// take tags and protection and are cleaned up by a retention plan that removes only what it names,
/// and new runs and experiments go beside the old ones.
/// </summary>
public abstract class Schema2StoreTests : IDisposable
{
    protected readonly TempDir Temp = new();
    public void Dispose() => Temp.Dispose();

    /// <summary>A fresh store holding a copy of the fixture, file for file.</summary>
    protected abstract Task<GridCatalog> FixtureStoreAsync();

    private static readonly Dictionary<string, ExpectedRun> Expected = FixtureStores.Expected(2);

    private static string RunOf(string key) => FixtureStores.RunOf(key);
    private static long ArtifactBytes(string run) => FixtureStores.ArtifactBytes(2, run);

    [Fact]
    public async Task Runs_written_by_0_2_0_list_from_their_index_keys_with_their_statuses_and_download_byte_exact()
    {
        var catalog = await FixtureStoreAsync();
        var counting = new CountingStore(catalog.Store);
        var listed = await new GridCatalog(counting).Runs.ListRunsAsync(default);
        Assert.Empty(listed.Errors);
        // One listing of runs/; only the two runs whose command was too long for their key have their run.json read.
        Assert.Equal(1, counting.Lists);
        Assert.Equal(2, counting.Reads);
        Assert.Equal(Expected.Keys.Order(StringComparer.Ordinal), listed.Items.Select(r => r.Name).Order(StringComparer.Ordinal));
        foreach (var run in listed.Items)
        {
            var want = Expected[run.Name];
            Assert.Equal(want.Status, run.Status.ToString());
            Assert.Equal(want.Protected, run.Protected);
            Assert.Empty(run.Tags);
            Assert.Equal(want.Experiments.Keys, run.Experiments);
            Assert.Equal(want.Experiments.Values.Sum(e => e.Artifacts.Count), run.ArtifactCount);
            Assert.Equal(ArtifactBytes(run.Name), run.ArtifactBytes);
            foreach (var (exp, e) in want.Experiments)
            {
                var got = await catalog.Runs.GetExperimentAsync(run.Name, exp, default);
                Assert.Equal(e.Status, got.Status.ToString());
                Assert.Equal(e.ExitCode, got.ExitCode);
                Assert.Equal(e.Artifacts.Count, got.ArtifactCount);
                Assert.Equal(e.Artifacts, await FixtureStores.SavedHashes(catalog, run.Name, exp, Temp.Sub("saved")));
            }
        }
        Assert.Equal(new Dictionary<string, string> { ["lr"] = "0.03" }, (await catalog.Runs.GetExperimentAsync("lightning-sweep", "exp1", default)).Parameters);
        var log = await catalog.Runs.ReadLogAsync("lightning-sweep", "exp1", "stdout", default);
        Assert.Equal("fit done lr=0.03 val_loss=0.0900\n", System.Text.Encoding.UTF8.GetString(log!));
    }

    [Fact]
    public async Task Records_of_0_2_0_have_no_metrics_yet_though_the_files_they_would_come_from_still_read()
    {
        var catalog = await FixtureStoreAsync();
        var sweep = await catalog.Runs.GetExperimentsAsync("lightning-sweep", default);
        var pair = await catalog.Runs.GetExperimentsAsync("imported-pair", default);
        Assert.Empty(sweep.Errors);
        Assert.Empty(pair.Errors);
        Assert.All(sweep.Items.Concat(pair.Items), e =>
        {
            Assert.Empty(e.Metrics);
            Assert.Null(e.MetricsSource);
        });

        // What a reader of the artifacts finds there: Lightning's csv (each column's last value), and the pair's metrics.json.
        foreach (var (exp, valLoss) in new[] { ("exp0", 0.3), ("exp1", 0.09), ("exp2", 0.03) })
        {
            var read = await ReadMetricsAsync(catalog, "lightning-sweep", exp);
            Assert.Equal(("lightning_logs/version_0/metrics.csv", 4, (string?)null), (read.Source, read.Rows, read.Problem));
            Assert.Equal(new Dictionary<string, double> { ["epoch"] = 1, ["step"] = 19, ["train_loss"] = 0.604, ["val_loss"] = valLoss }, read.Values);
        }
        foreach (var (exp, valLoss, accuracy) in new[] { ("exp0", 0.40, 0.80), ("exp1", 0.41, 0.81) })
        {
            var read = await ReadMetricsAsync(catalog, "imported-pair", exp);
            Assert.Equal(("metrics.json", (string?)null), (read.Source, read.Problem));
            Assert.Equal(new Dictionary<string, double> { ["val_loss"] = valLoss, ["accuracy"] = accuracy }, read.Values);
        }

        // So -KeepBest has nothing to rank the old sweep by, and refuses rather than guess.
        var refused = Assert.Throws<GridException>(() => RetentionPlanner.PlanExperiments(sweep.Items, 1, "val_loss", descending: false, _ => false));
        Assert.Equal("MetricNotFound", refused.ErrorId);
    }

    [Fact]
    public async Task Runs_of_0_2_0_take_tags_and_protection_and_a_retention_plan_removes_only_the_runs_it_names()
    {
        var catalog = await FixtureStoreAsync();
        Assert.Equal(new[] { "keep" }, await catalog.Writer.AddTagsAsync("failed-run", null, new[] { "keep" }, default));
        Assert.Equal(new[] { "best" }, await catalog.Writer.AddTagsAsync("lightning-sweep", "exp2", new[] { "best" }, default));
        await catalog.Remover.ProtectAsync("stopped-run", default);

        var listed = await catalog.Runs.ListRunsAsync(default);
        Assert.Empty(listed.Errors);
        // A run carries its experiments' tags; imported-run was protected by 0.2.0 itself.
        Assert.Equal(new[] { ("failed-run", "keep"), ("lightning-sweep", "best") },
            listed.Items.SelectMany(r => r.Tags.Select(t => (r.Name, t))).Order());
        Assert.Equal(new[] { "imported-run", "stopped-run" }, listed.Items.Where(r => r.Protected).Select(r => r.Name).Order(StringComparer.Ordinal));
        var exp2 = (await catalog.Runs.GetExperimentsAsync("lightning-sweep", default)).Items.Single(e => e.Experiment == "exp2");
        Assert.Equal(new[] { "best" }, exp2.OwnTags);

        // Remove-GridRun -KeepLatest 1 -ExcludeTag keep: newest first by Created, the order the generator wrote them in.
        var plan = RetentionPlanner.PlanRuns(listed.Items, keepLatest: 1, olderThan: null, r => r.Tags.Contains("keep"), catalog.Clock.GetUtcNow());
        Assert.Equal(new[]
        {
            ("imported-pair", RetentionReason.Latest), ("imported-run", RetentionReason.Protected), ("unicode-names", RetentionReason.Remove),
            ("stopped-run", RetentionReason.Protected), ("failed-run", RetentionReason.ExcludedTag), ("lightning-sweep", RetentionReason.Remove),
        }, plan.Select(d => (d.Item.Name, d.Reason)));
        var victims = plan.Where(d => d.Remove).Select(d => d.Item.Name).ToHashSet(StringComparer.Ordinal);
        var indexKeys = await catalog.Remover.ListIndexKeysAsync(victims, default);
        foreach (var run in victims)
        {
            var e = Expected[run].Experiments.Values;
            Assert.Equal(new RemovalResult(e.Count, e.Sum(x => x.Artifacts.Count), ArtifactBytes(run)), await catalog.Remover.RemoveRunAsync(run, default, indexKeys[run]));
        }
        var refused = await Assert.ThrowsAsync<GridException>(() => catalog.Remover.RemoveRunAsync("imported-run", default));
        Assert.Equal("RunProtected", refused.ErrorId);

        // Every other key is there as 0.2.0 wrote it, beside the two labels added; nothing else is.
        var kept = FixtureStores.Files(2).Where(f => !victims.Contains(RunOf(f.Key))).ToList();
        var keys = await FixtureStores.RunKeysAsync(catalog);
        Assert.Equal(kept.Select(f => f.Key).Append(CatalogIndex.RunTagKey("failed-run", "keep")).Append(CatalogIndex.ProtectedKey("stopped-run")).Order(StringComparer.Ordinal),
            keys.Order(StringComparer.Ordinal));
        foreach (var (key, path) in kept) Assert.Equal(File.ReadAllBytes(path), await catalog.Store.TryReadAllBytesAsync(key, default));
        var after = await catalog.Runs.ListRunsAsync(default);
        Assert.Empty(after.Errors);
        Assert.Equal(Expected.Keys.Where(k => !victims.Contains(k)).Select(k => (k, Expected[k].Status)).Order(),
            after.Items.Select(r => (r.Name, r.Status.ToString())).Order());
    }

    [Fact]
    public async Task New_runs_and_experiments_go_beside_the_runs_of_0_2_0()
    {
        var catalog = await FixtureStoreAsync();
        var src = Temp.Sub("new");
        Temp.WriteFile("new/metrics.json", """{ "val_loss": 0.35 }"""u8.ToArray());
        var files = ArtifactImporter.ListFiles(src, new ModuleFolders(catalog.Store), _ => { });
        var importer = new ArtifactImporter(catalog);
        var fresh = await importer.ImportAsync(new ImportRequest { Run = "new-run", Experiment = "exp0", Files = files, Tags = new[] { "v3" } }, e => throw e, _ => { }, default);
        Assert.Equal((GridStatus.Succeeded, "metrics.json"), (fresh.Status, fresh.MetricsSource));
        // A third experiment in a run of 0.2.0, with the metrics its two old ones lack.
        var third = await importer.ImportAsync(new ImportRequest { Run = "imported-pair", Experiment = "exp2", Files = files }, e => throw e, _ => { }, default);
        Assert.Equal(0.35, third.Metrics["val_loss"]);

        var listed = await catalog.Runs.ListRunsAsync(default);
        Assert.Empty(listed.Errors);
        Assert.Equal(Expected.Keys.Append("new-run").Order(StringComparer.Ordinal), listed.Items.Select(r => r.Name).Order(StringComparer.Ordinal));
        var newRun = listed.Items.Single(r => r.Name == "new-run");
        Assert.Equal((GridStatus.Succeeded, 1L), (newRun.Status, newRun.ArtifactCount));
        Assert.Equal(new[] { "v3" }, newRun.Tags);
        Assert.Equal(new[] { "exp0", "exp1", "exp2" }, listed.Items.Single(r => r.Name == "imported-pair").Experiments);

        // -KeepBest 1 -By val_loss over old and new: the old experiments have no metric, so they are kept.
        var pair = await catalog.Runs.GetExperimentsAsync("imported-pair", default);
        Assert.Empty(pair.Errors);
        Assert.Equal(new[] { ("exp0", RetentionReason.NoMetric), ("exp1", RetentionReason.NoMetric), ("exp2", RetentionReason.Best) },
            RetentionPlanner.PlanExperiments(pair.Items, 1, "val_loss", descending: false, _ => false).Select(d => (d.Item.Experiment, d.Reason)));

        // The old names are taken, and their ended experiments are never rewritten.
        var taken = await Assert.ThrowsAsync<GridException>(() => catalog.Writer.CreateRunAsync(new RunRecord { Name = "imported-run" }, default));
        Assert.Equal("RunExists", taken.ErrorId);
        var ended = await Assert.ThrowsAsync<GridException>(() =>
            importer.ImportAsync(new ImportRequest { Run = "lightning-sweep", Experiment = "exp0", Files = files }, e => throw e, _ => { }, default));
        Assert.Equal("ExperimentExists", ended.ErrorId);
        foreach (var (run, want) in Expected)
        {
            foreach (var (exp, e) in want.Experiments) Assert.Equal(e.Artifacts, await TestStore.StoredHashes(catalog, run, exp));
        }
    }

    /// <summary>The metrics a reader would take from an experiment's stored artifacts, as the import and the agent choose them.</summary>
    private static async Task<MetricsRecord> ReadMetricsAsync(GridCatalog catalog, string run, string exp)
    {
        var listed = await catalog.Artifacts.GetArtifactsAsync(run, exp, default);
        Assert.Empty(listed.Errors);
        var content = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        foreach (var a in listed.Items.Where(a => MetricsReader.IsCsvCandidate(a.Path) || MetricsReader.IsJsonCandidate(a.Path)))
        {
            await using var s = await catalog.Artifacts.OpenArtifactAsync(a, default);
            using var ms = new MemoryStream();
            await s.CopyToAsync(ms);
            content[a.Path] = ms.ToArray();
        }
        var warnings = new List<string>();
        var read = MetricsReader.Read(listed.Items.Select(a => (a.Path, a.LastModified)).ToList(), p => new MemoryStream(content[p]), warnings.Add);
        Assert.Empty(warnings);
        return read!;
    }
}

public sealed class FolderSchema2StoreTests : Schema2StoreTests
{
    protected override Task<GridCatalog> FixtureStoreAsync() => Task.FromResult(FixtureStores.InFolder(2, Temp.Sub("store")));
}

[Collection(S3SecondLane.Name)]
public sealed class S3Schema2StoreTests : Schema2StoreTests
{
    private readonly S3ServerFixture _s3;
    public S3Schema2StoreTests(S3ServerFixture s3) => _s3 = s3;

    protected override Task<GridCatalog> FixtureStoreAsync() => FixtureStores.InS3(2, _s3);
}
