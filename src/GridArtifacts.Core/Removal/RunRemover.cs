using GridArtifacts.Core.Launch;
using GridArtifacts.Core.Retention;
using GridArtifacts.Model;

namespace GridArtifacts.Core.Removal;

/// <summary>
/// What removing one run (experiment null) or one experiment would take: its experiments as read,
/// their artifacts' count and size, and the run's index keys when they were listed for many runs at once.
/// </summary>
public sealed record RemovalPlan(string Run, string? Experiment, IReadOnlyList<GridExperiment> Experiments, int Files, long Bytes, long StoredBytes,
    bool Retention, IReadOnlyList<string>? IndexKeys)
{
    public string Id => Experiment is null ? Run : GridNames.ExperimentId(Run, Experiment);

    /// <summary>The experiments still Queued, Running or Syncing: stopped first (-Force) or the removal is refused.</summary>
    public IReadOnlyList<GridExperiment> Active { get; } = Experiments.Where(e => e.Status.IsActive()).ToList();

    public string Description => $"Remove {(Experiment is null ? $"run with {Experiments.Count} experiment(s)" : "experiment")}, {Files} artifact(s)";
}

/// <summary>
/// Removes runs and experiments (the only code that deletes artifacts), in two steps with the
/// confirmation between them: <see cref="PlanAsync"/> reads what would go and refuses what may not,
/// <see cref="RemoveAsync"/> stops what is still active (asked for with -Force), waits for it to
/// stop, and removes. A protected run is refused before anything else; one chosen by a retention
/// rule (not named) is kept with a warning instead, and a clean-up never stops anything.
/// The retention plans (which runs a rule removes, which experiments -KeepBest keeps) are read here too.
/// </summary>
public sealed class RunRemover
{
    private readonly GridCatalog _catalog;

    public RunRemover(GridCatalog catalog) => _catalog = catalog;

    /// <summary>How long a removal waits for the experiments it stopped to end.</summary>
    public static readonly TimeSpan StopWait = TimeSpan.FromMinutes(5);

    /// <summary>
    /// Reads what removing the run or experiment takes, or returns null (and posts why) when it is not
    /// to go: protected, not readable, not plainly ended in a clean-up, or active without <paramref name="force"/>.
    /// </summary>
    /// <param name="retention">Chosen by a rule, not named: a protected run or one active again is a warning and is kept, and -Force never applies.</param>
    /// <param name="indexKeys">The run's index keys, listed for many runs at once (<see cref="GridCatalog.Remover.ListIndexKeysAsync"/>).</param>
    public async Task<RemovalPlan?> PlanAsync(string run, string? experiment, bool retention, bool force, IReadOnlyList<string>? indexKeys, Action<object> post, CancellationToken ct)
    {
        IReadOnlyList<GridExperiment> experiments;
        int files = 0;
        long bytes = 0, stored = 0;
        try
        {
            await _catalog.Remover.CheckNotProtectedAsync(run, ct).ConfigureAwait(false);
            if (experiment is null)
            {
                await _catalog.Runs.ReadRunRecordAsync(run, ct).ConfigureAwait(false);
                // The run's folder names its experiments (no listing of every run's keys), each read for its status.
                var names = await _catalog.Runs.ListExperimentNamesAsync(run, ct).ConfigureAwait(false);
                var read = await ReadMany.AllAsync(names, (e, c) => _catalog.Runs.GetExperimentAsync(run, e, c, withArtifactSummary: false), ct).ConfigureAwait(false);
                experiments = read.Items;
                // Named, a run goes whole, as before: a damaged record, or a folder whose record is gone
                // (being removed), goes with it. Chosen by a rule, anything not plainly ended keeps the run:
                // a folder without a record may be a claim still settling, and a Lost agent may come back.
                var going = experiments.FirstOrDefault(e => !RetentionPlanner.Ended(e.Status));
                if (retention && (read.Errors.Count > 0 || going is not null))
                {
                    var why = read.Errors.Count > 0 ? read.Errors[0].Message : $"{going!.Id} is {going.Status}.";
                    post(new WarningMessage($"Kept {run}: {why} A clean-up removes only runs whose experiments have all ended."));
                    return null;
                }
            }
            else
            {
                experiments = new[] { await _catalog.Runs.GetExperimentAsync(run, experiment, ct, withArtifactSummary: false).ConfigureAwait(false) };
            }
            foreach (var e in experiments)
            {
                var plan = await _catalog.Remover.PlanExperimentRemovalAsync(e.Run, e.Experiment, ct).ConfigureAwait(false);
                files += plan.Files;
                bytes += plan.Bytes;
                stored += plan.StoredBytes;
            }
        }
        catch (GridException ex) when (retention && ex.Kind == GridErrorKind.Protected)
        {
            post(new WarningMessage($"Kept {run}: it is protected."));
            return null;
        }
        catch (GridException ex)
        {
            post(ex);
            return null;
        }

        var result = new RemovalPlan(run, experiment, experiments, files, bytes, stored, retention, indexKeys);
        var active = result.Active;
        if (active.Count > 0 && retention)
        {
            post(new WarningMessage($"Kept {result.Id}: {string.Join(", ", active.Select(e => e.Id))} {(active.Count == 1 ? "is" : "are")} {active[0].Status} again. A clean-up never stops anything."));
            return null;
        }
        if (active.Count > 0 && !force)
        {
            post(new GridException(GridErrorKind.Busy, "ExperimentRunning",
                $"{string.Join(", ", active.Select(e => e.Id))} {(active.Count == 1 ? "is" : "are")} {active[0].Status}; nothing of {result.Id} was removed. Stop it first (Stop-GridRun), or add -Force to stop it and then remove it.",
                result.Id));
            return null;
        }
        return result;
    }

