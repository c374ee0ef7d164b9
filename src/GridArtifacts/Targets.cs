using GridArtifacts.Core.Stores;
using System.Management.Automation;
using GridArtifacts.Core;
using GridArtifacts.Model;

namespace GridArtifacts;

/// <summary>
/// Turns what a user typed (<c>run</c>, <c>run-expN</c>, wildcards, -Experiment) into the runs and
/// experiments it names. A literal that names nothing is an ObjectNotFound error; a wildcard that
/// matches nothing is quiet, as in Get-Item.
/// </summary>
internal static class Targets
{
    private const WildcardOptions Options = WildcardOptions.IgnoreCase | WildcardOptions.CultureInvariant;

    public static bool IsWildcard(string s) => WildcardPattern.ContainsWildcardCharacters(s);

    public static Func<string, bool> Matcher(IEnumerable<string>? patterns)
    {
        var list = patterns?.Select(p => WildcardPattern.Get(p, Options)).ToArray();
        return list is null || list.Length == 0 ? _ => true : s => list.Any(p => p.IsMatch(s));
    }

    /// <summary>True for tags of which one matches one of <paramref name="patterns"/>; every item passes when there are none.</summary>
    public static Func<IReadOnlyList<string>, bool> TagFilter(IEnumerable<string>? patterns)
    {
        if (patterns is null || !patterns.Any()) return _ => true;
        var match = Matcher(patterns);
        return tags => tags.Any(match);
    }

    /// <summary>Run names for <paramref name="patterns"/>; literals are returned unchecked (reading them reports a missing run).</summary>
    public static async Task<List<string>> ResolveRunsAsync(GridCatalog catalog, IEnumerable<string> patterns, Action<object> post, CancellationToken ct)
    {
        IReadOnlyList<string>? all = null;
        var result = new List<string>();
        foreach (var p in patterns)
        {
            if (IsWildcard(p))
            {
                all ??= await catalog.Runs.ListRunNamesAsync(ct).ConfigureAwait(false);
                var pattern = WildcardPattern.Get(p, Options);
                result.AddRange(all.Where(pattern.IsMatch));
            }
            else if (GridNames.IsValidRunName(p))
            {
                result.Add(p);
            }
            else
            {
                post(InvalidRun(p));
            }
        }
        return result.Distinct(StringComparer.Ordinal).ToList();
    }

    /// <summary>(run, experiment) pairs for run targets (each <c>run</c> or <c>run-expN</c>) and optional -Experiment patterns.</summary>
    public static async Task<List<(string Run, string Experiment)>> ResolveExperimentsAsync(
        GridCatalog catalog, IEnumerable<string> targets, string[]? experiments, Action<object> post, CancellationToken ct)
    {
        var pairs = new List<(string, string)>();
        foreach (var target in targets)
        {
            var (runPart, expPart) = GridNames.SplitTarget(target);
            var runs = await ResolveRunsAsync(catalog, new[] { runPart }, post, ct).ConfigureAwait(false);
            var wanted = expPart is not null ? new[] { expPart } : experiments;
            foreach (var run in runs)
            {
                // A literal experiment needs no listing: reading it reports whatever is missing.
                if (wanted is not null && wanted.All(w => !IsWildcard(w)))
                {
                    foreach (var w in wanted)
                    {
                        if (GridNames.IsValidExperimentName(w)) pairs.Add((run, w));
                        else post(new GridException(GridErrorKind.InvalidName, "InvalidExperimentName",
                            $"'{w}' is not a valid experiment name. Experiments are named exp0, exp1, ... expN.", w));
                    }
                    continue;
                }
                IReadOnlyList<string> names;
                try
                {
                    names = await catalog.Runs.ListExperimentNamesAsync(run, ct).ConfigureAwait(false);
                    if (names.Count == 0 && !IsWildcard(runPart)) await catalog.Runs.ReadRunRecordAsync(run, ct).ConfigureAwait(false);
                }
                catch (GridException ex)
                {
                    post(ex);
                    continue;
                }
                var match = Matcher(wanted);
                pairs.AddRange(names.Where(match).Select(n => (run, n)));
            }
        }
        return pairs.Distinct().ToList();
    }

    private static GridException InvalidRun(string name)
    {
        // A valid run name followed by -expN follows the letters-digits-hyphens rule; it is refused because it names an experiment.
        var (run, experiment) = GridNames.SplitTarget(name);
        if (experiment is not null && GridNames.IsValidRunName(run) && GridNames.IsValidExperimentName(experiment))
        {
            return new(GridErrorKind.InvalidName, "InvalidRunName",
                $"'{name}' is an experiment id ({experiment} of the run {run}), not a run name. Get-GridExperiment {name} shows that experiment; " +
                $"Get-GridRun {run} shows its run.", name);
        }
        return new(GridErrorKind.InvalidName, "InvalidRunName",
            $"'{name}' is not a valid run name. Runs are named with lower-case letters, digits and hyphens (for example adorable-mouse-123), " +
            "and a name ending in -expN names an experiment.", name);
    }
}
