using GridArtifacts.Core;
using GridArtifacts.Core.Capture;
using GridArtifacts.Core.Retention;
using GridArtifacts.Core.Stores;
using GridArtifacts.Model;
using Xunit;

namespace GridArtifacts.Tests;

/// <summary>
/// A store that 0.3.0 wrote (tests/fixtures/store-0.3.0, made by tests/fixtures/New-Store030.ps1
/// from commit 2039e1c; still schema 2, with the tags, protection and metrics 0.3.0 added) keeps
/// working, on both stores: it lists from its index keys with the statuses, tags (a run carries its
/// experiments'), protection and metrics 0.3.0 showed, every artifact downloads byte-exact against
/// hashes taken from the files its scripts wrote, its runs take and lose tags and are cleaned up by a
/// retention plan that keeps the protected run and removes only what it names, and new runs go
/// beside the old ones, a Slurm run with its job key and a queued experiment its scheduler ended
/// among them, while nothing of the old runs changes that was not changed.
/// </summary>
public abstract class Store030Tests : IDisposable
{
    protected readonly TempDir Temp = new();
    public void Dispose() => Temp.Dispose();

    /// <summary>A fresh store holding a copy of the fixture, file for file.</summary>
    protected abstract Task<GridCatalog> FixtureStoreAsync();

    private const string Fixture = "0.3.0";
    private static readonly Dictionary<string, ExpectedRun> Expected = FixtureStores.Expected(Fixture);

    private static string RunOf(string key) => FixtureStores.RunOf(key);
    private static long ArtifactBytes(string run) => FixtureStores.ArtifactBytes(Fixture, run);
    private static Task<List<string>> KeysAsync(GridCatalog catalog) => FixtureStores.RunKeysAsync(catalog);

    [Fact]
    public async Task Runs_written_by_0_3_0_list_with_their_statuses_tags_protection_and_metrics_and_download_byte_exact()
    {
        Assert.Equal("GridArtifacts 0.3.0 (commit 2039e1c)", FixtureStores.WrittenBy(Fixture));
        var catalog = await FixtureStoreAsync();
        var counting = new CountingStore(catalog.Store);
        var listed = await new GridCatalog(counting).Runs.ListRunsAsync(default);
        Assert.Empty(listed.Errors);
        // One listing of runs/ gives the tags and protection too; only the two runs whose command was
        // too long for their key have their run.json read.
        Assert.Equal(1, counting.Lists);
        Assert.Equal(2, counting.Reads);
        Assert.Equal(Expected.Keys.Order(StringComparer.Ordinal), listed.Items.Select(r => r.Name).Order(StringComparer.Ordinal));
        foreach (var run in listed.Items)
        {
            var want = Expected[run.Name];
            Assert.Equal(want.Status, run.Status.ToString());
            Assert.Equal(want.Protected, run.Protected);
            Assert.Equal(want.Tags, run.Tags);
            Assert.Equal(want.Experiments.Keys, run.Experiments);
            Assert.Empty(run.QueuedExperiments);
            Assert.Equal((GridScheduler.Local, (string?)null, (string?)null), (run.Scheduler, run.JobId, run.Cluster));
            Assert.Equal(want.Experiments.Values.Sum(e => e.Artifacts.Count), run.ArtifactCount);
            Assert.Equal(ArtifactBytes(run.Name), run.ArtifactBytes);

            var experiments = await catalog.Runs.GetExperimentsAsync(run.Name, default);
            Assert.Empty(experiments.Errors);
            Assert.Equal(want.Experiments.Keys, experiments.Items.Select(e => e.Experiment));
            foreach (var got in experiments.Items)
            {
                var e = want.Experiments[got.Experiment];
                Assert.Equal(e.Status, got.Status.ToString());
                Assert.Equal(e.ExitCode, got.ExitCode);
                Assert.Equal(e.Tags, got.Tags);
                Assert.Equal(e.OwnTags, got.OwnTags);
                Assert.Equal(want.Protected, got.Protected);
                Assert.Equal(e.MetricsSource, got.MetricsSource);
                Assert.Equal(e.Metrics, got.Metrics);
                // What 0.4.0 added to records: 0.3.0 wrote none of it.
                Assert.Null(got.Reason);
                Assert.Null(got.Signal);
                Assert.Equal(e.Artifacts.Count, got.ArtifactCount);
                Assert.Equal(e.Artifacts, await FixtureStores.SavedHashes(catalog, run.Name, got.Experiment, Temp.Sub("saved")));
            }
        }

        // What the fixture was made to hold, beyond what its expected file says.
        Assert.Equal(new[] { "protected-model" }, listed.Items.Where(r => r.Protected).Select(r => r.Name));
        Assert.Equal(new[] { "baseline", "best" }, listed.Items.Single(r => r.Name == "tagged-sweep").Tags);
        var never = await catalog.Runs.GetExperimentAsync("stopped-sweep", "exp1", default);
        Assert.Equal((GridStatus.Stopped, (int?)null, 0), (never.Status, never.ExitCode, never.ArtifactCount));
        Assert.Equal(0.88, (await catalog.Runs.GetExperimentAsync("protected-model", "exp0", default)).Metrics["test/f1"]);
        var log = await catalog.Runs.ReadLogAsync("tagged-sweep", "exp1", "stdout", default);
        Assert.Equal("fit done lr=0.03 val_loss=0.0900\n", System.Text.Encoding.UTF8.GetString(log!));

        // The metrics 0.3.0 recorded rank its sweep: -KeepBest 1 -By val_loss keeps exp2 (0.03).
        var sweep = await catalog.Runs.GetExperimentsAsync("tagged-sweep", default);
        Assert.Equal(new[] { ("exp0", RetentionReason.Remove), ("exp1", RetentionReason.Remove), ("exp2", RetentionReason.Best) },
            RetentionPlanner.PlanExperiments(sweep.Items, 1, "val_loss", descending: false, _ => false).Select(d => (d.Item.Experiment, d.Reason)));
    }

