using GridArtifacts.Core.Stores;
using GridArtifacts.Core.Transfer;
using GridArtifacts.Model;

namespace GridArtifacts.Core;

/// <summary>
/// The catalog's reads of runs and experiments: their records, their index keys (<see cref="IndexPage"/>)
/// and labels, and the logs their agents kept. It writes nothing.
/// </summary>
public sealed partial class RunReader : CatalogPart
{
    private readonly ManifestStore _manifests;

    internal RunReader(CatalogContext context, ManifestStore manifests) : base(context) => _manifests = manifests;

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
        var experiments = await ReadMany.AllAsync(names, (exp, c) => GetExperimentAsync(run, exp, c, withArtifactSummary), ct).ConfigureAwait(false);
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
        var old = await ReadMany.AllAsync(unindexed.Where(n => known is null || !known.ContainsKey(n)), (n, c) => GetRunFromRecordsAsync(n, index.Labels(n), c, withArtifactSummary), ct).ConfigureAwait(false);
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
        if (names.Count <= 1) return await ReadMany.AllAsync(names, GetRunAsync, ct).ConfigureAwait(false);
        var all = await ListRunsAsync(ct).ConfigureAwait(false);
        var byName = all.Items.ToDictionary(r => r.Name, StringComparer.Ordinal);
        var missing = names.Where(n => !byName.ContainsKey(n)).ToList();
        // A run not in the listing is read by name, which says why (unknown, or damaged).
        var rest = await ReadMany.AllAsync(missing, GetRunAsync, ct).ConfigureAwait(false);
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
                var manifest = await _manifests.VisitManifestAsync(run, experiment, () => (count, bytes) = (0, 0), e => { count++; bytes += e.Size; }, ct).ConfigureAwait(false);
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
            return await ReadMany.AllAsync(names, (exp, c) => GetExperimentAsync(run, exp, c, labels: labels), ct).ConfigureAwait(false);
        }
        var entries = index.ExperimentsOf(run);
        var runLabels = index.Labels(run);
        var read = await ReadMany.AllAsync(entries, async (entry, c) =>
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

    public async Task<bool> StopRequestedAsync(string run, string experiment, CancellationToken ct) =>
        await Store.TryReadAllBytesAsync(StoreLayout.StopRequestKey(run, experiment), ct).ConfigureAwait(false) is not null;

    /// <summary>Whether the store holds any run at all (one listing request, stopped at its first name).</summary>
    public async Task<bool> HoldsAnyRunAsync(CancellationToken ct)
    {
        await foreach (var _ in Store.ListAsync(StoreLayout.RunsPrefix, recursive: false, ct).ConfigureAwait(false)) return true;
        return false;
    }
}
