using GridArtifacts.Core.Stores;
using GridArtifacts.Core.Transfer;
using GridArtifacts.Model;

namespace GridArtifacts.Core;

/// <summary>
/// Experiments' manifests: read whole or entry by entry (the sealed one, or the last compacted one
/// with its segments merged in), and written by their experiment's one writer (segments, compactions, the seal).
/// </summary>
public sealed class ManifestStore : CatalogPart
{
    internal ManifestStore(CatalogContext context) : base(context) { }

    /// <summary>
    /// An experiment's manifest, with every entry held (<see cref="VisitManifestAsync"/> holds none of a
    /// sealed one): the sealed one, or, while it runs, the last compacted manifest with the segments
    /// written after it merged in. Null when it has none.
    /// </summary>
    public async Task<ManifestRecord?> ReadManifestAsync(string run, string experiment, CancellationToken ct)
    {
        var entries = new List<ManifestEntry>();
        var manifest = await VisitManifestAsync(run, experiment, entries.Clear, entries.Add, ct).ConfigureAwait(false);
        if (manifest is not null) manifest.Artifacts = entries;
        return manifest;
    }

    /// <summary>
    /// An experiment's manifest, entry by entry: each path once, with its latest entry, to
    /// <paramref name="visit"/>; returns the manifest's fields (its Artifacts empty), or null when it
    /// has none. Manifests are streams, never records: a sealed one goes to <paramref name="visit"/> as
    /// it is read, so its size costs no memory; while the experiment runs, the last compacted manifest
    /// and the segments written after it are merged first (a later entry for a path replaces an
    /// earlier one). Segments are numbered without gaps from the compacted manifest on; a gap means a
    /// compaction went on while this read, so it reads again, and never returns part of a manifest.
    /// Each attempt starts with <paramref name="restart"/>: what an attempt before it visited is to be dropped.
    /// </summary>
    public async Task<ManifestRecord?> VisitManifestAsync(string run, string experiment, Action restart, Action<ManifestEntry> visit, CancellationToken ct)
    {
        var key = StoreLayout.ManifestKey(run, experiment);
        for (var attempt = 1; ; attempt++)
        {
            restart();
            var segmentsTask = ListManifestSegmentsAsync(run, experiment, ct);
            // Entries of a running experiment's manifest wait here for its segments; a sealed one's go on.
            var merged = new Dictionary<string, ManifestEntry>(StringComparer.Ordinal);
            ManifestReader.Body? body;
            try
            {
                body = await ReadManifestBodyAsync(key, (fields, e) => { if (fields.Sealed) visit(e); else merged[e.Path] = e; }, headerOnly: false, ct).ConfigureAwait(false);
            }
            catch (GridException ex) when (ex.IsTransient && attempt < Retry.MaxAttempts)
            {
                // A body cut short: the manifest is read again from its start, by the next attempt.
                try { await segmentsTask.ConfigureAwait(false); } catch (GridException) { }
                continue;
            }
            var manifest = body?.Header;
            var listed = await segmentsTask.ConfigureAwait(false);
            if (manifest is { Sealed: true })
            {
                foreach (var e in merged.Values) visit(e); // a manifest that said it was sealed only after its entries
                return manifest;
            }
            var from = (manifest?.Through ?? -1) + 1;
            var segments = listed.Where(x => x.Sequence >= from).ToList();
            if (segments.Count == 0)
            {
                // Nothing after manifest.json: true only if no fold replaced it between its read and
                // the listing (a fold writes manifest.json, then deletes the segments it took in, so a
                // listing after a fold this read missed can hold none). Read it again: the same bytes
                // mean the listing came before any later fold.
                var again = await HashManifestAsync(key, ct).ConfigureAwait(false);
                if ((body is null ? again is null : again is not null && body.Value.Sha256.AsSpan().SequenceEqual(again)) || attempt >= Retry.MaxAttempts)
                {
                    foreach (var e in merged.Values) visit(e);
                    return manifest;
                }
                continue;
            }
            // The listing may predate a compaction that this read of manifest.json already saw, or
            // follow one it did not: either way the numbers do not join up, and it is read again.
            var joined = segments.Select((x, i) => x.Sequence == from + i).All(b => b);
            var bodies = joined ? await ReadMany.AllAsync(segments, (x, c) => TryReadSegmentAsync(x.Key, c), ct).ConfigureAwait(false) : null;
            if (bodies?.Errors.FirstOrDefault(e => e.Kind == GridErrorKind.DamagedRecord) is { } damaged) throw damaged;
            if (bodies is null || bodies.Items.Count != segments.Count || bodies.Errors.Count > 0)
            {
                if (attempt < Retry.MaxAttempts) continue;
                if (bodies is { Errors.Count: > 0 }) throw bodies.Errors[0];
                var missing = from + segments.Select((x, i) => (x.Sequence, i)).First(p => p.Sequence != from + p.i).i;
                throw new GridException(GridErrorKind.DamagedRecord, "DamagedRecord",
                    $"The manifest of {GridNames.ExperimentId(run, experiment)} in store '{Location}' is damaged: its segment {missing:x8} is missing. The artifacts are still listed, without hashes.", key);
            }
            foreach (var entries in bodies.Items)
            {
                foreach (var entry in entries!) merged[entry.Path] = entry;
            }
            foreach (var e in merged.Values) visit(e);
            return new ManifestRecord
            {
                Run = run, Experiment = experiment, Sealed = false, Through = segments[^1].Sequence,
                Updated = manifest?.Updated ?? default,
            };
        }
    }

