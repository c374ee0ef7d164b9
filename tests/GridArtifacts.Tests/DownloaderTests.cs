using GridArtifacts.Core;
using GridArtifacts.Model;
using GridArtifacts.Core.Stores;
using GridArtifacts.Core.Transfer;
using Xunit;

namespace GridArtifacts.Tests;

public class DownloaderTests : IDisposable
{
    private readonly TempDir _temp = new();
    private readonly GridCatalog _catalog;

    public DownloaderTests() => _catalog = new GridCatalog(new FileSystemStore(_temp.Sub("store")));

    public void Dispose() => _temp.Dispose();

    private async Task<GridArtifact> Stored(string path, byte[] data)
    {
        var entry = await _catalog.PutArtifactFileAsync("run", "exp0", path, _temp.WriteFile("src/" + path, data), default);
        var manifest = await _catalog.ReadManifestAsync("run", "exp0", default) ?? new ManifestRecord { Run = "run", Experiment = "exp0" };
        manifest.Artifacts.RemoveAll(a => a.Path == path);
        manifest.Artifacts.Add(entry);
        await _catalog.WriteManifestAsync(manifest, default);
        await _catalog.WriteExperimentRecordAsync(new ExperimentRecord { Run = "run", Experiment = "exp0", Status = GridStatus.Succeeded }, default);
        return (await _catalog.GetArtifactsAsync("run", "exp0", default)).Items.Single(a => a.Path == path);
    }

    private async Task<(List<GridSaveResult> Done, List<GridException> Errors)> Save(bool force, params SaveItem[] items)
    {
        var done = new List<GridSaveResult>();
        var errors = new List<GridException>();
        var downloader = new ArtifactDownloader(_ => _catalog);
        await downloader.RunAsync(items, force, 4, new TransferProgress(items.Length, items.Sum(i => i.Artifact.Size)),
            r => { lock (done) done.Add(r); }, e => { lock (errors) errors.Add(e); }, default);
        return (done, errors);
    }

    [Fact]
    public async Task Downloads_verify_skip_identical_and_replace_changed_files()
    {
        var data = TestBytes.Random(3_000_000, 11);
        var artifact = await Stored("ckpt/model.pt", data);
        var target = _temp.Sub("dest", "run", "exp0", "ckpt", "model.pt");

        var first = await Save(false, new SaveItem(artifact, target));
        Assert.Empty(first.Errors);
        Assert.Equal(GridSaveAction.Downloaded, Assert.Single(first.Done).Action);
        Assert.Equal(TestBytes.Sha256(data), TestBytes.Sha256(target));
        Assert.False(File.Exists(target + ArtifactDownloader.PartSuffix));

        var again = await Save(false, new SaveItem(artifact, target));
        Assert.Equal(GridSaveAction.Skipped, Assert.Single(again.Done).Action);

        File.WriteAllBytes(target, TestBytes.Random(3_000_000, 12));
        var changed = await Save(false, new SaveItem(artifact, target));
        Assert.Equal(GridSaveAction.Overwritten, Assert.Single(changed.Done).Action);
        Assert.Equal(TestBytes.Sha256(data), TestBytes.Sha256(target));

        var forced = await Save(true, new SaveItem(artifact, target));
        Assert.Equal(GridSaveAction.Overwritten, Assert.Single(forced.Done).Action);
    }

    [Fact]
    public async Task Content_that_does_not_match_its_recorded_hash_is_never_left_at_the_final_path()
    {
        var artifact = await Stored("metrics.csv", TestBytes.Random(10_000, 1));
        // The stored bytes change behind the manifest's back (bit rot, a torn upload): same size, other content.
        File.WriteAllBytes(_temp.Sub("store", "runs", "run", "exp0", "artifacts", "metrics.csv"), TestBytes.Random(10_000, 2));
        var target = _temp.Sub("dest", "metrics.csv");
        var result = await Save(false, new SaveItem(artifact, target));
        Assert.Empty(result.Done);
        var error = Assert.Single(result.Errors);
        Assert.Equal(GridErrorKind.IntegrityFailure, error.Kind);
        Assert.Equal("HashMismatch", error.ErrorId);
        Assert.False(File.Exists(target));
        Assert.False(File.Exists(target + ArtifactDownloader.PartSuffix));
    }

    [Fact]
    public async Task A_truncated_object_fails_and_leaves_nothing()
    {
        var artifact = await Stored("big.bin", TestBytes.Random(100_000, 3));
        File.WriteAllBytes(_temp.Sub("store", "runs", "run", "exp0", "artifacts", "big.bin"), TestBytes.Random(50_000, 3));
        var target = _temp.Sub("dest", "big.bin");
        var result = await Save(false, new SaveItem(artifact, target));
        Assert.Equal("SizeMismatch", Assert.Single(result.Errors).ErrorId);
        Assert.False(File.Exists(target));
        Assert.False(File.Exists(target + ArtifactDownloader.PartSuffix));
    }

    [Fact]
    public async Task One_failure_does_not_stop_the_others()
    {
        var good = await Stored("good.txt", TestBytes.Random(1000, 5));
        var missing = new GridArtifact("run", "exp0", "gone.txt", _catalog.Location) { Size = 10, Sha256 = new string('0', 64) };
        var result = await Save(false, new SaveItem(good, _temp.Sub("dest", "good.txt")), new SaveItem(missing, _temp.Sub("dest", "gone.txt")));
        Assert.Equal("good.txt", Assert.Single(result.Done).Path);
        Assert.Equal(GridErrorKind.NotFound, Assert.Single(result.Errors).Kind);
        Assert.False(File.Exists(_temp.Sub("dest", "gone.txt")));
    }
}
