using System.Text;
using GridArtifacts.Core;
using GridArtifacts.Core.Capture;
using GridArtifacts.Core.Stores;
using GridArtifacts.Model;
using Xunit;

namespace GridArtifacts.Tests;

/// <summary>
/// Metrics as the capture agent and Import record them, read from what scripts write (a Lightning
/// metrics.csv, a metrics.json), on both stores: live while the script runs, final at the seal, and a
/// malformed file costing a warning and nothing else.
/// </summary>
public abstract class MetricsCaptureTests : IDisposable
{
    protected readonly TempDir Temp = new();
    protected abstract IObjectStore NewStore();
    public void Dispose() => Temp.Dispose();

    // One writer per run here, so no claim needs a second to settle (as on a store without exclusive create).
    private GridCatalog NewCatalog() => new(NewStore()) { ClaimSettle = TimeSpan.FromMilliseconds(50) };

    private CaptureAgent Agent(GridCatalog catalog, string run, string work, string script, string? done = null) => new(catalog, run, "exp0", new CaptureOptions
    {
        FileName = "bash",
        Arguments = new[] { "-c", script },
        WorkingDirectory = work,
        Environment = new Dictionary<string, string> { ["DONE"] = done ?? "" },
        SettleTime = TimeSpan.FromMilliseconds(200),
        RescanInterval = TimeSpan.FromMilliseconds(100),
        HeartbeatInterval = TimeSpan.FromMilliseconds(300),
        ClaimSettle = TimeSpan.FromMilliseconds(50),
    });

    private static void HasMetrics(GridExperiment exp, string source, params (string Name, double Value)[] expected)
    {
        Assert.Equal(source, exp.MetricsSource);
        Assert.Equal(expected.OrderBy(e => e.Name, StringComparer.Ordinal).ToArray(),
            exp.Metrics.Select(kv => (kv.Key, kv.Value)).OrderBy(e => e.Key, StringComparer.Ordinal).ToArray());
    }

    [Fact]
    public async Task The_agent_shows_metrics_live_while_the_script_runs_and_the_final_ones_at_the_seal()
    {
        var catalog = NewCatalog();
        var work = Temp.Sub("work-live");
        var done = Temp.Sub("done-" + Guid.NewGuid().ToString("N"));
        // The first epoch, then a wait for the test to have seen it in the record (or exit 3 after 30 s);
        // then the second epoch, and a second fit (version_1) that is the newest file.
        var agent = Agent(catalog, "live-run", work, """
            mkdir -p lightning_logs/version_0 lightning_logs/version_1
            printf 'epoch,step,train_loss,val_loss\r\n0,9,0.9,\r\n0,9,,0.8\r\n' > lightning_logs/version_0/metrics.csv
            for i in $(seq 1 300); do [ -e "$DONE" ] && break; sleep 0.1; done
            [ -e "$DONE" ] || exit 3
            printf '1,19,0.5,\r\n1,19,,0.4\r\n1,29,0.3,\r\n' >> lightning_logs/version_0/metrics.csv
            sleep 0.3
            printf 'epoch,step,train_loss,val_loss\r\n0,9,0.7,\r\n0,9,,0.2\r\n0,15,0.1,\r\n' > lightning_logs/version_1/metrics.csv
            """, done);
        var warnings = new List<string>();
        agent.Warning += w => { lock (warnings) warnings.Add(w); };
        var running = agent.RunAsync(default);

        GridExperiment? live = null;
        var deadline = DateTime.UtcNow.AddSeconds(25);
        while (!running.IsCompleted && DateTime.UtcNow < deadline)
        {
            try
            {
                var exp = await catalog.Runs.GetExperimentAsync("live-run", "exp0", default);
                if (exp.Metrics.ContainsKey("val_loss")) { live = exp; break; }
            }
            catch (GridException ex) when (ex.Kind == GridErrorKind.NotFound) { } // not created yet
            await Task.Delay(100);
        }
        File.WriteAllText(done, "");
        Assert.NotNull(live);
        Assert.Equal(GridStatus.Running, live.Status); // seen before the seal, as the script sleeps
        HasMetrics(live, "lightning_logs/version_0/metrics.csv", ("epoch", 0), ("step", 9), ("train_loss", 0.9), ("val_loss", 0.8));

        Assert.Equal(0, await running);
        Assert.Empty(warnings);
        var final = await NewCatalogOn(catalog).Runs.GetExperimentAsync("live-run", "exp0", default);
        Assert.Equal(GridStatus.Succeeded, final.Status);
        HasMetrics(final, "lightning_logs/version_1/metrics.csv", ("epoch", 0), ("step", 15), ("train_loss", 0.1), ("val_loss", 0.2));
        var record = (await catalog.Runs.ReadExperimentRecordAsync("live-run", "exp0", default))!;
        Assert.Equal(3, record.Metrics!.Rows);
        Assert.Null(record.Metrics.Problem);
        var stored = await TestStore.StoredHashes(catalog, "live-run");
        Assert.Equal(TestStore.LocalHashes(work), stored);
    }

