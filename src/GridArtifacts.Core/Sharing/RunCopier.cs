using GridArtifacts.Core.Stores;
using GridArtifacts.Core.Transfer;
using GridArtifacts.Model;

namespace GridArtifacts.Core.Sharing;

/// <summary>What one run's copy did.</summary>
public sealed record CopyResult(string Run, int Experiments, int Copied, int Skipped, long Bytes);

/// <summary>
/// Copies runs between stores, verified: each artifact goes through the transfer engine (checked
/// against its SHA-256 on the way down) and up again (checked on the way up); artifacts the target
/// already has with the same hash are skipped, so an interrupted copy resumes. The run's record is
/// written last, so a half-copied run does not list as a run. The source is only read.
/// </summary>
public sealed class RunCopier
{
    private readonly GridCatalog _source;
    private readonly GridCatalog _target;

    public RunCopier(GridCatalog source, GridCatalog target)
    {
        _source = source;
        _target = target;
    }

    public async Task<CopyResult> CopyAsync(string run, string tempFolder, Action<GridException> onError, CancellationToken ct)
    {
        var runRecord = await _source.Runs.ReadRunRecordAsync(run, ct).ConfigureAwait(false);
        // Tags come along (not protection: the copy is the target's to keep or remove).
        var labels = (await _source.Runs.GetLabelsAsync(new[] { run }, ct).ConfigureAwait(false))[run];
        int experiments = 0, copied = 0, skipped = 0;
        long bytes = 0;
        foreach (var exp in await _source.Runs.ListExperimentNamesAsync(run, ct).ConfigureAwait(false))
        {
            var record = await _source.Runs.ReadExperimentRecordAsync(run, exp, ct).ConfigureAwait(false);
            if (record is null) continue;
            experiments++;
            var artifacts = await _source.Artifacts.GetArtifactsAsync(run, exp, ct).ConfigureAwait(false);
            foreach (var e in artifacts.Errors) onError(e);
            var have = (await _target.Manifests.ReadManifestAsync(run, exp, ct).ConfigureAwait(false))?.Artifacts.ToDictionary(a => a.Path, StringComparer.Ordinal)
                       ?? new Dictionary<string, ManifestEntry>(StringComparer.Ordinal);
            var present = new HashSet<string>(StringComparer.Ordinal);
            await foreach (var o in _target.Store.ListAsync(StoreLayout.ArtifactsPrefix(run, exp), recursive: true, ct).ConfigureAwait(false))
            {
                present.Add(o.Key[StoreLayout.ArtifactsPrefix(run, exp).Length..]);
            }
            var manifest = new ManifestRecord { Run = run, Experiment = exp };
            var sourceManifest = await _source.Manifests.ReadManifestAsync(run, exp, ct).ConfigureAwait(false);
            var todo = new List<SaveItem>();
            foreach (var a in artifacts.Items)
            {
                // A path the target cannot hold (a key too long for it) is refused by name before it is fetched.
                if (_target.Artifacts.ArtifactPathProblem(run, exp, a.Path) is { } problem)
                {
                    onError(new GridException(GridErrorKind.InvalidName, "UnstorableArtifactName",
                        $"'{a}' was not copied to '{_target.Location}': {problem}.", a.Path));
                    continue;
                }
                if (a.Sha256 is not null && have.TryGetValue(a.Path, out var h) && h.Sha256 == a.Sha256 && present.Contains(a.Path))
                {
                    manifest.Artifacts.Add(h);
                    skipped++;
                    continue;
                }
                todo.Add(new SaveItem(a, GridNames.LocalPathFor(tempFolder, run, exp, a.Path)) { Root = tempFolder });
            }
            var progress = new TransferProgress(todo.Count, todo.Sum(t => t.Artifact.Size));
            var downloaded = new List<GridSaveResult>();
            await _target.Engine.DownloadAsync(todo, _ => _source, force: true, throttleLimit: TransferOptions.DefaultFilesInFlight, progress,
                r => { lock (downloaded) downloaded.Add(r); }, onError, ct).ConfigureAwait(false);
            await Parallel.ForEachAsync(downloaded, new ParallelOptions { MaxDegreeOfParallelism = TransferOptions.DefaultFilesInFlight, CancellationToken = ct }, async (d, c) =>
            {
                try
                {
                    ManifestEntry entry;
                    try
                    {
                        entry = await _target.Artifacts.PutArtifactFileAsync(run, exp, d.Path, d.LocalPath, c).ConfigureAwait(false);
                    }
                    catch (Exception ex) when (ex is GridException or IOException or UnauthorizedAccessException && !c.IsCancellationRequested)
                    {
                        // An error for this artifact; the others go on and the manifest still records them.
                        onError(ex as GridException ?? new GridException(GridErrorKind.WriteFailed, "CopyFailed",
                            $"'{d.Artifact}' was not copied to '{_target.Location}': {ex.Message} Copy the run again to retry it.", d.Artifact, ex));
                        return;
                    }
                    if (d.Artifact.Sha256 is not null && entry.Sha256 != d.Artifact.Sha256)
                    {
                        onError(new GridException(GridErrorKind.IntegrityFailure, "CopyHashMismatch", $"'{d.Artifact}' went up with SHA-256 {entry.Sha256}, not {d.Artifact.Sha256}; copy the run again.", d.Artifact));
                        return;
                    }
                    entry.Modified = d.Artifact.LastModified;
                    lock (manifest)
                    {
                        manifest.Artifacts.Add(entry);
                        copied++;
                        bytes += entry.Size;
                    }
                }
                finally
                {
                    File.Delete(d.LocalPath);
                }
            }).ConfigureAwait(false);
            manifest.Sealed = sourceManifest?.Sealed ?? false;
            manifest.Updated = _target.Clock.GetUtcNow();
            await _target.Manifests.WriteManifestAsync(manifest, ct).ConfigureAwait(false);
            foreach (var stream in new[] { "stdout", "stderr" })
            {
                var log = await _source.Runs.ReadLogAsync(run, exp, stream, ct).ConfigureAwait(false);
                if (log is not null) await _target.Writer.WriteLogAsync(run, exp, stream, log, ct).ConfigureAwait(false);
            }
            // The copy's record says what the copy holds (the figures its index key carries).
            record.Sync ??= new GridSyncState();
            record.Sync.FilesSynced = manifest.Artifacts.Count;
            record.Sync.BytesSynced = manifest.Artifacts.Sum(a => a.Size);
            record.IndexKey = null; // its key in the source store; the target's own is looked up
            record.IndexSequence = null;
            await _target.Writer.WriteExperimentRecordAsync(record, ct).ConfigureAwait(false);
            if (labels.OwnTagsOf(exp) is { Count: > 0 } expTags) await _target.Writer.AddTagsAsync(run, exp, expTags, ct).ConfigureAwait(false);
        }
        await _target.Writer.WriteRunRecordAsync(runRecord, ct).ConfigureAwait(false);
        if (labels.Tags.Count > 0) await _target.Writer.AddTagsAsync(run, null, labels.Tags, ct).ConfigureAwait(false);
        return new CopyResult(run, experiments, copied, skipped, bytes);
    }
}
