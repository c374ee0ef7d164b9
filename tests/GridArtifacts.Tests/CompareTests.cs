using System.Globalization;
using System.Text;
using GridArtifacts.Core;
using GridArtifacts.Core.Capture;
using GridArtifacts.Core.Compare;
using GridArtifacts.Core.Sharing;
using GridArtifacts.Core.Stores;
using GridArtifacts.Model;
using Xunit;

namespace GridArtifacts.Tests;

/// <summary>
/// Compare-GridExperiment's semantics (<see cref="ExperimentComparer"/>) on known sets of artifacts,
/// parameters and metrics, on both stores: each expected row is spelled out, in order.
/// </summary>
public abstract class CompareTests : IDisposable
{
    protected readonly TempDir Temp = new();
    protected abstract IObjectStore NewStore();
    public void Dispose() => Temp.Dispose();

    // One writer per run here, so no claim needs a second to settle (as on a store without exclusive create).
    private GridCatalog NewCatalog() => new(NewStore()) { ClaimSettle = TimeSpan.FromMilliseconds(50) };

    private static readonly byte[] Same = Encoding.UTF8.GetBytes("the same bytes");

    /// <summary>Imports <paramref name="files"/> as one experiment, then writes its metrics into its record as its writer would.</summary>
    private async Task Seed(GridCatalog catalog, string run, string experiment, Dictionary<string, byte[]> files,
        Dictionary<string, string>? parameters = null, Dictionary<string, double>? metrics = null)
    {
        var folder = Guid.NewGuid().ToString("N");
        foreach (var (path, data) in files) Temp.WriteFile($"src/{folder}/{path}", data);
        var src = Temp.Sub("src", folder);
        await new ArtifactImporter(catalog).ImportAsync(new ImportRequest
        {
            Run = run, Experiment = experiment, Parameters = parameters ?? new(),
            Files = ArtifactImporter.ListFiles(src, new ModuleFolders(catalog.Store), _ => { }),
        }, e => throw e, _ => { }, default);
        if (metrics is null) return;
        var record = (await catalog.Runs.ReadExperimentRecordAsync(run, experiment, default))!;
        record.Metrics = new MetricsRecord { Source = "metrics.csv", Rows = 3, Values = metrics };
        await catalog.Writer.WriteExperimentRecordAsync(record, default);
    }

    private static async Task<(List<string> Rows, ComparisonResult Result, IReadOnlyList<GridException> Errors)> Compare(
        CompareSide a, CompareSide b, bool includeEqual = false, params GridComparisonKind[] kinds)
    {
        var comparer = new ExperimentComparer(includeEqual, kinds);
        ExperimentComparer.CheckPair(a, b);
        var x = await comparer.ReadAsync(a, default);
        var y = await comparer.ReadAsync(b, default);
        var result = comparer.Compare(x, y);
        Assert.All(result.Rows, r => Assert.Equal((a.Id, b.Id), (r.Reference, r.Difference)));
        return (result.Rows.Select(Show).ToList(), result, x.Errors.Concat(y.Errors).ToList());
    }

    /// <summary>One row as text: kind, experiment, name, side, values, sizes, delta, whether hashes were compared.</summary>
    private static string Show(GridComparison r) => string.Create(CultureInfo.InvariantCulture,
        $"{r.Kind} {r.Experiment ?? "-"} {r.Name} {r.SideIndicator} {r.ReferenceValue ?? "-"}/{r.DifferenceValue ?? "-"} " +
        $"{(object?)r.ReferenceSize ?? "-"}/{(object?)r.DifferenceSize ?? "-"} d={(object?)r.Delta ?? "-"} h={(object?)r.HashCompared ?? "-"}");

    private async Task<GridCatalog> SweepAsync()
    {
        var catalog = NewCatalog();
        await Seed(catalog, "sweep", "exp0", new()
        {
            ["same.txt"] = Same,
            ["model.bin"] = Encoding.UTF8.GetBytes("aaaa"),
            ["grown.log"] = Encoding.UTF8.GetBytes("a"),
            ["plots/only-a.png"] = Encoding.UTF8.GetBytes("only in a"),
        }, new() { ["lr"] = "0.1", ["batch"] = "8", ["opt"] = "adam" }, new() { ["loss"] = 0.5, ["acc"] = 0.75, ["epoch"] = 3 });
        await Seed(catalog, "sweep", "exp1", new()
        {
            ["same.txt"] = Same,
            ["model.bin"] = Encoding.UTF8.GetBytes("bbbb"),
            ["grown.log"] = Encoding.UTF8.GetBytes("ab"),
            ["plots/only-b.png"] = Encoding.UTF8.GetBytes("only in b!"),
        }, new() { ["lr"] = "0.10", ["batch"] = "8", ["sched"] = "cos" }, new() { ["LOSS"] = 0.25, ["acc"] = 0.75, ["f1"] = 0.5 });
        return catalog;
    }

