using System.Collections;
using System.Management.Automation;
using System.Management.Automation.Language;
using GridArtifacts.Core;
using GridArtifacts.Core.Stores;
using GridArtifacts.Model;

namespace GridArtifacts;

/// <summary>
/// What the completers share: they ask the store the command would use (a -Store already typed on
/// the command line counts), through the process's cached catalog, and give up after
/// <see cref="Timeout"/>. An unreachable, slow or misnamed store gives no suggestions and no error.
/// </summary>
internal static class Completion
{
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(2);

    private const WildcardOptions Options = WildcardOptions.IgnoreCase | WildcardOptions.CultureInvariant;

    /// <summary>Runs <paramref name="query"/> against the command's store; null when it fails or takes too long.</summary>
    public static T? Ask<T>(IDictionary fakeBoundParameters, Func<GridCatalog, CancellationToken, Task<T>> query) where T : class
    {
        try
        {
            var info = StoreSettings.Resolve(Values(fakeBoundParameters, "Store").FirstOrDefault());
            // A relative folder would be taken from the process directory, not the PowerShell location.
            if (info.Kind == GridStoreKind.FileSystem && !Path.IsPathRooted(info.Location)) return null;
            // Not disposed: the query may still hold the token after the wait gives up.
            var cts = new CancellationTokenSource(Timeout);
            var task = Task.Run(() => query(Catalogs.Open(info.Location), cts.Token), cts.Token);
            return task.Wait(Timeout) ? task.Result : null;
        }
        catch (Exception)
        {
            // Completion must never throw at the user: no store, no suggestions.
            return null;
        }
    }

    /// <summary>The string values of a parameter on the command line so far (a string, or a list of them).</summary>
    public static IEnumerable<string> Values(IDictionary fakeBoundParameters, string name)
    {
        if (fakeBoundParameters is null || !fakeBoundParameters.Contains(name)) yield break;
        var value = fakeBoundParameters[name];
        if (value is PSObject pso) value = pso.BaseObject;
        if (value is string s)
        {
            if (!string.IsNullOrWhiteSpace(s)) yield return s;
            yield break;
        }
        if (value is not IEnumerable list) yield break;
        foreach (var item in list)
        {
            var text = (item is PSObject p ? p.BaseObject : item) as string;
            if (!string.IsNullOrWhiteSpace(text)) yield return text;
        }
    }

    /// <summary>Names that start with the word typed; wildcards in it work, and a malformed one is taken literally.</summary>
    public static WildcardPattern Prefix(string wordToComplete)
    {
        var word = wordToComplete.Trim('\'', '"');
        try
        {
            var pattern = WildcardPattern.Get(word + "*", Options);
            pattern.IsMatch("");
            return pattern;
        }
        catch (WildcardPatternException)
        {
            return WildcardPattern.Get(WildcardPattern.Escape(word) + "*", Options);
        }
    }

    public static IEnumerable<CompletionResult> Results(IEnumerable<string> names, string tooltip) =>
        names.Distinct(StringComparer.Ordinal).OrderBy(n => n, StringComparer.Ordinal)
            .Select(n => new CompletionResult(n, n, CompletionResultType.ParameterValue, string.Format(tooltip, n)));

    /// <summary>The run names that <paramref name="patterns"/> (names, run-expN ids or wildcards) stand for, at most 16.</summary>
    public static async Task<List<string>> RunsNamedAsync(GridCatalog catalog, IEnumerable<string> patterns, CancellationToken ct)
    {
        var runs = new List<string>();
        IReadOnlyList<string>? all = null;
        foreach (var p in patterns)
        {
            var run = GridNames.SplitTarget(p).Run;
            if (WildcardPattern.ContainsWildcardCharacters(run))
            {
                all ??= await catalog.Runs.ListRunNamesAsync(ct).ConfigureAwait(false);
                var pattern = WildcardPattern.Get(run, Options);
                runs.AddRange(all.Where(pattern.IsMatch));
            }
            else if (GridNames.IsValidRunName(run))
            {
                runs.Add(run);
            }
        }
        return runs.Distinct(StringComparer.Ordinal).Take(16).ToList();
    }
}

