using GridArtifacts.Core.Stores;
using GridArtifacts.Core.Transfer;
using GridArtifacts.Model;

namespace GridArtifacts.Core;

/// <summary>
/// Experiments' artifacts: listed with the hashes their manifest recorded, opened, and stored (after
/// the store's limits on a key are asked), and multipart uploads an earlier writer left behind aborted.
/// </summary>
public sealed class ArtifactStore : CatalogPart
{
    private readonly RunReader _runs;
    private readonly ManifestStore _manifests;

    internal ArtifactStore(CatalogContext context, RunReader runs, ManifestStore manifests) : base(context) => (_runs, _manifests) = (runs, manifests);

    /// <summary>
    /// The artifacts of one experiment: what is stored under its artifacts prefix, with the SHA-256
    /// its manifest recorded. A damaged manifest is an error; the artifacts are still listed, without hashes.
    /// </summary>
    public async Task<ReadResult<GridArtifact>> GetArtifactsAsync(string run, string experiment, CancellationToken ct)
    {
        GridNames.CheckRunName(run);
        GridNames.CheckExperimentName(experiment);
        var errors = new List<GridException>();
        var recorded = new Dictionary<string, ManifestEntry>(StringComparer.Ordinal);
        var manifestTask = _manifests.VisitManifestAsync(run, experiment, recorded.Clear, e => recorded[e.Path] = e, ct);
        var prefix = StoreLayout.ArtifactsPrefix(run, experiment);
        var entries = new List<ObjectEntry>();
        await foreach (var e in Store.ListAsync(prefix, recursive: true, ct).ConfigureAwait(false))
        {
            if (!e.IsPrefix) entries.Add(e);
        }
        if (entries.Count == 0 && await Store.TryReadAllBytesAsync(StoreLayout.ExperimentRecordKey(run, experiment), ct).ConfigureAwait(false) is null)
        {
            // No artifacts and no record: say whether the run or the experiment is unknown.
            await _runs.GetExperimentAsync(run, experiment, ct).ConfigureAwait(false);
        }
        Dictionary<string, ManifestEntry>? hashes = null;
        var sealedManifest = false;
        try
        {
            var manifest = await manifestTask.ConfigureAwait(false);
            hashes = manifest is null ? null : recorded;
            sealedManifest = manifest is { Sealed: true };
            if (sealedManifest)
            {
                // A sealed manifest is the experiment's final word: what it lists must be in the store.
                var stored = new HashSet<string>(entries.Select(e => e.Key[prefix.Length..]), StringComparer.Ordinal);
                foreach (var missing in recorded.Values.Where(a => !stored.Contains(a.Path)))
                {
                    errors.Add(new GridException(GridErrorKind.NotFound, "ArtifactMissing",
                        $"{GridNames.ExperimentId(run, experiment)}: its manifest lists '{missing.Path}' ({missing.Size} bytes) but store '{Location}' does not have it.",
                        missing.Path));
                }
            }
        }
        catch (GridException ex) when (ex.Kind == GridErrorKind.DamagedRecord)
        {
            errors.Add(ex);
        }
        var items = new List<GridArtifact>(entries.Count);
        foreach (var e in entries)
        {
            var path = e.Key[prefix.Length..];
            string? sha = null;
            // A sealed manifest's hash stands whatever the object's size: an object of another size
            // was replaced since, and its download fails the hash (HashMismatch). While an experiment
            // runs, a file may have been sent again after its last segment: its hash is known only
            // when the sizes agree.
            if (hashes is not null && hashes.TryGetValue(path, out var m) && (sealedManifest || m.Size == e.Size)) sha = m.Sha256;
            items.Add(new GridArtifact(run, experiment, path, Location) { Size = e.Size, LastModified = e.LastModified, Sha256 = sha });
        }
        return new ReadResult<GridArtifact>(items, errors);
    }