    [Fact]
    public async Task Two_experiments_differ_in_exactly_the_known_artifacts_parameters_and_metrics()
    {
        var catalog = await SweepAsync();
        var (rows, result, errors) = await Compare(new(catalog, "sweep", "exp0"), new(catalog, "sweep", "exp1"));
        Assert.Empty(errors);
        Assert.Equal(new[]
        {
            "Parameter - lr <> 0.1/0.10 -/- d=- h=-",          // text, not numbers: 0.1 is not 0.10
            "Parameter - opt <= adam/- -/- d=- h=-",
            "Parameter - sched => -/cos -/- d=- h=-",
            "Metric - epoch <= 3/- -/- d=- h=-",
            "Metric - f1 => -/0.5 -/- d=- h=-",
            "Metric - loss <> 0.5/0.25 -/- d=-0.25 h=-",        // metric names match without case
            "Artifact - grown.log <> -/- 1/2 d=- h=True",       // changed by size
            "Artifact - model.bin <> -/- 4/4 d=- h=True",       // same size, another hash
            "Artifact - plots/only-a.png <= -/- 9/- d=- h=-",
            "Artifact - plots/only-b.png => -/- -/10 d=- h=-",
        }, rows);
        Assert.Empty(result.ComparedBySize);
        var model = result.Rows.Single(r => r.Name == "model.bin");
        Assert.Equal((TestBytes.Sha256(Encoding.UTF8.GetBytes("aaaa")), TestBytes.Sha256(Encoding.UTF8.GetBytes("bbbb"))), (model.ReferenceSha256, model.DifferenceSha256));
        Assert.Null(result.Rows.Single(r => r.Name == "plots/only-a.png").DifferenceSha256);
    }

    [Fact]
    public async Task IncludeEqual_adds_the_equal_ones_and_Kind_keeps_only_its_rows()
    {
        var catalog = await SweepAsync();
        CompareSide exp0 = new(catalog, "sweep", "exp0"), exp1 = new(catalog, "sweep", "exp1");
        var (rows, _, _) = await Compare(exp0, exp1, includeEqual: true);
        Assert.Equal(13, rows.Count);
        Assert.Equal(new[]
        {
            "Parameter - batch == 8/8 -/- d=- h=-",
            "Metric - acc == 0.75/0.75 -/- d=0 h=-",
            "Artifact - same.txt == -/- 14/14 d=- h=True",
        }, rows.Where(r => r.Contains(" == ")));

        Assert.Equal(new[] { "Metric - acc == 0.75/0.75 -/- d=0 h=-", "Metric - epoch <= 3/- -/- d=- h=-", "Metric - f1 => -/0.5 -/- d=- h=-", "Metric - loss <> 0.5/0.25 -/- d=-0.25 h=-" },
            (await Compare(exp0, exp1, true, GridComparisonKind.Metric)).Rows);
        Assert.All((await Compare(exp0, exp1, false, GridComparisonKind.Parameter, GridComparisonKind.Artifact)).Rows,
            r => Assert.True(r.StartsWith("Parameter ") || r.StartsWith("Artifact ")));

        // An experiment against itself: nothing differs, and everything is equal.
        Assert.Empty((await Compare(exp0, exp0)).Rows);
        Assert.All((await Compare(exp0, exp0, includeEqual: true)).Rows, r => Assert.Contains(" == ", r));
    }