    /// <summary>A second catalog on the same store: what any other reader sees.</summary>
    private static GridCatalog NewCatalogOn(GridCatalog catalog) => new(catalog.Store);

    [Fact]
    public async Task A_malformed_csv_under_the_agent_is_one_warning_no_metrics_and_every_artifact_byte_exact()
    {
        var catalog = NewCatalog();
        var work = Temp.Sub("work-bad");
        var agent = Agent(catalog, "bad-run", work, """
            mkdir -p lightning_logs/version_0 ckpt
            head -c 200000 /dev/urandom > ckpt/last.ckpt
            printf 'epoch,val_loss\n0,0.5\n1,"0.4\n' > lightning_logs/version_0/metrics.csv
            sleep 1
            """);
        var warnings = new List<string>();
        agent.Warning += w => { lock (warnings) warnings.Add(w); };
        Assert.Equal(0, await agent.RunAsync(default));

        var warning = Assert.Single(warnings);
        Assert.Contains("'lightning_logs/version_0/metrics.csv' gives no metrics: line 3: a quoted field is not closed", warning);
        var exp = await catalog.Runs.GetExperimentAsync("bad-run", "exp0", default);
        Assert.Equal(GridStatus.Succeeded, exp.Status);
        Assert.Empty(exp.Metrics);
        Assert.Equal("lightning_logs/version_0/metrics.csv", exp.MetricsSource);
        Assert.Contains("not closed", (await catalog.Runs.ReadExperimentRecordAsync("bad-run", "exp0", default))!.Metrics!.Problem);
        Assert.Equal(TestStore.LocalHashes(work), await TestStore.StoredHashes(catalog, "bad-run"));
        Assert.True((await catalog.Manifests.ReadManifestAsync("bad-run", "exp0", default))!.Sealed);
    }

    [Fact]
    public async Task An_agent_that_takes_over_a_lost_experiment_keeps_its_earlier_metrics_until_it_reads_new_ones()
    {
        var catalog = NewCatalog();
        var old = DateTimeOffset.UtcNow.AddHours(-1);
        await catalog.Writer.TryCreateRunAsync(new RunRecord { Name = "lost-run", Created = old }, default, TimeSpan.Zero);
        await catalog.Writer.WriteExperimentRecordAsync(new ExperimentRecord
        {
            Run = "lost-run", Experiment = "exp0", Status = GridStatus.Running, Created = old, Started = old, Heartbeat = old, Agent = "agent-gone",
            Metrics = new MetricsRecord { Source = "metrics.json", Rows = 1, Values = { ["val_loss"] = 0.75 } },
        }, default);
        Assert.Equal(GridStatus.Lost, (await catalog.Runs.GetExperimentAsync("lost-run", "exp0", default)).Status);

        var agent = Agent(catalog, "lost-run", Temp.Sub("work-lost"), "echo resumed > resumed.txt");
        Assert.Equal(0, await agent.RunAsync(default));
        var exp = await catalog.Runs.GetExperimentAsync("lost-run", "exp0", default);
        Assert.Equal(GridStatus.Succeeded, exp.Status);
        HasMetrics(exp, "metrics.json", ("val_loss", 0.75));
    }

    private async Task<(GridExperiment Exp, List<string> Warnings, GridCatalog Catalog)> Import(string run, string folder)
    {
        var catalog = NewCatalog();
        var warnings = new List<string>();
        var exp = await new ArtifactImporter(catalog).ImportAsync(new ImportRequest
        {
            Run = run, Experiment = "exp0",
            Files = ArtifactImporter.ListFiles(folder, new ModuleFolders(catalog.Store), _ => { }),
        }, e => throw e, _ => { }, default, warnings.Add);
        return (exp, warnings, catalog);
    }

    private string Folder(string name, Dictionary<string, string> texts)
    {
        var dir = Temp.Sub(name);
        Temp.WriteFile($"{name}/checkpoints/epoch=2.ckpt", TestBytes.Random(150_000, name.Length));
        foreach (var (path, text) in texts) Temp.WriteFile($"{name}/{path}", Encoding.UTF8.GetBytes(text));
        return dir;
    }

