using System.Management.Automation;
using GridArtifacts.Core;
using GridArtifacts.Core.Capture;
using GridArtifacts.Core.Stores;
using GridArtifacts.Model;
using Xunit;

namespace GridArtifacts.Tests;

/// <summary>
/// Measure-GridStore on known data, on both stores: the totals and the largest runs from one listing
/// of the index with no read, -Exact equal to what a recursive listing holds, the filters, and runs
/// written by 0.1.0 counted from their manifests.
/// </summary>
public abstract class MeasureTests : IDisposable
{
    protected readonly TempDir Temp = new();
    /// <summary>A fresh, empty store's location.</summary>
    protected abstract string NewLocation();
    protected static IObjectStore Open(string location) => location.StartsWith("s3://", StringComparison.Ordinal) ? new S3Store(location) : new FileSystemStore(location);
    public void Dispose() => Temp.Dispose();

    private static readonly DateTimeOffset T0 = new(2026, 7, 8, 9, 10, 11, TimeSpan.Zero);

    /// <summary>What is imported: run, experiment, the sizes of its files, its tags.</summary>
    private static readonly (string Run, string Experiment, int[] Sizes, string[] Tags)[] Imports =
    {
        ("alpha", "exp0", new[] { 1000, 2000, 3000 }, Array.Empty<string>()),
        ("alpha", "exp1", new[] { 500 }, Array.Empty<string>()),
        ("beta", "exp0", new[] { 7000 }, Array.Empty<string>()),
        ("epsilon", "exp0", new[] { 4000, 3000 }, new[] { "keep" }),
        ("gamma", "exp0", new[] { 10, 20 }, new[] { "keep-me" }),
    };

    /// <summary>The runs as they must measure, largest first (ties by name): beta and epsilon weigh the same.</summary>
    private static readonly (string Run, GridStatus Status, int Experiments, long Artifacts, long Bytes, bool Protected, string[] Tags)[] Expected =
    {
        ("beta", GridStatus.Succeeded, 1, 1, 7000, true, Array.Empty<string>()),
        ("epsilon", GridStatus.Succeeded, 1, 2, 7000, false, new[] { "keep" }),
        ("alpha", GridStatus.Succeeded, 2, 4, 6500, false, Array.Empty<string>()),
        ("gamma", GridStatus.Succeeded, 1, 2, 30, false, new[] { "keep-me" }),
        ("empty-run", GridStatus.Queued, 0, 0, 0, false, Array.Empty<string>()), // no experiment yet: Queued, as Get-GridRun shows it
        ("queued-run", GridStatus.Queued, 1, 0, 0, false, Array.Empty<string>()),
    };

    /// <summary>Writes the known runs through the importer and the catalog, as the cmdlets would.</summary>
    private async Task SeedAsync(IObjectStore store)
    {
        var catalog = new GridCatalog(store) { ClaimSettle = TimeSpan.FromMilliseconds(50) };
        var seed = 0;
        foreach (var (run, exp, sizes, tags) in Imports)
        {
            var files = sizes.Select((size, i) => ($"out/file-{i}.bin", Temp.WriteFile($"src/{run}/{exp}/file-{i}.bin", TestBytes.Random(size, ++seed)))).ToList();
            var imported = await new ArtifactImporter(catalog).ImportAsync(new ImportRequest { Run = run, Experiment = exp, Files = files, Tags = tags }, e => throw e, _ => { }, default);
            Assert.Equal(GridStatus.Succeeded, imported.Status);
        }
        await catalog.Remover.ProtectAsync("beta", default);
        await catalog.Writer.CreateRunAsync(new RunRecord { Name = "empty-run", Created = T0 }, default);
        await catalog.Writer.CreateRunAsync(new RunRecord { Name = "queued-run", Created = T0 }, default);
        await catalog.Writer.QueueExperimentsAsync("queued-run", new[] { (new Dictionary<string, string>(), "python train.py") }, T0, default);
    }

    private static void AssertRuns(IEnumerable<GridRunMeasure> measured, string location, bool exact)
    {
        var runs = measured.ToList();
        Assert.Equal(Expected.Select(e => e.Run), runs.Select(r => r.Run));
        foreach (var (want, got) in Expected.Zip(runs))
        {
            Assert.Equal((want.Status, want.Experiments, want.Artifacts, want.Bytes, want.Protected), (got.Status, got.Experiments, got.Artifacts, got.Bytes, got.Protected));
            Assert.Equal(want.Tags, got.Tags);
            Assert.Equal(location, got.Store);
            Assert.Equal(exact, got.OtherBytes is not null);
        }
    }

