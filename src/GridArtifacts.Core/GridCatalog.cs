using System.Collections.Concurrent;
using System.Security.Cryptography;
using GridArtifacts.Core.Stores;
using GridArtifacts.Core.Transfer;
using GridArtifacts.Model;

namespace GridArtifacts.Core;

/// <summary>Items read, and the per-item errors met on the way (the rest is still read).</summary>
public sealed record ReadResult<T>(IReadOnlyList<T> Items, IReadOnlyList<GridException> Errors);

/// <summary>
/// Runs, experiments and artifacts on top of any <see cref="IObjectStore"/>: the store contract's
/// layout, records and status rules, written once for every store.
/// </summary>
public sealed partial class GridCatalog
{
    /// <summary>Records read at once when a listing needs many of them.</summary>
    public const int ReadConcurrency = 32;

    public GridCatalog(IObjectStore store, TimeSpan? lostAfter = null, TimeProvider? clock = null)
    {
        Store = store;
        LostAfter = lostAfter ?? TimeSpan.FromMinutes(2);
        Clock = clock ?? TimeProvider.System;
    }

    public IObjectStore Store { get; }
    public string Location => Store.Location;
    /// <summary>An active experiment whose heartbeat is older than this reads as Lost.</summary>
    public TimeSpan LostAfter { get; }
    /// <summary>The one clock of this catalog and of what works on it: records' times, heartbeat ages, the claims' settle, the pauses between a request's attempts.</summary>
    public TimeProvider Clock { get; }

    /// <summary>What sends this catalog's files (artifacts, logs, manifests): the process's one engine, unless a test gives its own.</summary>
    public TransferEngine Engine { get; init; } = TransferEngine.Shared;

    // ---- read side ----------------------------------------------------------------------------

    /// <summary>Run names, every one or those that start with <paramref name="startsWith"/> (one listing of just those keys).</summary>
    public async Task<IReadOnlyList<string>> ListRunNamesAsync(CancellationToken ct, string? startsWith = null)
    {
        var names = new List<string>();
        // Run names are lower-case letters, digits and hyphens: anything else cannot start one.
        var start = startsWith is { Length: > 0 } && startsWith.All(c => c is >= 'a' and <= 'z' or >= '0' and <= '9' or '-') ? startsWith : "";
        await Store.VisitNamesAsync(StoreLayout.RunsPrefix + start, (name, isFolder) =>
        {
            if (isFolder && GridNames.IsValidRunName(name)) names.Add(name.ToString());
        }, ct).ConfigureAwait(false);
        names.Sort(StringComparer.Ordinal);
        return names;
    }

    public async Task<IReadOnlyList<string>> ListExperimentNamesAsync(string run, CancellationToken ct)
    {
        var prefix = StoreLayout.RunPrefix(run);
        var names = new List<string>();
        await foreach (var e in Store.ListAsync(prefix, recursive: false, ct).ConfigureAwait(false))
        {
            if (!e.IsPrefix) continue;
            var name = e.Key[prefix.Length..^1];
            if (GridNames.IsValidExperimentName(name)) names.Add(name);
        }
        names.Sort((a, b) => GridNames.ExperimentIndex(a).CompareTo(GridNames.ExperimentIndex(b)));
        return names;
    }

    public async Task<RunRecord> ReadRunRecordAsync(string run, CancellationToken ct)
    {
        GridNames.CheckRunName(run);
        var key = StoreLayout.RunRecordKey(run);
        var bytes = await Store.TryReadAllBytesAsync(key, ct).ConfigureAwait(false)
            ?? throw RunNotFound(run);
        return RecordJson.Deserialize<RunRecord>(bytes, Location, key);
    }

    /// <summary>
    /// One run: from its index keys (one listing) when it has them, else (a run written by 0.1.0,
    /// schema 1) from its records.
    /// </summary>
    public async Task<GridRun> GetRunAsync(string run, CancellationToken ct)
    {
        GridNames.CheckRunName(run);
        var index = new IndexPage();
        await Store.VisitNamesAsync(CatalogIndex.RunIndexPrefix(run), index.Add, ct).ConfigureAwait(false);
        var built = await index.RunsAsync(this, ct).ConfigureAwait(false);
        if (built.Items.Count > 0) return built.Items[0];
        if (built.Errors.Count > 0) throw built.Errors[0];
        return await GetRunFromRecordsAsync(run, index.Labels(run), ct).ConfigureAwait(false);
    }

    /// <summary>
    /// A schema-1 run (no index keys): its record, and one read per experiment; its labels from the
    /// listing. Its artifact figures are only in its manifests: read when <paramref name="withArtifactSummary"/>, else 0.
    /// </summary>
    private async Task<GridRun> GetRunFromRecordsAsync(string run, RunLabels labels, CancellationToken ct, bool withArtifactSummary = false)
    {
        var recordTask = ReadRunRecordAsync(run, ct);
        var names = await ListExperimentNamesAsync(run, ct).ConfigureAwait(false);
        // A run needs its experiments' statuses, not their manifests: one read per experiment.
        var experiments = await ReadManyAsync(names, (exp, c) => GetExperimentAsync(run, exp, c, withArtifactSummary), ct).ConfigureAwait(false);
        var record = await recordTask.ConfigureAwait(false);
        var items = experiments.Items;
        return BuildRun(run, record.Created, record.Command, record.Parameters,
            items.Select(x => new RunPart(x.Experiment, x.Status, x.Finished, x.ArtifactCount, x.ArtifactBytes)), labels);
    }

    /// <summary>What a run is built from of each experiment.</summary>
    private readonly record struct RunPart(string Experiment, GridStatus Status, DateTimeOffset? Finished, long Files, long Bytes);

    private GridRun BuildRun(string run, DateTimeOffset created, string? command, IReadOnlyDictionary<string, string> parameters,
        IEnumerable<RunPart> experiments, RunLabels labels)
    {
        var items = experiments.OrderBy(x => GridNames.ExperimentIndex(x.Experiment)).ToList();
        var status = GridStatusExtensions.Aggregate(items.Select(x => x.Status));
        return new GridRun(run, Location)
        {
            Created = created,
            Command = command,
            Parameters = parameters,
            Experiments = items.Select(x => x.Experiment).ToArray(),
            QueuedExperiments = items.Any(x => x.Status == GridStatus.Queued) ? items.Where(x => x.Status == GridStatus.Queued).Select(x => x.Experiment).ToArray() : Array.Empty<string>(),
            ExperimentCount = items.Count,
            Status = status,
            Finished = status.IsFinished() && items.Count > 0 ? items.Max(x => x.Finished) : null,
            Protected = labels.Protected,
            Tags = labels.AllTags,
            ArtifactCount = items.Sum(x => x.Files),
            ArtifactBytes = items.Sum(x => x.Bytes),
            Scheduler = labels.Job?.Scheduler ?? GridScheduler.Local,
            JobId = labels.Job?.Id,
            Cluster = labels.Job?.Cluster,
        };
    }