    [Fact]
    public async Task Runs_of_0_3_0_take_and_lose_tags_and_a_retention_plan_keeps_the_protected_run_and_removes_only_what_it_names()
    {
        var catalog = await FixtureStoreAsync();
        Assert.Equal(new[] { "keep" }, await catalog.Writer.AddTagsAsync("stopped-sweep", null, new[] { "keep" }, default));
        Assert.Equal(new[] { "reviewed" }, await catalog.Writer.AddTagsAsync("protected-model", "exp0", new[] { "reviewed" }, default));
        // A tag 0.3.0 wrote is taken off again, and one already there is not written twice.
        Assert.Equal(new[] { "laptop" }, await catalog.Writer.RemoveTagsAsync("imported-run", "exp0", new[] { "laptop" }, default));
        Assert.Empty(await catalog.Writer.AddTagsAsync("tagged-sweep", "exp2", new[] { "best" }, default));

        var listed = await catalog.Runs.ListRunsAsync(default);
        Assert.Empty(listed.Errors);
        // A run carries its experiments' tags beside its own.
        Assert.Equal(new[]
        {
            ("failed-run", "triage"), ("protected-model", "prod"), ("protected-model", "reviewed"),
            ("stopped-sweep", "keep"), ("tagged-sweep", "baseline"), ("tagged-sweep", "best"),
        }, listed.Items.SelectMany(r => r.Tags.Select(t => (r.Name, t))).Order());
        var model = Assert.Single((await catalog.Runs.GetExperimentsAsync("protected-model", default)).Items);
        Assert.Equal(new[] { "prod", "reviewed" }, model.Tags);
        Assert.Equal(new[] { "reviewed" }, model.OwnTags);
        Assert.Empty(Assert.Single((await catalog.Runs.GetExperimentsAsync("imported-run", default)).Items).Tags);

        // Remove-GridRun -KeepLatest 1 -ExcludeTag keep: newest first by Created, the order the generator wrote them in.
        var plan = RetentionPlanner.PlanRuns(listed.Items, keepLatest: 1, olderThan: null, r => r.Tags.Contains("keep"), catalog.Clock.GetUtcNow());
        Assert.Equal(new[]
        {
            ("imported-run", RetentionReason.Latest), ("protected-model", RetentionReason.Protected), ("stopped-sweep", RetentionReason.ExcludedTag),
            ("failed-run", RetentionReason.Remove), ("tagged-sweep", RetentionReason.Remove),
        }, plan.Select(d => (d.Item.Name, d.Reason)));
        var victims = plan.Where(d => d.Remove).Select(d => d.Item.Name).ToHashSet(StringComparer.Ordinal);
        var indexKeys = await catalog.Remover.ListIndexKeysAsync(victims, default);
        foreach (var run in victims)
        {
            var e = Expected[run].Experiments.Values;
            Assert.Equal(new RemovalResult(e.Count, e.Sum(x => x.Artifacts.Count), ArtifactBytes(run)), await catalog.Remover.RemoveRunAsync(run, default, indexKeys[run]));
        }
        // The run 0.3.0 protected is refused, whole or one experiment of it.
        Assert.Equal("RunProtected", (await Assert.ThrowsAsync<GridException>(() => catalog.Remover.RemoveRunAsync("protected-model", default))).ErrorId);
        Assert.Equal("RunProtected", (await Assert.ThrowsAsync<GridException>(() => catalog.Remover.RemoveExperimentAsync("protected-model", "exp0", default))).ErrorId);

        // Every other key is there as 0.3.0 wrote it, beside the two tags added and without the one
        // taken off; nothing else is.
        var taken = CatalogIndex.ExperimentTagKey("imported-run", "exp0", "laptop");
        var kept = FixtureStores.Files(Fixture).Where(f => !victims.Contains(RunOf(f.Key)) && f.Key != taken).ToList();
        Assert.Equal(kept.Select(f => f.Key)
                .Append(CatalogIndex.RunTagKey("stopped-sweep", "keep")).Append(CatalogIndex.ExperimentTagKey("protected-model", "exp0", "reviewed"))
                .Order(StringComparer.Ordinal),
            (await KeysAsync(catalog)).Order(StringComparer.Ordinal));
        foreach (var (key, path) in kept) Assert.Equal(File.ReadAllBytes(path), await catalog.Store.TryReadAllBytesAsync(key, default));
        var after = await catalog.Runs.ListRunsAsync(default);
        Assert.Empty(after.Errors);
        Assert.Equal(Expected.Keys.Where(k => !victims.Contains(k)).Select(k => (k, Expected[k].Status, Expected[k].Protected)).Order(),
            after.Items.Select(r => (r.Name, r.Status.ToString(), r.Protected)).Order());
        foreach (var run in after.Items)
        {
            foreach (var (exp, e) in Expected[run.Name].Experiments) Assert.Equal(e.Artifacts, await TestStore.StoredHashes(catalog, run.Name, exp));
        }
    }

