using System.Management.Automation;
using GridArtifacts.Core;
using GridArtifacts.Core.Retention;
using GridArtifacts.Core.Stores;
using GridArtifacts.Model;
using Xunit;

namespace GridArtifacts.Tests;

/// <summary>The retention rules alone, on runs and experiments of known ages and metrics, at a fixed now.</summary>
public sealed class RetentionPlannerTests
{
    private static readonly DateTimeOffset Now = new(2026, 12, 1, 12, 0, 0, TimeSpan.Zero);

    private static GridRun Run(string name, double createdDaysAgo, double? finishedDaysAgo, GridStatus status = GridStatus.Succeeded,
        bool isProtected = false, string[]? tags = null, int experiments = 1) => new(name, "store")
    {
        Created = Now.AddDays(-createdDaysAgo), Finished = finishedDaysAgo is { } f ? Now.AddDays(-f) : null, Status = status,
        ExperimentCount = experiments, Protected = isProtected, Tags = tags ?? Array.Empty<string>(),
    };

    private static readonly GridRun[] Runs =
    {
        Run("r1", 1, 0.5),
        Run("r2", 2, 1.9, GridStatus.Failed),
        Run("r3", 3, 2.9, GridStatus.Stopped),
        Run("r4", 40, 0.1),                              // a long run: created long ago, ended this morning
        Run("r5", 50, 49, tags: new[] { "keep" }),
        Run("r6", 60, 59, isProtected: true),
        Run("r7", 70, 69),
        Run("r8", 80, null, GridStatus.Running),         // never ranked
        Run("r9", 90, null, GridStatus.Lost),            // never ranked: its agent may come back
        Run("r0", 95, 95, experiments: 0),               // no experiment: nothing to rank
        Run("ra", 100, 99, GridStatus.Queued),
    };

    private static string[] Removed(List<RetentionDecision<GridRun>> plan) => plan.Where(d => d.Remove).Select(d => d.Item.Name).ToArray();

    [Fact]
    public void Keep_latest_alone_ranks_finished_runs_by_created()
    {
        var plan = RetentionPlanner.PlanRuns(Runs, 2, null, _ => false, Now);
        Assert.Equal(new[] { "r1", "r2", "r3", "r4", "r5", "r6", "r7" }, plan.Select(d => d.Item.Name)); // r8, r9, r0, ra are not in the plan
        Assert.Equal(new[] { "r3", "r4", "r5", "r7" }, Removed(plan));
        Assert.Equal(RetentionReason.Protected, plan.Single(d => d.Item.Name == "r6").Reason);
        Assert.Equal(new[] { "r1", "r2", "r3", "r4", "r5", "r7" }, Removed(RetentionPlanner.PlanRuns(Runs, 0, null, _ => false, Now)));
    }

    [Fact]
    public void Older_than_counts_from_the_end_of_the_run_and_keeps_the_boundary()
    {
        var r3Age = Now - Runs.Single(r => r.Name == "r3").Finished!.Value;
        var plan = RetentionPlanner.PlanRuns(Runs, null, r3Age, _ => false, Now);
        Assert.Equal(new[] { "r5", "r7" }, Removed(plan)); // r3 ended exactly that long ago: kept; r4 ended this morning
        Assert.Equal(RetentionReason.Recent, plan.Single(d => d.Item.Name == "r3").Reason);
        Assert.Equal(RetentionReason.Recent, plan.Single(d => d.Item.Name == "r4").Reason);
        Assert.Equal(new[] { "r3", "r5", "r7" }, Removed(RetentionPlanner.PlanRuns(Runs, null, r3Age - TimeSpan.FromTicks(1), _ => false, Now)));
    }

    [Fact]
    public void Rules_combine_as_keep_if_any_holds()
    {
        var plan = RetentionPlanner.PlanRuns(Runs, 1, TimeSpan.FromDays(2), r => r.Tags.Contains("keep"), Now);
        Assert.Equal(new[] { "r3", "r7" }, Removed(plan));
        Assert.Equal(RetentionReason.Latest, plan.Single(d => d.Item.Name == "r1").Reason);
        Assert.Equal(RetentionReason.Recent, plan.Single(d => d.Item.Name == "r2").Reason);
        Assert.Equal(RetentionReason.ExcludedTag, plan.Single(d => d.Item.Name == "r5").Reason);
        Assert.Equal(RetentionReason.Protected, plan.Single(d => d.Item.Name == "r6").Reason);
    }

    private static GridExperiment Exp(int i, GridStatus status, double? loss, string[]? tags = null) => new("sweep", GridNames.ExperimentName(i), "store")
    {
        Status = status, Tags = tags ?? Array.Empty<string>(),
        Metrics = loss is { } l ? new Dictionary<string, double>(StringComparer.OrdinalIgnoreCase) { ["val_loss"] = l, ["acc"] = 1 - l } : GridExperiment.NoMetrics,
    };

