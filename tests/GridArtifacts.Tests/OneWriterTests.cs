using System.Collections.Concurrent;
using Amazon.S3;
using Amazon.S3.Model;
using GridArtifacts.Core;
using GridArtifacts.Core.Capture;
using GridArtifacts.Core.Stores;
using GridArtifacts.Model;
using Xunit;

namespace GridArtifacts.Tests;

/// <summary>
/// Names are taken once and records have one writer, on both stores: a taken run name is refused
/// and the run is left as it was; of creators at one moment exactly one wins; an ended experiment is
/// never rewritten; new experiments still join an existing run; an import stores what it can read.
/// </summary>
public abstract class OneWriterTests : IDisposable
{
    protected readonly TempDir Temp = new();

    /// <summary>A fresh, empty store's catalog, with a short claim settle time for the store that needs one.</summary>
    protected abstract GridCatalog NewCatalog();

    public void Dispose() => Temp.Dispose();

    private string Folder(string name, int files, int seed)
    {
        var dir = Temp.Sub(name + "-" + Guid.NewGuid().ToString("N")[..8]);
        for (var i = 0; i < files; i++) Temp.WriteFile($"{Path.GetFileName(dir)}/sub{i % 2}/f{i}.bin", TestBytes.Random(1000 + i, seed + i));
        return dir;
    }

    protected static Task<GridExperiment> Import(GridCatalog catalog, string? run, string experiment, string folder) =>
        new ArtifactImporter(catalog).ImportAsync(new ImportRequest
        {
            Run = run, Experiment = experiment,
            Files = ArtifactImporter.ListFiles(folder, new ModuleFolders(catalog.Store), _ => { }),
        }, e => throw e, _ => { }, default);

