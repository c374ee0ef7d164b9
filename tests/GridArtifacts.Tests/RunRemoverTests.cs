using GridArtifacts.Core;
using GridArtifacts.Core.Removal;
using GridArtifacts.Core.Retention;
using GridArtifacts.Core.Stores;
using GridArtifacts.Model;
using Xunit;

namespace GridArtifacts.Tests;

/// <summary>
/// Removal in Core, without a cmdlet: what it refuses before anything goes (active experiments
/// without -Force, protected runs), how a clean-up keeps instead of refusing, and that what it
/// plans is what it removes.
/// </summary>
public sealed class RunRemoverTests : IDisposable
{
    private readonly TempDir _temp = new();
    public void Dispose() => _temp.Dispose();

    private async Task<GridCatalog> SeedAsync(params (string Run, GridStatus Status, bool Protected)[] runs)
    {
        var catalog = Catalogs.Open(_temp.Sub("store"));
        var now = DateTimeOffset.UtcNow;
        foreach (var (run, status, isProtected) in runs)
        {
            Assert.True(await catalog.Writer.TryCreateRunAsync(new RunRecord { Name = run, Created = now.AddDays(-1) }, default, TimeSpan.Zero));
            var file = _temp.WriteFile($"{run}/model.bin", TestBytes.Random(1234, run.Length));
            var entry = await catalog.Artifacts.PutArtifactFileAsync(run, "exp0", "model.bin", file, default);
            await catalog.Manifests.WriteManifestAsync(new ManifestRecord { Run = run, Experiment = "exp0", Sealed = status.IsFinished(), Updated = now, Artifacts = { entry } }, default);
            await catalog.Writer.WriteExperimentRecordAsync(new ExperimentRecord
            {
                Run = run, Experiment = "exp0", Status = status, Created = now.AddDays(-1), Started = now.AddDays(-1),
                Finished = status.IsFinished() ? now.AddHours(-1) : null, Heartbeat = now,
                Sync = new GridSyncState { FilesSynced = 1, BytesSynced = entry.Size },
            }, default);
            if (isProtected) await catalog.Remover.ProtectAsync(run, default);
        }
        return catalog;
    }

    private static async Task<(RemovalPlan? Plan, List<object> Posted)> PlanAsync(GridCatalog catalog, string run, string? experiment, bool retention, bool force)
    {
        var posted = new List<object>();
        var plan = await new RunRemover(catalog).PlanAsync(run, experiment, retention, force, null, posted.Add, default);
        return (plan, posted);
    }

    [Fact]
    public async Task A_named_run_with_a_running_experiment_is_refused_without_force_and_planned_with_it()
    {
        var catalog = await SeedAsync(("busy-run", GridStatus.Running, false));
        var (refused, posted) = await PlanAsync(catalog, "busy-run", null, retention: false, force: false);
        Assert.Null(refused);
        var error = Assert.IsType<GridException>(Assert.Single(posted));
        Assert.Equal(("ExperimentRunning", GridErrorKind.Busy, "busy-run"), (error.ErrorId, error.Kind, error.Target as string));

        var (plan, none) = await PlanAsync(catalog, "busy-run", null, retention: false, force: true);
        Assert.Empty(none);
        Assert.Equal("busy-run-exp0", Assert.Single(plan!.Active).Id);
        Assert.Equal(1, plan.Files);
    }

    [Fact]
    public async Task A_clean_up_keeps_a_run_that_is_active_or_protected_with_a_warning_and_never_an_error()
    {
        var catalog = await SeedAsync(("busy-run", GridStatus.Running, false), ("kept-run", GridStatus.Succeeded, true));
        var (busy, busyPosted) = await PlanAsync(catalog, "busy-run", null, retention: true, force: true);
        Assert.Null(busy);
        Assert.StartsWith("Kept busy-run: busy-run-exp0 is Running.", Assert.IsType<WarningMessage>(Assert.Single(busyPosted)).Text);

        var (kept, keptPosted) = await PlanAsync(catalog, "kept-run", null, retention: true, force: false);
        Assert.Null(kept);
        Assert.Equal("Kept kept-run: it is protected.", Assert.IsType<WarningMessage>(Assert.Single(keptPosted)).Text);

        var (named, namedPosted) = await PlanAsync(catalog, "kept-run", null, retention: false, force: true);
        Assert.Null(named);
        Assert.Equal(GridErrorKind.Protected, Assert.IsType<GridException>(Assert.Single(namedPosted)).Kind);
    }

    [Fact]
    public async Task What_a_retention_plan_removes_goes_with_the_index_keys_listed_for_it_and_the_rest_stays()
    {
        var catalog = await SeedAsync(("old-run", GridStatus.Succeeded, false), ("new-run", GridStatus.Failed, false));
        var remover = new RunRemover(catalog);
        var posted = new List<object>();
        var (plan, keys) = await remover.PlanRetentionAsync(_ => true, _ => true, _ => false, keepLatest: 0, olderThan: null, posted.Add, default);
        Assert.Equal(new[] { "new-run", "old-run" }, plan.Where(d => d.Remove).Select(d => d.Item.Name).Order());
        Assert.All(plan, d => Assert.Equal(RetentionReason.Remove, d.Reason));

        var removal = await remover.PlanAsync("old-run", null, retention: true, force: false, keys.GetValueOrDefault("old-run"), posted.Add, default);
        Assert.NotNull(removal);
        var removed = await remover.RemoveAsync(removal!, posted.Add, default);
        Assert.Equal((1, 1), (removed!.Experiments, removed.Files));
        Assert.Empty(posted);
        Assert.Equal(new[] { "new-run" }, (await catalog.Runs.ListRunsAsync(default)).Items.Select(r => r.Name));
    }
}