    private static readonly GridExperiment[] Sweep =
    {
        Exp(0, GridStatus.Succeeded, 0.5),
        Exp(1, GridStatus.Succeeded, 0.2),
        Exp(2, GridStatus.Failed, 0.9),
        Exp(3, GridStatus.Succeeded, 0.2),     // ties exp1: the lower index ranks first
        Exp(4, GridStatus.Running, 0.1),       // best, but still going: untouched
        Exp(5, GridStatus.Succeeded, null),    // no metric: kept
        Exp(6, GridStatus.Stopped, 0.7, new[] { "keep" }),
        Exp(7, GridStatus.Lost, 0.0),
    };

    [Fact]
    public void Keep_best_ranks_finished_experiments_by_the_metric()
    {
        var plan = RetentionPlanner.PlanExperiments(Sweep, 2, "VAL_LOSS", false, e => e.Tags.Contains("keep"));
        Assert.Equal(new[] { "exp0", "exp2" }, plan.Where(d => d.Remove).Select(d => d.Item.Experiment));
        Assert.Equal(new[] { RetentionReason.Remove, RetentionReason.Best, RetentionReason.Remove, RetentionReason.Best, RetentionReason.NotFinished,
            RetentionReason.NoMetric, RetentionReason.ExcludedTag, RetentionReason.NotFinished }, plan.Select(d => d.Reason));

        // acc = 1 - val_loss, highest first: exp1 and exp3 tie at 0.8, and exp1 ranks first.
        var high = RetentionPlanner.PlanExperiments(Sweep, 1, "acc", true, _ => false);
        Assert.Equal(new[] { "exp0", "exp2", "exp3", "exp6" }, high.Where(d => d.Remove).Select(d => d.Item.Experiment));
        Assert.Equal(RetentionReason.Best, high.Single(d => d.Item.Experiment == "exp1").Reason);
    }

    [Fact]
    public void A_metric_no_finished_experiment_has_refuses_the_plan()
    {
        var ex = Assert.Throws<GridException>(() => RetentionPlanner.PlanExperiments(Sweep, 1, "val_los", false, _ => false));
        Assert.Equal("MetricNotFound", ex.ErrorId);
        Assert.Contains("acc, val_loss", ex.Message);
    }
}

/// <summary>
/// Remove-GridRun and Remove-GridExperiment clean-ups in-process, on both stores: runs of known ages
/// (days apart, so the real clock is exact enough), tags and protection; exactly the expected runs
/// remain, byte-exact, and -WhatIf removes nothing while it reports what every run holds.
/// </summary>
public abstract class RetentionStoreTests : IDisposable
{
    protected readonly TempDir Temp = new();
    protected abstract string NewLocation();
    public void Dispose() => Temp.Dispose();

    private async Task<GridCatalog> SeedAsync(string location, IEnumerable<(string Run, double DaysAgo, string[] Tags, bool Protected)> runs)
    {
        var catalog = Catalogs.Open(location);
        var now = DateTimeOffset.UtcNow;
        foreach (var (run, daysAgo, tags, isProtected) in runs)
        {
            var created = now.AddDays(-daysAgo);
            Assert.True(await catalog.Writer.TryCreateRunAsync(new RunRecord { Name = run, Created = created }, default, TimeSpan.Zero, tags));
            for (var e = 0; e < 2; e++)
            {
                var exp = GridNames.ExperimentName(e);
                var file = Temp.WriteFile($"{run}/{exp}/model.bin", TestBytes.Random(1000 + e * 10 + (int)daysAgo, run.Length + e));
                var entry = await catalog.Artifacts.PutArtifactFileAsync(run, exp, "model.bin", file, default);
                await catalog.Manifests.WriteManifestAsync(new ManifestRecord { Run = run, Experiment = exp, Sealed = true, Updated = created, Artifacts = { entry } }, default);
                await catalog.Writer.WriteExperimentRecordAsync(new ExperimentRecord
                {
                    Run = run, Experiment = exp, Status = GridStatus.Succeeded, ExitCode = 0, Created = created, Started = created,
                    Finished = created.AddHours(1), Heartbeat = created.AddHours(1),
                    Sync = new GridSyncState { FilesSynced = 1, BytesSynced = entry.Size },
                    Metrics = new MetricsRecord { Source = "metrics.json", Rows = 1, Values = { ["val_loss"] = 1.0 / (e + 1 + daysAgo) } },
                }, default);
            }
            if (isProtected) await catalog.Remover.ProtectAsync(run, default);
        }
        return catalog;
    }

