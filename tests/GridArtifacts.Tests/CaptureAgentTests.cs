using System.Text;
using GridArtifacts.Core;
using GridArtifacts.Core.Capture;
using GridArtifacts.Core.Stores;
using GridArtifacts.Model;
using Xunit;

namespace GridArtifacts.Tests;

/// <summary>The capture agent running real scripts (bash), against the folder store and s3rver.</summary>
[Collection(S3Collection.Name)]
public sealed class CaptureAgentTests : IDisposable
{
    private readonly TempDir _temp = new();
    private readonly S3ServerFixture _s3;

    public CaptureAgentTests(S3ServerFixture s3) => _s3 = s3;

    public void Dispose() => _temp.Dispose();

    private GridCatalog Catalog(string kind) => kind == "s3"
        ? new GridCatalog(new S3Store(_s3.StoreUri(_s3.NewBucket(), "capture")))
        : new GridCatalog(new FileSystemStore(_temp.Sub("store-" + Guid.NewGuid().ToString("N"))));

    /// <param name="beside">Runs beside the agent from its start (watching the store for the script), given the catalog.</param>
    private async Task<(int Exit, GridCatalog Catalog, string Work, List<string> Warnings)> RunScript(string kind, string script, string run = "cap-run", IReadOnlyList<string>? roots = null,
        Func<GridCatalog, Task>? beside = null)
    {
        var catalog = Catalog(kind);
        var work = _temp.Sub("work-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(work);
        File.WriteAllText(Path.Combine(work, "before.txt"), "was here before the run");
        var agent = new CaptureAgent(catalog, run, "exp0", new CaptureOptions
        {
            FileName = "bash",
            Arguments = new[] { "-c", script },
            WorkingDirectory = work,
            ArtifactRoots = roots ?? Array.Empty<string>(),
            SettleTime = TimeSpan.FromMilliseconds(300),
            RescanInterval = TimeSpan.FromMilliseconds(200),
            HeartbeatInterval = TimeSpan.FromMilliseconds(500),
        });
        var warnings = new List<string>();
        agent.Warning += w => { lock (warnings) warnings.Add(w); };
        var running = agent.RunAsync(default);
        if (beside is not null) await beside(catalog);
        var exit = await running;
        return (exit, catalog, work, warnings);
    }

    private const string Writes = """
        mkdir -p checkpoints/deep/a/b/c/d logs plots 'naïve dir'
        head -c 300000 /dev/urandom > checkpoints/model.ckpt
        : > empty.bin
        echo 'résumé' > 'naïve dir/日本語 ファイル.txt'
        echo deep > checkpoints/deep/a/b/c/d/leaf.txt
        for i in $(seq 1 40); do echo "step $i" > logs/rewritten.txt; sleep 0.01; done
        echo doomed > plots/deleted-later.txt
        # Deleted only once the test has seen it in the store (or after 20 s, and the test fails).
        for i in $(seq 1 200); do [ -e "$STORED" ] && break; sleep 0.1; done
        cp plots/deleted-later.txt "$KEEP"
        rm plots/deleted-later.txt
        echo 'to stdout'; echo 'to stderr' >&2
        """;

    [Theory]
    [InlineData("fs")]
    [InlineData("s3")]
    public async Task With_full_rescans_an_hour_apart_the_change_notifications_alone_bring_new_files_up_while_the_script_runs(string kind)
    {
        var catalog = Catalog(kind);
        var work = _temp.Sub("work-" + Guid.NewGuid().ToString("N"));
        var done = Path.Combine(Directory.CreateDirectory(_temp.Sub("signals")).FullName, Guid.NewGuid().ToString("N"));
        var agent = new CaptureAgent(catalog, "note-run", "exp0", new CaptureOptions
        {
            FileName = "bash",
            // The script waits for the test to have seen its files in the store, or fails after 20 s.
            Arguments = new[] { "-c", "sleep 0.5; mkdir -p late/a/b; head -c 5000 /dev/urandom > late/a/b/deep.bin; echo hi > top.txt; for i in $(seq 1 200); do [ -e \"$DONE\" ] && exit 0; sleep 0.1; done; exit 3" },
            WorkingDirectory = work,
            Environment = new Dictionary<string, string> { ["DONE"] = done },
            SettleTime = TimeSpan.FromMilliseconds(300),
            RescanInterval = TimeSpan.FromMilliseconds(200),
            FullRescanInterval = TimeSpan.FromHours(1),
        });
        var running = agent.RunAsync(default);
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (!running.IsCompleted && DateTime.UtcNow < deadline)
        {
            var seen = (await catalog.Artifacts.GetArtifactsAsync("note-run", "exp0", default).ContinueWith(t => t.IsCompletedSuccessfully ? t.Result.Items : Array.Empty<GridArtifact>())).Where(a => a.Sha256 is not null).Select(a => a.Path).ToHashSet();
            if (seen.Contains("late/a/b/deep.bin") && seen.Contains("top.txt")) { File.WriteAllText(done, ""); break; }
            await Task.Delay(100);
        }
        Assert.Equal(0, await running);
        var stored = await TestStore.StoredHashes(catalog, "note-run");
        Assert.Equal(TestBytes.Sha256(File.ReadAllBytes(Path.Combine(work, "late/a/b/deep.bin"))), stored["late/a/b/deep.bin"]);
        Assert.Equal(TestBytes.Sha256(File.ReadAllBytes(Path.Combine(work, "top.txt"))), stored["top.txt"]);
    }

    [Theory]
    [InlineData("fs")]
    [InlineData("s3")]
    public async Task Exit_0_every_file_written_in_any_folder_is_stored_byte_exact_and_the_status_is_Succeeded(string kind)
    {
        var keep = _temp.Sub("kept-copy.txt");
        var seenFlag = _temp.Sub("stored-" + Guid.NewGuid().ToString("N"));
        var (exit, catalog, work, warnings) = await RunScript(kind, $"export KEEP='{keep}' STORED='{seenFlag}'\n" + Writes, beside: async c =>
        {
            for (var deadline = DateTime.UtcNow.AddSeconds(20); DateTime.UtcNow < deadline; await Task.Delay(100))
            {
                var seen = await c.Artifacts.GetArtifactsAsync("cap-run", "exp0", default).ContinueWith(t => t.IsCompletedSuccessfully ? t.Result.Items : Array.Empty<GridArtifact>());
                if (seen.Any(a => a.Path == "plots/deleted-later.txt" && a.Sha256 is not null)) { await File.WriteAllTextAsync(seenFlag, ""); return; }
            }
        });
        Assert.Equal(0, exit);
        Assert.Empty(warnings);
        var hashes = await TestStore.StoredHashes(catalog, "cap-run");
        foreach (var path in new[] { "checkpoints/model.ckpt", "empty.bin", "naïve dir/日本語 ファイル.txt", "checkpoints/deep/a/b/c/d/leaf.txt", "logs/rewritten.txt" })
        {
            Assert.Equal(TestBytes.Sha256(Path.Combine(work, path)), hashes[path]);
        }
        // Deleted by the script after it settled: still in the store (sync never deletes).
        Assert.Equal(TestBytes.Sha256(keep), hashes["plots/deleted-later.txt"]);
        Assert.Equal("step 40\n", File.ReadAllText(Path.Combine(work, "logs/rewritten.txt")));
        Assert.False(hashes.ContainsKey("before.txt"));

        var exp = await catalog.Runs.GetExperimentAsync("cap-run", "exp0", default);
        Assert.Equal(GridStatus.Succeeded, exp.Status);
        Assert.Equal(0, exp.ExitCode);
        Assert.Equal(hashes.Count, exp.ArtifactCount);
        Assert.Equal(0, exp.Sync!.FilesPending);
        Assert.True((await catalog.Manifests.ReadManifestAsync("cap-run", "exp0", default))!.Sealed);
        Assert.Equal("to stdout\n", Encoding.UTF8.GetString((await catalog.Store.TryReadAllBytesAsync(StoreLayout.LogKey("cap-run", "exp0", "stdout"), default))!));
        Assert.Equal("to stderr\n", Encoding.UTF8.GetString((await catalog.Store.TryReadAllBytesAsync(StoreLayout.LogKey("cap-run", "exp0", "stderr"), default))!));
    }

    [Theory]
    [InlineData("fs", "exit 3", 3)]
    [InlineData("fs", "kill -9 $$", 137)]
    [InlineData("s3", "exit 3", 3)]
    [InlineData("s3", "kill -9 $$", 137)]
    public async Task A_failing_or_killed_script_still_has_every_artifact_it_wrote_and_reads_Failed(string kind, string ending, int code)
    {
        var (exit, catalog, work, _) = await RunScript(kind, "mkdir out; head -c 100000 /dev/urandom > out/partial.bin; echo last > last.txt\n" + ending);
        Assert.Equal(code, exit);
        var stored = await TestStore.StoredHashes(catalog, "cap-run");
        Assert.Equal(TestBytes.Sha256(Path.Combine(work, "out/partial.bin")), stored["out/partial.bin"]);
        Assert.Equal(TestBytes.Sha256(Path.Combine(work, "last.txt")), stored["last.txt"]);
        var exp = await catalog.Runs.GetExperimentAsync("cap-run", "exp0", default);
        Assert.Equal(GridStatus.Failed, exp.Status);
        Assert.Equal(code, exp.ExitCode);
    }

    [Fact]
    public async Task Ten_thousand_small_files_and_extra_roots_are_all_captured()
    {
        var extra = _temp.Sub("extra-root");
        Directory.CreateDirectory(extra);
        var (exit, catalog, _, _) = await RunScript("fs", $"mkdir many; cd many; seq 1 10000 | xargs -n 500 touch; for i in $(seq 1 10000 | sed -n '1~97p'); do echo $i > $i; done; cd ..; echo x > '{extra}/outside.txt'", roots: new[] { extra });
        Assert.Equal(0, exit);
        var artifacts = (await catalog.Artifacts.GetArtifactsAsync("cap-run", "exp0", default)).Items;
        Assert.Equal(10_001, artifacts.Count);
        Assert.Contains(artifacts, a => a.Path == "extra-root/outside.txt");
        Assert.All(artifacts, a => Assert.NotNull(a.Sha256));
        Assert.Equal(10_001, (await catalog.Runs.GetExperimentAsync("cap-run", "exp0", default)).ArtifactCount);
    }

    [Fact]
    public async Task A_name_that_cannot_be_stored_is_reported_by_name_never_skipped_silently()
    {
        var (exit, catalog, _, warnings) = await RunScript("fs", @"echo bad > 'back\slash.txt'; echo good > good.txt");
        Assert.Equal(0, exit);
        Assert.Contains(warnings, w => w.Contains(@"back\slash.txt") || w.Contains(@"back\slash.txt"));
        var exp = await catalog.Runs.GetExperimentAsync("cap-run", "exp0", default);
        Assert.Contains(exp.Sync!.Unstorable, u => u.StartsWith(@"back\slash.txt"));
        Assert.True((await TestStore.StoredHashes(catalog, "cap-run")).ContainsKey("good.txt"));
    }

    [Fact]
    public async Task RemoveWorkingDirectory_keeps_a_folder_holding_files_that_were_there_before_the_start_and_never_stored()
    {
        var catalog = Catalog("fs");
        // A folder of the user's, with data in it before the script starts: unchanged, it is not an artifact.
        var work = _temp.Sub("work-data-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path.Combine(work, "data"));
        var data = new byte[100_000];
        Random.Shared.NextBytes(data);
        File.WriteAllBytes(Path.Combine(work, "data", "train.csv"), data);
        var agent = new CaptureAgent(catalog, "data-run", "exp0", new CaptureOptions
        {
            FileName = "bash",
            Arguments = new[] { "-c", "wc -c data/train.csv > out.txt" },
            WorkingDirectory = work,
            RemoveWorkingDirectory = true,
        });
        var warnings = new List<string>();
        agent.Warning += w => { lock (warnings) warnings.Add(w); };
        Assert.Equal(0, await agent.RunAsync(default));
        Assert.Equal(new[] { "out.txt" }, (await TestStore.StoredHashes(catalog, "data-run")).Keys);
        Assert.Equal(Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(data)),
            Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(Path.Combine(work, "data", "train.csv")))));
        Assert.Equal(work, (await catalog.Runs.GetExperimentAsync("data-run", "exp0", default)).WorkingDirectory);
        Assert.Contains(warnings, w => w.StartsWith($"Kept the working folder '{work}'", StringComparison.Ordinal) && w.Contains("before the script started"));

