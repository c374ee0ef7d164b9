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