    private static async Task<Dictionary<string, long>> StoredBytesAsync(IObjectStore store)
    {
        var bytes = new Dictionary<string, long>();
        await foreach (var e in store.ListAsync(StoreLayout.RunsPrefix, recursive: true, default))
        {
            var rest = e.Key[StoreLayout.RunsPrefix.Length..];
            if (e.IsPrefix || !rest.Contains('/')) continue;
            var run = rest[..rest.IndexOf('/')];
            // What removing a run frees of its experiments: everything under runs/<run>/expN/.
            if (rest[(run.Length + 1)..].StartsWith("exp", StringComparison.Ordinal)) bytes[run] = bytes.GetValueOrDefault(run) + e.Size;
        }
        return bytes;
    }

    [Fact]
    public async Task A_clean_up_keeps_exactly_the_latest_the_recent_the_tagged_and_the_protected()
    {
        var location = NewLocation();
        var catalog = await SeedAsync(location, new[]
        {
            ("new-1", 1.0, Array.Empty<string>(), false),
            ("new-2", 2.0, Array.Empty<string>(), false),
            ("mid-5", 5.0, Array.Empty<string>(), false),
            ("old-20", 20.0, new[] { "keep" }, false),
            ("old-30", 30.0, Array.Empty<string>(), true),
            ("old-40", 40.0, Array.Empty<string>(), false),
            ("old-50", 50.0, new[] { "scratch" }, false),
        });
        var before = await StoredBytesAsync(catalog.Store);
        using var host = new ModuleHost(location);

        // -WhatIf: nothing goes, and each run that would go is reported with what it holds.
        var (planned, errors) = host.Invoke("Remove-GridRun -KeepLatest 1 -OlderThan 3.00:00:00 -ExcludeTag keep -WhatIf -PassThru -WarningVariable w; $w", Array.Empty<object>());
        Assert.Empty(errors);
        var removals = planned.Select(p => p.BaseObject).OfType<GridRemoval>().ToList();
        Assert.Equal(new[] { "mid-5", "old-40", "old-50" }, removals.Select(r => r.Id));
        Assert.All(removals, r => Assert.True(r.WhatIf));
        Assert.All(removals, r => Assert.Equal(before[r.Run], r.Bytes));
        Assert.All(removals, r => Assert.Equal((2, 2L), (r.Experiments, r.Artifacts)));
        Assert.Contains(planned.Select(p => p.BaseObject).OfType<WarningRecord>(), w => w.Message == "Kept old-30: it is protected.");
        Assert.Equal(7, (await catalog.Runs.ListRunsAsync(default)).Items.Count);

        // -Tag narrows what the rules look at.
        host.Run("Remove-GridRun -KeepLatest 0 -Tag scr* -Confirm:$false");
        Assert.Equal(new[] { "mid-5", "new-1", "new-2", "old-20", "old-30", "old-40" }, (await catalog.Runs.ListRunsAsync(default)).Items.Select(r => r.Name).Order());

        host.Run("Remove-GridRun -KeepLatest 1 -OlderThan 3.00:00:00 -ExcludeTag keep -Confirm:$false -WarningAction SilentlyContinue");
        var left = (await catalog.Runs.ListRunsAsync(default)).Items.Select(r => r.Name).Order().ToArray();
        Assert.Equal(new[] { "new-1", "new-2", "old-20", "old-30" }, left);
        // What is left is whole: every artifact reads back byte-exact against its recorded hash.
        foreach (var run in left)
            foreach (var exp in new[] { "exp0", "exp1" })
                foreach (var a in (await catalog.Artifacts.GetArtifactsAsync(run, exp, default)).Items)
                {
                    await using var s = await catalog.Artifacts.OpenArtifactAsync(a, default);
                    using var copy = new MemoryStream();
                    await s.CopyToAsync(copy);
                    Assert.Equal(a.Sha256, TestBytes.Sha256(copy.ToArray()));
                }
        var keys = new List<string>();
        await foreach (var e in catalog.Store.ListAsync(StoreLayout.RunsPrefix, recursive: false, default)) keys.Add(e.Key);
        Assert.DoesNotContain(keys, k => k.Contains("old-40") || k.Contains("mid-5") || k.Contains("old-50"));
    }