        // A file that was there before and that the script removed keeps nothing: the folder goes.
        var emptied = _temp.Sub("work-emptied-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(emptied);
        File.WriteAllText(Path.Combine(emptied, "scratch.tmp"), "scratch");
        var second = new CaptureAgent(catalog, "data-run", "exp1", new CaptureOptions
        {
            FileName = "bash",
            Arguments = new[] { "-c", "rm scratch.tmp; echo done > out.txt" },
            WorkingDirectory = emptied,
            RemoveWorkingDirectory = true,
        });
        Assert.Equal(0, await second.RunAsync(default));
        Assert.False(Directory.Exists(emptied));
        Assert.Null((await catalog.Runs.GetExperimentAsync("data-run", "exp1", default)).WorkingDirectory);
    }

    [Fact]
    public async Task A_stop_request_stops_the_script_after_a_final_sync()
    {
        var catalog = Catalog("fs");
        var work = _temp.Sub("work-stop");
        Directory.CreateDirectory(work);
        var agent = new CaptureAgent(catalog, "stop-run", "exp0", new CaptureOptions
        {
            FileName = "bash",
            Arguments = new[] { "-c", "echo started > started.txt; sleep 60" },
            WorkingDirectory = work,
            RescanInterval = TimeSpan.FromMilliseconds(200),
        });
        var running = agent.RunAsync(default);
        while (!File.Exists(Path.Combine(work, "started.txt"))) await Task.Delay(50);
        await catalog.Store.PutAsync(StoreLayout.StopRequestKey("stop-run", "exp0"), new byte[] { 1 }, default);
        await running.WaitAsync(TimeSpan.FromSeconds(30));
        var exp = await catalog.Runs.GetExperimentAsync("stop-run", "exp0", default);
        Assert.Equal(GridStatus.Stopped, exp.Status);
        Assert.True((await TestStore.StoredHashes(catalog, "stop-run")).ContainsKey("started.txt"));
    }

