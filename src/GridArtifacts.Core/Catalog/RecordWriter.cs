using GridArtifacts.Core.Stores;
using GridArtifacts.Core.Transfer;
using GridArtifacts.Model;

namespace GridArtifacts.Core;

/// <summary>
/// The writer of records: every run and experiment record, index key, tag, job key, stop request and
/// log goes to the store through it (but a claim, which <see cref="ExperimentClaims"/> writes, and a
/// protection key, which <see cref="Remover"/> writes), in the order that keeps readers right (a record, then its key,
/// then the key it replaces goes).
/// </summary>
public sealed partial class RecordWriter : CatalogPart
{
    private readonly RunReader _runs;

    internal RecordWriter(CatalogContext context, RunReader runs) : base(context) => _runs = runs;

    /// <summary>Creates a run's record if no run has its name: false when the name is taken (nothing of that run is changed).</summary>
    /// <param name="tags">The run's tags (checked by <see cref="GridNames.CheckTags"/>), written before its index key, so the run lists with them from the first.</param>
    public async Task<bool> TryCreateRunAsync(RunRecord record, CancellationToken ct, TimeSpan? settle = null, IReadOnlyList<string>? tags = null)
    {
        GridNames.CheckRunName(record.Name);
        record.Claim ??= WriterId.New("run");
        var key = StoreLayout.RunRecordKey(record.Name);
        if (!await Create.TryCreateAsync(key, RecordJson.Serialize(record), settle, ct).ConfigureAwait(false)) return false;
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
    /// Writes the experiments of a run this caller has just created, exp0 to expN, as Queued: each
    /// waits for the agent that <see cref="ExperimentClaims.ClaimExperimentAsync"/> lets take it.
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
                var there = await _runs.ReadExperimentRecordAsync(record.Run, record.Experiment, ct).ConfigureAwait(false);
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

    /// <summary>Records the cluster job that runs a run's experiments (one empty index key; Get-GridRun shows it).</summary>
    public Task SetRunJobAsync(string run, RunJob job, CancellationToken ct) =>
        Store.PutAsync(CatalogIndex.JobKey(GridNames.CheckRunName(run), job.Scheduler, job.Cluster, job.Id), ReadOnlyMemory<byte>.Empty, ct);

    /// <summary>Asks an experiment's agent to stop (it syncs first); a queued one ends Stopped without running.</summary>
    public Task RequestStopAsync(string run, string experiment, CancellationToken ct) =>
        Store.PutAsync(StoreLayout.StopRequestKey(run, experiment), System.Text.Encoding.UTF8.GetBytes(Clock.GetUtcNow().ToString("o")), ct);

    /// <summary>Keeps the script's output (<c>stdout</c> or <c>stderr</c>) with the experiment: its writer's call.</summary>
    public Task WriteLogAsync(string run, string experiment, string stream, ReadOnlyMemory<byte> content, CancellationToken ct) =>
        Store.PutAsync(StoreLayout.LogKey(GridNames.CheckRunName(run), GridNames.CheckExperimentName(experiment), stream), content, ct);

    /// <summary>Keeps the script's output from the file the agent writes it to.</summary>
    public Task WriteLogFileAsync(string run, string experiment, string stream, string localPath, CancellationToken ct) =>
        Engine.UploadFileAsync(Store, StoreLayout.LogKey(GridNames.CheckRunName(run), GridNames.CheckExperimentName(experiment), stream), localPath, Clock, ct);
}