    [Fact]
    public async Task Two_runs_compare_their_parameters_then_their_experiments_by_name_and_an_unpaired_one_is_one_row()
    {
        var catalog = NewCatalog();
        // Each run's record takes the parameters of its first import.
        await Seed(catalog, "ref-run", "exp0", new() { ["model.bin"] = Same }, new() { ["lr"] = "0.1" });
        await Seed(catalog, "ref-run", "exp1", new() { ["model.bin"] = Same }, new() { ["lr"] = "0.2" });
        await Seed(catalog, "ref-run", "exp2", new() { ["model.bin"] = Same });
        await Seed(catalog, "dif-run", "exp0", new() { ["model.bin"] = Encoding.UTF8.GetBytes("changed") }, new() { ["lr"] = "0.3" });
        await Seed(catalog, "dif-run", "exp1", new() { ["model.bin"] = Same }, new() { ["lr"] = "0.2" });
        await Seed(catalog, "dif-run", "exp10", new() { ["model.bin"] = Same });

        var (rows, _, errors) = await Compare(new(catalog, "ref-run", null), new(catalog, "dif-run", null));
        Assert.Empty(errors);
        Assert.Equal(new[]
        {
            "Experiment exp10 exp10 => -/- -/- d=- h=-",
            "Experiment exp2 exp2 <= -/- -/- d=- h=-",
            "Parameter - lr <> 0.1/0.3 -/- d=- h=-",            // the runs' own
            "Parameter exp0 lr <> 0.1/0.3 -/- d=- h=-",
            "Artifact exp0 model.bin <> -/- 14/7 d=- h=True",
        }, rows);

        var (all, _, _) = await Compare(new(catalog, "ref-run", null), new(catalog, "dif-run", null), includeEqual: true);
        Assert.Equal(new[]
        {
            "Experiment exp0 exp0 == -/- -/- d=- h=-",
            "Experiment exp1 exp1 == -/- -/- d=- h=-",
            "Experiment exp10 exp10 => -/- -/- d=- h=-",
            "Experiment exp2 exp2 <= -/- -/- d=- h=-",
            "Parameter - lr <> 0.1/0.3 -/- d=- h=-",
            "Parameter exp0 lr <> 0.1/0.3 -/- d=- h=-",
            "Parameter exp1 lr == 0.2/0.2 -/- d=- h=-",
            "Artifact exp0 model.bin <> -/- 14/7 d=- h=True",
            "Artifact exp1 model.bin == -/- 14/14 d=- h=True",
        }, all);
        Assert.Equal(new[] { "Experiment exp10 exp10 => -/- -/- d=- h=-", "Experiment exp2 exp2 <= -/- -/- d=- h=-" },
            (await Compare(new(catalog, "ref-run", null), new(catalog, "dif-run", null), false, GridComparisonKind.Experiment)).Rows);
    }

    [Fact]
    public async Task An_artifact_without_a_recorded_hash_is_compared_by_size_with_HashCompared_false()
    {
        var catalog = await SweepAsync();
        // Written beside the manifest, which has no entry (no hash) for them.
        foreach (var (exp, content) in new[] { ("exp0", "1234"), ("exp1", "5678") })
        {
            await catalog.Store.PutAsync(StoreLayout.ArtifactKey("sweep", exp, "unrecorded.bin"), Encoding.UTF8.GetBytes(content), default);
            await catalog.Store.PutAsync(StoreLayout.ArtifactKey("sweep", exp, "unrecorded.log"), Encoding.UTF8.GetBytes(exp == "exp0" ? "short" : "longer"), default);
        }
        CompareSide exp0 = new(catalog, "sweep", "exp0"), exp1 = new(catalog, "sweep", "exp1");
        var (rows, result, _) = await Compare(exp0, exp1, false, GridComparisonKind.Artifact);
        // Same size: reads as equal (so no row), but it is named as compared by size only.
        Assert.DoesNotContain(rows, r => r.Contains("unrecorded.bin"));
        Assert.Contains("Artifact - unrecorded.log <> -/- 5/6 d=- h=False", rows);
        Assert.Equal(new[] { "sweep-exp0/unrecorded.bin", "sweep-exp0/unrecorded.log" }, result.ComparedBySize.Order(StringComparer.Ordinal));
        var (all, _, _) = await Compare(exp0, exp1, true, GridComparisonKind.Artifact);
        Assert.Contains("Artifact - unrecorded.bin == -/- 4/4 d=- h=False", all);
        Assert.Contains("Artifact - same.txt == -/- 14/14 d=- h=True", all);
    }