    /// <summary>Every record of a run, byte for byte, and every artifact's recorded hash: what "nothing changed" compares.</summary>
    private static async Task<Dictionary<string, string>> Snapshot(GridCatalog catalog, string run)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        await foreach (var e in catalog.Store.ListAsync(StoreLayout.RunPrefix(run), recursive: true, default))
        {
            if (e.IsPrefix) continue;
            result[e.Key] = TestBytes.Sha256((await catalog.Store.TryReadAllBytesAsync(e.Key, default))!);
        }
        foreach (var exp in await catalog.Runs.ListExperimentNamesAsync(run, default))
        {
            foreach (var a in (await catalog.Artifacts.GetArtifactsAsync(run, exp, default)).Items) result["sha256 of " + a.Path] = a.Sha256 ?? "none";
        }
        return result;
    }

    [Fact]
    public async Task A_taken_run_name_is_refused_and_nothing_of_the_run_changes()
    {
        var catalog = NewCatalog();
        await Import(catalog, "taken", "exp0", Folder("first", 6, 1));
        var before = await Snapshot(catalog, "taken");
        Assert.Equal(6, (await catalog.Runs.GetExperimentAsync("taken", "exp0", default)).ArtifactCount);

        var ex = await Assert.ThrowsAsync<GridException>(() => catalog.Writer.CreateRunAsync(new RunRecord { Name = "taken", Created = DateTimeOffset.UtcNow }, default));
        Assert.Equal("RunExists", ex.ErrorId);
        Assert.Equal(GridErrorKind.AlreadyExists, ex.Kind);
        Assert.Contains("'taken'", ex.Message);
        Assert.Contains("-Name", ex.Message);

        Assert.Equal(before, await Snapshot(catalog, "taken"));
        var exp = await catalog.Runs.GetExperimentAsync("taken", "exp0", default);
        Assert.Equal(6, exp.ArtifactCount);
        Assert.All((await catalog.Artifacts.GetArtifactsAsync("taken", "exp0", default)).Items, a => Assert.NotNull(a.Sha256));
    }

    [Fact]
    public async Task Of_eight_creators_of_one_run_at_the_same_moment_exactly_one_wins()
    {
        var catalog = NewCatalog();
        using var start = new ManualResetEventSlim();
        var records = Enumerable.Range(0, 8).Select(i => new RunRecord { Name = "contested", Created = DateTimeOffset.UtcNow, Command = $"creator {i}" }).ToArray();
        var tasks = records.Select(r => Task.Run(async () => { start.Wait(); return await catalog.Writer.TryCreateRunAsync(r, default); })).ToArray();
        start.Set();
        var won = await Task.WhenAll(tasks);
        Assert.Equal(1, won.Count(w => w));
        var winner = records[Array.IndexOf(won, true)];
        var stored = await catalog.Runs.ReadRunRecordAsync("contested", default);
        Assert.Equal(winner.Claim, stored.Claim);
        Assert.Equal(winner.Command, stored.Command);
    }

    [Fact]
    public async Task Two_imports_into_one_new_experiment_at_once_end_with_exactly_one_importing()
    {
        var catalog = NewCatalog();
        var folders = new[] { Folder("a", 3, 10), Folder("b", 4, 20) };
        var results = await Task.WhenAll(folders.Select(f => Task.Run(async () =>
        {
            try { return (Exp: await Import(catalog, "race-import", "exp0", f), Error: (GridException?)null, Folder: f); }
            catch (GridException ex) { return (Exp: (GridExperiment?)null, Error: ex, Folder: f); }
        })));
        var won = Assert.Single(results, r => r.Error is null);
        var lost = Assert.Single(results, r => r.Error is not null);
        Assert.Contains(lost.Error!.ErrorId, new[] { "ExperimentAlreadyRunning", "ExperimentExists" });
        Assert.Equal(GridStatus.Succeeded, won.Exp!.Status);
        // What is stored is the winner's files, byte-exact, and none of the other's.
        var expected = Directory.EnumerateFiles(won.Folder, "*", SearchOption.AllDirectories)
            .ToDictionary(f => Path.GetRelativePath(won.Folder, f).Replace('\\', '/'), TestBytes.Sha256);
        var stored = (await catalog.Artifacts.GetArtifactsAsync("race-import", "exp0", default)).Items.ToDictionary(a => a.Path, a => a.Sha256!);
        Assert.Equal(expected, stored);
    }

    [Fact]
    public async Task An_ended_experiment_is_never_rewritten_by_an_agent_or_an_import()
    {
        var catalog = NewCatalog();
        await Import(catalog, "ended", "exp0", Folder("first", 3, 30));
        var before = await Snapshot(catalog, "ended");

        var again = await Assert.ThrowsAsync<GridException>(() => Import(catalog, "ended", "exp0", Folder("second", 2, 40)));
        Assert.Equal("ExperimentExists", again.ErrorId);
        Assert.Equal(GridErrorKind.AlreadyExists, again.Kind);
        Assert.Contains("ended-exp0", again.Message);

        var work = Temp.Sub("agent-work");
        Directory.CreateDirectory(work);
        var agent = new CaptureAgent(catalog, "ended", "exp0", new CaptureOptions
        {
            FileName = "bash", Arguments = new[] { "-c", "echo ran > ran.txt" }, WorkingDirectory = work, ClaimSettle = TimeSpan.FromMilliseconds(200),
        });
        var refused = await Assert.ThrowsAsync<GridException>(() => agent.RunAsync(default));
        Assert.Equal("ExperimentExists", refused.ErrorId);
        Assert.False(File.Exists(Path.Combine(work, "ran.txt"))); // the script never ran

        Assert.Equal(before, await Snapshot(catalog, "ended"));
    }

    [Fact]
    public async Task New_experiments_still_join_an_existing_run_from_an_agent_and_an_import()
    {
        var catalog = NewCatalog();
        await Import(catalog, "growing", "exp0", Folder("first", 2, 50));
        var runRecord = await catalog.Store.TryReadAllBytesAsync(StoreLayout.RunRecordKey("growing"), default);

        var work = Temp.Sub("exp7-work");
        Directory.CreateDirectory(work);
        var agent = new CaptureAgent(catalog, "growing", "exp7", new CaptureOptions
        {
            FileName = "bash", Arguments = new[] { "-c", "echo seven > seven.txt" }, WorkingDirectory = work, ClaimSettle = TimeSpan.FromMilliseconds(200),
        });
        Assert.Equal(0, await agent.RunAsync(default));
        var imported = await Import(catalog, "growing", "exp1", Folder("third", 3, 60));
        Assert.Equal(3, imported.ArtifactCount);

        var run = await catalog.Runs.GetRunAsync("growing", default);
        Assert.Equal(new[] { "exp0", "exp1", "exp7" }, run.Experiments);
        Assert.Equal(GridStatus.Succeeded, run.Status);
        Assert.Equal(runRecord, await catalog.Store.TryReadAllBytesAsync(StoreLayout.RunRecordKey("growing"), default));
        var seven = Assert.Single((await catalog.Artifacts.GetArtifactsAsync("growing", "exp7", default)).Items);
        Assert.Equal(TestBytes.Sha256(Path.Combine(work, "seven.txt")), seven.Sha256);
    }

    [Fact]
    public async Task An_import_stores_every_file_it_can_read_and_names_the_one_it_cannot()
    {
        var catalog = NewCatalog();
        var folder = Folder("partly", 3, 70);
        File.CreateSymbolicLink(Path.Combine(folder, "dangling.bin"), Path.Combine(folder, "no-such-target"));
        var errors = new ConcurrentBag<GridException>();
        var exp = await new ArtifactImporter(catalog).ImportAsync(new ImportRequest
        {
            Run = "partly", Experiment = "exp0",
            Files = ArtifactImporter.ListFiles(folder, new ModuleFolders(catalog.Store), _ => { }),
        }, errors.Add, _ => { }, default);

        var error = Assert.Single(errors);
        Assert.Contains("dangling.bin", error.Message);
        Assert.Equal(GridStatus.Failed, exp.Status);
        Assert.Equal(3, exp.ArtifactCount);
        var manifest = await catalog.Manifests.ReadManifestAsync("partly", "exp0", default);
        Assert.True(manifest!.Sealed);
        var expected = Directory.EnumerateFiles(folder, "f*.bin", SearchOption.AllDirectories)
            .ToDictionary(f => Path.GetRelativePath(folder, f).Replace('\\', '/'), TestBytes.Sha256);
        Assert.Equal(expected, manifest.Artifacts.ToDictionary(a => a.Path, a => a.Sha256));
        Assert.Equal(expected, (await catalog.Artifacts.GetArtifactsAsync("partly", "exp0", default)).Items.ToDictionary(a => a.Path, a => a.Sha256!));
    }

    [Fact]
    public async Task A_queued_experiment_stopped_before_its_agent_starts_never_runs_and_once_removed_is_not_created_again()
    {
        var catalog = NewCatalog();
        var now = DateTimeOffset.UtcNow;
        await catalog.Writer.CreateRunAsync(new RunRecord { Name = "queued", Created = now }, default);
        foreach (var exp in new[] { "exp0", "exp1" })
        {
            await catalog.Writer.WriteExperimentRecordAsync(new ExperimentRecord { Run = "queued", Experiment = exp, Status = GridStatus.Queued, Created = now }, default);
        }
        Assert.True(await catalog.Claims.StopQueuedAsync("queued", "exp0", default));
        Assert.Equal(GridStatus.Stopped, (await catalog.Runs.GetExperimentAsync("queued", "exp0", default)).Status);

        CaptureAgent Agent(string exp, string work) => new(catalog, "queued", exp, new CaptureOptions
        {
            FileName = "bash", Arguments = new[] { "-c", "echo ran > ran.txt" }, WorkingDirectory = work, Queued = true, ClaimSettle = TimeSpan.FromMilliseconds(200),
        });
        var work0 = Temp.Sub("q0");
        var stopped = await Assert.ThrowsAsync<GridException>(() => Agent("exp0", work0).RunAsync(default));
        Assert.Equal("ExperimentExists", stopped.ErrorId);
        Assert.False(File.Exists(Path.Combine(work0, "ran.txt")));

        await catalog.Remover.RemoveRunAsync("queued", default);
        var work1 = Temp.Sub("q1");
        var removed = await Assert.ThrowsAsync<GridException>(() => Agent("exp1", work1).RunAsync(default));
        Assert.Equal("ExperimentRemoved", removed.ErrorId);
        Assert.False(File.Exists(Path.Combine(work1, "ran.txt")));
        Assert.Empty(await catalog.Runs.ListRunNamesAsync(default)); // nothing of the run came back
        await foreach (var e in catalog.Store.ListAsync(StoreLayout.RunPrefix("queued"), recursive: true, default)) Assert.Fail($"'{e.Key}' came back");
    }

    [Fact]
    public async Task A_queued_experiment_its_scheduler_ended_shows_why_and_of_it_and_an_agent_starting_at_once_exactly_one_goes_on()
    {
        var catalog = NewCatalog();
        var now = DateTimeOffset.UtcNow;
        await catalog.Writer.CreateRunAsync(new RunRecord { Name = "cluster", Created = now }, default);
        await catalog.Writer.QueueExperimentsAsync("cluster", Enumerable.Range(0, 3).Select(_ => (new Dictionary<string, string>(), "train")).ToList(), now, default);
        await catalog.Writer.SetRunJobAsync("cluster", new RunJob(GridScheduler.Slurm, "grid", "42"), default);
        // The job shows on the run, read alone or listed, and on its labels.
        var run = await catalog.Runs.GetRunAsync("cluster", default);
        Assert.Equal((GridScheduler.Slurm, "42", "grid"), (run.Scheduler, run.JobId, run.Cluster));
        Assert.Equal(new[] { "exp0", "exp1", "exp2" }, run.QueuedExperiments);
        Assert.Equal("42", Assert.Single((await catalog.Runs.ListRunsAsync(default)).Items).JobId);
        Assert.Equal(new RunJob(GridScheduler.Slurm, "grid", "42"), (await catalog.Runs.GetLabelsAsync(new[] { "cluster" }, default))["cluster"].Job);

        const string why = "Slurm task 42_0 ended FAILED (exit 127) before its agent started";
        Assert.True(await catalog.Claims.EndQueuedAsync("cluster", "exp0", GridStatus.Failed, why, 127, default));
        var ended = await catalog.Runs.GetExperimentAsync("cluster", "exp0", default);
        Assert.Equal((GridStatus.Failed, 127, why), (ended.Status, ended.ExitCode!.Value, ended.Reason));
        Assert.NotNull(ended.Finished);
        Assert.Equal(new[] { "exp1", "exp2" }, (await catalog.Runs.GetRunAsync("cluster", default)).QueuedExperiments);
        // Not queued any more: a second reader ending it changes nothing.
        Assert.False(await catalog.Claims.EndQueuedAsync("cluster", "exp0", GridStatus.Stopped, "again", null, default));
        Assert.Equal(why, (await catalog.Runs.GetExperimentAsync("cluster", "exp0", default)).Reason);

        // An agent and a reader that ends it, at the same moment: exactly one of them holds it. On the
        // folder store only: s3rver replaces an object in place, so two PUTs of one key at once can
        // leave its body and its checksum from different writers, unreadable until it is written
        // again (seen here as "Expected hash not equal to calculated hash" through every retry);
        // S3 itself replaces objects whole.
        for (var i = 1; i <= 2 && catalog.Store is FileSystemStore; i++)
        {
            var exp = GridNames.ExperimentName(i);
            var work = Temp.Sub("race" + i);
            var agent = new CaptureAgent(catalog, "cluster", exp, new CaptureOptions
            {
                FileName = "bash", Arguments = new[] { "-c", "echo ran > ran.txt" }, WorkingDirectory = work, Queued = true, ClaimSettle = TimeSpan.FromMilliseconds(300),
            });
            var ran = Task.Run(() => agent.RunAsync(default));
            var end = Task.Run(() => catalog.Claims.EndQueuedAsync("cluster", exp, GridStatus.Failed, "ended by the reader", null, default));
            var endedIt = await end;
            try { await ran; } catch (GridException ex) when (ex.ErrorId is "ExperimentExists" or "ExperimentAlreadyRunning") { }
            var after = await catalog.Runs.GetExperimentAsync("cluster", exp, default);
            if (endedIt)
            {
                Assert.Equal((GridStatus.Failed, "ended by the reader"), (after.Status, after.Reason));
                Assert.False(File.Exists(Path.Combine(work, "ran.txt")));
            }
            else
            {
                Assert.Equal(GridStatus.Succeeded, after.Status);
                Assert.Null(after.Reason);
                Assert.True(File.Exists(Path.Combine(work, "ran.txt")));
            }
        }

        // The job's key goes with the run.
        await catalog.Remover.RemoveRunAsync("cluster", default);
        await foreach (var e in catalog.Store.ListAsync(CatalogIndex.RunIndexPrefix("cluster"), recursive: true, default)) Assert.Fail($"'{e.Key}' is left");
    }
}