/// <summary>Tab completion of run names from the store the command would use.</summary>
public sealed class RunNameCompleter : IArgumentCompleter
{
    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
        CommandAst commandAst, IDictionary fakeBoundParameters)
    {
        // Only the keys of runs that start with what is typed are listed (run names are lower case).
        var typed = wordToComplete.Trim('\'', '"').ToLowerInvariant();
        var names = Completion.Ask(fakeBoundParameters, async (catalog, ct) => await catalog.Runs.ListRunNamesAsync(ct, typed).ConfigureAwait(false));
        if (names is null) return Array.Empty<CompletionResult>();
        var pattern = Completion.Prefix(wordToComplete);
        return Completion.Results(names.Where(pattern.IsMatch), "Run {0}").ToList();
    }
}

/// <summary>
/// Tab completion where a run or one of its experiments (run-expN) is accepted: run names, and once
/// a run's name and a hyphen are typed, that run's experiment ids too.
/// </summary>
public sealed class RunOrExperimentCompleter : IArgumentCompleter
{
    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
        CommandAst commandAst, IDictionary fakeBoundParameters)
    {
        var word = wordToComplete.Trim('\'', '"');
        var pattern = Completion.Prefix(wordToComplete);
        var found = Completion.Ask(fakeBoundParameters, async (catalog, ct) =>
        {
            // "my-run-e" may name my-run's experiments: list the runs that share the word's start up to its first hyphen.
            var lower = word.ToLowerInvariant();
            var runs = await catalog.Runs.ListRunNamesAsync(ct, lower.Contains('-') ? lower[..lower.IndexOf('-')] : lower).ConfigureAwait(false);
            var result = runs.Where(pattern.IsMatch).Select(r => (Name: r, Tip: "Run {0}")).ToList();
            // "my-run-e" may be the start of my-run's experiment ids (run names hold hyphens too,
            // so every run whose name and a hyphen begin the word is asked).
            foreach (var run in runs.Where(r => word.StartsWith(r + "-", StringComparison.OrdinalIgnoreCase)).Take(4))
            {
                var experiments = await catalog.Runs.ListExperimentNamesAsync(run, ct).ConfigureAwait(false);
                result.AddRange(experiments.Select(e => GridNames.ExperimentId(run, e)).Where(pattern.IsMatch).Select(id => (Name: id, Tip: "Experiment {0}")));
            }
            return result;
        });
        if (found is null) return Array.Empty<CompletionResult>();
        // Runs in name order, each run's experiments after it in index order (exp2 before exp10).
        return found.GroupBy(f => f.Name, StringComparer.Ordinal)
            .OrderBy(g => g.First().Tip == "Run {0}" ? g.Key : g.Key[..g.Key.LastIndexOf("-exp", StringComparison.Ordinal)], StringComparer.Ordinal)
            .ThenBy(g => g.First().Tip == "Run {0}" ? -1 : GridNames.ExperimentIndex(GridNames.SplitTarget(g.Key).Experiment!))
            .Select(g => new CompletionResult(g.Key, g.Key, CompletionResultType.ParameterValue, string.Format(g.First().Tip, g.Key)))
            .ToList();
    }
}

