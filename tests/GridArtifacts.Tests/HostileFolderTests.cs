using GridArtifacts.Core;
using GridArtifacts.Core.Capture;
using GridArtifacts.Core.Stores;
using GridArtifacts.Model;
using Xunit;

namespace GridArtifacts.Tests;

/// <summary>
/// What a script can plant in the folder it is captured from: links out of it (to a secret, to the
/// store), links round in loops, FIFOs, sockets and devices, files that grow while they go up. Capture
/// reads nothing outside its roots, opens no special file, walks no folder twice and never hangs;
/// links inside the roots arrive as their targets. On the folder store and on s3rver.
/// </summary>
[Collection(S3Collection.Name)]
public sealed class HostileFolderTests : IDisposable
{
    private readonly TempDir _temp = new();
    private readonly S3ServerFixture _s3;

    public HostileFolderTests(S3ServerFixture s3) => _s3 = s3;

    public void Dispose() => _temp.Dispose();

    private (GridCatalog Catalog, string? StoreFolder) Catalog(string kind)
    {
        if (kind == "s3") return (new GridCatalog(new S3Store(_s3.StoreUri(_s3.NewBucket(), "hostile"))), null);
        var folder = _temp.Sub("store-" + Guid.NewGuid().ToString("N"));
        return (new GridCatalog(new FileSystemStore(folder)), folder);
    }

    private sealed record Outcome(int Exit, GridCatalog Catalog, string Work, List<string> Warnings, GridExperiment Experiment, Dictionary<string, string> Stored);

    /// <summary>Runs <paramref name="script"/> under the agent (a minute at most: a hang fails the test) and reads back what it stored.</summary>
    private async Task<Outcome> Capture(string kind, string script, Dictionary<string, string>? environment = null, IReadOnlyList<string>? roots = null, string? work = null,
        (GridCatalog, string?)? store = null)
    {
        var (catalog, storeFolder) = store ?? Catalog(kind);
        work ??= _temp.Sub("work-" + Guid.NewGuid().ToString("N"));
        var env = new Dictionary<string, string>(environment ?? new()) { ["STORE"] = storeFolder ?? "" };
        var agent = new CaptureAgent(catalog, "hostile", "exp0", new CaptureOptions
        {
            FileName = "bash",
            Arguments = new[] { "-c", "set -e\n" + script },
            WorkingDirectory = work,
            ArtifactRoots = roots ?? Array.Empty<string>(),
            Environment = env,
            SettleTime = TimeSpan.FromMilliseconds(200),
            RescanInterval = TimeSpan.FromMilliseconds(200),
            HeartbeatInterval = TimeSpan.FromMilliseconds(500),
            FinalSyncPatience = TimeSpan.FromSeconds(5),
        });
        var warnings = new List<string>();
        agent.Warning += w => { lock (warnings) warnings.Add(w); };
        var exit = await agent.RunAsync(default).WaitAsync(TimeSpan.FromSeconds(60));
        var experiment = await catalog.Runs.GetExperimentAsync("hostile", "exp0", default);
        return new Outcome(exit, catalog, work, warnings, experiment, await TestStore.StoredHashes(catalog, "hostile"));
    }

    /// <summary>Whether a warning is about <paramref name="path"/> (a file the agent names by artifact path, a folder by its full path).</summary>
    private static bool Names(string warning, string work, string path) =>
        warning.StartsWith($"'{path}' ", StringComparison.Ordinal) || warning.StartsWith($"Skipped '{Path.Combine(work, path)}'", StringComparison.Ordinal);