public sealed class FolderOneWriterTests : OneWriterTests
{
    protected override GridCatalog NewCatalog() => new(new FileSystemStore(Temp.Sub("store-" + Guid.NewGuid().ToString("N"))));

    [Fact]
    public async Task The_folder_store_creates_exclusively_without_a_settle_time()
    {
        var catalog = NewCatalog();
        Assert.True(await ((IConditionalCreate)catalog.Store).CreatesExclusivelyAsync(default));
        var results = await Task.WhenAll(Enumerable.Range(0, 32).Select(i => Task.Run(() =>
            ((IConditionalCreate)catalog.Store).TryCreateAsync("runs/x/run.json", new[] { (byte)i }, default))));
        Assert.Equal(1, results.Count(r => r));
        var stored = (await catalog.Store.TryReadAllBytesAsync("runs/x/run.json", default))!;
        Assert.Equal(Array.IndexOf(results, true), stored.Single());
        Assert.Empty(Directory.EnumerateFiles(Path.Combine(catalog.Location, ".tmp"))); // no temporary file left by the losers
    }

    [Fact]
    public async Task Of_eight_creators_exactly_one_wins_in_each_of_300_rounds()
    {
        // A race lost once in many: a first version that moved without replacing through File.Move,
        // which checks and then renames, let up to five of eight win now and then.
        var failures = new List<string>();
        for (var round = 0; round < 300; round++)
        {
            var catalog = new GridCatalog(new FileSystemStore(Temp.Sub("rounds", round.ToString(System.Globalization.CultureInfo.InvariantCulture))));
            using var start = new ManualResetEventSlim();
            var tasks = Enumerable.Range(0, 8).Select(i => Task.Run(async () =>
            {
                start.Wait();
                return await catalog.Writer.TryCreateRunAsync(new RunRecord { Name = "contested", Command = $"creator {i}" }, default);
            })).ToArray();
            start.Set();
            var won = await Task.WhenAll(tasks);
            if (won.Count(w => w) != 1) failures.Add($"round {round}: {won.Count(w => w)} won");
        }
        Assert.Empty(failures);
    }