    [Fact]
    public async Task New_runs_go_beside_the_runs_of_0_3_0_a_slurm_run_with_its_job_and_a_queued_experiment_its_scheduler_ended_among_them()
    {
        var catalog = await FixtureStoreAsync();
        var before = await KeysAsync(catalog);
        Assert.Equal(FixtureStores.Files(Fixture).Select(f => f.Key).Order(StringComparer.Ordinal), before.Order(StringComparer.Ordinal));

        // An imported run, and a fourth experiment in the sweep of 0.3.0 with a better val_loss.
        var src = Temp.Sub("new");
        Temp.WriteFile("new/metrics.json", """{ "val_loss": 0.02 }"""u8.ToArray());
        var files = ArtifactImporter.ListFiles(src, new ModuleFolders(catalog.Store), _ => { });
        var importer = new ArtifactImporter(catalog);
        var fresh = await importer.ImportAsync(new ImportRequest { Run = "new-run", Experiment = "exp0", Files = files, Tags = new[] { "v4" } }, e => throw e, _ => { }, default);
        Assert.Equal((GridStatus.Succeeded, "metrics.json"), (fresh.Status, fresh.MetricsSource));
        var fourth = await importer.ImportAsync(new ImportRequest { Run = "tagged-sweep", Experiment = "exp3", Files = files }, e => throw e, _ => { }, default);
        Assert.Equal(0.02, fourth.Metrics["val_loss"]);

        // A run of a Slurm job array, as Start-GridRun -Scheduler Slurm writes it: queued experiments,
        // then the job's key; its scheduler ends exp0 (the task failed before its agent started).
        var now = catalog.Clock.GetUtcNow();
        await catalog.Writer.CreateRunAsync(new RunRecord { Name = "slurm-run", Created = now, Command = "train.sh" }, default, new[] { "cluster" });
        await catalog.Writer.QueueExperimentsAsync("slurm-run", Enumerable.Range(0, 2).Select(i => (new Dictionary<string, string> { ["seed"] = $"{i}" }, "train.sh")).ToList(), now, default);
        await catalog.Writer.SetRunJobAsync("slurm-run", new RunJob(GridScheduler.Slurm, "grid", "42"), default);
        const string reason = "Slurm task 42_0 ended FAILED (exit 127) before its agent started";
        Assert.True(await catalog.Claims.EndQueuedAsync("slurm-run", "exp0", GridStatus.Failed, reason, 127, default));

        var listed = await catalog.Runs.ListRunsAsync(default);
        Assert.Empty(listed.Errors);
        Assert.Equal(Expected.Keys.Append("new-run").Append("slurm-run").Order(StringComparer.Ordinal), listed.Items.Select(r => r.Name).Order(StringComparer.Ordinal));
        var slurm = listed.Items.Single(r => r.Name == "slurm-run");
        Assert.Equal((GridStatus.Queued, GridScheduler.Slurm, "42", "grid"), (slurm.Status, slurm.Scheduler, slurm.JobId, slurm.Cluster));
        Assert.Equal(new[] { "exp0", "exp1" }, slurm.Experiments);
        Assert.Equal(new[] { "exp1" }, slurm.QueuedExperiments);
        Assert.Equal(new[] { "cluster" }, slurm.Tags);
        var ended = await catalog.Runs.GetExperimentAsync("slurm-run", "exp0", default);
        Assert.Equal((GridStatus.Failed, (int?)127, reason), (ended.Status, ended.ExitCode, ended.Reason));
        var newRun = listed.Items.Single(r => r.Name == "new-run");
        Assert.Equal((GridStatus.Succeeded, 1L), (newRun.Status, newRun.ArtifactCount));
        Assert.Equal(new[] { "v4" }, newRun.Tags);
        // The old runs list as 0.3.0 left them, the sweep with its fourth experiment.
        foreach (var run in listed.Items.Where(r => Expected.ContainsKey(r.Name)))
        {
            var want = Expected[run.Name];
            Assert.Equal((want.Status, want.Protected), (run.Status.ToString(), run.Protected));
            Assert.Equal(want.Tags, run.Tags);
            Assert.Equal(run.Name == "tagged-sweep" ? want.Experiments.Keys.Append("exp3") : want.Experiments.Keys, run.Experiments);
            Assert.Equal((GridScheduler.Local, (string?)null), (run.Scheduler, run.JobId));
        }

        // -KeepBest 1 -By val_loss -ExcludeTag best over old and new: the new one is best, and the one 0.3.0 tagged stays.
        var sweep = await catalog.Runs.GetExperimentsAsync("tagged-sweep", default);
        Assert.Empty(sweep.Errors);
        Assert.Equal(new[] { ("exp0", RetentionReason.Remove), ("exp1", RetentionReason.Remove), ("exp2", RetentionReason.ExcludedTag), ("exp3", RetentionReason.Best) },
            RetentionPlanner.PlanExperiments(sweep.Items, 1, "val_loss", descending: false, e => e.Tags.Contains("best")).Select(d => (d.Item.Experiment, d.Reason)));

        // The old names are taken, and their ended experiments are never rewritten.
        var taken = await Assert.ThrowsAsync<GridException>(() => catalog.Writer.CreateRunAsync(new RunRecord { Name = "protected-model" }, default));
        Assert.Equal("RunExists", taken.ErrorId);
        foreach (var (run, exp) in new[] { ("failed-run", "exp0"), ("stopped-sweep", "exp1") })
        {
            var refused = await Assert.ThrowsAsync<GridException>(() =>
                importer.ImportAsync(new ImportRequest { Run = run, Experiment = exp, Files = files }, e => throw e, _ => { }, default));
            Assert.Equal("ExperimentExists", refused.ErrorId);
            Assert.False(await catalog.Claims.EndQueuedAsync(run, exp, GridStatus.Failed, "not queued", null, default));
        }

        // Every key of 0.3.0 is there byte for byte; each new key belongs to a new run or to the new experiment.
        var after = await KeysAsync(catalog);
        foreach (var (key, path) in FixtureStores.Files(Fixture)) Assert.Equal(File.ReadAllBytes(path), await catalog.Store.TryReadAllBytesAsync(key, default));
        Assert.All(after.Except(before), k => Assert.True(
            RunOf(k) is "new-run" or "slurm-run" || k.StartsWith(StoreLayout.ExperimentPrefix("tagged-sweep", "exp3"), StringComparison.Ordinal)
                || k.StartsWith(CatalogIndex.ExperimentIndexPrefix("tagged-sweep", "exp3"), StringComparison.Ordinal), k));
        Assert.Contains(CatalogIndex.JobKey("slurm-run", GridScheduler.Slurm, "grid", "42"), after);
        foreach (var (run, want) in Expected)
        {
            foreach (var (exp, e) in want.Experiments) Assert.Equal(e.Artifacts, await TestStore.StoredHashes(catalog, run, exp));
        }
    }
}

public sealed class FolderStore030Tests : Store030Tests
{
    protected override Task<GridCatalog> FixtureStoreAsync() => Task.FromResult(FixtureStores.InFolder("0.3.0", Temp.Sub("store")));
}

[Collection(S3SecondLane.Name)]
public sealed class S3Store030Tests : Store030Tests
{
    private readonly S3ServerFixture _s3;
    public S3Store030Tests(S3ServerFixture s3) => _s3 = s3;

    protected override Task<GridCatalog> FixtureStoreAsync() => FixtureStores.InS3("0.3.0", _s3);
}