    [Fact]
    public async Task The_totals_and_the_largest_runs_come_from_one_listing_with_no_read()
    {
        var location = NewLocation();
        await SeedAsync(Open(location));
        var counting = new CountingStore(Open(location));
        var measured = await StoreMeasurer.MeasureAsync(new GridCatalog(counting, clock: new FixedClock(T0)), _ => true, exact: false, top: 3, default);

        Assert.Equal(1, counting.Lists);
        Assert.Equal(0, counting.Reads);
        Assert.Empty(measured.Errors);
        AssertRuns(measured.Runs, location, exact: false);
        var total = measured.Total;
        Assert.Equal((location, 6, 2, 1, 6L, 9L, 20530L, (long?)null, false, T0), (total.Store, total.Runs, total.ActiveRuns, total.ProtectedRuns, total.Experiments, total.Artifacts, total.Bytes, total.OtherBytes, total.Exact, total.MeasuredAt));
        Assert.Equal(new[] { "beta", "epsilon", "alpha" }, total.Top.Select(r => r.Run));
        Assert.Empty((await StoreMeasurer.MeasureAsync(new GridCatalog(counting), _ => true, exact: false, top: 0, default)).Total.Top);
    }

    [Fact]
    public async Task Exact_sums_every_object_of_one_recursive_listing_and_its_artifacts_equal_the_index_after_the_seal()
    {
        var location = NewLocation();
        var store = Open(location);
        await SeedAsync(store);
        var counting = new CountingStore(Open(location));
        var exact = await StoreMeasurer.MeasureAsync(new GridCatalog(counting), _ => true, exact: true, top: 10, default);

        Assert.Equal(1, counting.Lists);
        Assert.Equal(0, counting.Reads);
        Assert.Empty(exact.Errors);
        // Sealed: what is stored under the artifacts folders is what the index says, run by run.
        AssertRuns(exact.Runs, location, exact: true);
        Assert.True(exact.Total.Exact);

        // Every object under runs/ belongs to one of these runs: artifacts and the rest add up to the listing.
        var objects = new List<ObjectEntry>();
        await foreach (var e in store.ListAsync(StoreLayout.RunsPrefix, recursive: true, default)) objects.Add(e);
        Assert.Equal(objects.Sum(o => o.Size), exact.Total.Bytes + exact.Total.OtherBytes);
        Assert.Equal(objects.Where(o => o.Key.Contains("/artifacts/", StringComparison.Ordinal)).Sum(o => o.Size), exact.Total.Bytes);
        foreach (var run in exact.Runs)
        {
            var own = objects.Where(o => o.Key.StartsWith($"runs/{run.Run}/", StringComparison.Ordinal) || o.Key.StartsWith($"runs/{run.Run}~", StringComparison.Ordinal)).ToList();
            Assert.Equal(own.Sum(o => o.Size), run.Bytes + run.OtherBytes);
            // Records, manifests and logs weigh something; every run has its record.
            Assert.True(run.OtherBytes > 0, $"{run.Run} has no other bytes");
        }
        Assert.Equal(exact.Runs.Sum(r => r.OtherBytes), exact.Total.OtherBytes);
    }

    [Fact]
    public async Task An_artifact_the_index_does_not_know_shows_only_with_Exact()
    {
        var location = NewLocation();
        var store = Open(location);
        await SeedAsync(store);
        // Written beside the sealed experiment by hand: the writer never reported it.
        await store.PutAsync(StoreLayout.ArtifactKey("gamma", "exp0", "late.bin"), new byte[123], default);
        await store.PutAsync(StoreLayout.LogKey("gamma", "exp0", "stdout"), new byte[45], default);
        var catalog = new GridCatalog(store);
        var indexed = (await StoreMeasurer.MeasureAsync(catalog, r => r.Name == "gamma", exact: false, top: 1, default)).Total;
        var exact = (await StoreMeasurer.MeasureAsync(catalog, r => r.Name == "gamma", exact: true, top: 1, default)).Total;
        Assert.Equal((1, 2L, 30L), (indexed.Runs, indexed.Artifacts, indexed.Bytes));
        Assert.Equal((1, 3L, 153L), (exact.Runs, exact.Artifacts, exact.Bytes));
        var stored = new List<ObjectEntry>();
        await foreach (var e in store.ListAsync(StoreLayout.RunPrefix("gamma"), recursive: true, default)) stored.Add(e);
        Assert.Equal(stored.Where(o => !o.Key.Contains("/artifacts/", StringComparison.Ordinal)).Sum(o => o.Size), exact.OtherBytes);
        Assert.Contains(stored, o => o.Key == StoreLayout.LogKey("gamma", "exp0", "stdout"));
    }