    [Fact]
    public async Task A_damaged_record_is_an_error_and_what_can_be_read_is_still_compared()
    {
        var catalog = await SweepAsync();
        await catalog.Store.PutAsync(StoreLayout.ManifestKey("sweep", "exp1"), Encoding.UTF8.GetBytes("{ not json"), default);
        var (rows, result, errors) = await Compare(new(catalog, "sweep", "exp0"), new(catalog, "sweep", "exp1"), false, GridComparisonKind.Artifact);
        Assert.Equal("DamagedRecord", Assert.Single(errors).ErrorId);
        // Without exp1's hashes, model.bin (same size) reads as equal and only the sizes tell.
        Assert.Equal(new[]
        {
            "Artifact - grown.log <> -/- 1/2 d=- h=False",
            "Artifact - plots/only-a.png <= -/- 9/- d=- h=-",
            "Artifact - plots/only-b.png => -/- -/10 d=- h=-",
        }, rows);
        Assert.Equal(3, result.ComparedBySize.Count);

        // A damaged experiment record: its parameters and metrics are not compared (nor reported as missing); its artifacts are.
        await catalog.Store.PutAsync(StoreLayout.ExperimentRecordKey("sweep", "exp0"), Encoding.UTF8.GetBytes("[]"), default);
        var (run, _, runErrors) = await Compare(new(catalog, "sweep", "exp0"), new(catalog, "sweep", "exp1"));
        Assert.Equal(new[] { "DamagedRecord", "DamagedRecord" }, runErrors.Select(e => e.ErrorId));
        Assert.All(run, r => Assert.StartsWith("Artifact ", r));
        Assert.Equal(3, run.Count);
    }

    [Fact]
    public async Task A_run_against_an_experiment_and_unknown_names_are_refused_with_their_ids()
    {
        var catalog = await SweepAsync();
        var comparer = new ExperimentComparer();
        var mismatch = Assert.Throws<GridException>(() => ExperimentComparer.CheckPair(new(catalog, "sweep", null), new(catalog, "sweep", "exp1")));
        Assert.Equal(("CompareMismatch", GridErrorKind.InvalidArgument), (mismatch.ErrorId, mismatch.Kind));
        Assert.Contains("'sweep-exp1'", mismatch.Message);
        Assert.Equal("ExperimentNotFound", (await Assert.ThrowsAsync<GridException>(() => comparer.ReadAsync(new(catalog, "sweep", "exp7"), default))).ErrorId);
        Assert.Equal("RunNotFound", (await Assert.ThrowsAsync<GridException>(() => comparer.ReadAsync(new(catalog, "no-run", "exp0"), default))).ErrorId);
        Assert.Equal("RunNotFound", (await Assert.ThrowsAsync<GridException>(() => comparer.ReadAsync(new(catalog, "no-run", null), default))).ErrorId);
    }

    [Fact]
    public async Task A_run_compares_equal_with_its_copy_in_a_folder_store()
    {
        var catalog = await SweepAsync();
        var copy = new GridCatalog(new FileSystemStore(Temp.Sub("copy-" + Guid.NewGuid().ToString("N"))));
        await new RunCopier(catalog, copy).CopyAsync("sweep", Temp.Sub("copy-temp"), e => throw e, default);
        var (rows, result, errors) = await Compare(new(catalog, "sweep", null), new(copy, "sweep", null));
        Assert.Empty(errors);
        Assert.Empty(rows);
        var (all, _, _) = await Compare(new(catalog, "sweep", null), new(copy, "sweep", null), includeEqual: true);
        Assert.All(all, r => Assert.Contains(" == ", r));
        Assert.Contains("Artifact exp1 model.bin == -/- 4/4 d=- h=True", all);
        Assert.Contains("Metric exp0 loss == 0.5/0.5 -/- d=0 h=-", all);
        Assert.Equal(2 + 3 + 3 + 3 + 3 + 3 + 4 + 4, all.Count); // experiments, the run's parameters, each experiment's parameters, metrics and artifacts
        Assert.Empty(result.ComparedBySize);

        // Overwritten in the copy behind its sealed manifest's back: the manifest's hash stands, and the sizes tell.
        await copy.Store.PutAsync(StoreLayout.ArtifactKey("sweep", "exp1", "same.txt"), Encoding.UTF8.GetBytes("other"), default);
        Assert.Equal(new[] { "Artifact exp1 same.txt <> -/- 14/5 d=- h=True" }, (await Compare(new(catalog, "sweep", null), new(copy, "sweep", null))).Rows);
    }
}

public sealed class FileSystemCompareTests : CompareTests
{
    protected override IObjectStore NewStore() => new FileSystemStore(Temp.Sub("store-" + Guid.NewGuid().ToString("N")));
}

[Collection(S3SecondLane.Name)]
public sealed class S3CompareTests : CompareTests
{
    private readonly S3ServerFixture _s3;
    private readonly string _bucket;
    public S3CompareTests(S3ServerFixture s3) { _s3 = s3; _bucket = s3.NewBucket(); }
    protected override IObjectStore NewStore() => new S3Store(_s3.StoreUri(_bucket, "compare/" + Guid.NewGuid().ToString("N")));
}
