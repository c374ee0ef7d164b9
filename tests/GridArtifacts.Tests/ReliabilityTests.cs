using System.Collections.Concurrent;
using System.Diagnostics;
using GridArtifacts.Core;
using GridArtifacts.Core.Capture;
using GridArtifacts.Core.Stores;
using GridArtifacts.Core.Transfer;
using GridArtifacts.Model;
using Xunit;
using Xunit.Abstractions;

namespace GridArtifacts.Tests;

/// <summary>
/// Whole runs under faults: a store that fails a share of all requests, an outage in the middle of a
/// run, two agents for one experiment, readers beside a writer, two downloads into one folder, and
/// names a capture cannot store. Figures (requests, retries, bytes) go to the test output; the
/// assertions are that every byte arrives (SHA-256) and every attempt count stays within its bound.
/// </summary>
[Collection(S3Collection.Name)]
public sealed partial class ReliabilityTests : IDisposable
{
    private readonly S3ServerFixture _s3;
    private readonly ITestOutputHelper _output;
    private readonly TempDir _temp = new();

    public ReliabilityTests(S3ServerFixture s3, ITestOutputHelper output)
    {
        _s3 = s3;
        _output = output;
    }

    public void Dispose() => _temp.Dispose();

    private GridCatalog Catalog(string kind, TimeSpan? lostAfter = null) => kind == "s3"
        ? new GridCatalog(new S3Store(_s3.StoreUri(_s3.NewBucket(), "rel")), lostAfter)
        : new GridCatalog(new FileSystemStore(_temp.Sub("store-" + Guid.NewGuid().ToString("N"))), lostAfter);

    private static CaptureOptions Bash(string work, string script, TimeSpan? claimSettle = null) => new()
    {
        FileName = "bash",
        Arguments = new[] { "-c", script },
        WorkingDirectory = work,
        SettleTime = TimeSpan.FromMilliseconds(300),
        RescanInterval = TimeSpan.FromMilliseconds(200),
        HeartbeatInterval = TimeSpan.FromMilliseconds(300),
        ClaimSettle = claimSettle ?? TimeSpan.FromMilliseconds(500),
    };