    /// <summary>
    /// Every run of the store: one listing of <c>runs/</c>, whose pages hold the run folders and the
    /// index keys beside them (<see cref="CatalogIndex"/>), so it costs one request per 1,000 keys and
    /// no reads; only runs without index keys (written by 0.1.0) are read record by record, and runs
    /// whose command and parameters did not fit in their key have their record read.
    /// </summary>
    /// <param name="known">Schema-1 runs already read and finished, which a caller keeps (the page): they are not read again.</param>
    /// <param name="withArtifactSummary">Schema-1 runs get their artifact figures too, from one manifest read per experiment (schema-2 runs always have them, from their keys).</param>
    public Task<ReadResult<GridRun>> ListRunsAsync(CancellationToken ct, IReadOnlyDictionary<string, GridRun>? known = null, bool withArtifactSummary = false) =>
        ListRunsAsync((index, c) => Store.VisitNamesAsync(StoreLayout.RunsPrefix, index.Add, c), known, withArtifactSummary, ct);

    /// <summary>
    /// Every run, as <see cref="ListRunsAsync(CancellationToken, IReadOnlyDictionary{string, GridRun}?, bool)"/> gives
    /// them, from one recursive listing of <c>runs/</c> that also hands <paramref name="visit"/> every
    /// object under it (key and size), in no particular order: the index keys are among those objects,
    /// so a caller that needs every object's size (Measure-GridStore -Exact) pays for one listing, not two.
    /// </summary>
    public Task<ReadResult<GridRun>> ListRunsWithObjectsAsync(Action<ObjectEntry> visit, CancellationToken ct) =>
        ListRunsAsync((index, c) => Store.VisitObjectsAsync(StoreLayout.RunsPrefix, e =>
        {
            visit(e);
            // A key directly under runs/ is an index key; a deeper one names its run's folder.
            var name = e.Key.AsSpan(StoreLayout.RunsPrefix.Length);
            var slash = name.IndexOf('/');
            if (slash < 0) index.Add(name, isFolder: false);
            else index.Add(name[..slash], isFolder: true);
        }, c), known: null, withArtifactSummary: false, ct);

    private async Task<ReadResult<GridRun>> ListRunsAsync(Func<IndexPage, CancellationToken, Task> fill, IReadOnlyDictionary<string, GridRun>? known,
        bool withArtifactSummary, CancellationToken ct)
    {
        var index = new IndexPage();
        await fill(index, ct).ConfigureAwait(false);
        var indexed = await index.RunsAsync(this, ct).ConfigureAwait(false);
        var unindexed = index.Unindexed().ToList();
        if (unindexed.Count == 0) return indexed;
        // Kept runs are finished, but their tags and protection change: those come from this listing.
        var kept = known is null ? new List<GridRun>() : unindexed.Where(known.ContainsKey).Select(n => WithLabels(known[n], index.Labels(n))).ToList();
        var old = await ReadManyAsync(unindexed.Where(n => known is null || !known.ContainsKey(n)), (n, c) => GetRunFromRecordsAsync(n, index.Labels(n), c, withArtifactSummary), ct).ConfigureAwait(false);
        return new ReadResult<GridRun>(indexed.Items.Concat(kept).Concat(old.Items).ToList(), indexed.Errors.Concat(old.Errors).ToList());
    }

    /// <summary>
    /// Reads many runs at once; a damaged or missing one is an error, the rest are read. Many names
    /// are read from one listing of every run; a few, one listing each.
    /// </summary>
    public async Task<ReadResult<GridRun>> GetRunsAsync(IEnumerable<string> runs, CancellationToken ct)
    {
        var names = runs.Distinct(StringComparer.Ordinal).ToList();
        // One name: its keys alone. More: one listing of every run (on a folder store a listing of
        // one run's keys reads the whole runs folder anyway).
        if (names.Count <= 1) return await ReadManyAsync(names, GetRunAsync, ct).ConfigureAwait(false);
        var all = await ListRunsAsync(ct).ConfigureAwait(false);
        var byName = all.Items.ToDictionary(r => r.Name, StringComparer.Ordinal);
        var missing = names.Where(n => !byName.ContainsKey(n)).ToList();
        // A run not in the listing is read by name, which says why (unknown, or damaged).
        var rest = await ReadManyAsync(missing, GetRunAsync, ct).ConfigureAwait(false);
        foreach (var r in rest.Items) byName[r.Name] = r;
        return new ReadResult<GridRun>(names.Where(byName.ContainsKey).Select(n => byName[n]).ToList(), rest.Errors);
    }

    /// <summary>
    /// One experiment; <paramref name="withArtifactSummary"/> also gives its artifact count and bytes:
    /// from its record (schema 2: its writer's figures, which its index key carries too, whatever the
    /// manifest's size), else from its manifest.
    /// </summary>
    /// <param name="labels">The run's tags and protection, when the caller listed them (<see cref="GetLabelsAsync(IReadOnlyCollection{string}, CancellationToken)"/>); else the experiment shows none.</param>
    public async Task<GridExperiment> GetExperimentAsync(string run, string experiment, CancellationToken ct, bool withArtifactSummary = true, RunLabels? labels = null)
    {
        GridNames.CheckRunName(run);
        GridNames.CheckExperimentName(experiment);
        var record = await ReadExperimentRecordAsync(run, experiment, ct).ConfigureAwait(false);
        if (record is null)
        {
            // Say which part is missing: the run, or only the experiment.
            await ReadRunRecordAsync(run, ct).ConfigureAwait(false);
            throw new GridException(GridErrorKind.NotFound, "ExperimentNotFound",
                $"Run '{run}' has no experiment '{experiment}' in store '{Location}'. 'Get-GridExperiment {run}' lists its experiments.",
                GridNames.ExperimentId(run, experiment));
        }
        (int Count, long Bytes) summary = (0, 0);
        if (record.IndexSequence is not null) summary = ((int)(record.Sync?.FilesSynced ?? 0), record.Sync?.BytesSynced ?? 0);
        else if (withArtifactSummary)
        {
            try
            {
                var (count, bytes) = (0, 0L);
                var manifest = await VisitManifestAsync(run, experiment, () => (count, bytes) = (0, 0), e => { count++; bytes += e.Size; }, ct).ConfigureAwait(false);
                if (manifest is not null) summary = (count, bytes);
            }
            catch (GridException ex) when (ex.Kind == GridErrorKind.DamagedRecord) { /* reported by Get-GridArtifact */ }
        }
        return ToExperiment(record, summary, labels ?? RunLabels.None);
    }


