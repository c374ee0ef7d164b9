using System.Management.Automation;
using System.Text;
using GridArtifacts.Core;
using GridArtifacts.Core.Stores;
using GridArtifacts.Core.Transfer;
using GridArtifacts.Model;
using Xunit;

namespace GridArtifacts.Tests;

/// <summary>
/// A save into a destination that holds more than ours: artifacts named like temporary files, links
/// planted where a save writes, and names as long as a file system allows. Whole files go through
/// Save-GridArtifact; ranged ones through the engine with small ranges, planned as the cmdlet plans them.
/// </summary>
public abstract class DownloadSafetyTests : IDisposable
{
    protected readonly TempDir Temp = new();
    private readonly List<ModuleHost> _hosts = new();

    /// <summary>A new, empty store: a folder or an S3 URI.</summary>
    protected abstract string NewStore();

    public void Dispose()
    {
        foreach (var h in _hosts) h.Dispose();
        Temp.Dispose();
    }

    private const int Small = 5_000;
    private const int Large = 1_300_000; // over the engine's 1 MiB threshold below: five ranges

    private readonly TransferEngine _ranged = new(new TransferOptions { RangedThreshold = 1 << 20, PartSize = 256 << 10, PartsPerFile = 4 });

    private sealed record Outcome(Dictionary<string, GridSaveAction> Saved, List<string> Errors);

    /// <summary>A store holding one run with these files in exp0 (imported as a user would), and a shell on it.</summary>
    private (string Store, ModuleHost Host) Imported(string run, Dictionary<string, byte[]> files)
    {
        var store = NewStore();
        var host = new ModuleHost(store);
        _hosts.Add(host);
        var src = Temp.Sub("src-" + Guid.NewGuid().ToString("N"));
        foreach (var (path, data) in files)
        {
            var file = Path.Combine(new[] { src }.Concat(path.Split('/')).ToArray());
            Directory.CreateDirectory(Path.GetDirectoryName(file)!);
            File.WriteAllBytes(file, data);
        }
        host.Run("Import-GridArtifact -Path $args[0] -Run $args[1] -Experiment exp0 | Out-Null", src, run);
        return (store, host);
    }

    /// <summary>Saves a run's artifacts (those named, or all) to <paramref name="dest"/>: through the cmdlet, or ranged through the engine.</summary>
    private async Task<Outcome> Save(string store, ModuleHost host, string run, string dest, bool ranged, bool force = false, params string[] paths)
    {
        if (!ranged)
        {
            var script = "Save-GridArtifact $args[0] -Destination $args[1] -PassThru -Force:$args[2]" + (paths.Length > 0 ? " -Path $args[3]" : "");
            var (output, errors) = host.Invoke(script, new object[] { run, dest, force, paths });
            return new Outcome(
                output.Select(o => (GridSaveResult)o.BaseObject).ToDictionary(r => r.Path, r => r.Action, StringComparer.Ordinal),
                errors.Select(e => e.FullyQualifiedErrorId.Split(',')[0]).ToList());
        }
        var catalog = Catalogs.Open(store);
        var listed = await catalog.Artifacts.GetArtifactsAsync(run, "exp0", default);
        Assert.Empty(listed.Errors);
        var items = listed.Items.Where(a => paths.Length == 0 || paths.Contains(a.Path))
            .Select(a => new SaveItem(a, GridNames.LocalPathFor(dest, a.Run, a.Experiment, a.Path)) { Root = dest }).ToList();
        Assert.All(items, i => Assert.True(i.Artifact.Size > _ranged.Options.RangedThreshold));
        var saved = new Dictionary<string, GridSaveAction>(StringComparer.Ordinal);
        var failed = new List<string>();
        await _ranged.DownloadAsync(items, _ => catalog, force, 4, new TransferProgress(items.Count, items.Sum(i => i.Artifact.Size)),
            r => { lock (saved) saved[r.Path] = r.Action; }, e => { lock (failed) failed.Add(e.ErrorId); }, default);
        return new Outcome(saved, failed);
    }