    [Theory]
    [InlineData("fs")]
    [InlineData("s3")]
    public async Task Links_out_of_the_folder_are_never_read_and_links_inside_it_arrive_as_their_targets(string kind)
    {
        var outside = Directory.CreateDirectory(_temp.Sub("outside-" + Guid.NewGuid().ToString("N"))).FullName;
        File.WriteAllText(Path.Combine(outside, "secret.txt"), "not an artifact");
        Directory.CreateDirectory(Path.Combine(outside, "deeper"));
        File.WriteAllText(Path.Combine(outside, "deeper", "more.txt"), "nor this");
        var (exit, _, work, warnings, experiment, stored) = await Capture(kind, """
            mkdir -p checkpoints
            head -c 70000 /dev/urandom > checkpoints/epoch=3.ckpt
            ln -s epoch=3.ckpt checkpoints/last.ckpt           # a relative link inside: arrives
            ln -s "$PWD/checkpoints/epoch=3.ckpt" best.ckpt     # an absolute one inside: arrives
            ln -s /etc/hostname hostname                        # out of the folder: never read
            ln -s "$OUTSIDE/secret.txt" secret.txt
            ln -s "$OUTSIDE" outside-folder
            ln -s "$OUTSIDE/deeper/../secret.txt" twisty.txt
            if [ -n "$STORE" ]; then ln -s "$STORE" store; ln -s "$STORE/runs/hostile/run.json" run.json; fi
            echo done > done.txt
            """, new() { ["OUTSIDE"] = outside });

        Assert.Equal(0, exit);
        Assert.Equal(GridStatus.Succeeded, experiment.Status);
        var target = TestBytes.Sha256(Path.Combine(work, "checkpoints", "epoch=3.ckpt"));
        Assert.Equal(
            new[] { "best.ckpt", "checkpoints/epoch=3.ckpt", "checkpoints/last.ckpt", "done.txt" },
            stored.Keys.Order(StringComparer.Ordinal).ToArray());
        Assert.Equal(target, stored["checkpoints/last.ckpt"]);
        Assert.Equal(target, stored["best.ckpt"]);
        // Each link out is named once, with where it leads.
        var links = new List<(string Name, string Target)> { ("hostname", "/etc/hostname"), ("secret.txt", outside), ("outside-folder", outside), ("twisty.txt", outside) };
        if (kind == "fs") links.AddRange(new[] { ("store", "store-"), ("run.json", "store-") });
        foreach (var (name, to) in links)
        {
            Assert.Contains(to, Assert.Single(warnings, w => Names(w, work, name)));
        }
    }

    [Theory]
    [InlineData("fs")]
    [InlineData("s3")]
    public async Task Links_round_in_loops_are_never_followed_and_each_file_is_stored_once(string kind)
    {
        var (exit, _, work, warnings, experiment, stored) = await Capture(kind, """
            mkdir -p loop/inner
            echo a > loop/a.txt
            echo b > loop/inner/b.txt
            ln -s .. loop/parent
            ln -s . self1
            ln -s . self2
            ln -s ../.. loop/inner/grandparent
            ln -s knot1 knot2; ln -s knot2 knot1                # a file link loop
            echo top > top.txt
            """);

        Assert.Equal(0, exit);
        Assert.Equal(GridStatus.Succeeded, experiment.Status);
        Assert.Equal(new[] { "loop/a.txt", "loop/inner/b.txt", "top.txt" }, stored.Keys.Order(StringComparer.Ordinal).ToArray());
        foreach (var link in new[] { "loop/parent", "self1", "self2", "loop/inner/grandparent", "knot1", "knot2" })
        {
            Assert.Contains("loop", Assert.Single(warnings, w => Names(w, work, link)));
        }
    }

    [Theory]
    [InlineData("fs")]
    [InlineData("s3")]
    public async Task A_FIFO_a_socket_and_devices_are_never_opened_and_the_experiment_ends(string kind)
    {
        var (exit, _, work, warnings, experiment, stored) = await Capture(kind, """
            mkfifo pipe
            python3 -c "import socket; s = socket.socket(socket.AF_UNIX); s.bind('sock')"
            ln -s /dev/zero zero.bin
            ln -s /dev/urandom random.bin
            mkfifo inside.fifo; ln -s inside.fifo fifo-link
            echo fine > fine.txt
            """);

        Assert.Equal(0, exit);
        Assert.Equal(GridStatus.Succeeded, experiment.Status);
        Assert.Equal(new[] { "fine.txt" }, stored.Keys.ToArray());
        Assert.Contains("FIFO", Assert.Single(warnings, w => Names(w, work, "pipe")));
        Assert.Contains("socket", Assert.Single(warnings, w => Names(w, work, "sock")));
        Assert.Contains("character device", Assert.Single(warnings, w => Names(w, work, "zero.bin")));
        Assert.Contains("FIFO", Assert.Single(warnings, w => Names(w, work, "fifo-link")));
        foreach (var name in new[] { "pipe", "sock", "zero.bin", "random.bin", "inside.fifo", "fifo-link" })
        {
            Assert.Contains(experiment.Sync!.Unstorable, u => u.StartsWith(name + ":", StringComparison.Ordinal));
        }
    }