    private string NewWork()
    {
        var work = _temp.Sub("work-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(work);
        return work;
    }

    // ---- one agent per experiment ---------------------------------------------------------------

    [Theory]
    [InlineData("fs")]
    [InlineData("s3")]
    public async Task A_second_agent_for_a_running_experiment_is_refused_and_changes_nothing(string kind)
    {
        var catalog = Catalog(kind);
        var work = NewWork();
        // The first script runs until the test lets it end (at most a minute), however slowly a loaded machine polls.
        var release = Path.Combine(work, "..", "release-busy-" + kind);
        var first = new CaptureAgent(catalog, "busy-run", "exp0", Bash(work, $"echo one > one.txt; for i in $(seq 1 1200); do [ -e '{release}' ] && break; sleep 0.05; done"));
        var running = first.RunAsync(default);
        var deadline = DateTime.UtcNow.AddSeconds(50);
        while ((await catalog.Runs.GetExperimentsAsync("busy-run", default).ContinueWith(t => t.IsCompletedSuccessfully ? t.Result.Items : Array.Empty<GridExperiment>())).FirstOrDefault()?.Status != GridStatus.Running)
        {
            Assert.True(DateTime.UtcNow < deadline, "the first agent never reported Running");
            await Task.Delay(100);
        }
        var heldBy = (await ReadRecord(catalog, "busy-run")).Agent;
        Assert.False(string.IsNullOrEmpty(heldBy));

        var secondWork = NewWork();
        var second = new CaptureAgent(catalog, "busy-run", "exp0", Bash(secondWork, "echo two > two.txt"));
        var ex = await Assert.ThrowsAsync<GridException>(() => second.RunAsync(default));
        Assert.Equal("ExperimentAlreadyRunning", ex.ErrorId);
        Assert.Equal(GridErrorKind.Busy, ex.Kind);
        Assert.Contains("busy-run-exp0", ex.Message);
        Assert.Contains("Stop-GridRun", ex.Message);
        Assert.False(File.Exists(Path.Combine(secondWork, "two.txt"))); // its script never ran
        Assert.Equal(heldBy, (await ReadRecord(catalog, "busy-run")).Agent);

        File.WriteAllText(release, "");
        Assert.Equal(0, await running);
        var exp = await catalog.Runs.GetExperimentAsync("busy-run", "exp0", default);
        Assert.Equal(GridStatus.Succeeded, exp.Status);
        Assert.Equal(new[] { "one.txt" }, (await TestStore.StoredHashes(catalog, "busy-run")).Keys);
    }

    [Theory]
    [InlineData("fs")]
    [InlineData("s3")]
    public async Task Two_agents_started_together_end_with_exactly_one_running(string kind)
    {
        var catalog = Catalog(kind);
        var works = new[] { NewWork(), NewWork() };
        var agents = works.Select((w, i) => new CaptureAgent(catalog, "race-run", "exp0", Bash(w, $"echo {i} > ran-{i}.txt; sleep 1"))).ToArray();
        var results = await Task.WhenAll(agents.Select(async a =>
        {
            try { return (Exit: await a.RunAsync(default), Error: (GridException?)null); }
            catch (GridException ex) { return (Exit: -1, Error: ex); }
        }));
        Assert.Single(results, r => r.Error is null);
        Assert.Equal("ExperimentAlreadyRunning", Assert.Single(results, r => r.Error is not null).Error!.ErrorId);
        var ran = works.Count(w => Directory.EnumerateFiles(w, "ran-*").Any());
        Assert.Equal(1, ran);
        Assert.Equal(GridStatus.Succeeded, (await catalog.Runs.GetExperimentAsync("race-run", "exp0", default)).Status);
    }

    [Fact]
    public async Task An_agent_whose_heartbeat_is_stale_is_taken_over()
    {
        var catalog = Catalog("fs", lostAfter: TimeSpan.FromSeconds(1));
        // What a killed agent leaves: Running, held by an agent that will never beat again.
        await catalog.Writer.WriteRunRecordAsync(new RunRecord { Name = "taken-run", Created = DateTimeOffset.UtcNow }, default);
        await catalog.Writer.WriteExperimentRecordAsync(new ExperimentRecord
        {
            Run = "taken-run", Experiment = "exp0", Status = GridStatus.Running, Agent = "elsewhere/1/dead",
            Heartbeat = DateTimeOffset.UtcNow.AddSeconds(-5),
        }, default);
        var exit = await new CaptureAgent(catalog, "taken-run", "exp0", Bash(NewWork(), "echo again > again.txt")).RunAsync(default);
        Assert.Equal(0, exit);
        Assert.Equal(GridStatus.Succeeded, (await catalog.Runs.GetExperimentAsync("taken-run", "exp0", default)).Status);
        Assert.NotEqual("elsewhere/1/dead", (await ReadRecord(catalog, "taken-run")).Agent);
    }

    private static async Task<ExperimentRecord> ReadRecord(GridCatalog catalog, string run)
    {
        var key = StoreLayout.ExperimentRecordKey(run, "exp0");
        return RecordJson.Deserialize<ExperimentRecord>((await catalog.Store.TryReadAllBytesAsync(key, default))!, catalog.Location, key);
    }

    // ---- readers beside a writer ------------------------------------------------------------------

    [Theory]
    [InlineData("fs")]
    [InlineData("s3")]
    public async Task Readers_listing_while_an_agent_writes_never_see_half_a_record(string kind)
    {
        var catalog = Catalog(kind);
        var reader = new GridCatalog(kind == "s3" ? new S3Store(catalog.Location) : new FileSystemStore(catalog.Location));
        // A file every 12 ms or so until the readers have read enough and have seen the record and the
        // manifest rewritten many times (the versions they read, counted below), however slowly a
        // loaded machine writes or reads.
        var work = NewWork();
        var script = "i=0; while [ ! -e ../stop-" + kind + " ]; do i=$((i+1)); head -c $((RANDOM % 5000)) /dev/urandom > f$i.bin; sleep 0.012; done";
        var agent = new CaptureAgent(catalog, "busy-reader", "exp0", Bash(work, script) with { HeartbeatInterval = TimeSpan.FromMilliseconds(100) });
        var running = agent.RunAsync(default);
        int reads = 0, damaged = 0, seenArtifacts = 0;
        const int Versions = 10;
        var records = new HashSet<DateTimeOffset?>();
        var manifests = new HashSet<int>();
        var stopped = Stopwatch.StartNew();
        while (!running.IsCompleted)
        {
            if ((reads >= 30 && records.Count >= Versions && manifests.Count >= Versions) || stopped.Elapsed > TimeSpan.FromMinutes(2))
                File.WriteAllText(Path.Combine(work, "..", "stop-" + kind), "");
            try
            {
                var exp = await reader.Runs.GetExperimentAsync("busy-reader", "exp0", default);
                var listed = await reader.Artifacts.GetArtifactsAsync("busy-reader", "exp0", default);
                damaged += listed.Errors.Count(e => e.Kind == GridErrorKind.DamagedRecord);
                seenArtifacts = Math.Max(seenArtifacts, listed.Items.Count);
                if (exp.Status == GridStatus.Running)
                {
                    records.Add(exp.Heartbeat);
                    manifests.Add(listed.Items.Count);
                }
                Assert.True(exp.ArtifactCount <= Directory.GetFiles(work).Length);
                reads += 3;
            }
            catch (GridException ex) when (ex.Kind == GridErrorKind.NotFound)
            {
                // not written yet
            }
            catch (GridException ex) when (ex.Kind == GridErrorKind.DamagedRecord)
            {
                damaged++;
            }
            await Task.Delay(5);
        }
        Assert.Equal(0, await running);
        _output.WriteLine($"{kind}: {reads} record reads while the agent wrote, {damaged} damaged, up to {seenArtifacts} artifacts seen mid-run, " +
                          $"{records.Count} versions of the record and {manifests.Count} of the manifest read, {Directory.GetFiles(work).Length} files");
        Assert.Equal(0, damaged);
        Assert.True(reads >= 30, $"only {reads} reads happened while the agent ran");
        Assert.True(records.Count >= Versions && manifests.Count >= Versions, $"the readers saw only {records.Count} versions of the record and {manifests.Count} of the manifest while the agent ran");
        Assert.Equal(TestStore.LocalHashes(work), await TestStore.StoredHashes(catalog, "busy-reader"));
    }

    // ---- names capture cannot store -----------------------------------------------------------------

    [Fact]
    public async Task A_file_name_that_is_not_UTF8_is_reported_by_the_agent_and_the_rest_is_stored()
    {
        var catalog = Catalog("fs");
        var work = NewWork();
        var agent = new CaptureAgent(catalog, "bytes-run", "exp0", Bash(work, "printf x > $'bad\\xff\\xfename.txt'; echo ok > good.txt; sleep 0.5"));
        var warnings = new List<string>();
        agent.Warning += w => { lock (warnings) warnings.Add(w); };
        Assert.Equal(0, await agent.RunAsync(default));
        Assert.Single(Directory.EnumerateFiles(work, "bad*")); // the file is there, under bytes .NET cannot name
        var exp = await catalog.Runs.GetExperimentAsync("bytes-run", "exp0", default);
        var unstorable = Assert.Single(exp.Sync!.Unstorable);
        Assert.Contains("not valid UTF-8", unstorable);
        Assert.StartsWith("bad", unstorable);
        Assert.Contains(warnings, w => w.Contains("not valid UTF-8"));
        Assert.Equal(new[] { "good.txt" }, (await TestStore.StoredHashes(catalog, "bytes-run")).Keys);
        Assert.Equal(GridStatus.Succeeded, exp.Status);
    }

    // ---- a store that fails a share of everything ----------------------------------------------------

    /// <summary>A seeded share of requests get a fault, chosen among <paramref name="faults"/>; the rest go through.</summary>
    private static Func<string, string, int, Fault> AtRate(double rate, int seed, params Fault[] faults)
    {
        var random = new Random(seed);
        return (_, _, _) =>
        {
            lock (random) return random.NextDouble() < rate ? faults[random.Next(faults.Length)] : Fault.None;
        };
    }

    private string ViaProxy(string bucket, string prefix, FaultProxy proxy) =>
        _s3.StoreUri(bucket, prefix).Replace(Uri.EscapeDataString(_s3.Endpoint), Uri.EscapeDataString(proxy.Endpoint));

    [Fact]
    public async Task A_whole_run_through_a_store_failing_one_request_in_eight_arrives_byte_exact()
    {
        var bucket = _s3.NewBucket();
        using var proxy = new FaultProxy(_s3.Endpoint);
        // 12.5% of all requests (records, uploads, listings, reads): 500, 503, reset, or a body cut short.
        proxy.Decide = AtRate(0.125, 7, Fault.Status500, Fault.SlowDown503, Fault.Reset, Fault.Truncate);
        var catalog = new GridCatalog(new S3Store(ViaProxy(bucket, "faulty", proxy)));
        var work = NewWork();
        // 120 files from 0 bytes to 3 MB, some rewritten while the script runs.
        var script = """
            mkdir -p ckpt logs
            for i in $(seq 1 100); do head -c $(( (i * 7919) % 40000 )) /dev/urandom > logs/l$i.txt; done
            for i in $(seq 1 20); do head -c $(( i * 150000 )) /dev/urandom > ckpt/c$i.bin; done
            for i in 1 2 3; do echo "pass $i" >> logs/l1.txt; sleep 0.4; done
            """;
        var agent = new CaptureAgent(catalog, "faulty-run", "exp0", Bash(work, script));
        var warnings = new ConcurrentBag<string>();
        agent.Warning += warnings.Add;
        Assert.Equal(0, await agent.RunAsync(default));
        var captureRequests = proxy.Log.Count;
        var captureFaults = proxy.Log.Count(l => l.Fault != Fault.None);
        var putsPerKey = proxy.Log.Where(l => l.Method == "PUT" && l.PathAndQuery.Contains("/artifacts/")).GroupBy(l => l.PathAndQuery).Select(g => g.Count()).ToList();

        // Every file the script left is stored, byte-exact, under the hash the manifest recorded (read directly, not via the proxy).
        var direct = new GridCatalog(new S3Store(_s3.StoreUri(bucket, "faulty")));
        var stored = await TestStore.StoredHashes(direct, "faulty-run");
        Assert.Equal(TestStore.LocalHashes(work), stored);
        Assert.Equal(GridStatus.Succeeded, (await direct.Runs.GetExperimentAsync("faulty-run", "exp0", default)).Status);

        // Download the run through the same faults, stalls included, with ranged reads for the larger files.
        while (proxy.Log.TryDequeue(out _)) { }
        proxy.Decide = AtRate(0.125, 11, Fault.Status500, Fault.SlowDown503, Fault.Reset, Fault.Truncate, Fault.Stall);
        proxy.StallFor = TimeSpan.FromSeconds(3);
        var savedStall = S3Store.ReadStallTimeout;
        S3Store.ReadStallTimeout = TimeSpan.FromSeconds(1);
        try
        {
            var engine = new TransferEngine(new TransferOptions { RangedThreshold = 1 << 20, PartSize = 256 << 10 });
            var listed = (await catalog.Artifacts.GetArtifactsAsync("faulty-run", "exp0", default)).Items;
            var dest = _temp.Sub("dest");
            var items = listed.Select(a => new SaveItem(a, Path.Combine(dest, a.Path))).ToList();
            var errors = new ConcurrentBag<GridException>();
            var done = new ConcurrentBag<GridSaveResult>();
            await engine.DownloadAsync(items, _ => catalog, false, 8, new TransferProgress(items.Count, items.Sum(i => i.Artifact.Size)), done.Add, errors.Add, default);
            Assert.Empty(errors);
            Assert.Equal(items.Count, done.Count);
            Assert.Equal(stored, TestStore.LocalHashes(dest));
            var reads = proxy.Log.Where(l => l.Method == "GET" && l.PathAndQuery.Contains("/artifacts/")).ToList();
            var faulted = reads.Count(l => l.Fault != Fault.None);
            // Every request is the engine's own (the SDK retries nothing unseen), and each fault costs at
            // most one more request: reads = units (whole objects and ranges) + retries, retries <= faults.
            var units = items.Sum(i => i.Artifact.Size > (1 << 20) ? (int)((i.Artifact.Size + (256 << 10) - 1) / (256 << 10)) : 1);
            Assert.Equal(engine.RequestsMade, reads.Count);
            Assert.InRange(reads.Count, units, units + faulted);
            foreach (var perPath in reads.GroupBy(l => l.PathAndQuery.Split('?')[0]))
            {
                var size = listed.Single(a => perPath.Key.EndsWith("/" + a.Path)).Size;
                var unitsOfPath = size > (1 << 20) ? (int)((size + (256 << 10) - 1) / (256 << 10)) : 1;
                Assert.True(perPath.Count() <= unitsOfPath * Retry.MaxThrottledAttempts, $"{perPath.Key}: {perPath.Count()} reads for {unitsOfPath} unit(s)");
            }
            _output.WriteLine($"capture: {captureRequests} requests, {captureFaults} faulted, {stored.Count} files, {stored.Count} byte-exact; " +
                              $"PUTs per artifact key: max {putsPerKey.Max()}, {putsPerKey.Count(c => c > 1)} keys sent more than once; warnings {warnings.Count}; " +
                              $"download: {items.Count} files in {units} reads, {engine.RequestsMade} requests of which {faulted} faulted; bytes lost 0");
            Assert.True(putsPerKey.Max() <= Retry.MaxThrottledAttempts * 3, $"an artifact was sent {putsPerKey.Max()} times");
            Assert.True(faulted > 0 && captureFaults > 0, "the run met no faults; the rate is too low to prove anything");
        }
        finally
        {
            S3Store.ReadStallTimeout = savedStall;
        }
    }

    [Fact]
    public async Task An_outage_in_the_middle_of_a_run_ends_nothing_and_loses_nothing()
    {
        var bucket = _s3.NewBucket();
        using var proxy = new FaultProxy(_s3.Endpoint);
        var outage = false;
        // 500s: an outage that is not a server asking to be called later (a throttling 503 is tried
        // for about 20 s a request, Retry.MaxThrottledAttempts, which would only make this test longer).
        proxy.Decide = (_, _, _) => Volatile.Read(ref outage) ? Fault.Status500 : Fault.None;
        var catalog = new GridCatalog(new S3Store(ViaProxy(bucket, "outage", proxy)));
        var work = NewWork();
        var agent = new CaptureAgent(catalog, "outage-run", "exp0",
            Bash(work, "echo before > before.txt; sleep 1.5; for i in $(seq 1 20); do echo during $i > during-$i.txt; sleep 0.2; done; echo after > after.txt; sleep 0.5") with
            { FinalSyncPatience = TimeSpan.FromMinutes(1) });
        var warnings = new ConcurrentBag<string>();
        agent.Warning += warnings.Add;
        var running = agent.RunAsync(default);
        // The outage starts once the agent holds the experiment and the script runs (its claim is before that).
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while ((await catalog.Runs.ReadExperimentRecordAsync("outage-run", "exp0", default))?.Status != GridStatus.Running)
        {
            Assert.True(DateTime.UtcNow < deadline, "the agent never reported Running");
            await Task.Delay(100);
        }
        await Task.Delay(500);
        // Every request answers 500 for six seconds (longer than one request's retries) and on until the
        // agent has said so: on a busy machine a request's five attempts can themselves outlast six seconds.
        Volatile.Write(ref outage, true);
        var outageStart = DateTime.UtcNow;
        await Task.Delay(6000);
        while (!warnings.Any(w => w.Contains("500")) && DateTime.UtcNow - outageStart < TimeSpan.FromSeconds(40)) await Task.Delay(100);
        var outageLength = DateTime.UtcNow - outageStart;
        Volatile.Write(ref outage, false);
        Assert.Equal(0, await running);
        var direct = new GridCatalog(new S3Store(_s3.StoreUri(bucket, "outage")));
        Assert.Equal(TestStore.LocalHashes(work), await TestStore.StoredHashes(direct, "outage-run"));
        Assert.Equal(22, TestStore.LocalHashes(work).Count);
        Assert.Equal(GridStatus.Succeeded, (await direct.Runs.GetExperimentAsync("outage-run", "exp0", default)).Status);
        Assert.True(warnings.Any(w => w.Contains("500")),
            $"no warning named the outage in {outageLength.TotalSeconds:0.#} s; {proxy.Log.Count(l => l.Fault != Fault.None)} requests were answered 500; warnings: [{string.Join(" | ", warnings)}]");
        _output.WriteLine($"outage of {outageLength.TotalSeconds:0.#} s: {proxy.Log.Count(l => l.Fault != Fault.None)} requests answered 500, {warnings.Count} warnings, 22 of 22 files stored byte-exact");
    }

    // ---- two downloads into one folder ------------------------------------------------------------

    [Fact]
    public async Task A_destination_locked_for_a_moment_by_another_save_is_waited_for_not_an_error()
    {
        // The moment between another call renaming its part file into place and closing it: the
        // destination is complete but still locked. A save that looks at it then must wait, not fail.
        var catalog = Catalog("fs");
        var src = _temp.WriteFile("locked-src/a.bin", TestBytes.Random(300_000, 7));
        var manifest = new ManifestRecord { Run = "locked", Experiment = "exp0" };
        manifest.Artifacts.Add(await catalog.Artifacts.PutArtifactFileAsync("locked", "exp0", "a.bin", src, default));
        await catalog.Manifests.WriteManifestAsync(manifest, default);
        await catalog.Writer.WriteExperimentRecordAsync(new ExperimentRecord { Run = "locked", Experiment = "exp0", Status = GridStatus.Succeeded }, default);
        var artifact = Assert.Single((await catalog.Artifacts.GetArtifactsAsync("locked", "exp0", default)).Items);
        var dest = _temp.WriteFile("locked-dest/a.bin", File.ReadAllBytes(src));
        var items = new List<SaveItem> { new(artifact, dest) };
        var done = new List<GridSaveResult>();
        var errors = new List<GridException>();
        Task save;
        using (File.Open(dest, FileMode.Open, FileAccess.ReadWrite, FileShare.None))
        {
            save = new TransferEngine(new TransferOptions()).DownloadAsync(items, _ => catalog, false, 1, new TransferProgress(1, artifact.Size),
                r => done.Add(r), e => errors.Add(e), default);
            await Task.Delay(400);
            Assert.False(save.IsCompleted); // still waiting for the lock
        }
        await save;
        Assert.Empty(errors);
        Assert.Equal(GridSaveAction.Skipped, Assert.Single(done).Action);
        Assert.Equal(TestBytes.Sha256(src), TestBytes.Sha256(dest));
    }

    [Fact]
    public async Task Two_downloads_into_one_folder_both_end_well_and_the_files_are_byte_exact()
    {
        var catalog = Catalog("fs");
        var src = _temp.Sub("twice-src");
        for (var i = 0; i < 12; i++) _temp.WriteFile($"twice-src/f{i}.bin", TestBytes.Random(200_000 * (i + 1), i));
        _temp.WriteFile("twice-src/big.bin", TestBytes.Random(6_000_000, 99));
        var manifest = new ManifestRecord { Run = "twice", Experiment = "exp0" };
        foreach (var f in Directory.EnumerateFiles(src))
            manifest.Artifacts.Add(await catalog.Artifacts.PutArtifactFileAsync("twice", "exp0", Path.GetFileName(f), f, default));
        await catalog.Manifests.WriteManifestAsync(manifest, default);
        await catalog.Writer.WriteExperimentRecordAsync(new ExperimentRecord { Run = "twice", Experiment = "exp0", Status = GridStatus.Succeeded }, default);
        var artifacts = (await catalog.Artifacts.GetArtifactsAsync("twice", "exp0", default)).Items;
        var dest = _temp.Sub("twice-dest");
        var items = artifacts.Select(a => new SaveItem(a, Path.Combine(dest, a.Path))).ToList();

        // Two engines (two processes' worth of state) with small ranges and a bandwidth cap, so they overlap.
        async Task<(List<GridSaveResult> Done, List<GridException> Errors)> Save()
        {
            var engine = new TransferEngine(new TransferOptions { RangedThreshold = 1 << 20, PartSize = 512 << 10, BandwidthLimit = 40_000_000 });
            var done = new List<GridSaveResult>();
            var errors = new List<GridException>();
            await engine.DownloadAsync(items, _ => catalog, false, 4, new TransferProgress(items.Count, items.Sum(i => i.Artifact.Size)),
                r => { lock (done) done.Add(r); }, e => { lock (errors) errors.Add(e); }, default);
            return (done, errors);
        }
        var both = await Task.WhenAll(Save(), Save());
        Assert.All(both, b => Assert.Empty(b.Errors));
        Assert.All(both, b => Assert.Equal(items.Count, b.Done.Count));
        var downloaded = both.Sum(b => b.Done.Count(r => r.Action != GridSaveAction.Skipped));
        _output.WriteLine($"two saves of {items.Count} files: {downloaded} downloads, {both.Sum(b => b.Done.Count(r => r.Action == GridSaveAction.Skipped))} skipped because the other call had saved them");
        foreach (var f in Directory.EnumerateFiles(src)) Assert.Equal(TestBytes.Sha256(f), TestBytes.Sha256(Path.Combine(dest, Path.GetFileName(f))));
        Assert.Empty(Directory.EnumerateFiles(dest, "*.part*"));
        Assert.False(Directory.Exists(Path.Combine(dest, TransferEngine.PartialFolder)));
        Assert.Equal(items.Count, Directory.EnumerateFiles(dest).Count());
    }
}