/// <summary>Tab completion of experiment names (exp0, exp1, ...) of the runs already named by -Run on the command line.</summary>
public sealed class ExperimentNameCompleter : IArgumentCompleter
{
    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
        CommandAst commandAst, IDictionary fakeBoundParameters)
    {
        var targets = Completion.Values(fakeBoundParameters, "Run").ToList();
        if (targets.Count == 0) return Array.Empty<CompletionResult>();
        var names = Completion.Ask(fakeBoundParameters, async (catalog, ct) =>
        {
            var all = new List<string>();
            foreach (var run in await Completion.RunsNamedAsync(catalog, targets, ct).ConfigureAwait(false))
            {
                all.AddRange(await catalog.Runs.ListExperimentNamesAsync(run, ct).ConfigureAwait(false));
            }
            return all;
        });
        if (names is null) return Array.Empty<CompletionResult>();
        var pattern = Completion.Prefix(wordToComplete);
        // In index order (exp2 before exp10), as Get-GridExperiment lists them.
        return names.Where(pattern.IsMatch).Distinct(StringComparer.Ordinal).OrderBy(GridNames.ExperimentIndex)
            .Select(n => new CompletionResult(n, n, CompletionResultType.ParameterValue, "Experiment " + n)).ToList();
    }
}

/// <summary>
/// Tab completion of tags: on Remove-GridTag, those of the runs already named by -Run; elsewhere every
/// tag in the store (one listing of the index, kept for a minute per store).
/// </summary>
public sealed class TagCompleter : IArgumentCompleter
{
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, (DateTime At, Task<List<string>> Tags)> Cache = new();
    private static readonly TimeSpan CacheFor = TimeSpan.FromMinutes(1);

    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
        CommandAst commandAst, IDictionary fakeBoundParameters)
    {
        var targets = commandName.Equals("Remove-GridTag", StringComparison.OrdinalIgnoreCase) ? Completion.Values(fakeBoundParameters, "Run").ToList() : new List<string>();
        var tags = Completion.Ask(fakeBoundParameters, async (catalog, ct) =>
        {
            if (targets.Count > 0)
            {
                var runs = await Completion.RunsNamedAsync(catalog, targets, ct).ConfigureAwait(false);
                var labels = await catalog.Runs.GetLabelsAsync(runs, ct).ConfigureAwait(false);
                return labels.Values.SelectMany(l => l.AllTags).ToList();
            }
            // A large store takes longer than completion waits: the listing goes on, and the next Tab has it.
            var entry = Cache.AddOrUpdate(catalog.Location,
                _ => (DateTime.UtcNow, AllTagsAsync(catalog)),
                (_, old) => DateTime.UtcNow - old.At < CacheFor && !old.Tags.IsFaulted ? old : (DateTime.UtcNow, AllTagsAsync(catalog)));
            return await entry.Tags.WaitAsync(ct).ConfigureAwait(false);
        });
        if (tags is null) return Array.Empty<CompletionResult>();
        var pattern = Completion.Prefix(wordToComplete);
        return Completion.Results(tags.Where(pattern.IsMatch), "Tag {0}").ToList();
    }

    private static async Task<List<string>> AllTagsAsync(GridCatalog catalog)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var labelled = await catalog.Runs.ListLabelsAsync(cts.Token).ConfigureAwait(false);
        return labelled.SelectMany(l => l.Labels.AllTags).Distinct(StringComparer.Ordinal).ToList();
    }
}

/// <summary>Tab completion of metric names: those of the experiments of the runs already named by -Run (at most 4 runs).</summary>
public sealed class MetricNameCompleter : IArgumentCompleter
{
    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
        CommandAst commandAst, IDictionary fakeBoundParameters)
    {
        var targets = Completion.Values(fakeBoundParameters, "Run").ToList();
        if (targets.Count == 0) return Array.Empty<CompletionResult>();
        var names = Completion.Ask(fakeBoundParameters, async (catalog, ct) =>
        {
            var all = new List<string>();
            foreach (var run in (await Completion.RunsNamedAsync(catalog, targets, ct).ConfigureAwait(false)).Take(4))
                all.AddRange((await catalog.Runs.GetExperimentsAsync(run, ct).ConfigureAwait(false)).Items.SelectMany(e => e.Metrics.Keys));
            return all;
        });
        if (names is null) return Array.Empty<CompletionResult>();
        var pattern = Completion.Prefix(wordToComplete);
        return Completion.Results(names.Where(pattern.IsMatch), "Metric {0}").ToList();
    }
}