    [Theory]
    [InlineData("fs")]
    [InlineData("s3")]
    public async Task A_second_root_that_is_the_first_by_another_path_is_not_walked_twice(string kind)
    {
        var work = Directory.CreateDirectory(_temp.Sub("work-" + Guid.NewGuid().ToString("N"))).FullName;
        var alias = _temp.Sub("alias-" + Guid.NewGuid().ToString("N"));
        File.CreateSymbolicLink(alias, work);
        var (exit, _, _, warnings, _, stored) = await Capture(kind, """
            echo one > one.txt
            """, roots: new[] { alias }, work: work);
        Assert.Equal(0, exit);
        Assert.Equal(new[] { "one.txt" }, stored.Keys.ToArray());
        Assert.Contains(warnings, w => w.Contains(alias) && w.Contains("same device and inode"));
    }

    [Theory]
    [InlineData("fs")]
    [InlineData("s3")]
    public async Task A_file_that_grows_while_it_goes_up_is_sent_as_far_as_it_was_when_opened(string kind)
    {
        var (catalog, _) = Catalog(kind);
        var path = _temp.WriteFile("growing.log", TestBytes.Random(100_000, 7));
        var first = File.ReadAllBytes(path);
        using var file = LocalFile.Open(path);
        await using (var more = new FileStream(path, FileMode.Append)) more.Write(TestBytes.Random(50_000, 8));
        var entry = await catalog.Artifacts.PutArtifactFileAsync("grow", "exp0", "growing.log", file, default);
        Assert.Equal(first.Length, entry.Size);
        Assert.Equal(TestBytes.Sha256(first), entry.Sha256);
        Assert.True(file.ChangedSinceOpened(out var now, out _));
        Assert.Equal(150_000, now);
    }

    [Theory]
    [InlineData("fs")]
    [InlineData("s3")]
    public async Task An_imported_folder_gives_up_no_file_outside_it_and_opens_no_special_file(string kind)
    {
        var (catalog, _) = Catalog(kind);
        var outside = Directory.CreateDirectory(_temp.Sub("outside-" + Guid.NewGuid().ToString("N"))).FullName;
        File.WriteAllText(Path.Combine(outside, "secret.txt"), "not an artifact");
        var src = Directory.CreateDirectory(_temp.Sub("src-" + Guid.NewGuid().ToString("N"))).FullName;
        var model = _temp.WriteFile(Path.GetFileName(src) + "/model.ckpt", TestBytes.Random(40_000, 3));
        File.CreateSymbolicLink(Path.Combine(src, "last.ckpt"), "model.ckpt");
        File.CreateSymbolicLink(Path.Combine(src, "secret.txt"), Path.Combine(outside, "secret.txt"));
        Directory.CreateSymbolicLink(Path.Combine(src, "elsewhere"), outside);
        System.Diagnostics.Process.Start("mkfifo", Path.Combine(src, "pipe")).WaitForExit();

        var skipped = new List<string>();
        var files = ArtifactImporter.ListFiles(src, new ModuleFolders(catalog.Store), skipped.Add, out var scope);
        var errors = new List<GridException>();
        var imported = await new ArtifactImporter(catalog).ImportAsync(new ImportRequest { Run = "imported", Experiment = "exp0", Files = files, Scope = scope },
            errors.Add, _ => { }, default).WaitAsync(TimeSpan.FromSeconds(60));

        var stored = await TestStore.StoredHashes(catalog, "imported");
        Assert.Equal(new[] { "last.ckpt", "model.ckpt" }, stored.Keys.Order(StringComparer.Ordinal).ToArray());
        Assert.Equal(TestBytes.Sha256(model), stored["last.ckpt"]);
        Assert.Contains(outside, Assert.Single(skipped, w => w.Contains(Path.Combine(src, "elsewhere"))));
        Assert.Equal(new[] { "pipe", "secret.txt" }, errors.Select(e => Path.GetFileName((string)e.Target!)).Order(StringComparer.Ordinal).ToArray());
        Assert.All(errors, e => Assert.Equal(GridErrorKind.UnsafePath, e.Kind));
        Assert.Equal(GridStatus.Failed, imported.Status);
    }