    public Task<Stream> OpenArtifactAsync(GridArtifact artifact, CancellationToken ct) =>
        Store.OpenReadAsync(StoreLayout.ArtifactKey(artifact.Run, artifact.Experiment, artifact.Path), ct);

    /// <summary>
    /// Why <paramref name="path"/> cannot be stored as an artifact of the experiment in this store, or
    /// null when it can: the names' rules (<see cref="GridNames.ArtifactPathProblem"/>), then the
    /// store's limits on a key (<see cref="IObjectStore.MaxKeyBytes"/>) and on each name in it
    /// (<see cref="IObjectStore.MaxKeyPartBytes"/>). Asked before a file is sent, so a file the store
    /// would refuse is reported by name and not sent.
    /// </summary>
    public string? ArtifactPathProblem(string run, string experiment, string path)
    {
        if (GridNames.ArtifactPathProblem(path) is { } problem) return problem;
        var key = StoreLayout.ArtifactKey(run, experiment, path);
        var bytes = System.Text.Encoding.UTF8.GetByteCount(key);
        if (bytes > Store.MaxKeyBytes)
        {
            return $"its key in store '{Location}' ('{StoreLayout.ArtifactsPrefix(run, experiment)}' and the path) would be {bytes} UTF-8 bytes, more than the {Store.MaxKeyBytes} the store holds; shorten the path";
        }
        foreach (var name in path.Split('/'))
        {
            var length = System.Text.Encoding.UTF8.GetByteCount(name);
            if (length > Store.MaxKeyPartBytes)
            {
                return $"its name '{name}' is {length} UTF-8 bytes, more than the {Store.MaxKeyPartBytes} a file or folder name may have in store '{Location}'; shorten it";
            }
        }
        return null;
    }

    /// <summary>Uploads one local file as an artifact and returns its manifest entry (size and SHA-256 of what was sent).</summary>
    public async Task<ManifestEntry> PutArtifactFileAsync(string run, string experiment, string path, string localPath, CancellationToken ct)
    {
        using var file = LocalFile.Open(localPath);
        return await PutArtifactFileAsync(run, experiment, path, file, ct).ConfigureAwait(false);
    }

    /// <summary>
    /// Stores the open <paramref name="file"/> as artifact <paramref name="path"/>: its bytes as far as
    /// its length when opened, with the SHA-256 of what was sent.
    /// </summary>
    public async Task<ManifestEntry> PutArtifactFileAsync(string run, string experiment, string path, LocalFile file, CancellationToken ct)
    {
        GridNames.CheckRunName(run);
        GridNames.CheckExperimentName(experiment);
        var problem = ArtifactPathProblem(run, experiment, path);
        if (problem is not null)
        {
            throw new GridException(GridErrorKind.InvalidName, "UnstorableArtifactName",
                $"The file '{path}' cannot be stored as an artifact: {problem}.", path);
        }
        // The hash is of the bytes sent, taken as they were read. A file that changes meanwhile is the
        // caller's to detect (LocalFile.ChangedSinceOpened): the agent sends it again.
        var sha = await Engine.UploadFileAsync(Store, StoreLayout.ArtifactKey(run, experiment, path), file, Clock, ct).ConfigureAwait(false);
        return new ManifestEntry { Path = path, Size = file.Length, Sha256 = sha, Modified = file.LastWriteTimeUtc };
    }

    /// <summary>
    /// Aborts the multipart uploads an earlier writer of this experiment left unfinished (it was
    /// killed mid-upload) and removes their records; the folder store has none. Only the
    /// experiment's one writer may call it. Returns the upload ids aborted and the ones the server
    /// would not abort.
    /// </summary>
    public async Task<UploadSweep> AbortAbandonedUploadsAsync(string run, string experiment, CancellationToken ct) =>
        Store is IAbandonedUploads uploads
            ? await uploads.AbortAbandonedUploadsAsync(StoreLayout.UploadsPrefix(run, experiment), ct).ConfigureAwait(false)
            : UploadSweep.None;
}