    [Fact]
    public async Task The_cmdlet_filters_by_name_and_tag_and_writes_runs_largest_first()
    {
        var location = NewLocation();
        await SeedAsync(Open(location));
        using var host = new ModuleHost(location);

        var total = (GridStoreMeasure)Assert.Single(host.Run("Measure-GridStore -Top 2")).BaseObject;
        Assert.Equal((6, 20530L), (total.Runs, total.Bytes));
        Assert.Equal(new[] { "beta", "epsilon" }, total.Top.Select(r => r.Run));

        var perRun = host.Run("Measure-GridStore -PerRun").Select(o => (GridRunMeasure)o.BaseObject);
        AssertRuns(perRun, location, exact: false);

        // Wildcards and names; tags by pattern, on the run or its experiments.
        var named = (GridStoreMeasure)Assert.Single(host.Run("Measure-GridStore 'e*', alpha -Top 10")).BaseObject;
        Assert.Equal(new[] { "epsilon", "alpha", "empty-run" }, named.Top.Select(r => r.Run));
        Assert.Equal((3, 3L, 6L, 13500L), (named.Runs, named.Experiments, named.Artifacts, named.Bytes));
        var tagged = host.Run("Measure-GridStore -Tag 'keep*' -PerRun").Select(o => ((GridRunMeasure)o.BaseObject).Run);
        Assert.Equal(new[] { "epsilon", "gamma" }, tagged);
        Assert.Equal(new[] { "epsilon" }, host.Run("Measure-GridStore -Tag KEEP -PerRun").Select(o => ((GridRunMeasure)o.BaseObject).Run));
        var both = (GridStoreMeasure)Assert.Single(host.Run("Measure-GridStore g* -Tag keep*")).BaseObject;
        Assert.Equal((1, 30L), (both.Runs, both.Bytes));

        // A name that is no run is an error; the rest is still measured. A wildcard that matches nothing is quiet.
        var (output, errors) = host.Invoke("Measure-GridStore beta, no-such-run, 'zz*'", Array.Empty<object>());
        Assert.Equal("RunNotFound", Assert.Single(errors).FullyQualifiedErrorId.Split(',')[0]);
        Assert.Equal(ErrorCategory.ObjectNotFound, errors[0].CategoryInfo.Category);
        Assert.Equal((1, 7000L), (((GridStoreMeasure)Assert.Single(output).BaseObject).Runs, ((GridStoreMeasure)output[0].BaseObject).Bytes));

        var exact = host.Run("Measure-GridStore -PerRun -Exact").Select(o => (GridRunMeasure)o.BaseObject);
        AssertRuns(exact, location, exact: true);
        // The largest run, piped on, is found in the store it was measured in.
        Assert.Equal("beta", ((GridRun)Assert.Single(host.Run("Measure-GridStore -PerRun | Select-Object -First 1 | Get-GridRun")).BaseObject).Name);
        Assert.StartsWith("ParameterArgumentValidationError,", host.Invoke("Measure-GridStore -Top 10001", Array.Empty<object>(), terminatingAsError: true).Errors[^1].FullyQualifiedErrorId);
    }

    [Fact]
    public async Task Runs_written_by_0_1_0_are_counted_from_their_manifests()
    {
        var location = NewLocation();
        var store = Open(location);
        var files = FixtureStores.Files(1).ToList();
        foreach (var (key, path) in files) await store.PutFileAsync(key, path, default);
        // What the fixture holds under each run's artifacts folders, from its files on disk.
        var artifacts = files.Where(f => f.Key.Contains("/artifacts/", StringComparison.Ordinal))
            .GroupBy(f => f.Key.Split('/')[1])
            .ToDictionary(g => g.Key, g => (Count: (long)g.Count(), Bytes: g.Sum(f => new FileInfo(f.Path).Length)));
        Assert.Equal(5, artifacts.Count);
        // And one schema-2 run beside them.
        var catalog = new GridCatalog(store) { ClaimSettle = TimeSpan.FromMilliseconds(50) };
        var src = Temp.WriteFile("new/model.bin", TestBytes.Random(2500, 7));
        await new ArtifactImporter(catalog).ImportAsync(new ImportRequest { Run = "new-run", Experiment = "exp0", Files = new[] { ("model.bin", src) } }, e => throw e, _ => { }, default);
        artifacts["new-run"] = (1, 2500);

        foreach (var exact in new[] { false, true })
        {
            var measured = await StoreMeasurer.MeasureAsync(catalog, _ => true, exact, top: 100, default);
            Assert.Empty(measured.Errors);
            Assert.Equal(artifacts.OrderBy(a => a.Key, StringComparer.Ordinal).Select(a => (a.Key, a.Value.Count, a.Value.Bytes)),
                measured.Runs.OrderBy(r => r.Run, StringComparer.Ordinal).Select(r => (r.Run, r.Artifacts, r.Bytes)));
            Assert.Equal(artifacts.Values.Sum(a => a.Bytes), measured.Total.Bytes);
            Assert.Equal(7, measured.Total.Experiments); // captured-sweep has two; the others one each
            Assert.Equal(GridStatus.Failed, measured.Runs.Single(r => r.Run == "failed-run").Status);
        }
    }
}

public sealed class FileSystemMeasureTests : MeasureTests
{
    protected override string NewLocation() => Temp.Sub("store-" + Guid.NewGuid().ToString("N"));
}

[Collection(S3SecondLane.Name)]
public sealed class S3MeasureTests : MeasureTests
{
    private readonly S3ServerFixture _s3;
    private readonly string _bucket;
    public S3MeasureTests(S3ServerFixture s3) { _s3 = s3; _bucket = s3.NewBucket(); }
    protected override string NewLocation() => _s3.StoreUri(_bucket, "measure/" + Guid.NewGuid().ToString("N"));
}