    [Fact]
    public async Task An_import_of_a_folder_that_holds_the_store_skips_the_store_and_says_so()
    {
        var src = Temp.Sub("project");
        Temp.WriteFile("project/results/metrics.csv", "epoch,loss\n1,0.5\n"u8.ToArray());
        var catalog = new GridCatalog(new FileSystemStore(Path.Combine(src, "store")));
        await Import(catalog, "first", "exp0", Temp.Sub("project", "results")); // the store now has records inside src
        var warnings = new List<string>();
        var files = ArtifactImporter.ListFiles(src, new ModuleFolders(catalog.Store), warnings.Add);
        Assert.Equal(new[] { "results/metrics.csv" }, files.Select(f => f.Path));
        Assert.Contains(Path.Combine(src, "store"), Assert.Single(warnings));

        var inside = Assert.Throws<GridException>(() => ArtifactImporter.ListFiles(Path.Combine(src, "store", "runs"), new ModuleFolders(catalog.Store), _ => { }));
        Assert.Equal("SourceInStore", inside.ErrorId);
    }
}

[Collection(S3Collection.Name)]
public sealed class S3OneWriterTests : OneWriterTests
{
    private readonly S3ServerFixture _s3;
    private readonly string _bucket;

    public S3OneWriterTests(S3ServerFixture s3)
    {
        _s3 = s3;
        _bucket = s3.NewBucket();
    }

