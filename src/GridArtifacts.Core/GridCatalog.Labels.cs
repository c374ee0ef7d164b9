using GridArtifacts.Core.Stores;
using GridArtifacts.Model;

namespace GridArtifacts.Core;

/// <summary>
/// A run's tags (its own, and each experiment's own) and whether it is protected, as its index keys
/// show them, and the cluster job its job key names. One rule everywhere: a run carries every tag on it or on any of its experiments, and an
/// experiment carries its own and its run's.
/// </summary>
public sealed record RunLabels(IReadOnlyList<string> Tags, IReadOnlyDictionary<string, IReadOnlyList<string>>? ExperimentTags, bool Protected)
{
    public static readonly RunLabels None = new(Array.Empty<string>(), null, false);
    public static readonly RunLabels ProtectedOnly = new(Array.Empty<string>(), null, true);

    /// <summary>The cluster job that runs the run's experiments (its job key), or null for a Local run.</summary>
    public RunJob? Job { get; init; }

    /// <summary>The run's own tags and every experiment's, sorted and distinct.</summary>
    public IReadOnlyList<string> AllTags => ExperimentTags is null ? Sorted(Tags) : Sorted(Tags.Concat(ExperimentTags.Values.SelectMany(t => t)));

    /// <summary>The tags on the experiment itself.</summary>
    public IReadOnlyList<string> OwnTagsOf(string experiment) =>
        ExperimentTags is not null && ExperimentTags.TryGetValue(experiment, out var own) ? Sorted(own) : Array.Empty<string>();

    /// <summary>The experiment's own tags and its run's.</summary>
    public IReadOnlyList<string> TagsOf(string experiment) =>
        ExperimentTags is not null && ExperimentTags.TryGetValue(experiment, out var own) ? Sorted(Tags.Concat(own)) : Sorted(Tags);

    private static IReadOnlyList<string> Sorted(IEnumerable<string> tags)
    {
        var list = tags.Distinct(StringComparer.Ordinal).ToArray();
        if (list.Length == 0) return Array.Empty<string>();
        Array.Sort(list, StringComparer.Ordinal);
        return list;
    }
}

public sealed partial class GridCatalog
{
    /// <summary>
    /// The labels of the runs named: one listing of a run's keys for one run, one listing of every
    /// run's for more (on a folder store a listing of one run's keys reads the whole runs folder anyway).
    /// A run without labels (or unknown) gets <see cref="RunLabels.None"/>.
    /// </summary>
    public async Task<IReadOnlyDictionary<string, RunLabels>> GetLabelsAsync(IReadOnlyCollection<string> runs, CancellationToken ct)
    {
        var index = new IndexPage();
        var prefix = runs.Count == 1 ? CatalogIndex.RunIndexPrefix(GridNames.CheckRunName(runs.First())) : StoreLayout.RunsPrefix;
        await Store.VisitNamesAsync(prefix, index.Add, ct).ConfigureAwait(false);
        return runs.Distinct(StringComparer.Ordinal).ToDictionary(r => r, index.Labels, StringComparer.Ordinal);
    }

    /// <summary>One experiment with its tags and its run's protection (one listing of the run's keys more than <see cref="GetExperimentAsync"/>).</summary>
    public async Task<GridExperiment> GetLabelledExperimentAsync(string run, string experiment, CancellationToken ct)
    {
        var labels = await GetLabelsAsync(new[] { run }, ct).ConfigureAwait(false);
        return await GetExperimentAsync(run, experiment, ct, labels: labels[run]).ConfigureAwait(false);
    }

    /// <summary>Every run with tags or protection, and its labels: one listing of the index (tab completion, Unprotect-GridRun's).</summary>
    public async Task<IReadOnlyList<(string Run, RunLabels Labels)>> ListLabelsAsync(CancellationToken ct)
    {
        var index = new IndexPage();
        await Store.VisitNamesAsync(StoreLayout.RunsPrefix, index.Add, ct).ConfigureAwait(false);
        return index.Labelled().ToList();
    }