    [Fact]
    public async Task Keep_best_removes_the_worst_finished_experiments_and_a_misspelt_metric_removes_nothing()
    {
        var location = NewLocation();
        var catalog = await SeedAsync(location, new[] { ("sweep", 1.0, Array.Empty<string>(), false), ("guarded", 1.0, Array.Empty<string>(), true) });
        using var host = new ModuleHost(location);
        var (_, errors) = host.Invoke("Remove-GridExperiment sweep -KeepBest 1 -By val_lost -Confirm:$false", Array.Empty<object>());
        Assert.Equal("MetricNotFound,GridArtifacts.Commands.RemoveGridExperimentCommand", Assert.Single(errors).FullyQualifiedErrorId);
        Assert.Equal(2, (await catalog.Runs.GetExperimentsAsync("sweep", default)).Items.Count);

        // val_loss is 1/(e+2): exp1 is lower, so it is the one kept; the protected run is kept with a warning.
        var output = host.Run("Get-GridRun | Remove-GridExperiment -KeepBest 1 -By val_loss -Confirm:$false -PassThru -WarningVariable w; $w");
        Assert.Equal("sweep-exp0", Assert.Single(output.Select(o => o.BaseObject).OfType<GridRemoval>()).Id);
        Assert.Contains(output.Select(o => o.BaseObject).OfType<WarningRecord>(), w => w.Message == "Kept guarded: it is protected.");
        Assert.Equal(new[] { "exp1" }, (await catalog.Runs.GetExperimentsAsync("sweep", default)).Items.Select(e => e.Experiment));
        Assert.Equal(2, (await catalog.Runs.GetExperimentsAsync("guarded", default)).Items.Count);
    }
    [Fact]
    public async Task A_clean_up_never_widens_and_never_takes_a_run_with_an_experiment_that_has_not_ended()
    {
        var location = NewLocation();
        var catalog = await SeedAsync(location, new[] { ("piped", 10.0, Array.Empty<string>(), false), ("lost", 10.0, Array.Empty<string>(), false) });
        // An experiment of "lost" that the index does not show (its agent died before its first key), last heard of a day ago.
        var stale = DateTimeOffset.UtcNow.AddDays(-1);
        await catalog.Store.PutAsync(StoreLayout.ExperimentRecordKey("lost", "exp2"), RecordJson.Serialize(new ExperimentRecord
        {
            Run = "lost", Experiment = "exp2", Status = GridStatus.Running, Created = stale, Started = stale, Heartbeat = stale,
        }), default);
        using var host = new ModuleHost(location);

        // A pipeline that brings nothing names no run, and a bare number is refused rather than read as ticks.
        host.Run("Get-GridRun -Tag nothing-has-this | Remove-GridRun -KeepLatest 0 -Confirm:$false");
        var (_, errors) = host.Invoke("Remove-GridRun -OlderThan 30 -Confirm:$false", Array.Empty<object>(), terminatingAsError: true);
        Assert.Equal("OlderThanTooShort,GridArtifacts.Commands.RemoveGridRunCommand", Assert.Single(errors).FullyQualifiedErrorId);
        Assert.Equal(new[] { "lost", "piped" }, (await catalog.Runs.ListRunsAsync(default)).Items.Select(r => r.Name).Order());

        var output = host.Run("Remove-GridRun -KeepLatest 0 -Confirm:$false -PassThru -WarningVariable w; $w");
        Assert.Equal("piped", Assert.Single(output.Select(o => o.BaseObject).OfType<GridRemoval>()).Id);
        Assert.Contains(output.Select(o => o.BaseObject).OfType<WarningRecord>(), w => w.Message.StartsWith("Kept lost: lost-exp2 is Lost.", StringComparison.Ordinal));
        Assert.Equal(new[] { "lost" }, (await catalog.Runs.ListRunsAsync(default)).Items.Select(r => r.Name));
        Assert.NotNull(await catalog.Runs.ReadExperimentRecordAsync("lost", "exp2", default));
    }

    [Fact]
    public async Task Piped_runs_are_removed_from_the_store_each_came_from()
    {
        var (first, second) = (NewLocation(), NewLocation());
        var a = await SeedAsync(first, new[] { ("same-name", 1.0, Array.Empty<string>(), false) });
        var b = await SeedAsync(second, new[] { ("same-name", 1.0, Array.Empty<string>(), false), ("only-here", 1.0, Array.Empty<string>(), false) });
        using var host = new ModuleHost(first);
        // Without the host's default -Store, which would bind before the piped runs' own.
        host.Run("$PSDefaultParameterValues.Clear(); @(Get-GridRun -Store $args[0]) + @(Get-GridRun only-here -Store $args[1]) | Remove-GridRun -Confirm:$false", first, second);
        Assert.Empty((await a.Runs.ListRunsAsync(default)).Items);
        Assert.Equal(new[] { "same-name" }, (await b.Runs.ListRunsAsync(default)).Items.Select(r => r.Name));
    }
}

public sealed class FileSystemRetentionStoreTests : RetentionStoreTests
{
    protected override string NewLocation() => Temp.Sub("store-" + Guid.NewGuid().ToString("N"));
}

[Collection(S3Collection.Name)]
public sealed class S3RetentionStoreTests : RetentionStoreTests
{
    private readonly S3ServerFixture _s3;
    private readonly string _bucket;
    public S3RetentionStoreTests(S3ServerFixture s3) { _s3 = s3; _bucket = s3.NewBucket(); }
    protected override string NewLocation() => _s3.StoreUri(_bucket, "retention/" + Guid.NewGuid().ToString("N"));
}
