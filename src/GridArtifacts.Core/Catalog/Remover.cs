using GridArtifacts.Core.Stores;
using GridArtifacts.Core.Transfer;
using GridArtifacts.Model;

namespace GridArtifacts.Core;

/// <summary>
/// The only place anything of a run is deleted, and the protection that stops it: every removal asks
/// whether its run is protected, again before the run's record goes.
/// </summary>
public sealed class Remover : CatalogPart
{
    private readonly RunReader _runs;
    private readonly ArtifactStore _artifacts;

    internal Remover(CatalogContext context, RunReader runs, ArtifactStore artifacts) : base(context) => (_runs, _artifacts) = (runs, artifacts);

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
    public async Task<RemovalResult> RemoveExperimentAsync(string run, string experiment, CancellationToken ct, IReadOnlyList<string>? indexKeys = null)
    {
        await CheckNotProtectedAsync(run, ct).ConfigureAwait(false);
        return await RemoveUnprotectedExperimentAsync(run, experiment, indexKeys, ct).ConfigureAwait(false);
    }

    /// <summary>An experiment whose run was just found unprotected: its run's removal asks once for all of them.</summary>
    private async Task<RemovalResult> RemoveUnprotectedExperimentAsync(string run, string experiment, IReadOnlyList<string>? indexKeys, CancellationToken ct)
    {
        // Unfinished uploads first (their records are among the keys), so no parts outlive the experiment.
        await _artifacts.AbortAbandonedUploadsAsync(run, experiment, ct).ConfigureAwait(false);
        var (keys, files, bytes, _) = await PlanExperimentRemovalAsync(run, experiment, ct).ConfigureAwait(false);
        var record = StoreLayout.ExperimentRecordKey(run, experiment);
        await Store.DeleteManyAsync(keys.Where(k => k != record).ToList(), ct).ConfigureAwait(false);
        await Store.DeleteAsync(record, ct).ConfigureAwait(false);
        // Its index keys last: until they go, the experiment still lists, and a removal cut short can be run again.
        await DeleteIndexKeysAsync(CatalogIndex.ExperimentIndexPrefix(run, experiment), indexKeys, ct).ConfigureAwait(false);
        return new RemovalResult(1, files, bytes);
    }

    /// <param name="indexKeys">The run's index keys, when the caller listed them for many runs at once (<see cref="ListIndexKeysAsync"/>); else they are listed.</param>
    public async Task<RemovalResult> RemoveRunAsync(string run, CancellationToken ct, IReadOnlyList<string>? indexKeys = null)
    {
        GridNames.CheckRunName(run);
        await CheckNotProtectedAsync(run, ct).ConfigureAwait(false);
        int experiments = 0, files = 0;
        long bytes = 0;
        foreach (var exp in await _runs.ListExperimentNamesAsync(run, ct).ConfigureAwait(false))
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
        return new RemovalResult(experiments, files, bytes);
    }

    /// <summary>Whether the run is protected: one read of its protection key.</summary>
    public async Task<bool> IsProtectedAsync(string run, CancellationToken ct) =>
        await Store.TryReadAllBytesAsync(CatalogIndex.ProtectedKey(GridNames.CheckRunName(run)), ct).ConfigureAwait(false) is not null;

    /// <summary>
    /// Protects a run: its key is written, then the run is read again, so a run removed meanwhile
    /// leaves no key that would protect a later run of its name.
    /// </summary>
    public async Task ProtectAsync(string run, CancellationToken ct)
    {
        await _runs.ReadRunRecordAsync(run, ct).ConfigureAwait(false); // an unknown run is RunNotFound
        var key = CatalogIndex.ProtectedKey(run);
        await Store.PutAsync(key, ReadOnlyMemory<byte>.Empty, ct).ConfigureAwait(false);
        try
        {
            await _runs.ReadRunRecordAsync(run, ct).ConfigureAwait(false);
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
        await _runs.ReadRunRecordAsync(run, ct).ConfigureAwait(false);
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
}

/// <summary>What a removal took (or would take).</summary>
public sealed record RemovalResult(int Experiments, int Files, long Bytes);