    /// <summary>
    /// Tags a run (<paramref name="experiment"/> null) or one experiment: one empty key per tag, so two
    /// sessions tagging at once both land. Tags already there are not written again. The run (and the
    /// experiment) must exist; a run or experiment ends with at most <see cref="GridNames.MaxTags"/>.
    /// </summary>
    /// <returns>The tags that were new.</returns>
    public async Task<IReadOnlyList<string>> AddTagsAsync(string run, string? experiment, IEnumerable<string> tags, CancellationToken ct)
    {
        var wanted = GridNames.CheckTags(tags);
        var labels = (await GetLabelsAsync(new[] { run }, ct).ConfigureAwait(false))[run];
        await CheckExistsAsync(run, experiment, ct).ConfigureAwait(false);
        var there = experiment is null ? labels.Tags : labels.OwnTagsOf(experiment);
        var added = wanted.Where(t => !there.Contains(t)).ToList();
        if (there.Count + added.Count > GridNames.MaxTags)
        {
            throw new GridException(GridErrorKind.InvalidArgument, "TooManyTags",
                $"{(experiment is null ? run : GridNames.ExperimentId(run, experiment))} has {there.Count} tags; adding {added.Count} would pass the limit of {GridNames.MaxTags}. Nothing was added.",
                experiment is null ? run : GridNames.ExperimentId(run, experiment));
        }
        await PutTagKeysAsync(run, experiment, added, ct).ConfigureAwait(false);
        return added;
    }

    private async Task PutTagKeysAsync(string run, string? experiment, IEnumerable<string> tags, CancellationToken ct)
    {
        foreach (var tag in tags)
        {
            var key = experiment is null ? CatalogIndex.RunTagKey(run, tag) : CatalogIndex.ExperimentTagKey(run, experiment, tag);
            await Store.PutAsync(key, ReadOnlyMemory<byte>.Empty, ct).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Removes tags from a run or one experiment; a tag that is not there is passed over. At run level
    /// it also removes them from every experiment, since a run carries its experiments' tags.
    /// </summary>
    /// <returns>The tags that were there.</returns>
    public async Task<IReadOnlyList<string>> RemoveTagsAsync(string run, string? experiment, IEnumerable<string> tags, CancellationToken ct)
    {
        var unwanted = tags.Select(GridNames.CheckTag).Distinct(StringComparer.Ordinal).ToList();
        var labels = (await GetLabelsAsync(new[] { run }, ct).ConfigureAwait(false))[run];
        await CheckExistsAsync(run, experiment, ct).ConfigureAwait(false);
        var keys = new List<string>();
        var removed = new SortedSet<string>(StringComparer.Ordinal);
        void Take(string? exp, IReadOnlyList<string> there)
        {
            foreach (var t in unwanted.Where(there.Contains))
            {
                keys.Add(exp is null ? CatalogIndex.RunTagKey(run, t) : CatalogIndex.ExperimentTagKey(run, exp, t));
                removed.Add(t);
            }
        }
        if (experiment is not null) Take(experiment, labels.OwnTagsOf(experiment));
        else
        {
            Take(null, labels.Tags);
            foreach (var (exp, own) in labels.ExperimentTags ?? new Dictionary<string, IReadOnlyList<string>>()) Take(exp, own);
        }
        if (keys.Count > 0) await Store.DeleteManyAsync(keys, ct).ConfigureAwait(false);
        return removed.ToList();
    }

    /// <summary>RunNotFound or ExperimentNotFound unless the run (and the experiment) is there.</summary>
    private async Task CheckExistsAsync(string run, string? experiment, CancellationToken ct)
    {
        if (experiment is null) await ReadRunRecordAsync(run, ct).ConfigureAwait(false);
        else await GetExperimentAsync(run, experiment, ct, withArtifactSummary: false).ConfigureAwait(false);
    }

    /// <summary>A run as read before, with the labels a later listing shows.</summary>
    private static GridRun WithLabels(GridRun r, RunLabels labels) =>
        new(r.Name, r.Store)
        {
            Status = r.Status, Created = r.Created, Finished = r.Finished, Command = r.Command,
            ExperimentCount = r.ExperimentCount, Experiments = r.Experiments, Parameters = r.Parameters,
            ArtifactCount = r.ArtifactCount, ArtifactBytes = r.ArtifactBytes,
            Protected = labels.Protected, Tags = labels.AllTags,
        };
}