    protected override GridCatalog NewCatalog() =>
        new(new S3Store(_s3.StoreUri(_bucket, "one-writer/" + Guid.NewGuid().ToString("N")))) { ClaimSettle = TimeSpan.FromMilliseconds(300) };

    /// <summary>What the server does with a PUT of an existing key under <c>If-None-Match: *</c>, asked with the test's own client.</summary>
    private async Task<bool> ServerRefusesConditionalOverwrite()
    {
        var key = "direct/" + Guid.NewGuid().ToString("N");
        await _s3.Client.PutObjectAsync(new PutObjectRequest { BucketName = _bucket, Key = key, ContentBody = "old", UseChunkEncoding = false });
        try
        {
            await _s3.Client.PutObjectAsync(new PutObjectRequest { BucketName = _bucket, Key = key, ContentBody = "new", UseChunkEncoding = false, IfNoneMatch = "*" });
            return false; // ignored: replaced (s3rver 3.7.1)
        }
        catch (AmazonS3Exception ex) when (ex.StatusCode == System.Net.HttpStatusCode.PreconditionFailed)
        {
            return true; // refused, as AWS S3 and Ceph's RADOS Gateway do
        }
    }

    [Fact]
    public async Task The_store_finds_what_the_server_does_with_If_None_Match_and_creation_follows_it()
    {
        var honours = await ServerRefusesConditionalOverwrite();
        var store = (S3Store)NewCatalog().Store;
        Assert.Equal(honours, await store.CreatesExclusivelyAsync(default));
        // The conditional PUT of a key that exists: refused and kept where the server honours the
        // condition, replaced where it ignores it (then creation claims and reads back instead).
        await store.PutAsync("k", "old"u8.ToArray(), default);
        Assert.Equal(!honours, await store.TryCreateAsync("k", "new"u8.ToArray(), default));
        Assert.Equal(honours ? "old"u8.ToArray() : "new"u8.ToArray(), await store.TryReadAllBytesAsync("k", default));
        Assert.True(await store.TryCreateAsync("fresh", "first"u8.ToArray(), default));
        Assert.Equal("first"u8.ToArray(), await store.TryReadAllBytesAsync("fresh", default));
    }

