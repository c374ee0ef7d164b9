using GridArtifacts.Core;
using GridArtifacts.Core.Capture;
using GridArtifacts.Core.Stores;
using GridArtifacts.Model;
using Xunit;

namespace GridArtifacts.Tests;

/// <summary>
/// A store that 0.1.0 wrote (tests/fixtures/store-v1, made by tests/fixtures/New-Schema1Store.ps1
/// from commit 01882af) keeps working, on both stores: it lists with the statuses it had, every
/// artifact downloads byte-exact against hashes taken from the files its scripts wrote, a run is
/// removed alone, and new runs and experiments go beside the old ones while ended ones stay as
/// they are.
/// </summary>
public abstract class Schema1StoreTests : IDisposable
{
    protected readonly TempDir Temp = new();
    public void Dispose() => Temp.Dispose();

    /// <summary>A fresh store holding a copy of the fixture, file for file.</summary>
    protected abstract Task<GridCatalog> FixtureStoreAsync();

    [Fact]
    public async Task Runs_written_by_0_1_0_list_with_their_statuses_and_download_byte_exact()
    {
        var catalog = await FixtureStoreAsync();
        var expected = FixtureStores.Expected(1);
        Assert.Equal(expected.Keys.Order(StringComparer.Ordinal), (await catalog.Runs.ListRunNamesAsync(default)).Order(StringComparer.Ordinal));
        var runs = await catalog.Runs.GetRunsAsync(expected.Keys, default);
        Assert.Empty(runs.Errors);
        foreach (var run in runs.Items)
        {
            var want = expected[run.Name];
            Assert.Equal(want.Status, run.Status.ToString());
            Assert.Equal(want.Experiments.Keys, run.Experiments);
            foreach (var (exp, e) in want.Experiments)
            {
                var got = await catalog.Runs.GetExperimentAsync(run.Name, exp, default);
                Assert.Equal(e.Status, got.Status.ToString());
                Assert.Equal(e.ExitCode, got.ExitCode);
                Assert.Equal(e.Artifacts.Count, got.ArtifactCount);
                Assert.Equal(e.Artifacts, await FixtureStores.SavedHashes(catalog, run.Name, exp, Temp.Sub("saved")));
            }
        }
        // The captured experiments kept their script's output.
        var log = await catalog.Runs.ReadLogAsync("captured-sweep", "exp1", "stdout", default);
        Assert.Equal("done 2\n", System.Text.Encoding.UTF8.GetString(log!));
    }

    [Fact]
    public async Task A_run_of_0_1_0_is_removed_alone_and_new_runs_and_experiments_go_beside_the_old()
    {
        var catalog = await FixtureStoreAsync();
        var expected = FixtureStores.Expected(1);

        var removed = await catalog.Remover.RemoveRunAsync("failed-run", default);
        Assert.Equal(1, removed.Experiments);
        Assert.DoesNotContain("failed-run", await catalog.Runs.ListRunNamesAsync(default));

        // A new run beside the old ones, and a new experiment in an old run.
        var src = Temp.Sub("new");
        Temp.WriteFile("new/out.txt", "new"u8.ToArray());
        var files = ArtifactImporter.ListFiles(src, new ModuleFolders(catalog.Store), _ => { });
        var fresh = await new ArtifactImporter(catalog).ImportAsync(new ImportRequest { Run = "new-run", Experiment = "exp0", Files = files }, e => throw e, _ => { }, default);
        Assert.Equal(GridStatus.Succeeded, fresh.Status);
        var added = await new ArtifactImporter(catalog).ImportAsync(new ImportRequest { Run = "captured-sweep", Experiment = "exp2", Files = files }, e => throw e, _ => { }, default);
        Assert.Equal(1, added.ArtifactCount);
        Assert.Equal(new[] { "exp0", "exp1", "exp2" }, (await catalog.Runs.GetRunAsync("captured-sweep", default)).Experiments);

        // One listing gives the new run (from its index keys) and the old ones (from their records) together.
        var listed = await catalog.Runs.ListRunsAsync(default);
        Assert.Empty(listed.Errors);
        Assert.Equal(expected.Keys.Where(k => k != "failed-run").Append("new-run").OrderBy(k => k, StringComparer.Ordinal),
            listed.Items.Select(r => r.Name).OrderBy(k => k, StringComparer.Ordinal));
        Assert.Equal(GridStatus.Succeeded, listed.Items.Single(r => r.Name == "new-run").Status);
        Assert.Equal(3, listed.Items.Single(r => r.Name == "captured-sweep").ExperimentCount);

        // The old names are taken, and their ended experiments are never rewritten.
        var taken = await Assert.ThrowsAsync<GridException>(() => catalog.Writer.CreateRunAsync(new RunRecord { Name = "imported-run" }, default));
        Assert.Equal("RunExists", taken.ErrorId);
        var ended = await Assert.ThrowsAsync<GridException>(() =>
            new ArtifactImporter(catalog).ImportAsync(new ImportRequest { Run = "imported-run", Experiment = "exp0", Files = files }, e => throw e, _ => { }, default));
        Assert.Equal("ExperimentExists", ended.ErrorId);

        foreach (var run in new[] { "captured-sweep", "stopped-run", "imported-run", "agent-run" })
        {
            foreach (var (exp, e) in expected[run].Experiments)
            {
                Assert.Equal(e.Artifacts, (await catalog.Artifacts.GetArtifactsAsync(run, exp, default)).Items.ToDictionary(a => a.Path, a => a.Sha256!, StringComparer.Ordinal));
            }
        }
    }
}

public sealed class FolderSchema1StoreTests : Schema1StoreTests
{
    protected override Task<GridCatalog> FixtureStoreAsync() => Task.FromResult(FixtureStores.InFolder(1, Temp.Sub("store")));
}

[Collection(S3Collection.Name)]
public sealed class S3Schema1StoreTests : Schema1StoreTests
{
    private readonly S3ServerFixture _s3;
    public S3Schema1StoreTests(S3ServerFixture s3) => _s3 = s3;

    protected override Task<GridCatalog> FixtureStoreAsync() => FixtureStores.InS3(1, _s3);
}