    private GridExperiment ToExperiment(ExperimentRecord record, (int Count, long Bytes) artifacts, RunLabels labels) =>
        new(record.Run, record.Experiment, Location)
        {
            Tags = labels.TagsOf(record.Experiment),
            OwnTags = labels.OwnTagsOf(record.Experiment),
            Protected = labels.Protected,
            Status = EffectiveStatus(record),
            ExitCode = record.ExitCode,
            Signal = record.Signal,
            Created = record.Created,
            Started = record.Started,
            Finished = record.Finished,
            Heartbeat = record.Heartbeat,
            Parameters = record.Parameters,
            Sync = record.Sync,
            Command = record.Command,
            ArtifactCount = artifacts.Count,
            ArtifactBytes = artifacts.Bytes,
            Metrics = record.Metrics is { Problem: null, Values: { } values } ? WithoutCase(values) : GridExperiment.NoMetrics,
            MetricsSource = record.Metrics?.Source,
            Reason = record.Reason,
            WorkingDirectory = record.WorkingDirectory,
        };

    /// <summary>Metrics by name without case; of names that differ only in case (a record edited by hand), the first.</summary>
    private static Dictionary<string, double> WithoutCase(Dictionary<string, double> values)
    {
        var result = new Dictionary<string, double>(values.Count, StringComparer.OrdinalIgnoreCase);
        foreach (var (k, v) in values) result.TryAdd(k, v);
        return result;
    }

    /// <summary>
    /// All experiments of a run, in index order; a damaged record is an error, the rest are read.
    /// A schema-2 run's experiments come from its index keys (one listing) and their records, with
    /// the artifact figures from the keys; a schema-1 run's from its folders, records and manifests.
    /// </summary>
    public async Task<ReadResult<GridExperiment>> GetExperimentsAsync(string run, CancellationToken ct)
    {
        GridNames.CheckRunName(run);
        var index = new IndexPage();
        await Store.VisitNamesAsync(CatalogIndex.RunIndexPrefix(run), index.Add, ct).ConfigureAwait(false);
        if (!index.HasRun(run))
        {
            var names = await ListExperimentNamesAsync(run, ct).ConfigureAwait(false);
            if (names.Count == 0) await ReadRunRecordAsync(run, ct).ConfigureAwait(false); // an unknown run is an error
            var labels = index.Labels(run);
            return await ReadManyAsync(names, (exp, c) => GetExperimentAsync(run, exp, c, labels: labels), ct).ConfigureAwait(false);
        }
        var entries = index.ExperimentsOf(run);
        var runLabels = index.Labels(run);
        var read = await ReadManyAsync(entries, async (entry, c) =>
        {
            // A record removed since the listing belongs to an experiment being removed: it is left out.
            var record = await ReadExperimentRecordAsync(run, entry.Name, c).ConfigureAwait(false);
            return record is null ? null : ToExperiment(record, ((int)entry.Files, entry.Bytes), runLabels);
        }, ct).ConfigureAwait(false);
        return new ReadResult<GridExperiment>(read.Items.Where(i => i is not null).Select(i => i!).ToList(), read.Errors);
    }

    /// <summary>The script's output an agent kept (<c>stdout</c> or <c>stderr</c>), or null when there is none. A log is not a record: it has no size bound.</summary>
    public async Task<byte[]?> ReadLogAsync(string run, string experiment, string stream, CancellationToken ct)
    {
        GridNames.CheckRunName(run);
        GridNames.CheckExperimentName(experiment);
        var key = StoreLayout.LogKey(run, experiment, stream);
        // The request and its body are one unit: a body cut short is read again whole.
        return await Retry.RunAsync(async c =>
        {
            if (await TryOpenAsync(key, c).ConfigureAwait(false) is not { } body) return null;
            await using (body.ConfigureAwait(false))
            {
                using var ms = new MemoryStream();
                await body.CopyToAsync(ms, c).ConfigureAwait(false);
                return (byte[]?)ms.ToArray();
            }
        }, Clock, ct).ConfigureAwait(false);
    }

    /// <summary>Keeps the script's output (<c>stdout</c> or <c>stderr</c>) with the experiment: its writer's call.</summary>
    public Task WriteLogAsync(string run, string experiment, string stream, ReadOnlyMemory<byte> content, CancellationToken ct) =>
        Store.PutAsync(StoreLayout.LogKey(GridNames.CheckRunName(run), GridNames.CheckExperimentName(experiment), stream), content, ct);

    /// <summary>Keeps the script's output from the file the agent writes it to.</summary>
    public Task WriteLogFileAsync(string run, string experiment, string stream, string localPath, CancellationToken ct) =>
        Engine.UploadFileAsync(Store, StoreLayout.LogKey(GridNames.CheckRunName(run), GridNames.CheckExperimentName(experiment), stream), localPath, Clock, ct);

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
            var bodies = joined ? await ReadManyAsync(segments, (x, c) => TryReadSegmentAsync(x.Key, c), ct).ConfigureAwait(false) : null;
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

