using System.Management.Automation;
using GridArtifacts.Core;
using GridArtifacts.Model;
using GridArtifacts.Core.Launch;

namespace GridArtifacts.Commands;

/// <summary>Lists the experiments of runs: by run name, by <c>run-expN</c>, or from runs on the pipeline.</summary>
[Cmdlet(VerbsCommon.Get, "GridExperiment")]
[OutputType(typeof(GridExperiment))]
public sealed class GetGridExperimentCommand : GridStatusFilterCmdlet
{
    /// <summary>Run names or experiment ids (<c>run-expN</c>); wildcards are supported.</summary>
    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [SupportsWildcards]
    [ArgumentCompleter(typeof(RunOrExperimentCompleter))]
    [ValidateNotNullOrEmpty]
    public string[] Run { get; set; } = Array.Empty<string>();

    /// <summary>Experiment names (exp0, exp1, ...); wildcards are supported.</summary>
    [Parameter(Position = 1, ValueFromPipelineByPropertyName = true)]
    [ArgumentCompleter(typeof(ExperimentNameCompleter))]
    [SupportsWildcards]
    [ValidateNotNullOrEmpty]
    public string[]? Experiment { get; set; }

    /// <summary>The metrics the table shows, in this order (wildcards match by name); it filters nothing.</summary>
    [Parameter]
    [SupportsWildcards]
    [ArgumentCompleter(typeof(MetricNameCompleter))]
    [ValidateNotNullOrEmpty]
    public string[]? Metric { get; set; }

    protected override void ProcessRecord()
    {
        var catalog = OpenCatalog();
        var tagged = Targets.TagFilter(Tag);
        RunAndDrain(async (post, ct) =>
        {
            var pairs = await Targets.ResolveExperimentsAsync(catalog, Run, Experiment, post, ct).ConfigureAwait(false);
            // Tags and protection: one listing for all the runs named (of their keys alone for one run).
            var labels = pairs.Count == 0 ? new Dictionary<string, RunLabels>()
                : await catalog.Runs.GetLabelsAsync(pairs.Select(p => p.Run).Distinct().ToList(), ct).ConfigureAwait(false);
            var result = await ReadMany.AllAsync(pairs, (p, c) => catalog.Runs.GetExperimentAsync(p.Run, p.Experiment, c, labels: labels[p.Run]), ct).ConfigureAwait(false);
            foreach (var e in result.Errors) post(e);
            // Queued experiments of Slurm runs whose tasks ended before their agents started are ended now.
            var stranded = result.Items.Where(e => e.Status == GridStatus.Queued && labels[e.Run].Job is not null)
                .GroupBy(e => e.Run).Select(g => (g.Key, labels[g.Key].Job!, (IReadOnlyList<string>)g.Select(e => e.Experiment).ToList())).ToList();
            var changed = await ClusterRuns.EndStrandedAsync(catalog, stranded, post, ct).ConfigureAwait(false);
            // What tells a sweep's experiments apart is decided over all of them read, before any filter.
            var varying = result.Items.GroupBy(e => e.Run, StringComparer.Ordinal).Where(g => g.Count() > 1)
                .ToDictionary(g => g.Key, g => VaryingParameters(g.ToList()), StringComparer.Ordinal);
            foreach (var read in result.Items)
            {
                var exp = read.Status == GridStatus.Queued && changed.Contains(read.Run)
                    ? await catalog.Runs.GetExperimentAsync(read.Run, read.Experiment, ct, labels: labels[read.Run]).ConfigureAwait(false)
                    : read;
                if (Status is { Length: > 0 } && !Status.Contains(exp.Status)) continue;
                if (!tagged(exp.Tags)) continue;
                post(exp.ShownWith(varying.GetValueOrDefault(exp.Run), KeyMetrics(exp)));
            }
        });
    }

    /// <summary>The parameter names whose values are not the same in all of <paramref name="experiments"/> (missing counts as a value), by name.</summary>
    internal static IReadOnlyList<string> VaryingParameters(IReadOnlyList<GridExperiment> experiments) =>
        experiments.SelectMany(e => e.Parameters.Keys).Distinct(StringComparer.Ordinal)
            .Where(k => experiments.Select(e => e.Parameters.TryGetValue(k, out var v) ? v : null).Distinct(StringComparer.Ordinal).Skip(1).Any())
            .OrderBy(k => k, StringComparer.Ordinal).ToArray();

    /// <summary>The metrics of <paramref name="exp"/> that -Metric names, in its order; null without -Metric.</summary>
    private IReadOnlyList<string>? KeyMetrics(GridExperiment exp)
    {
        if (Metric is not { Length: > 0 }) return null;
        var names = exp.Metrics.Keys.OrderBy(k => k, StringComparer.OrdinalIgnoreCase).ToList();
        var shown = new List<string>();
        foreach (var m in Metric)
        {
            var match = Targets.Matcher(new[] { m });
            foreach (var n in names)
            {
                if (match(n) && !shown.Contains(n, StringComparer.OrdinalIgnoreCase)) shown.Add(n);
            }
        }
        return shown;
    }
}