    [Fact]
    public async Task A_link_to_the_folder_store_is_known_for_the_store_by_import_and_by_capture()
    {
        var (catalog, store) = Catalog("fs");
        await catalog.Artifacts.PutArtifactFileAsync("older", "exp0", "a.txt", _temp.WriteFile("a.txt", TestBytes.Random(100, 1)), default);
        var link = _temp.Sub("store-link");
        Directory.CreateSymbolicLink(link, store!);

        var refused = Assert.Throws<GridException>(() => ArtifactImporter.ListFiles(link, new ModuleFolders(catalog.Store), _ => { }));
        Assert.Equal("SourceInStore", refused.ErrorId);
        Assert.Throws<GridException>(() => ArtifactImporter.ListFiles(Path.Combine(link, "runs"), new ModuleFolders(catalog.Store), _ => { }));

        // A root that is the store by a link: nothing of the store is read, and the experiment ends.
        var (exit, _, _, warnings, experiment, stored) = await Capture("fs", "touch \"$ROOT/runs/older/new.txt\"", new() { ["ROOT"] = link }, roots: new[] { link }, store: (catalog, store));
        Assert.Equal(0, exit);
        Assert.Empty(stored);
        Assert.Single(warnings, w => w.StartsWith($"Skipped '{link}': it is the store's own folder", StringComparison.Ordinal));
    }

    private static bool IsRoot => Environment.UserName == "root";

