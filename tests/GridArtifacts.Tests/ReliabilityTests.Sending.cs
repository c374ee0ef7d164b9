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
/// Whole runs under faults, continued: an agent killed mid-upload, retries per file and pass, the
/// working folder's end, what is never an artifact, names from every plane, and a copy that cannot
/// send one artifact.
/// </summary>
public sealed partial class ReliabilityTests
{
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