    /// <summary>
    /// Removes what <paramref name="plan"/> names: stops its active experiments first (as Stop-GridRun
    /// does) and waits up to <see cref="StopWait"/> for them to end. Returns what was removed, or null
    /// (and posts why) when nothing was.
    /// </summary>
    public async Task<RemovalResult?> RemoveAsync(RemovalPlan plan, Action<object> post, CancellationToken ct)
    {
        if (plan.Active.Count > 0 && !await StopAsync(plan, post, ct).ConfigureAwait(false)) return null;
        try
        {
            return plan.Experiment is null
                ? await _catalog.Remover.RemoveRunAsync(plan.Run, ct, plan.IndexKeys).ConfigureAwait(false)
                : await _catalog.Remover.RemoveExperimentAsync(plan.Run, plan.Experiment, ct, plan.IndexKeys).ConfigureAwait(false);
        }
        catch (GridException ex) when (ex.Kind == GridErrorKind.Protected)
        {
            // Protected while it was being removed: what is left stays, and the other targets go on.
            post(plan.Retention ? new WarningMessage($"Kept what is left of {plan.Run}: it was protected while it was being removed.") : ex);
            return null;
        }
    }

    /// <summary>Stops the plan's active experiments (queued ones ended, their Slurm tasks cancelled; running ones asked) and waits for them to end.</summary>
    private async Task<bool> StopAsync(RemovalPlan plan, Action<object> post, CancellationToken ct)
    {
        var clock = _catalog.Clock;
        await ClusterRuns.StopAsync(_catalog, plan.Active, post, ct).ConfigureAwait(false);
        var deadline = clock.GetUtcNow() + StopWait;
        while (true)
        {
            var states = await ReadMany.AllAsync(plan.Active, (e, c) => _catalog.Runs.GetExperimentAsync(e.Run, e.Experiment, c, withArtifactSummary: false), ct).ConfigureAwait(false);
            if (states.Items.All(s => !s.Status.IsActive())) return true;
            if (clock.GetUtcNow() > deadline)
            {
                post(new GridException(GridErrorKind.InvalidArgument, "StopTimedOut", $"{plan.Id} did not stop within {StopWait.TotalMinutes:0} minutes; nothing was removed.", plan.Id));
                return false;
            }
            await Task.Delay(TimeSpan.FromMilliseconds(250), clock, ct).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Which runs the retention rules remove, of the runs that <paramref name="named"/> and
    /// <paramref name="tagged"/> take, with the index keys of those that go (listed once for all).
    /// Lost runs are left out, and said so.
    /// </summary>
    public async Task<(List<RetentionDecision<GridRun>> Plan, IReadOnlyDictionary<string, List<string>> IndexKeys)> PlanRetentionAsync(
        Func<string, bool> named, Func<IReadOnlyList<string>, bool> tagged, Func<IReadOnlyList<string>, bool> excluded,
        int? keepLatest, TimeSpan? olderThan, Action<object> post, CancellationToken ct)
    {
        var listed = await _catalog.Runs.ListRunsAsync(ct).ConfigureAwait(false);
        foreach (var e in listed.Errors) post(e);
        var scope = listed.Items.Where(r => named(r.Name) && tagged(r.Tags)).ToList();
        foreach (var lost in scope.Where(r => r.Status == GridStatus.Lost))
            post(new VerboseMessage($"Left {lost.Name}: it is Lost (its agent may come back), so it is neither counted nor removed."));
        var plan = RetentionPlanner.PlanRuns(scope, keepLatest, olderThan, r => excluded(r.Tags), _catalog.Clock.GetUtcNow());
        foreach (var d in plan.Where(d => !d.Remove)) post(new VerboseMessage($"Kept {d.Item.Name}: {d.Reason}."));
        var victims = plan.Where(d => d.Remove).Select(d => d.Item.Name).ToHashSet(StringComparer.Ordinal);
        IReadOnlyDictionary<string, List<string>> keys = victims.Count > 0
            ? await _catalog.Remover.ListIndexKeysAsync(victims, ct).ConfigureAwait(false)
            : new Dictionary<string, List<string>>();
        return (plan, keys);
    }

    /// <summary>
    /// Which experiments of a run -KeepBest keeps (the best <paramref name="keepBest"/> by
    /// <paramref name="metric"/>, and the excluded), or null (and posts why) when the run is protected,
    /// has no experiments, or cannot be read.
    /// </summary>
    public async Task<List<RetentionDecision<GridExperiment>>?> PlanKeepBestAsync(string run, int keepBest, string metric, bool descending,
        Func<IReadOnlyList<string>, bool> tagged, Func<IReadOnlyList<string>, bool> excluded, Action<object> post, CancellationToken ct)
    {
        try
        {
            var read = await _catalog.Runs.GetExperimentsAsync(run, ct).ConfigureAwait(false);
            foreach (var e in read.Errors) post(e);
            if (read.Items.Count == 0) return null;
            if (read.Items[0].Protected)
            {
                post(new WarningMessage($"Kept {run}: it is protected."));
                return null;
            }
            return RetentionPlanner.PlanExperiments(read.Items.Where(e => tagged(e.Tags)).ToList(), keepBest, metric, descending, e => excluded(e.Tags));
        }
        catch (GridException ex)
        {
            post(ex);
            return null;
        }
    }
}