    private static void Run(string command)
    {
        using var p = System.Diagnostics.Process.Start("bash", new[] { "-c", command })!;
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, $"'{command}' failed with {p.ExitCode}");
    }

    /// <summary>Bind mounts need root: as anyone else these two tests check nothing (CI runs them as root).</summary>
    [Fact]
    public async Task The_store_bind_mounted_into_the_folder_is_known_by_device_and_inode_and_never_read()
    {
        if (!IsRoot) return;
        var (catalog, store) = Catalog("fs");
        await catalog.Artifacts.PutArtifactFileAsync("older", "exp0", "a.txt", _temp.WriteFile("a.txt", TestBytes.Random(100, 1)), default);
        var work = Directory.CreateDirectory(_temp.Sub("work-" + Guid.NewGuid().ToString("N"))).FullName;
        var mount = Directory.CreateDirectory(Path.Combine(work, "st")).FullName;
        Run($"mount --bind '{store}' '{mount}'");
        try
        {
            var (exit, _, _, warnings, experiment, stored) = await Capture("fs", "echo mine > mine.txt; touch st/runs/older/touched", work: work, store: (catalog, store));
            Assert.Equal(0, exit);
            Assert.Equal(new[] { "mine.txt" }, stored.Keys.ToArray());
            Assert.Contains("bind mount", Assert.Single(warnings, w => Names(w, work, "st")));
            var imported = ArtifactImporter.ListFiles(work, new ModuleFolders(catalog.Store), warnings.Add);
            Assert.DoesNotContain(imported, f => f.Path.StartsWith("st/", StringComparison.Ordinal));
        }
        finally { Run($"umount '{mount}'"); }
    }

    [Fact]
    public async Task A_folder_bind_mounted_into_itself_is_walked_once_and_the_agent_lives()
    {
        if (!IsRoot) return;
        var work = Directory.CreateDirectory(_temp.Sub("work-" + Guid.NewGuid().ToString("N"))).FullName;
        var self = Directory.CreateDirectory(Path.Combine(work, "self")).FullName;
        Run($"mount --bind '{work}' '{self}'");
        try
        {
            var (exit, _, _, warnings, experiment, stored) = await Capture("fs", "mkdir -p sub; echo a > sub/a.txt; echo b > b.txt; sleep 1; echo c > sub/c.txt", work: work);
            Assert.Equal(0, exit);
            Assert.Equal(GridStatus.Succeeded, experiment.Status);
            Assert.Equal(new[] { "b.txt", "sub/a.txt", "sub/c.txt" }, stored.Keys.Order(StringComparer.Ordinal).ToArray());
            Assert.Single(warnings, w => Names(w, work, "self"));
            var files = ArtifactImporter.ListFiles(work, new ModuleFolders(new FileSystemStore(_temp.Sub("other-store"))), warnings.Add);
            Assert.Equal(files.Count, files.Select(f => f.Path.Replace("self/", "")).Distinct().Count());
        }
        finally { Run($"umount '{self}'"); }
    }

    [Fact]
    public async Task A_tree_deeper_than_any_artifact_path_neither_stops_the_start_nor_the_agent()
    {
        var work = Directory.CreateDirectory(_temp.Sub("work-" + Guid.NewGuid().ToString("N"))).FullName;
        // 25 levels of 200 characters: past PATH_MAX, made before the start and by the script.
        var level = new string('d', 200);
        var deep = $"for i in $(seq 1 25); do mkdir {level} && cd {level}; done; echo x > deep.txt";
        Run($"cd '{work}' && mkdir before && cd before && {deep}");
        var (exit, _, _, warnings, experiment, stored) = await Capture("fs", $"(mkdir during && cd during && {deep}); echo fine > fine.txt", work: work);
        Assert.Equal(0, exit);
        Assert.Equal(GridStatus.Succeeded, experiment.Status);
        Assert.Equal(new[] { "fine.txt" }, stored.Keys.ToArray());
        Assert.Contains(warnings, w => w.Contains($"/during/{level}/") && w.Contains("longer than an artifact's may be"));
        Run($"rm -rf '{work}/before' '{work}/during'"); // deeper than the test's own clean-up can go
    }

    [Fact]
    public async Task A_link_that_leads_nowhere_is_said_and_one_that_comes_to_lead_somewhere_arrives()
    {
        var (exit, _, work, warnings, experiment, stored) = await Capture("fs", """
            ln -s missing.txt nowhere
            ln -s later.txt soon
            # Once the agent's record lists the link as leading nowhere (or after 20 s, and the test fails), it comes to lead somewhere.
            for i in $(seq 1 200); do grep -q '"soon: it is a link that leads nowhere' "$STORE/runs/hostile/exp0/experiment.json" 2>/dev/null && break; sleep 0.1; done
            echo arrived > later.txt
            """);
        Assert.Equal(0, exit);
        Assert.Contains(warnings, w => Names(w, work, "soon") && w.Contains("leads nowhere"));
        Assert.Equal(new[] { "later.txt", "soon" }, stored.Keys.Order(StringComparer.Ordinal).ToArray());
        Assert.Equal(stored["later.txt"], stored["soon"]);
        Assert.Contains("leads nowhere", Assert.Single(experiment.Sync!.Unstorable, u => u.StartsWith("nowhere:", StringComparison.Ordinal)));
        Assert.DoesNotContain(experiment.Sync!.Unstorable, u => u.StartsWith("soon:", StringComparison.Ordinal));
    }

    [Fact]
    public async Task The_record_names_at_most_a_thousand_files_not_stored_and_counts_the_rest()
    {
        // One mkfifo for all: a process per FIFO took most of the test's time.
        var (exit, _, _, warnings, experiment, stored) = await Capture("fs", "mkfifo p{1..1050}; echo ok > ok.txt");
        Assert.Equal(0, exit);
        Assert.Equal(new[] { "ok.txt" }, stored.Keys.ToArray());
        Assert.Equal(CaptureAgent.MaxUnstorableListed + 1, experiment.Sync!.Unstorable.Count);
        Assert.Equal("... and 50 more, named in the agent's warnings", experiment.Sync.Unstorable[^1]);
        Assert.Equal(1050, warnings.Count(w => w.Contains("FIFO")));
    }

    [Fact]
    public async Task A_target_whose_real_path_is_not_UTF8_never_passes_for_a_folder_whose_name_is()
    {
        // The root's name holds U+FFFD (a legal character); a sibling's holds the byte 0xFF, which a
        // lossy decoding would read as U+FFFD too.
        var work = Directory.CreateDirectory(_temp.Sub("w\uFFFD-" + Guid.NewGuid().ToString("N"))).FullName;
        var (exit, _, _, warnings, _, stored) = await Capture("fs", """
            sibling="$(dirname "$PWD")/$(basename "$PWD" | sed 's/\xEF\xBF\xBD/\xFF/')"
            mkdir "$sibling"; echo TOPSECRET > "$sibling/secret.txt"
            ln -s "$sibling/secret.txt" coll.lnk
            echo ok > ok.txt
            """, work: work);
        Assert.Equal(0, exit);
        Assert.Equal(new[] { "ok.txt" }, stored.Keys.ToArray());
        Assert.Contains("not valid UTF-8", Assert.Single(warnings, w => Names(w, work, "coll.lnk")));
    }
}