    /// <summary>An object opened for streaming, or null when there is none.</summary>
    private async Task<Stream?> TryOpenAsync(string key, CancellationToken ct)
    {
        try
        {
            return await Store.OpenReadAsync(key, ct).ConfigureAwait(false);
        }
        catch (GridException ex) when (ex.ErrorId == "ObjectNotFound")
        {
            return null;
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
    public async Task WriteCompactedManifestAsync(string run, string experiment, string localPath, long through, CancellationToken ct)
    {
        await Engine.UploadFileAsync(Store, StoreLayout.ManifestKey(GridNames.CheckRunName(run), GridNames.CheckExperimentName(experiment)), localPath, Clock, ct).ConfigureAwait(false);
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
        var manifestTask = VisitManifestAsync(run, experiment, recorded.Clear, e => recorded[e.Path] = e, ct);
        var prefix = StoreLayout.ArtifactsPrefix(run, experiment);
        var entries = new List<ObjectEntry>();
        await foreach (var e in Store.ListAsync(prefix, recursive: true, ct).ConfigureAwait(false))
        {
            if (!e.IsPrefix) entries.Add(e);
        }
        if (entries.Count == 0 && await Store.TryReadAllBytesAsync(StoreLayout.ExperimentRecordKey(run, experiment), ct).ConfigureAwait(false) is null)
        {
            // No artifacts and no record: say whether the run or the experiment is unknown.
            await GetExperimentAsync(run, experiment, ct).ConfigureAwait(false);
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

    // ---- creation: exclusive across processes and machines ---------------------------------------

    /// <summary>How long a creator waits after writing its claim before it reads the claims (or the record) back, on a store that cannot create exclusively.</summary>
    public TimeSpan ClaimSettle { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>A claim this old with no record beside it was left by a creator that died: it is passed over.</summary>
    public static readonly TimeSpan StaleClaim = TimeSpan.FromMinutes(1);

    /// <summary>A random id for one creator or writer: host, process and a random part.</summary>
    public static string NewClaimId(string kind) =>
        $"{kind}/{Environment.MachineName}/{Environment.ProcessId}/{Guid.NewGuid().ToString("N")[..12]}";

    /// <summary>
    /// Creates a record only if its key is free; of two creators at one moment exactly one gets true.
    /// Where the store creates exclusively (<see cref="IConditionalCreate"/>), that decides.
    /// Elsewhere no two creators ever write one key at once (on s3rver, two PUTs of one record at one
    /// moment left it failing its checksum on every read): each writes a claim of its own under the
    /// record's folder (<c>claims/&lt;time&gt;-&lt;random&gt;</c>), waits <see cref="ClaimSettle"/>, and
    /// lists the claims; only the creator with the earliest claim writes the record, and the others
    /// remove theirs. The winner's claim stays, so a creator that comes later still sees it. That
    /// fallback is exact while the creators' clocks agree within the settle time (docs/s3-compatibility.md).
    /// </summary>
    public async Task<bool> CreateExclusiveAsync(string key, byte[] content, CancellationToken ct, TimeSpan? settle = null)
    {
        if (Store is IConditionalCreate conditional && await conditional.CreatesExclusivelyAsync(ct).ConfigureAwait(false))
        {
            return await conditional.TryCreateAsync(key, content, ct).ConfigureAwait(false);
        }
        if (await Store.TryReadAllBytesAsync(key, ct).ConfigureAwait(false) is not null) return false;
        var claims = key[..(key.LastIndexOf('/') + 1)] + StoreLayout.ClaimsFolder + "/";
        var mine = $"{claims}{Clock.GetUtcNow().UtcTicks:x16}-{Guid.NewGuid():N}";
        await Store.PutAsync(mine, content, ct).ConfigureAwait(false);
        await Task.Delay(settle ?? ClaimSettle, Clock, ct).ConfigureAwait(false);
        string? first = null;
        var stale = (Clock.GetUtcNow() - StaleClaim).UtcTicks;
        await foreach (var e in Store.ListAsync(claims, recursive: false, ct).ConfigureAwait(false))
        {
            // A claim whose creator died before writing the record does not hold the name forever.
            if (e.IsPrefix) continue;
            if (e.Key.Length >= claims.Length + 16
                && long.TryParse(e.Key.AsSpan(claims.Length, 16), System.Globalization.NumberStyles.HexNumber, null, out var ticks) && ticks < stale) continue;
            if (first is null || string.CompareOrdinal(e.Key, first) < 0) first = e.Key;
        }
        if (first != mine || await Store.TryReadAllBytesAsync(key, ct).ConfigureAwait(false) is not null)
        {
            await Store.DeleteAsync(mine, CancellationToken.None).ConfigureAwait(false);
            return false;
        }
        await Store.PutAsync(key, content, ct).ConfigureAwait(false);
        return true;
    }

    /// <summary>Whether the store holds any run at all (one listing request, stopped at its first name).</summary>
    public async Task<bool> HoldsAnyRunAsync(CancellationToken ct)
    {
        await foreach (var _ in Store.ListAsync(StoreLayout.RunsPrefix, recursive: false, ct).ConfigureAwait(false)) return true;
        return false;
    }

    /// <summary>Creates a run's record if no run has its name: false when the name is taken (nothing of that run is changed).</summary>
    /// <param name="tags">The run's tags (checked by <see cref="GridNames.CheckTags"/>), written before its index key, so the run lists with them from the first.</param>
    public async Task<bool> TryCreateRunAsync(RunRecord record, CancellationToken ct, TimeSpan? settle = null, IReadOnlyList<string>? tags = null)
    {
        GridNames.CheckRunName(record.Name);
        record.Claim ??= NewClaimId("run");
        var key = StoreLayout.RunRecordKey(record.Name);
        if (!await CreateExclusiveAsync(key, RecordJson.Serialize(record), ct, settle).ConfigureAwait(false)) return false;
        if (tags is { Count: > 0 }) await PutTagKeysAsync(record.Name, null, tags, ct).ConfigureAwait(false);
        // The run lists once its index key is there, after its record (a crash between leaves a run
        // that Get-GridRun <name> still reads, from its record).
        await Store.PutAsync(CatalogIndex.RunKey(record), ReadOnlyMemory<byte>.Empty, ct).ConfigureAwait(false);
        return true;
    }

    /// <summary>Creates a new run; a taken name is a RunExists error and nothing of the existing run changes.</summary>
    public async Task CreateRunAsync(RunRecord record, CancellationToken ct, IReadOnlyList<string>? tags = null)
    {
        if (!await TryCreateRunAsync(record, ct, tags: tags).ConfigureAwait(false))
        {
            throw new GridException(GridErrorKind.AlreadyExists, "RunExists",
                $"A run named '{record.Name}' already exists in store '{Location}'; nothing of it was changed. " +
                "Choose another name with -Name, or leave -Name out to have a new one generated.", record.Name);
        }
    }

    /// <summary>Creates a new run under a generated name, drawing again while the name drawn is taken.</summary>
    public async Task<string> CreateRunWithNewNameAsync(Func<string, RunRecord> record, CancellationToken ct, IReadOnlyList<string>? tags = null)
    {
        for (var attempt = 0; ; attempt++)
        {
            var r = record(GridNames.NewRunName());
            if (await TryCreateRunAsync(r, ct, tags: tags).ConfigureAwait(false)) return r.Name;
            if (attempt == 20) await CreateRunAsync(r, ct, tags).ConfigureAwait(false); // a store this full of names says so
        }
    }

    /// <summary>
    /// Writes the experiments of a run this caller has just created, exp0 to expN, as Queued: each
    /// waits for the agent that <see cref="ClaimExperimentAsync"/> lets take it.
    /// </summary>
    public async Task QueueExperimentsAsync(string run, IReadOnlyList<(Dictionary<string, string> Parameters, string Command)> experiments, DateTimeOffset now, CancellationToken ct)
    {
        for (var i = 0; i < experiments.Count; i++)
        {
            await WriteExperimentRecordAsync(new ExperimentRecord
            {
                Run = run, Experiment = GridNames.ExperimentName(i), Status = GridStatus.Queued, Created = now,
                Parameters = experiments[i].Parameters, Command = experiments[i].Command,
            }, ct).ConfigureAwait(false);
        }
    }

    public async Task<ExperimentRecord?> ReadExperimentRecordAsync(string run, string experiment, CancellationToken ct)
    {
        var key = StoreLayout.ExperimentRecordKey(run, experiment);
        var bytes = await Store.TryReadAllBytesAsync(key, ct).ConfigureAwait(false);
        if (bytes is null) return null;
        var record = RecordJson.Deserialize<ExperimentRecord>(bytes, Location, key);
        // The key its writer wrote right after this record: the same fields, so the same name.
        if (record.IndexSequence is { } seq) record.IndexKey = CatalogIndex.ExperimentKey(record, seq);
        return record;
    }

    /// <summary>
    /// Takes an experiment for one writer (a capture agent, or an import), which then is the only
    /// writer of its record and manifest. <paramref name="claim"/> builds the claimed record from
    /// the one there (null when new) and names the writer in <see cref="ExperimentRecord.Agent"/>.
    /// Refused: an experiment that has ended (ExperimentExists: it is never rewritten), one that a
    /// live writer holds (ExperimentAlreadyRunning), and a queued one unless <paramref name="takeQueued"/>.
    /// A Lost one (its writer's heartbeat is older than <see cref="LostAfter"/>) is taken over. With
    /// <paramref name="mustExist"/>, a missing record means it was removed: ExperimentRemoved, and
    /// nothing is written.
    /// </summary>
    public async Task<ExperimentRecord> ClaimExperimentAsync(string run, string experiment, Func<ExperimentRecord?, ExperimentRecord> claim,
        bool takeQueued, bool mustExist, CancellationToken ct, TimeSpan? settle = null)
    {
        GridNames.CheckRunName(run);
        GridNames.CheckExperimentName(experiment);
        var key = StoreLayout.ExperimentRecordKey(run, experiment);
        var existing = await ReadExperimentRecordAsync(run, experiment, ct).ConfigureAwait(false);
        if (existing is null && mustExist) throw Removed(run, experiment);
        if (existing is not null) CheckClaimable(existing, takeQueued);
        var claimed = claim(existing);
        var agent = claimed.Agent ?? throw new ArgumentException("A claim names its writer in Agent.", nameof(claim));
        if (existing is null)
        {
            claimed.Schema = StoreLayout.SchemaVersion;
            claimed.IndexSequence = 0;
            if (await CreateExclusiveAsync(key, RecordJson.Serialize(claimed), ct, settle).ConfigureAwait(false))
            {
                claimed.IndexKey = CatalogIndex.ExperimentKey(claimed, 0);
                await Store.PutAsync(claimed.IndexKey, ReadOnlyMemory<byte>.Empty, ct).ConfigureAwait(false);
                return claimed;
            }
            // Another writer created it at the same moment.
            var winner = await ReadExperimentRecordAsync(run, experiment, ct).ConfigureAwait(false);
            if (winner is not null) CheckClaimable(winner, takeQueued);
            throw HeldBy(winner, run, experiment);
        }
        // Taking over a queued or lost record: the last claim written stands, and a writer that reads
        // back another's claim after the settle time stops before doing anything.
        await Store.PutAsync(key, RecordJson.Serialize(claimed), ct).ConfigureAwait(false);
        await Task.Delay(settle ?? ClaimSettle, Clock, ct).ConfigureAwait(false);
        var back = await ReadExperimentRecordAsync(run, experiment, ct).ConfigureAwait(false);
        if (back is null) throw Removed(run, experiment);
        if (back.Agent != agent) throw HeldBy(back, run, experiment);
        // Held: the record again with the next index sequence, and its key (the one before it goes).
        claimed.IndexKey = existing.IndexKey;
        claimed.IndexSequence = existing.IndexSequence;
        await WriteExperimentRecordAsync(claimed, ct).ConfigureAwait(false);
        return claimed;
    }

    private void CheckClaimable(ExperimentRecord record, bool takeQueued)
    {
        var id = GridNames.ExperimentId(record.Run, record.Experiment);
        var status = EffectiveStatus(record);
        if (status.IsFinished() && status != GridStatus.Lost)
        {
            throw new GridException(GridErrorKind.AlreadyExists, "ExperimentExists",
                $"{id} already exists in store '{Location}' and has ended ({status}); an ended experiment is never rewritten, so nothing was changed. " +
                $"Use another experiment (-Experiment exp{NextFreeHint(record)}) or another run, or remove it first with 'Remove-GridExperiment {id}'.", id);
        }
        if (status == GridStatus.Queued && !takeQueued)
        {
            throw new GridException(GridErrorKind.AlreadyExists, "ExperimentExists",
                $"{id} already exists in store '{Location}': it is queued to run under its capture agent, so nothing was changed. Use another experiment or run.", id);
        }
        if (status is GridStatus.Running or GridStatus.Syncing) throw HeldBy(record, record.Run, record.Experiment);
    }

    private static string NextFreeHint(ExperimentRecord record) => (GridNames.ExperimentIndex(record.Experiment) + 1).ToString(System.Globalization.CultureInfo.InvariantCulture);

    private GridException HeldBy(ExperimentRecord? record, string run, string experiment)
    {
        var id = GridNames.ExperimentId(run, experiment);
        var age = record?.Heartbeat is { } beat ? $", last heartbeat {Math.Max(0, (Clock.GetUtcNow() - beat).TotalSeconds):0} s ago" : "";
        return new GridException(GridErrorKind.Busy, "ExperimentAlreadyRunning",
            $"{id} is already {record?.Status.ToString() ?? "being created"} under another writer ({record?.Agent ?? "unnamed"}{age}); nothing was run or changed. " +
            $"Wait for it to end, or stop it with 'Stop-GridRun {id}'. A writer that died is taken over once its heartbeat is older than {LostAfter.TotalSeconds:0} s.",
            id);
    }

    private GridException Removed(string run, string experiment) =>
        new(GridErrorKind.NotFound, "ExperimentRemoved",
            $"{GridNames.ExperimentId(run, experiment)} is not in store '{Location}': it was removed before it started, so nothing was run or written.",
            GridNames.ExperimentId(run, experiment));

    /// <summary>
    /// Ends a queued experiment as Stopped before any agent starts it, by claiming its record; an
    /// agent that starts later finds it ended (or, once removed, gone) and runs nothing. False when an
    /// agent took it first: it is running then, and stops on its stop request.
    /// </summary>
    public Task<bool> StopQueuedAsync(string run, string experiment, CancellationToken ct) =>
        EndQueuedAsync(run, experiment, GridStatus.Stopped, null, null, ct);

    /// <summary>
    /// Ends a queued experiment that no agent will start (its cluster task ended first) with
    /// <paramref name="status"/> and <paramref name="reason"/>, as <see cref="StopQueuedAsync"/> does:
    /// by claiming it, so an agent starting at that moment either wins (and runs it) or runs nothing.
    /// False when it was not queued any more.
    /// </summary>
    public async Task<bool> EndQueuedAsync(string run, string experiment, GridStatus status, string? reason, int? exitCode, CancellationToken ct)
    {
        if (!status.IsFinished() || status == GridStatus.Lost) throw new ArgumentOutOfRangeException(nameof(status), status, "A queued experiment ends Stopped, Failed or Succeeded.");
        try
        {
            var now = Clock.GetUtcNow();
            await ClaimExperimentAsync(run, experiment, r =>
            {
                r!.Status = status;
                r.Finished = r.Heartbeat = now;
                r.Reason = reason;
                r.ExitCode = exitCode;
                r.Agent = NewClaimId(status == GridStatus.Stopped ? "stop" : "end");
                return r;
            }, takeQueued: true, mustExist: true, ct).ConfigureAwait(false);
            return true;
        }
        catch (GridException ex) when (ex.Kind is GridErrorKind.Busy or GridErrorKind.AlreadyExists or GridErrorKind.NotFound)
        {
            return false; // an agent holds it, it has ended, or it is gone: not queued any more
        }
    }

    /// <summary>Records the cluster job that runs a run's experiments (one empty index key; Get-GridRun shows it).</summary>
    public Task SetRunJobAsync(string run, RunJob job, CancellationToken ct) =>
        Store.PutAsync(CatalogIndex.JobKey(GridNames.CheckRunName(run), job.Scheduler, job.Cluster, job.Id), ReadOnlyMemory<byte>.Empty, ct);

    /// <summary>Asks an experiment's agent to stop (it syncs first); a queued one ends Stopped without running.</summary>
    public Task RequestStopAsync(string run, string experiment, CancellationToken ct) =>
        Store.PutAsync(StoreLayout.StopRequestKey(run, experiment), System.Text.Encoding.UTF8.GetBytes(Clock.GetUtcNow().ToString("o")), ct);

    public async Task<bool> StopRequestedAsync(string run, string experiment, CancellationToken ct) =>
        await Store.TryReadAllBytesAsync(StoreLayout.StopRequestKey(run, experiment), ct).ConfigureAwait(false) is not null;

    // ---- write side (one writer per experiment) -------------------------------------------------

    /// <summary>Writes a run's record and its index key (a copy, or an upgrade of a schema-1 run); a new run is created with <see cref="TryCreateRunAsync"/>.</summary>
    public async Task WriteRunRecordAsync(RunRecord record, CancellationToken ct)
    {
        GridNames.CheckRunName(record.Name);
        record.Schema = StoreLayout.SchemaVersion;
        // The key of the record it replaces (if any) is spelled from that record: nothing is listed.
        var old = await Store.TryReadAllBytesAsync(StoreLayout.RunRecordKey(record.Name), ct).ConfigureAwait(false);
        var oldKey = old is null ? null : CatalogIndex.RunKey(RecordJson.Deserialize<RunRecord>(old, Location, StoreLayout.RunRecordKey(record.Name)));
        await Store.PutAsync(StoreLayout.RunRecordKey(record.Name), RecordJson.Serialize(record), ct).ConfigureAwait(false);
        var key = CatalogIndex.RunKey(record);
        await Store.PutAsync(key, ReadOnlyMemory<byte>.Empty, ct).ConfigureAwait(false);
        if (oldKey is not null && oldKey != key) await Store.DeleteAsync(oldKey, ct).ConfigureAwait(false);
    }

    /// <summary>
    /// Writes an experiment's record, then its index key: only the experiment's one writer (its
    /// agent, its import, or whoever queued or stopped it while no agent held it) calls this, with
    /// the record it read or wrote last. The new key has the next sequence number and goes before
    /// the old one is deleted: a reader between the two sees both and takes the higher, and a crash
    /// between leaves both, read the same way. Nothing is listed: the record names its key.
    /// </summary>
    public async Task WriteExperimentRecordAsync(ExperimentRecord record, CancellationToken ct)
    {
        GridNames.CheckRunName(record.Run);
        GridNames.CheckExperimentName(record.Experiment);
        record.Schema = StoreLayout.SchemaVersion;
        var stale = new List<string>();
        if (record.IndexKey is null)
        {
            // A record not read from this store (a new one, or a copy): the one there, if any, names its key.
            try
            {
                var there = await ReadExperimentRecordAsync(record.Run, record.Experiment, ct).ConfigureAwait(false);
                record.IndexSequence = there?.IndexSequence;
                record.IndexKey = there?.IndexKey;
            }
            catch (GridException ex) when (ex.Kind == GridErrorKind.DamagedRecord)
            {
                // Replacing a damaged record: its keys are found by listing them (this case alone).
                await foreach (var e in Store.ListAsync(CatalogIndex.ExperimentIndexPrefix(record.Run, record.Experiment), recursive: false, ct).ConfigureAwait(false))
                {
                    if (CatalogIndex.Parse(e.Key) is not CatalogIndex.ExperimentEntry x || x.Experiment != record.Experiment) continue;
                    stale.Add(e.Key);
                    record.IndexSequence = Math.Max(record.IndexSequence ?? -1, x.Sequence);
                }
            }
        }
        var previous = record.IndexKey;
        var sequence = (record.IndexSequence ?? -1) + 1;
        record.IndexSequence = sequence;
        await Store.PutAsync(StoreLayout.ExperimentRecordKey(record.Run, record.Experiment), RecordJson.Serialize(record), ct).ConfigureAwait(false);
        var key = CatalogIndex.ExperimentKey(record, sequence);
        await Store.PutAsync(key, ReadOnlyMemory<byte>.Empty, ct).ConfigureAwait(false);
        record.IndexKey = key;
        if (previous is not null) stale.Add(previous);
        stale.Remove(key);
        if (stale.Count > 0) await Store.DeleteManyAsync(stale, ct).ConfigureAwait(false);
    }

    public Task WriteManifestAsync(ManifestRecord manifest, CancellationToken ct)
    {
        GridNames.CheckRunName(manifest.Run);
        GridNames.CheckExperimentName(manifest.Experiment);
        manifest.Artifacts.Sort((a, b) => string.CompareOrdinal(a.Path, b.Path));
        return Store.PutAsync(StoreLayout.ManifestKey(manifest.Run, manifest.Experiment), RecordJson.Serialize(manifest), ct);
    }

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

    // ---- removal: the only place anything is deleted ---------------------------------------------

    /// <summary>What a removal took (or would take).</summary>
    public sealed record Removal(int Experiments, int Files, long Bytes);

    /// <summary>
    /// The keys of an experiment (artifacts first, its record last), its artifact count and bytes,
    /// and the bytes of every object of it (records, manifests and logs too): what removing it frees.
    /// </summary>
    public async Task<(List<string> Keys, int Files, long Bytes, long StoredBytes)> PlanExperimentRemovalAsync(string run, string experiment, CancellationToken ct)
    {
        var prefix = StoreLayout.ExperimentPrefix(run, experiment);
        var artifacts = StoreLayout.ArtifactsPrefix(run, experiment);
        var keys = new List<string>();
        int files = 0;
        long bytes = 0, stored = 0;
        await foreach (var e in Store.ListAsync(prefix, recursive: true, ct).ConfigureAwait(false))
        {
            if (e.IsPrefix) continue;
            keys.Add(e.Key);
            stored += e.Size;
            if (e.Key.StartsWith(artifacts, StringComparison.Ordinal)) { files++; bytes += e.Size; }
        }
        var record = StoreLayout.ExperimentRecordKey(run, experiment);
        // The record goes last, so an interrupted removal still shows the experiment and can be run again.
        keys.Sort((a, b) => (a == record).CompareTo(b == record));
        return (keys, files, bytes, stored);
    }

    /// <summary>
    /// The index keys of many runs from one listing of <c>runs/</c>, for removing them: on a folder
    /// store a listing of one run's keys reads the whole runs folder, so a clean-up of 1,000 runs of
    /// 4 experiments would read it 5,000 times.
    /// </summary>
    public async Task<IReadOnlyDictionary<string, List<string>>> ListIndexKeysAsync(IReadOnlySet<string> runs, CancellationToken ct)
    {
        var keys = runs.ToDictionary(r => r, _ => new List<string>(), StringComparer.Ordinal);
        await Store.VisitNamesAsync(StoreLayout.RunsPrefix, (name, isFolder) =>
        {
            var end = name.IndexOf(CatalogIndex.Separator);
            if (!isFolder && end > 0 && keys.TryGetValue(name[..end].ToString(), out var list)) list.Add(StoreLayout.RunsPrefix + name.ToString());
        }, ct).ConfigureAwait(false);
        return keys;
    }

    /// <param name="indexKeys">The run's index keys, when the caller listed them for many runs at once (<see cref="ListIndexKeysAsync"/>); else they are listed.</param>
    public async Task<Removal> RemoveExperimentAsync(string run, string experiment, CancellationToken ct, IReadOnlyList<string>? indexKeys = null)
    {
        await CheckNotProtectedAsync(run, ct).ConfigureAwait(false);
        return await RemoveUnprotectedExperimentAsync(run, experiment, indexKeys, ct).ConfigureAwait(false);
    }

    /// <summary>An experiment whose run was just found unprotected: its run's removal asks once for all of them.</summary>
    private async Task<Removal> RemoveUnprotectedExperimentAsync(string run, string experiment, IReadOnlyList<string>? indexKeys, CancellationToken ct)
    {
        // Unfinished uploads first (their records are among the keys), so no parts outlive the experiment.
        await AbortAbandonedUploadsAsync(run, experiment, ct).ConfigureAwait(false);
        var (keys, files, bytes, _) = await PlanExperimentRemovalAsync(run, experiment, ct).ConfigureAwait(false);
        var record = StoreLayout.ExperimentRecordKey(run, experiment);
        await Store.DeleteManyAsync(keys.Where(k => k != record).ToList(), ct).ConfigureAwait(false);
        await Store.DeleteAsync(record, ct).ConfigureAwait(false);
        // Its index keys last: until they go, the experiment still lists, and a removal cut short can be run again.
        await DeleteIndexKeysAsync(CatalogIndex.ExperimentIndexPrefix(run, experiment), indexKeys, ct).ConfigureAwait(false);
        return new Removal(1, files, bytes);
    }

    /// <param name="indexKeys">The run's index keys, when the caller listed them for many runs at once (<see cref="ListIndexKeysAsync"/>); else they are listed.</param>
    public async Task<Removal> RemoveRunAsync(string run, CancellationToken ct, IReadOnlyList<string>? indexKeys = null)
    {
        GridNames.CheckRunName(run);
        await CheckNotProtectedAsync(run, ct).ConfigureAwait(false);
        int experiments = 0, files = 0;
        long bytes = 0;
        foreach (var exp in await ListExperimentNamesAsync(run, ct).ConfigureAwait(false))
        {
            // Asked again before each experiment: a removal of many takes a while, and Protect-GridRun may come meanwhile.
            if (experiments > 0) await CheckNotProtectedAsync(run, ct).ConfigureAwait(false);
            var r = await RemoveUnprotectedExperimentAsync(run, exp, indexKeys, ct).ConfigureAwait(false);
            experiments++; files += r.Files; bytes += r.Bytes;
        }
        // Anything else under the run (its record last).
        var rest = new List<string>();
        await foreach (var e in Store.ListAsync(StoreLayout.RunPrefix(run), recursive: true, ct).ConfigureAwait(false))
        {
            if (!e.IsPrefix && e.Key != StoreLayout.RunRecordKey(run)) rest.Add(e.Key);
        }
        await Store.DeleteManyAsync(rest, ct).ConfigureAwait(false);
        // Once more before the record: a Protect-GridRun that read the record back before this point holds.
        await CheckNotProtectedAsync(run, ct).ConfigureAwait(false);
        await Store.DeleteAsync(StoreLayout.RunRecordKey(run), ct).ConfigureAwait(false);
        // Keys listed earlier for many runs may miss a protection key written since: it goes by name.
        await DeleteIndexKeysAsync(CatalogIndex.RunIndexPrefix(run), indexKeys?.Append(CatalogIndex.ProtectedKey(run)).Distinct().ToList(), ct).ConfigureAwait(false);
        return new Removal(experiments, files, bytes);
    }

    // ---- protection: a run nothing removes ---------------------------------------------------------

    /// <summary>Whether the run is protected: one read of its protection key.</summary>
    public async Task<bool> IsProtectedAsync(string run, CancellationToken ct) =>
        await Store.TryReadAllBytesAsync(CatalogIndex.ProtectedKey(GridNames.CheckRunName(run)), ct).ConfigureAwait(false) is not null;

    /// <summary>
    /// Protects a run: its key is written, then the run is read again, so a run removed meanwhile
    /// leaves no key that would protect a later run of its name.
    /// </summary>
    public async Task ProtectAsync(string run, CancellationToken ct)
    {
        await ReadRunRecordAsync(run, ct).ConfigureAwait(false); // an unknown run is RunNotFound
        var key = CatalogIndex.ProtectedKey(run);
        await Store.PutAsync(key, ReadOnlyMemory<byte>.Empty, ct).ConfigureAwait(false);
        try
        {
            await ReadRunRecordAsync(run, ct).ConfigureAwait(false);
        }
        catch (GridException ex) when (ex.Kind == GridErrorKind.NotFound)
        {
            await Store.DeleteAsync(key, CancellationToken.None).ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Lets a run be removed again; a run that is not protected is left as it is.</summary>
    public async Task UnprotectAsync(string run, CancellationToken ct)
    {
        await ReadRunRecordAsync(run, ct).ConfigureAwait(false);
        await Store.DeleteAsync(CatalogIndex.ProtectedKey(run), ct).ConfigureAwait(false);
    }

    /// <summary>RunProtected when the run is protected: every removal asks, whoever calls it.</summary>
    public async Task CheckNotProtectedAsync(string run, CancellationToken ct)
    {
        if (await IsProtectedAsync(run, ct).ConfigureAwait(false)) throw Protected(run);
    }

    public static GridException Protected(string run) =>
        new(GridErrorKind.Protected, "RunProtected",
            $"Run '{run}' is protected, so nothing of it was removed (whatever -Force or -Confirm say). 'Unprotect-GridRun {run}' lets it be removed.", run);

    private async Task DeleteIndexKeysAsync(string prefix, IReadOnlyList<string>? known, CancellationToken ct)
    {
        var keys = new List<string>();
        if (known is not null) keys.AddRange(known.Where(k => k.StartsWith(prefix, StringComparison.Ordinal)));
        else
        {
            await foreach (var e in Store.ListAsync(prefix, recursive: false, ct).ConfigureAwait(false))
            {
                if (!e.IsPrefix) keys.Add(e.Key);
            }
        }
        if (keys.Count > 0) await Store.DeleteManyAsync(keys, ct).ConfigureAwait(false);
    }

    // ---- helpers --------------------------------------------------------------------------------

    private GridStatus EffectiveStatus(ExperimentRecord record) => EffectiveStatus(record.Status, record.Heartbeat);

    /// <summary>An experiment that says it is going but whose heartbeat is older than <see cref="LostAfter"/> is Lost.</summary>
    private GridStatus EffectiveStatus(GridStatus status, DateTimeOffset? heartbeat)
    {
        if (status is GridStatus.Running or GridStatus.Syncing && heartbeat is { } beat
            && Clock.GetUtcNow() - beat > LostAfter)
        {
            return GridStatus.Lost;
        }
        return status;
    }

    /// <summary>Whether a per-item error names one of the run's records (its target is a key under the run's folder).</summary>
    public static bool Concerns(GridException error, string run) =>
        error.Target is string key && key.StartsWith(StoreLayout.RunPrefix(run), StringComparison.Ordinal);

    private GridException RunNotFound(string run) =>
        new(GridErrorKind.NotFound, "RunNotFound",
            $"No run named '{run}' in store '{Location}'. 'Get-GridRun' lists the runs there.", run);

    /// <summary>Reads many named items at once, in input order; per-item errors are collected, not thrown.</summary>
    public static async Task<ReadResult<T>> ReadManyAsync<TKey, T>(IEnumerable<TKey> names, Func<TKey, CancellationToken, Task<T>> read, CancellationToken ct)
    {
        var list = names.ToList();
        var results = new T?[list.Count];
        var errors = new ConcurrentBag<(int, GridException)>();
        await Parallel.ForEachAsync(Enumerable.Range(0, list.Count),
            new ParallelOptions { MaxDegreeOfParallelism = ReadConcurrency, CancellationToken = ct },
            async (i, c) =>
            {
                try { results[i] = await read(list[i], c).ConfigureAwait(false); }
                catch (GridException ex) { errors.Add((i, ex)); }
            }).ConfigureAwait(false);
        return new ReadResult<T>(
            results.Where(r => r is not null).Select(r => r!).ToList(),
            errors.OrderBy(e => e.Item1).Select(e => e.Item2).ToList());
    }
}