    private static string Local(string dest, string run, string path) => GridNames.LocalPathFor(dest, run, "exp0", path);

    private static bool IsLink(string path) => new FileInfo(path).LinkTarget is not null;

    /// <summary>Every entry under a folder (links not followed), relative, sorted.</summary>
    private static List<string> Tree(string folder) =>
        new DirectoryInfo(folder).EnumerateFileSystemInfos("*", new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = 0 })
            .Select(i => Path.GetRelativePath(folder, i.FullName)).OrderBy(p => p, StringComparer.Ordinal).ToList();

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task An_artifact_and_one_named_like_its_temporary_file_both_save_and_a_forced_save_keeps_the_other(bool ranged)
    {
        var size = ranged ? Large : Small;
        var files = new Dictionary<string, byte[]>
        {
            ["model.ckpt"] = TestBytes.Random(size, 1),
            ["model.ckpt.part"] = TestBytes.Random(size, 2),
            ["model.ckpt.part.json"] = TestBytes.Random(size, 3),
        };
        var (store, host) = Imported("part-names", files);

        // Both at once, into a new folder.
        var dest = Temp.Sub("together");
        var both = await Save(store, host, "part-names", dest, ranged);
        Assert.Empty(both.Errors);
        Assert.Equal(files.Keys.Order(StringComparer.Ordinal), both.Saved.Keys.Order(StringComparer.Ordinal));
        Assert.All(both.Saved.Values, a => Assert.Equal(GridSaveAction.Downloaded, a));
        foreach (var (path, data) in files) Assert.Equal(TestBytes.Sha256(data), TestBytes.Sha256(Local(dest, "part-names", path)));
        // Nothing else is left behind: no temporary file, no folder of the save's own.
        Assert.Equal(new[] { "part-names", "part-names/exp0" }.Concat(files.Keys.Select(k => "part-names/exp0/" + k)).Order(StringComparer.Ordinal),
            Tree(dest).Select(p => p.Replace('\\', '/')));

        // One after the other, the one named like the other's temporary file first; then the other again with -Force.
        var apart = Temp.Sub("apart");
        Assert.Empty((await Save(store, host, "part-names", apart, ranged, false, "model.ckpt.part", "model.ckpt.part.json")).Errors);
        var user = Local(apart, "part-names", "notes.txt.part"); // a user's own file beside them
        File.WriteAllText(user, "mine");
        Assert.Empty((await Save(store, host, "part-names", apart, ranged, false, "model.ckpt")).Errors);
        var forced = await Save(store, host, "part-names", apart, ranged, true, "model.ckpt");
        Assert.Empty(forced.Errors);
        Assert.Equal(GridSaveAction.Overwritten, forced.Saved["model.ckpt"]);
        foreach (var (path, data) in files) Assert.Equal(TestBytes.Sha256(data), TestBytes.Sha256(Local(apart, "part-names", path)));
        Assert.Equal("mine", File.ReadAllText(user));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_link_where_a_temporary_file_used_to_go_is_neither_written_through_nor_saved_as_the_artifact(bool ranged)
    {
        var size = ranged ? Large : Small;
        var data = TestBytes.Random(size, 4);
        var (store, host) = Imported("planted", new() { ["a.bin"] = data });
        var dest = Temp.Sub("dest");
        var victim = Temp.WriteFile("outside/victim.bin", TestBytes.Random(size, 5));
        var before = TestBytes.Sha256(victim);
        var target = Local(dest, "planted", "a.bin");
        Directory.CreateDirectory(Path.GetDirectoryName(target)!);
        File.CreateSymbolicLink(target + ".part", victim);

        var saved = await Save(store, host, "planted", dest, ranged);
        Assert.Empty(saved.Errors);
        Assert.Equal(GridSaveAction.Downloaded, saved.Saved["a.bin"]);
        Assert.False(IsLink(target));
        Assert.Equal(TestBytes.Sha256(data), TestBytes.Sha256(target));
        Assert.Equal(before, TestBytes.Sha256(victim));
        Assert.Equal(victim, new FileInfo(target + ".part").LinkTarget); // not ours: left as it was
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_link_at_the_artifact_path_is_replaced_by_the_file_and_what_it_points_to_is_left_alone(bool ranged)
    {
        var size = ranged ? Large : Small;
        var data = TestBytes.Random(size, 6);
        var (store, host) = Imported("linked-file", new() { ["a.bin"] = data, ["b.bin"] = TestBytes.Random(size, 7) });
        var dest = Temp.Sub("dest");
        // One link to a file with the artifact's very content (which looks up to date), one to a file that differs.
        var same = Temp.WriteFile("outside/same.bin", data);
        var other = Temp.WriteFile("outside/other.bin", TestBytes.Random(size, 8));
        var otherBefore = TestBytes.Sha256(other);
        Directory.CreateDirectory(Path.GetDirectoryName(Local(dest, "linked-file", "a.bin"))!);
        File.CreateSymbolicLink(Local(dest, "linked-file", "a.bin"), same);
        File.CreateSymbolicLink(Local(dest, "linked-file", "b.bin"), other);

        var saved = await Save(store, host, "linked-file", dest, ranged);
        Assert.Empty(saved.Errors);
        Assert.Equal(GridSaveAction.Overwritten, saved.Saved["a.bin"]);
        Assert.Equal(GridSaveAction.Overwritten, saved.Saved["b.bin"]);
        foreach (var name in new[] { "a.bin", "b.bin" })
        {
            Assert.False(IsLink(Local(dest, "linked-file", name)));
        }
        Assert.Equal(TestBytes.Sha256(data), TestBytes.Sha256(Local(dest, "linked-file", "a.bin")));
        Assert.Equal(TestBytes.Sha256(data), TestBytes.Sha256(same));
        Assert.Equal(otherBefore, TestBytes.Sha256(other));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_linked_folder_below_the_destination_is_refused_for_its_files_and_the_others_save(bool ranged)
    {
        var size = ranged ? Large : Small;
        var files = new Dictionary<string, byte[]>
        {
            ["sub/f.bin"] = TestBytes.Random(size, 9),
            ["sub/deeper/g.bin"] = TestBytes.Random(size, 10),
            ["ok.bin"] = TestBytes.Random(size, 11),
            ["fine/h.bin"] = TestBytes.Random(size, 12),
        };
        var (store, host) = Imported("linked-folder", files);
        var dest = Temp.Sub("dest");
        var outside = Temp.Sub("outside");
        Directory.CreateDirectory(outside);
        Directory.CreateDirectory(Path.Combine(dest, "linked-folder", "exp0"));
        Directory.CreateSymbolicLink(Path.Combine(dest, "linked-folder", "exp0", "sub"), outside);

        var saved = await Save(store, host, "linked-folder", dest, ranged);
        Assert.Equal(new[] { "LinkedFolder", "LinkedFolder" }, saved.Errors);
        Assert.Equal(new[] { "fine/h.bin", "ok.bin" }, saved.Saved.Keys.Order(StringComparer.Ordinal));
        Assert.Equal(TestBytes.Sha256(files["ok.bin"]), TestBytes.Sha256(Local(dest, "linked-folder", "ok.bin")));
        Assert.Equal(TestBytes.Sha256(files["fine/h.bin"]), TestBytes.Sha256(Local(dest, "linked-folder", "fine/h.bin")));
        Assert.Empty(Directory.EnumerateFileSystemEntries(outside));

        // The experiment's folder itself a link: every file of it is refused, nothing lands where it points.
        var dest2 = Temp.Sub("dest2");
        Directory.CreateDirectory(Path.Combine(dest2, "linked-folder"));
        Directory.CreateSymbolicLink(Path.Combine(dest2, "linked-folder", "exp0"), outside);
        var refused = await Save(store, host, "linked-folder", dest2, ranged);
        Assert.Empty(refused.Saved);
        Assert.Equal(Enumerable.Repeat("LinkedFolder", files.Count), refused.Errors);
        Assert.Empty(Directory.EnumerateFileSystemEntries(outside));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Links_at_the_saves_own_temporary_names_are_refused_and_never_written_through(bool ranged)
    {
        var size = ranged ? Large : Small;
        var data = TestBytes.Random(size, 13);
        var (store, host) = Imported("own-names", new() { ["a.bin"] = data });
        var artifact = Assert.Single((await Catalogs.Open(store).Artifacts.GetArtifactsAsync("own-names", "exp0", default)).Items);
        var outside = Temp.Sub("outside");
        var victim = Temp.WriteFile("outside/victim.bin", TestBytes.Random(size, 14));
        var before = TestBytes.Sha256(victim);

        // The save's folder for temporary files is a link: refused, nothing lands where it points.
        var dest = Temp.Sub("dest");
        Directory.CreateDirectory(dest);
        Directory.CreateSymbolicLink(Path.Combine(dest, TransferEngine.PartialFolder), outside);
        var refused = await Save(store, host, "own-names", dest, ranged);
        Assert.Equal(new[] { "LinkedFolder" }, refused.Errors);
        Assert.False(File.Exists(Local(dest, "own-names", "a.bin")));
        Assert.Equal(new[] { "victim.bin" }, Tree(outside));

        // A link at the very name of the artifact's temporary file: refused, its target unchanged, the link kept.
        var dest2 = Temp.Sub("dest2");
        var part = TransferEngine.PartPathOf(new SaveItem(artifact, Local(dest2, "own-names", "a.bin")) { Root = dest2 });
        Directory.CreateDirectory(Path.GetDirectoryName(part)!);
        File.CreateSymbolicLink(part, victim);
        var linked = await Save(store, host, "own-names", dest2, ranged);
        Assert.Equal(new[] { "LinkedPartFile" }, linked.Errors);
        Assert.False(File.Exists(Local(dest2, "own-names", "a.bin")));
        Assert.Equal(before, TestBytes.Sha256(victim));
        Assert.Equal(victim, new FileInfo(part).LinkTarget);

        // Once the link is gone, the save goes through and leaves no folder of its own behind.
        File.Delete(part);
        Assert.Empty((await Save(store, host, "own-names", dest2, ranged)).Errors);
        Assert.Equal(TestBytes.Sha256(data), TestBytes.Sha256(Local(dest2, "own-names", "a.bin")));
        Assert.False(Directory.Exists(Path.Combine(dest2, TransferEngine.PartialFolder)));
    }

    [Fact]
    public async Task An_interrupted_ranged_download_of_a_long_name_resumes_from_the_saves_own_folder()
    {
        var name = new string('r', LongestFileName - 4) + ".bin";
        var data = TestBytes.Random(Large, 15);
        var (store, _) = Imported("resumed", new() { [name] = data });
        var catalog = Catalogs.Open(store);
        var artifact = Assert.Single((await catalog.Artifacts.GetArtifactsAsync("resumed", "exp0", default)).Items);
        var dest = Temp.Sub("dest");
        var item = new SaveItem(artifact, Local(dest, "resumed", name)) { Root = dest };
        var progress = () => new TransferProgress(1, artifact.Size);

        // A store that goes away after two ranges: the part file and its state stay in the save's folder, and nowhere else.
        var errors = new List<GridException>();
        var failing = new GridCatalog(new FailingAfterStore(catalog.Store, reads: 2));
        await _ranged.DownloadAsync(new[] { item }, _ => failing, false, 1, progress(), _ => { }, errors.Add, default);
        Assert.Single(errors);
        Assert.False(File.Exists(item.LocalPath));
        Assert.True(File.Exists(TransferEngine.PartPathOf(item)));
        Assert.StartsWith(Path.Combine(dest, TransferEngine.PartialFolder), TransferEngine.StatePathOf(item));
        int recorded;
        using (var state = System.Text.Json.JsonDocument.Parse(File.ReadAllBytes(TransferEngine.StatePathOf(item))))
        {
            recorded = state.RootElement.GetProperty("done").GetArrayLength(); // the second read may be cut short with the others
        }
        Assert.InRange(recorded, 1, 2);
        Assert.Empty(Directory.EnumerateFileSystemEntries(Path.GetDirectoryName(item.LocalPath)!));

        // The next call reads only the ranges missing (of five), and ends byte-exact with nothing of its own left.
        var counting = new FailingAfterStore(catalog.Store, reads: int.MaxValue);
        var saved = new List<GridSaveResult>();
        await _ranged.DownloadAsync(new[] { item }, _ => new GridCatalog(counting), false, 1, progress(), saved.Add, e => throw e, default);
        Assert.Equal(GridSaveAction.Downloaded, Assert.Single(saved).Action);
        Assert.Equal(5 - recorded, counting.Reads);
        Assert.Equal(TestBytes.Sha256(data), TestBytes.Sha256(item.LocalPath));
        Assert.False(Directory.Exists(Path.Combine(dest, TransferEngine.PartialFolder)));
    }

    /// <summary>The longest file name the store holds: 255 bytes, as a file system allows.</summary>
    protected virtual int LongestFileName => 255;

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Names_of_251_to_255_bytes_save_byte_exact(bool ranged)
    {
        var size = ranged ? Large : Small;
        var longest = LongestFileName;
        var files = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        for (var n = longest - 4; n <= longest; n++) files[new string('n', n - 4) + ".bin"] = TestBytes.Random(size, n);
        var twoByte = (longest - 1) / 2;
        files[string.Concat(Enumerable.Repeat("\u00e9", twoByte)) + new string('x', longest - 2 * twoByte)] = TestBytes.Random(size, 1);   // in two-byte letters
        files[new string('d', 255) + "/" + new string('f', longest - 3) + ".pt"] = TestBytes.Random(size, 2);                          // under a folder of 255 bytes
        Assert.All(files.Keys, k => Assert.InRange(Encoding.UTF8.GetByteCount(k.Split('/')[^1]), longest - 4, longest));
        var (store, host) = Imported("long-names", files);
        var dest = Temp.Sub("dest");

        var saved = await Save(store, host, "long-names", dest, ranged);
        Assert.Empty(saved.Errors);
        Assert.Equal(files.Keys.Order(StringComparer.Ordinal), saved.Saved.Keys.Order(StringComparer.Ordinal));
        var exp = Path.Combine(dest, "long-names", "exp0");
        foreach (var (path, data) in files)
        {
            Assert.Equal(TestBytes.Sha256(data), TestBytes.Sha256(Local(dest, "long-names", path)));
        }
        // The names on disk are the names stored, byte for byte.
        var onDisk = Directory.EnumerateFiles(exp, "*", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(exp, f).Replace('\\', '/'));
        Assert.Equal(files.Keys.Select(Encoding.UTF8.GetBytes).Select(Convert.ToHexString).Order(StringComparer.Ordinal),
            onDisk.Select(Encoding.UTF8.GetBytes).Select(Convert.ToHexString).Order(StringComparer.Ordinal));
    }
}

public sealed class FolderDownloadSafetyTests : DownloadSafetyTests
{
    protected override string NewStore() => Temp.Sub("store-" + Guid.NewGuid().ToString("N"));
}

[Collection(S3Collection.Name)]
public sealed class S3DownloadSafetyTests(S3ServerFixture s3) : DownloadSafetyTests
{
    protected override string NewStore() => s3.StoreUri(s3.NewBucket(), "safety");

    /// <summary>
    /// s3rver keeps each object as a file with <c>._S3rver_metadata.json</c> (23 bytes) after its name,
    /// so it holds file names up to 232 bytes (and folders up to 255); S3 itself holds them all.
    /// </summary>
    protected override int LongestFileName => 232;
}
