using GridArtifacts.Model;

namespace GridArtifacts.Core.Retention;

/// <summary>Why a run or experiment is kept, or that it goes.</summary>
public enum RetentionReason { Remove, Latest, Recent, ExcludedTag, Protected, Best, NoMetric, NotFinished }

public sealed record RetentionDecision<T>(T Item, RetentionReason Reason)
{
    public bool Remove => Reason == RetentionReason.Remove;
}

/// <summary>
/// What a scheduled clean-up keeps, decided from what a listing shows and nothing else, so a plan is
/// pure and tested on its own. An item is kept when any keep rule holds (restic's keep rules combine
/// the same way): "the last 20 and everything tagged keep" is <c>-KeepLatest 20 -ExcludeTag keep</c>.
/// Only finished items are ever ranked or removed: an active one is going, and a Lost one's agent
/// may come back (a suspended machine).
/// </summary>
public static class RetentionPlanner
{
    /// <summary>Succeeded, Failed or Stopped: Lost is not, since its agent may still be writing.</summary>
    public static bool Ended(GridStatus status) => status is GridStatus.Succeeded or GridStatus.Failed or GridStatus.Stopped;

    /// <summary>
    /// Runs in scope, ranked newest first by Created (Get-GridRun's order); run i is kept when
    /// i &lt; <paramref name="keepLatest"/>, when it finished within <paramref name="olderThan"/> of
    /// <paramref name="now"/> (a long run that ended yesterday is not old), when <paramref name="excluded"/>
    /// says so, or when it is protected; else it goes. Runs not finished, and runs with no
    /// experiment, are left out of the plan altogether.
    /// </summary>
    public static List<RetentionDecision<GridRun>> PlanRuns(IEnumerable<GridRun> runs, int? keepLatest, TimeSpan? olderThan,
        Func<GridRun, bool> excluded, DateTimeOffset now)
    {
        var ranked = runs.Where(r => Ended(r.Status) && r.ExperimentCount > 0)
            .OrderByDescending(r => r.Created).ThenBy(r => r.Name, StringComparer.Ordinal).ToList();
        return ranked.Select((run, i) => new RetentionDecision<GridRun>(run,
            keepLatest is { } n && i < n ? RetentionReason.Latest
            : olderThan is { } age && now - (run.Finished ?? run.Created) <= age ? RetentionReason.Recent
            : excluded(run) ? RetentionReason.ExcludedTag
            : run.Protected ? RetentionReason.Protected
            : RetentionReason.Remove)).ToList();
    }

    /// <summary>
    /// A sweep's experiments ranked by one metric, lowest first (highest with
    /// <paramref name="descending"/>, for accuracy-like metrics), ties by index: the first
    /// <paramref name="keepBest"/> are kept, and so is any that <paramref name="excluded"/> names.
    /// Finished ones without the metric are kept (NoMetric); active and Lost ones are untouched
    /// (NotFinished). When no finished experiment has the metric at all, the plan is refused
    /// (MetricNotFound), so a misspelt metric never empties a sweep.
    /// </summary>
    public static List<RetentionDecision<GridExperiment>> PlanExperiments(IReadOnlyList<GridExperiment> experiments, int keepBest, string metric,
        bool descending, Func<GridExperiment, bool> excluded)
    {
        var finished = experiments.Where(e => Ended(e.Status)).ToList();
        var scored = finished.Where(e => e.Metrics.ContainsKey(metric)).ToList();
        if (finished.Count > 0 && scored.Count == 0)
        {
            var present = finished.SelectMany(e => e.Metrics.Keys).Distinct(StringComparer.OrdinalIgnoreCase).Order(StringComparer.OrdinalIgnoreCase).ToList();
            var run = experiments[0].Run;
            throw new GridException(GridErrorKind.NotFound, "MetricNotFound",
                $"No finished experiment of {run} has the metric '{metric}', so none of it was removed. " +
                (present.Count == 0 ? "Its experiments have no metrics (metrics.json, or a metrics.csv)." : $"The metrics there: {string.Join(", ", present)}."), run);
        }
        var order = (descending ? scored.OrderByDescending(e => e.Metrics[metric]) : scored.OrderBy(e => e.Metrics[metric])).ThenBy(e => e.Index).ToList();
        var best = order.Take(keepBest).ToHashSet();
        return experiments.OrderBy(e => e.Index).Select(e => new RetentionDecision<GridExperiment>(e,
            !Ended(e.Status) ? RetentionReason.NotFinished
            : best.Contains(e) ? RetentionReason.Best
            : excluded(e) ? RetentionReason.ExcludedTag
            : !e.Metrics.ContainsKey(metric) ? RetentionReason.NoMetric
            : RetentionReason.Remove)).ToList();
    }
}