    /// <summary>manifest.json read as a stream (<see cref="ManifestReader"/>), or null when there is none.</summary>
    private async Task<ManifestReader.Body?> ReadManifestBodyAsync(string key, Action<ManifestRecord, ManifestEntry>? entry, bool headerOnly, CancellationToken ct)
    {
        if (await TryOpenAsync(key, ct).ConfigureAwait(false) is not { } body) return null;
        await using (body.ConfigureAwait(false))
        {
            return await ManifestReader.ReadAsync(body, Location, key, entry, headerOnly, ct).ConfigureAwait(false);
        }
    }

    /// <summary>The SHA-256 of manifest.json as it is now, or null when there is none.</summary>
    private async Task<byte[]?> HashManifestAsync(string key, CancellationToken ct)
    {
        if (await TryOpenAsync(key, ct).ConfigureAwait(false) is not { } body) return null;
        await using (body.ConfigureAwait(false))
        {
            return await ManifestReader.HashAsync(body, ct).ConfigureAwait(false);
        }
    }

    /// <summary>The entries of one segment (one per line), or null when it is gone.</summary>
    private async Task<List<ManifestEntry>?> TryReadSegmentAsync(string key, CancellationToken ct)
    {
        if (await TryOpenAsync(key, ct).ConfigureAwait(false) is not { } body) return null;
        await using (body.ConfigureAwait(false))
        {
            var entries = new List<ManifestEntry>();
            await ManifestReader.ReadSegmentAsync(body, Location, key, entries.Add, ct).ConfigureAwait(false);
            return entries;
        }
    }

    private async Task<List<(long Sequence, string Key)>> ListManifestSegmentsAsync(string run, string experiment, CancellationToken ct)
    {
        var segments = new List<(long, string)>();
        await foreach (var e in Store.ListAsync(StoreLayout.ManifestSegmentsPrefix(run, experiment), recursive: false, ct).ConfigureAwait(false))
        {
            var seq = e.IsPrefix ? -1 : StoreLayout.ManifestSegmentSequence(e.Key);
            if (seq >= 0) segments.Add((seq, e.Key));
        }
        segments.Sort();
        return segments;
    }

    /// <summary>One segment of a running experiment's manifest, from the file its writer journals it in: its writer's call.</summary>
    public Task WriteManifestSegmentAsync(string run, string experiment, long sequence, string localPath, CancellationToken ct) =>
        Engine.UploadFileAsync(Store, StoreLayout.ManifestSegmentKey(GridNames.CheckRunName(run), GridNames.CheckExperimentName(experiment), sequence), localPath, Clock, ct);

    /// <summary>A compacted (or the sealed) manifest from the file its writer built; then the segments it folds in are deleted.</summary>
    public async Task WriteCompactedManifestAsync(string run, string experiment, string localPath, long through, CancellationToken ct) =>
        await WriteCompactedManifestAsync(run, experiment, localPath, through, segmentsStored: true, ct).ConfigureAwait(false);

    /// <param name="segmentsStored">False when the writer knows no segment of the experiment was ever sent: then none is listed to be removed.</param>
    public async Task WriteCompactedManifestAsync(string run, string experiment, string localPath, long through, bool segmentsStored, CancellationToken ct)
    {
        await Engine.UploadFileAsync(Store, StoreLayout.ManifestKey(GridNames.CheckRunName(run), GridNames.CheckExperimentName(experiment)), localPath, Clock, ct).ConfigureAwait(false);
        if (!segmentsStored) return;
        var folded = (await ListManifestSegmentsAsync(run, experiment, ct).ConfigureAwait(false)).Where(x => x.Sequence <= through).Select(x => x.Key).ToList();
        if (folded.Count > 0) await Store.DeleteManyAsync(folded, ct).ConfigureAwait(false);
    }

    /// <summary>The next segment number of an experiment (for its writer, at its start).</summary>
    public async Task<long> NextManifestSegmentAsync(string run, string experiment, CancellationToken ct)
    {
        var segments = await ListManifestSegmentsAsync(run, experiment, ct).ConfigureAwait(false);
        var next = segments.Count == 0 ? 0 : segments[^1].Sequence + 1;
        // Only its fields: a manifest written here has them before its entries, which are not read.
        var manifest = await ReadManifestBodyAsync(StoreLayout.ManifestKey(run, experiment), null, headerOnly: true, ct).ConfigureAwait(false);
        if (manifest?.Header.Through is { } through) next = Math.Max(next, through + 1);
        return next;
    }

    public Task WriteManifestAsync(ManifestRecord manifest, CancellationToken ct)
    {
        GridNames.CheckRunName(manifest.Run);
        GridNames.CheckExperimentName(manifest.Experiment);
        manifest.Artifacts.Sort((a, b) => string.CompareOrdinal(a.Path, b.Path));
        return Store.PutAsync(StoreLayout.ManifestKey(manifest.Run, manifest.Experiment), RecordJson.Serialize(manifest), ct);
    }
}