    [Fact]
    public async Task A_sealed_manifest_listing_a_file_the_store_lacks_says_so()
    {
        var (_, catalog, _, _) = await RunScript("fs", "echo a > a.txt; echo b > b.txt");
        await catalog.Store.DeleteAsync(StoreLayout.ArtifactKey("cap-run", "exp0", "b.txt"), default);
        var listed = await catalog.Artifacts.GetArtifactsAsync("cap-run", "exp0", default);
        Assert.Equal("a.txt", Assert.Single(listed.Items).Path);
        var error = Assert.Single(listed.Errors);
        Assert.Equal("ArtifactMissing", error.ErrorId);
        Assert.Contains("b.txt", error.Message);
    }

    [Fact]
    public async Task A_file_that_went_up_is_in_the_manifest_while_another_of_its_pass_is_still_going()
    {
        // Both files are written at once, so one pass usually takes both; stuck.bin's upload then
        // holds until the agent is stopped. a.bin, up already, must be listed meanwhile.
        var stuck = new StuckStore(new FileSystemStore(_temp.Sub("store-" + Guid.NewGuid().ToString("N"))), "stuck.bin", fail: false);
        var catalog = new GridCatalog(stuck);
        var work = _temp.Sub("work-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(work);
        var agent = new CaptureAgent(catalog, "slow-run", "exp0", new CaptureOptions
        {
            FileName = "bash",
            Arguments = new[] { "-c", "head -c 70000 /dev/urandom > a.bin; head -c 90000 /dev/urandom > stuck.bin; sleep 60" },
            WorkingDirectory = work,
            SettleTime = TimeSpan.FromMilliseconds(300),
            RescanInterval = TimeSpan.FromMilliseconds(200),
            HeartbeatInterval = TimeSpan.FromMilliseconds(500),
            ClaimSettle = TimeSpan.FromMilliseconds(200),
            StopBudget = TimeSpan.FromSeconds(2),
        });
        var running = agent.RunAsync(default);
        var deadline = DateTime.UtcNow.AddSeconds(15);
        ManifestRecord? manifest;
        while ((manifest = await catalog.Manifests.ReadManifestAsync("slow-run", "exp0", default))?.Artifacts.Any(a => a.Path == "a.bin") != true)
        {
            Assert.True(DateTime.UtcNow < deadline, $"a.bin was not in the manifest within 15 s ({stuck.Attempts} attempt(s) at stuck.bin)");
            await Task.Delay(50);
        }
        Assert.False(manifest!.Sealed);
        Assert.DoesNotContain(manifest.Artifacts, a => a.Path == "stuck.bin");
        Assert.Equal(TestBytes.Sha256(Path.Combine(work, "a.bin")), (await TestStore.StoredHashes(catalog, "slow-run"))["a.bin"]);

        Assert.True(agent.StopBySignal("SIGTERM"));
        await running.WaitAsync(TimeSpan.FromSeconds(30));
        var sealedManifest = (await catalog.Manifests.ReadManifestAsync("slow-run", "exp0", default))!;
        Assert.True(sealedManifest.Sealed);
        Assert.Equal(new[] { "a.bin" }, sealedManifest.Artifacts.Select(a => a.Path));
        Assert.True(stuck.Attempts > 0);
    }
}
