using GridArtifacts.Core.Stores;
using GridArtifacts.Model;

namespace GridArtifacts.Core;

public sealed partial class RecordWriter
{
    /// <summary>
    /// Tags a run (<paramref name="experiment"/> null) or one experiment: one empty key per tag, so two
    /// sessions tagging at once both land. Tags already there are not written again. The run (and the
    /// experiment) must exist; a run or experiment ends with at most <see cref="GridNames.MaxTags"/>.
    /// </summary>
    /// <returns>The tags that were new.</returns>
    public async Task<IReadOnlyList<string>> AddTagsAsync(string run, string? experiment, IEnumerable<string> tags, CancellationToken ct)
    {
        var wanted = GridNames.CheckTags(tags);
        var labels = (await _runs.GetLabelsAsync(new[] { run }, ct).ConfigureAwait(false))[run];
        await _runs.CheckExistsAsync(run, experiment, ct).ConfigureAwait(false);
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
        var labels = (await _runs.GetLabelsAsync(new[] { run }, ct).ConfigureAwait(false))[run];
        await _runs.CheckExistsAsync(run, experiment, ct).ConfigureAwait(false);
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
}