    [Fact]
    public async Task Import_reads_the_newest_Lightning_csv()
    {
        var folder = Folder("import-csv", new()
        {
            ["lightning_logs/version_0/metrics.csv"] = "epoch,step,val_loss\n0,9,0.9\n",
            ["lightning_logs/version_1/metrics.csv"] = "epoch,step,train_loss,val_loss\n0,9,0.8,\n0,9,,0.6\n1,19,0.5,\n",
            ["metrics.csv.bak"] = "val_loss\n0.1\n",
        });
        // The same time on both, so the version number decides.
        var at = DateTime.UtcNow.AddMinutes(-5);
        foreach (var v in new[] { 0, 1 }) File.SetLastWriteTimeUtc(Path.Combine(folder, $"lightning_logs/version_{v}/metrics.csv"), at);
        var (exp, warnings, catalog) = await Import("import-csv-run", folder);
        Assert.Empty(warnings);
        Assert.Equal(GridStatus.Succeeded, exp.Status);
        HasMetrics(exp, "lightning_logs/version_1/metrics.csv", ("epoch", 1), ("step", 19), ("train_loss", 0.5), ("val_loss", 0.6));
        HasMetrics(await NewCatalogOn(catalog).Runs.GetExperimentAsync("import-csv-run", "exp0", default),
            "lightning_logs/version_1/metrics.csv", ("epoch", 1), ("step", 19), ("train_loss", 0.5), ("val_loss", 0.6));
        Assert.Equal(TestStore.LocalHashes(folder), await TestStore.StoredHashes(catalog, "import-csv-run"));
    }

    [Fact]
    public async Task Import_reads_a_metrics_json_before_any_csv()
    {
        var folder = Folder("import-json", new()
        {
            ["metrics.json"] = """{"val": {"loss": 0.125, "acc": 0.875}, "epoch": 7, "model": "resnet"}""",
            ["lightning_logs/version_0/metrics.csv"] = "val_loss\n0.9\n",
        });
        var (exp, warnings, catalog) = await Import("import-json-run", folder);
        Assert.Empty(warnings);
        HasMetrics(exp, "metrics.json", ("epoch", 7), ("val/acc", 0.875), ("val/loss", 0.125));
        Assert.Equal(0.125, exp.Metrics["VAL/LOSS"]);
        Assert.Equal(TestStore.LocalHashes(folder), await TestStore.StoredHashes(catalog, "import-json-run"));
    }

    [Fact]
    public async Task Import_of_a_malformed_csv_is_a_warning_no_metrics_and_every_artifact_byte_exact()
    {
        var folder = Folder("import-bad", new() { ["lightning_logs/version_0/metrics.csv"] = "epoch,val_loss\n0,0.5\n1,\"0.4\n" });
        var (exp, warnings, catalog) = await Import("import-bad-run", folder);
        Assert.Contains("'lightning_logs/version_0/metrics.csv' gives no metrics: line 3: a quoted field is not closed", Assert.Single(warnings));
        Assert.Equal(GridStatus.Succeeded, exp.Status);
        Assert.Equal(0, exp.ExitCode);
        Assert.Empty(exp.Metrics);
        Assert.Equal(2, exp.ArtifactCount);
        Assert.Equal(TestStore.LocalHashes(folder), await TestStore.StoredHashes(catalog, "import-bad-run"));
    }

    [Fact]
    public async Task Import_of_a_malformed_metrics_json_warns_and_reads_the_csv()
    {
        var folder = Folder("import-bad-json", new()
        {
            ["metrics.json"] = "[0.5]",
            ["lightning_logs/version_0/metrics.csv"] = "val_loss\n0.9\n0.3\n",
        });
        var (exp, warnings, catalog) = await Import("import-bad-json-run", folder);
        Assert.Contains("'metrics.json' gives no metrics: its root is an array", Assert.Single(warnings));
        HasMetrics(exp, "lightning_logs/version_0/metrics.csv", ("val_loss", 0.3));
        Assert.Equal(TestStore.LocalHashes(folder), await TestStore.StoredHashes(catalog, "import-bad-json-run"));
    }
}

public sealed class FileSystemMetricsCaptureTests : MetricsCaptureTests
{
    protected override IObjectStore NewStore() => new FileSystemStore(Temp.Sub("store-" + Guid.NewGuid().ToString("N")));
}

[Collection(S3SecondLane.Name)]
public sealed class S3MetricsCaptureTests : MetricsCaptureTests
{
    private readonly S3ServerFixture _s3;
    private readonly string _bucket;
    public S3MetricsCaptureTests(S3ServerFixture s3) { _s3 = s3; _bucket = s3.NewBucket(); }
    protected override IObjectStore NewStore() => new S3Store(_s3.StoreUri(_bucket, "metrics/" + Guid.NewGuid().ToString("N")));
}