    [Fact]
    public async Task Where_the_server_honours_If_None_Match_creation_is_conditional_and_exactly_one_of_eight_wins()
    {
        // A server that honours the condition (RADOS Gateway, AWS) answers it itself; for one that
        // ignores it (s3rver), the proxy answers as AWS does. Either way the proxy counts the 412s.
        var serverHonours = await new S3Store(_s3.StoreUri(_bucket, "direct")).CreatesExclusivelyAsync(default);
        using var proxy = new FaultProxy(_s3.Endpoint) { HonourIfNoneMatch = !serverHonours };
        var location = _s3.StoreUri(_bucket, "conditional/" + Guid.NewGuid().ToString("N")).Replace(Uri.EscapeDataString(_s3.Endpoint), Uri.EscapeDataString(proxy.Endpoint));
        // A settle time far longer than the test: were the fallback used, the test would take minutes.
        var catalog = new GridCatalog(new S3Store(location)) { ClaimSettle = TimeSpan.FromMinutes(5) };
        Assert.True(await ((IConditionalCreate)catalog.Store).CreatesExclusivelyAsync(default));

        using var start = new ManualResetEventSlim();
        var records = Enumerable.Range(0, 8).Select(i => new RunRecord { Name = "contested", Created = DateTimeOffset.UtcNow, Command = $"creator {i}" }).ToArray();
        var tasks = records.Select(r => Task.Run(async () => { start.Wait(); return await catalog.Writer.TryCreateRunAsync(r, default); })).ToArray();
        start.Set();
        var won = await Task.WhenAll(tasks).WaitAsync(TimeSpan.FromSeconds(60));
        Assert.Equal(1, won.Count(w => w));
        Assert.Equal(records[Array.IndexOf(won, true)].Claim, (await catalog.Runs.ReadRunRecordAsync("contested", default)).Claim);
        Assert.True(proxy.ConditionalRefusals >= 7, $"{proxy.ConditionalRefusals} conditional PUTs refused"); // the probe's refusal, and each loser's
        if (serverHonours) Assert.Equal(0, proxy.EmulatedRefusals); // every refusal was the server's own
        var ex = await Assert.ThrowsAsync<GridException>(() => catalog.Writer.CreateRunAsync(new RunRecord { Name = "contested" }, default));
        Assert.Equal("RunExists", ex.ErrorId);
    }
}
