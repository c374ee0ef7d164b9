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
public sealed class ReliabilityTests : IDisposable
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

    // ---- an agent killed in the middle of a multipart upload ---------------------------------------------

    private static string RepoRoot()
    {
        var root = AppContext.BaseDirectory;
        while (root is not null && !File.Exists(Path.Combine(root, "GridArtifacts.sln"))) root = Path.GetDirectoryName(root);
        return root ?? throw new InvalidOperationException("The repository root (GridArtifacts.sln) was not found above the test binaries.");
    }

    [Fact]
    public async Task An_agent_killed_during_a_multipart_upload_leaves_no_object_and_its_upload_is_aborted_by_the_next_agent()
    {
        var repo = RepoRoot();
        var module = Path.Combine(repo, "out", "GridArtifacts", "GridArtifacts.psd1");
        Assert.True(File.Exists(module), $"{module} is missing: build first (dotnet pwsh ./build.ps1 -Task Build); build.ps1 -Task Test does.");
        var bucket = _s3.NewBucket();
        using var proxy = new FaultProxy(_s3.Endpoint);
        // Every part upload hangs: the agent is certainly mid-upload when it is killed.
        proxy.Decide = (method, path, _) => method == "PUT" && path.Contains("partNumber=") ? Fault.Hang : Fault.None;
        var store = ViaProxy(bucket, "killed", proxy);
        var work = NewWork();
        var psi = new ProcessStartInfo("dotnet") { WorkingDirectory = repo, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { "tool", "run", "pwsh", "-NoProfile", "-NonInteractive", "-Command",
                     $"Import-Module '{module}'; Invoke-GridExperiment -Run killed-run -Store '{store}' -WorkingDirectory '{work}' -- bash -c 'echo small > small.txt; head -c 70000000 /dev/urandom > big.bin; sleep 600'" })
            psi.ArgumentList.Add(a);
        using var child = Process.Start(psi)!;
        var direct = new GridCatalog(new S3Store(_s3.StoreUri(bucket, "killed")), lostAfter: TimeSpan.FromSeconds(2));
        var deadline = DateTime.UtcNow.AddSeconds(60);
        List<ObjectEntry> journal = new();
        while (journal.Count == 0 || !proxy.Log.Any(l => l.PathAndQuery.Contains("partNumber=")))
        {
            Assert.True(DateTime.UtcNow < deadline, "the agent never started the multipart upload: " + (child.HasExited ? child.StandardError.ReadToEnd() : "still running"));
            await Task.Delay(100);
            journal = await direct.Store.ListAsync(StoreLayout.UploadsPrefix("killed-run", "exp0"), true, default).ToListAsync();
        }
        child.Kill(entireProcessTree: true); // SIGKILL: no final sync, no abort, no record
        await child.WaitForExitAsync();
        Assert.Equal(137, child.ExitCode);

        // No partial object is visible: big.bin is not an artifact, and readers never see its parts.
        var listed = await direct.Artifacts.GetArtifactsAsync("killed-run", "exp0", default);
        Assert.DoesNotContain(listed.Items, a => a.Path == "big.bin");
        var record = RecordJson.Deserialize<UploadJournalRecord>((await direct.Store.TryReadAllBytesAsync(Assert.Single(journal).Key, default))!, "", "");
        Assert.Equal(StoreLayout.ArtifactKey("killed-run", "exp0", "big.bin"), record.Key);
        Assert.False(string.IsNullOrEmpty(record.UploadId));
        Assert.Equal(GridStatus.Running, (await ReadRecord(direct, "killed-run")).Status); // what the dead agent left

        // The next agent of the experiment (once the dead one's heartbeat is stale) aborts the recorded upload.
        // A server that aborts (RADOS Gateway, AWS) is asked; s3rver 3.7.1 does not implement
        // AbortMultipartUpload (it answers 405), so there the proxy answers the abort as AWS does (204).
        // The proxy records that it was asked for exactly this upload either way.
        var fakeAbort = !_s3.AbortsUploads;
        proxy.Decide = (method, path, _) => fakeAbort && method == "DELETE" && path.Contains("uploadId=") ? Fault.NoContent : Fault.None;
        // The next agent's clock is a minute ahead: the dead agent's heartbeat is stale to it at once.
        var next = new GridCatalog(new S3Store(store), lostAfter: TimeSpan.FromSeconds(2), clock: new AheadClock(TimeSpan.FromMinutes(1)));
        var agent = new CaptureAgent(next, "killed-run", "exp0", Bash(NewWork(), "echo again > again.txt"));
        var warnings = new List<string>();
        agent.Warning += w => { lock (warnings) warnings.Add(w); };
        Assert.Equal(0, await agent.RunAsync(default));
        var aborts = proxy.Log.Where(l => l.Method == "DELETE" && l.PathAndQuery.Contains("uploadId=")).ToList();
        Assert.Equal(Uri.EscapeDataString(record.UploadId), Assert.Single(aborts).PathAndQuery.Split("uploadId=")[1].Split('&')[0]);
        Assert.Contains(warnings, w => w.Contains("Aborted 1 unfinished upload"));
        Assert.Empty(await direct.Store.ListAsync(StoreLayout.UploadsPrefix("killed-run", "exp0"), true, default).ToListAsync());
        Assert.DoesNotContain((await direct.Artifacts.GetArtifactsAsync("killed-run", "exp0", default)).Items, a => a.Path == "big.bin");
        if (!fakeAbort)
        {
            // The server itself no longer has the upload: its parts are gone.
            var uploads = await _s3.Client.ListMultipartUploadsAsync(bucket);
            Assert.DoesNotContain(uploads.MultipartUploads ?? new(), u => u.UploadId == record.UploadId);
        }
        _output.WriteLine($"killed mid-upload: upload {record.UploadId} recorded, no object visible, aborted by the next agent with {aborts.Count} request");
    }

    [Fact]
    public async Task An_upload_recorded_in_the_store_is_aborted_by_the_sweep_where_the_server_aborts_and_kept_where_it_does_not()
    {
        // Straight to the server: what the sweep does follows what the server does (fixture's AbortsUploads).
        var bucket = _s3.NewBucket();
        var store = new S3Store(_s3.StoreUri(bucket, "sweep"));
        var key = StoreLayout.ArtifactKey("sweep-run", "exp0", "big.bin");
        var init = await _s3.Client.InitiateMultipartUploadAsync(bucket, "sweep/" + key);
        var journalKey = StoreLayout.UploadJournalKey(key, init.UploadId);
        await store.PutAsync(journalKey, RecordJson.Serialize(new UploadJournalRecord { Key = key, UploadId = init.UploadId, Started = DateTimeOffset.UtcNow }), default);
        var sweep = await new GridCatalog(store).Artifacts.AbortAbandonedUploadsAsync("sweep-run", "exp0", default);
        if (_s3.AbortsUploads)
        {
            var uploads = (await _s3.Client.ListMultipartUploadsAsync(bucket)).MultipartUploads ?? new();
            Assert.Equal(new[] { init.UploadId }, sweep.Aborted);
            Assert.Empty(sweep.NotAborted);
            Assert.Null(await store.TryReadAllBytesAsync(journalKey, default));
            Assert.DoesNotContain(uploads, u => u.UploadId == init.UploadId);
        }
        else
        {
            Assert.Empty(sweep.Aborted);
            Assert.Equal("UploadNotAborted", Assert.Single(sweep.NotAborted).ErrorId);
            Assert.NotNull(await store.TryReadAllBytesAsync(journalKey, default));
        }
    }

    [Fact]
    public async Task An_upload_the_server_will_not_abort_keeps_its_record_and_says_why()
    {
        // s3rver answers 405 to AbortMultipartUpload; a server that aborts is made to answer so by the proxy.
        // The record stays for a later try.
        var bucket = _s3.NewBucket();
        using var proxy = new FaultProxy(_s3.Endpoint);
        proxy.Decide = (method, path, _) => method == "DELETE" && path.Contains("uploadId=") ? Fault.MethodNotAllowed : Fault.None;
        var store = new S3Store(_s3.AbortsUploads ? ViaProxy(bucket, "noabort", proxy) : _s3.StoreUri(bucket, "noabort"));
        var key = StoreLayout.ArtifactKey("noabort-run", "exp0", "big.bin");
        var init = await _s3.Client.InitiateMultipartUploadAsync(bucket, "noabort/" + key);
        var journalKey = StoreLayout.UploadJournalKey(key, init.UploadId);
        await store.PutAsync(journalKey, RecordJson.Serialize(new UploadJournalRecord { Key = key, UploadId = init.UploadId, Started = DateTimeOffset.UtcNow }), default);
        var sweep = await new GridCatalog(store).Artifacts.AbortAbandonedUploadsAsync("noabort-run", "exp0", default);
        Assert.Empty(sweep.Aborted);
        var why = Assert.Single(sweep.NotAborted);
        Assert.Equal("UploadNotAborted", why.ErrorId);
        Assert.Contains(init.UploadId, why.Message);
        Assert.Contains("lifecycle", why.Message);
        Assert.NotNull(await store.TryReadAllBytesAsync(journalKey, default));
    }

    // ---- retries per file per pass ------------------------------------------------------------------

    [Fact]
    public async Task A_file_the_store_keeps_refusing_costs_one_request_policy_of_PUTs_in_a_pass_not_three()
    {
        var bucket = _s3.NewBucket();
        using var proxy = new FaultProxy(_s3.Endpoint);
        // A 500 for ever (a 503 SlowDown is given more attempts: Retry.MaxThrottledAttempts).
        proxy.Decide = (method, path, _) => method == "PUT" && path.Contains("stuck.txt") ? Fault.Status500 : Fault.None;
        var catalog = new GridCatalog(new S3Store(ViaProxy(bucket, "stuck", proxy)));
        var work = NewWork();
        // Nothing settles while the script runs, and the final sync makes one pass: what is counted is one pass.
        var agent = new CaptureAgent(catalog, "stuck-run", "exp0", Bash(work, "echo fine > fine.txt; echo stuck > stuck.txt") with
            { SettleTime = TimeSpan.FromHours(1), FinalSyncPatience = TimeSpan.Zero });
        var warnings = new ConcurrentBag<string>();
        agent.Warning += warnings.Add;
        Assert.Equal(0, await agent.RunAsync(default));
        var puts = proxy.Log.Count(l => l.Method == "PUT" && l.PathAndQuery.Contains("stuck.txt"));
        _output.WriteLine($"PUTs of the refused file in one pass: {puts} (the request policy allows {Retry.MaxAttempts})");
        Assert.Equal(Retry.MaxAttempts, puts);
        Assert.Single(warnings, w => w.Contains("stuck.txt"));
        var direct = new GridCatalog(new S3Store(_s3.StoreUri(bucket, "stuck")));
        Assert.Equal(new[] { "fine.txt" }, (await TestStore.StoredHashes(direct, "stuck-run")).Keys);
        var exp = await direct.Runs.GetExperimentAsync("stuck-run", "exp0", default);
        Assert.Equal(1, exp.Sync!.FilesPending);
    }

    // ---- the working folder's end ---------------------------------------------------------------------

    [Fact]
    public async Task A_working_folder_is_removed_only_once_every_file_in_it_is_in_the_store()
    {
        var bucket = _s3.NewBucket();
        using var proxy = new FaultProxy(_s3.Endpoint);
        var refuse = true;
        proxy.Decide = (method, path, _) => refuse && method == "PUT" && path.Contains("stuck.txt") ? Fault.Status500 : Fault.None;
        var catalog = new GridCatalog(new S3Store(ViaProxy(bucket, "ends", proxy)));
        const string Script = "head -c 300000 /dev/urandom > model.bin; echo stuck > stuck.txt; ln -s model.bin last.bin";

        // The store refuses one file to the end: the folder stays, named in the record and a warning.
        var kept = NewWork();
        var agent = new CaptureAgent(catalog, "ends-run", "exp0", Bash(kept, Script) with { FinalSyncPatience = TimeSpan.Zero, RemoveWorkingDirectory = true });
        var warnings = new ConcurrentBag<string>();
        agent.Warning += warnings.Add;
        Assert.Equal(0, await agent.RunAsync(default));
        Assert.True(File.Exists(Path.Combine(kept, "stuck.txt")));
        var exp0 = await catalog.Runs.GetExperimentAsync("ends-run", "exp0", default);
        Assert.Equal(Path.GetFullPath(kept), exp0.WorkingDirectory);
        Assert.Contains(warnings, w => w.StartsWith($"Kept the working folder '{Path.GetFullPath(kept)}': 1 file(s) did not reach the store", StringComparison.Ordinal));

        // Every file stored: the folder is gone before the status says the experiment ended, and what
        // was stored is what the script wrote (the link arrives as its target, which was not followed out).
        refuse = false;
        var removed = NewWork();
        var sums = removed + ".sha256";
        var written = new Dictionary<string, string>();
        var second = new CaptureAgent(catalog, "ends-run", "exp1", Bash(removed, Script + $"; sha256sum model.bin stuck.txt > '{sums}'") with { RemoveWorkingDirectory = true });
        Assert.Equal(0, await second.RunAsync(default));
        Assert.False(Directory.Exists(removed));
        foreach (var line in File.ReadAllLines(sums))
        {
            var parts = line.Split("  ");
            written[parts[1]] = parts[0].ToLowerInvariant();
        }
        written["last.bin"] = written["model.bin"];
        var exp1 = await catalog.Runs.GetExperimentAsync("ends-run", "exp1", default);
        Assert.Equal(GridStatus.Succeeded, exp1.Status);
        Assert.Null(exp1.WorkingDirectory);
        Assert.Equal(written.OrderBy(k => k.Key, StringComparer.Ordinal), (await TestStore.StoredHashes(catalog, "ends-run", "exp1")).Select(k => KeyValuePair.Create(k.Key, k.Value.ToLowerInvariant())).OrderBy(k => k.Key, StringComparer.Ordinal));
    }

    // ---- what is never an artifact ----------------------------------------------------------------

    [Theory]
    [InlineData("fs")]
    [InlineData("s3")]
    public async Task A_watched_folder_that_holds_the_store_or_the_working_folder_captures_neither(string kind)
    {
        var outer = _temp.Sub("outer-" + Guid.NewGuid().ToString("N")[..8]);
        var storeDir = Path.Combine(outer, "store");
        var catalog = kind == "fs" ? new GridCatalog(new FileSystemStore(storeDir)) : Catalog("s3");
        var work = Path.Combine(outer, "work");
        Directory.CreateDirectory(work);
        var agent = new CaptureAgent(catalog, "self-run", "exp0", Bash(work, "echo a > a.txt; echo b > ../b.txt; sleep 1") with { ArtifactRoots = new[] { outer } });
        var warnings = new ConcurrentBag<string>();
        agent.Warning += warnings.Add;
        Assert.Equal(0, await agent.RunAsync(default));
        var prefix = Path.GetFileName(outer) + "/";
        Assert.Equal(new[] { "a.txt", prefix + "b.txt" }, (await TestStore.StoredHashes(catalog, "self-run")).Keys.OrderBy(k => k, StringComparer.Ordinal));
        Assert.Contains(warnings, w => w.Contains($"'{work}'") && w.Contains("watched as a folder of its own"));
        if (kind == "fs") Assert.Contains(warnings, w => w.Contains($"'{storeDir}'") && w.Contains("store's own folder"));
    }

    // ---- names from every plane ---------------------------------------------------------------------

    /// <summary>Names outside the Basic Multilingual Plane, combining marks, right-to-left text, joiners, and one name in NFC and NFD.</summary>
    public static readonly string[] UnicodeNames =
    {
        "loss-📉.txt", "𝛼-𠀋.txt", "\u00e9t\u00e9.txt", "e\u0301te\u0301.txt", "שלום/مرحبا.txt", "👩‍💻 team.txt", "a\u0308\u0301 marks.txt", "zero\u200bwidth\u200c\u200d.txt", "plane15-\U000F0041.bin",
    };

    [Theory]
    [InlineData("fs")]
    [InlineData("s3")]
    public async Task Names_from_every_plane_are_captured_and_stored_byte_exact(string kind)
    {
        var catalog = Catalog(kind);
        var work = NewWork();
        var script = string.Join("\n", UnicodeNames.Select(n => $"mkdir -p \"$(dirname '{n}')\"; printf '%s' '{n}' > '{n}'"));
        File.WriteAllText(Path.Combine(_temp.Path, "names.sh"), script + "\nsleep 0.5\n", new System.Text.UTF8Encoding(false));
        var warnings = new ConcurrentBag<string>();
        var agent = new CaptureAgent(catalog, "names-run", "exp0", Bash(work, $"bash '{Path.Combine(_temp.Path, "names.sh")}'"));
        agent.Warning += warnings.Add;
        Assert.Equal(0, await agent.RunAsync(default));
        Assert.Empty(warnings);
        var stored = await TestStore.StoredHashes(catalog, "names-run");
        Assert.Equal(TestStore.LocalHashes(work), stored);
        Assert.Equal(UnicodeNames.OrderBy(n => n, StringComparer.Ordinal), stored.Keys.OrderBy(k => k, StringComparer.Ordinal));
        // NFC and NFD of one word are two names, each with its own bytes.
        Assert.NotEqual(stored["\u00e9t\u00e9.txt"], stored["e\u0301te\u0301.txt"]);
    }

    // ---- a copy that cannot send one artifact -----------------------------------------------------

    [Fact]
    public async Task A_copy_that_cannot_send_one_artifact_reports_it_and_still_records_the_rest()
    {
        var source = Catalog("fs");
        var src = _temp.Sub("copy-src");
        foreach (var (name, seed) in new[] { ("kept-1.bin", 1), ("refused.bin", 2), ("kept-2.bin", 3) }) _temp.WriteFile($"copy-src/{name}", TestBytes.Random(20_000 + seed, seed));
        await new ArtifactImporter(source).ImportAsync(new ImportRequest
        {
            Run = "copy-run", Experiment = "exp0", Files = ArtifactImporter.ListFiles(src, new ModuleFolders(source.Store), _ => { }),
        }, e => throw e, _ => { }, default);

        var bucket = _s3.NewBucket();
        using var proxy = new FaultProxy(_s3.Endpoint);
        proxy.Decide = (method, path, _) => method == "PUT" && path.Contains("refused.bin") ? Fault.Status403 : Fault.None;
        var target = new GridCatalog(new S3Store(ViaProxy(bucket, "copy", proxy)));
        var errors = new ConcurrentBag<GridException>();
        var result = await new GridArtifacts.Core.Sharing.RunCopier(source, target).CopyAsync("copy-run", _temp.Sub("copy-tmp"), errors.Add, default);

        var error = Assert.Single(errors);
        Assert.Contains("refused.bin", error.Message);
        Assert.Equal(2, result.Copied);
        var direct = new GridCatalog(new S3Store(_s3.StoreUri(bucket, "copy")));
        var manifest = await direct.Manifests.ReadManifestAsync("copy-run", "exp0", default);
        var expected = new[] { "kept-1.bin", "kept-2.bin" }.ToDictionary(n => n, n => TestBytes.Sha256(Path.Combine(src, n)));
        Assert.Equal(expected, manifest!.Artifacts.ToDictionary(a => a.Path, a => a.Sha256));
        Assert.Equal(expected, await TestStore.StoredHashes(direct, "copy-run"));
    }
}
