using System.Management.Automation;
using GridArtifacts.Core;
using GridArtifacts.Model;
using GridArtifacts.Core.Removal;
using GridArtifacts.Core.Retention;

namespace GridArtifacts.Commands;

/// <summary>
/// What Remove-GridRun and Remove-GridExperiment share: the only code in the module that deletes
/// artifacts. Each target is confirmed (ConfirmImpact High; -WhatIf lists what would go), a protected
/// run is refused before anything else (RunProtected, whatever -Force says: nothing of it is stopped),
/// a running experiment is refused unless -Force stops it first, and the counts are reported.
/// </summary>
public abstract class GridRemoveCmdlet : GridStoreCmdlet
{
    /// <summary>Stops running experiments first (after their final sync) instead of refusing them.</summary>
    [Parameter]
    public SwitchParameter Force { get; set; }

    /// <summary>Only items with a matching tag (a run's own or any of its experiments'; an experiment's own or its run's); wildcards are supported.</summary>
    [Parameter]
    [SupportsWildcards]
    [ArgumentCompleter(typeof(TagCompleter))]
    [ValidateNotNullOrEmpty]
    public string[]? Tag { get; set; }

    /// <summary>Keeps the items with a matching tag, by the same rule as -Tag; wildcards are supported.</summary>
    [Parameter]
    [SupportsWildcards]
    [ArgumentCompleter(typeof(TagCompleter))]
    [ValidateNotNullOrEmpty]
    public string[]? ExcludeTag { get; set; }

    /// <summary>Writes a GridRemoval for each run or experiment removed (or, with -WhatIf, that would be).</summary>
    [Parameter]
    public SwitchParameter PassThru { get; set; }

    private int _whatIfCount;
    private long _whatIfBytes;

    /// <summary>Whether -WhatIf is in effect (given, or from $WhatIfPreference).</summary>
    private bool WhatIfMode => MyInvocation.BoundParameters.TryGetValue("WhatIf", out var w)
        ? ((SwitchParameter)w).IsPresent
        : LanguagePrimitives.IsTrue(GetVariableValue("WhatIfPreference"));

    /// <summary>
    /// Removes one run (experiment null) or one experiment, if confirmed. <paramref name="retention"/>:
    /// chosen by a rule, not named, so a protected run or one active again is a warning and is kept,
    /// and -Force never applies.
    /// </summary>
    /// <param name="indexKeys">The run's index keys, listed for many runs at once (<see cref="GridCatalog.Remover.ListIndexKeysAsync"/>).</param>
    protected void Remove(GridCatalog catalog, string run, string? experiment, bool retention = false, IReadOnlyList<string>? indexKeys = null)
    {
        var remover = new RunRemover(catalog);
        RemovalPlan? plan = null;
        RunAndDrain(async (post, ct) => plan = await remover.PlanAsync(run, experiment, retention, Force, indexKeys, post, ct).ConfigureAwait(false));
        if (plan is null) return;

        var confirmed = ShouldProcessOrExplain(plan.Id, $"{plan.Description}, {SizeText.Format(plan.Bytes)}");
        if (!confirmed && !WhatIfMode) return;
        var removal = new GridRemoval { Id = plan.Id, Run = run, Experiment = experiment, Experiments = plan.Experiments.Count, Artifacts = plan.Files, Bytes = plan.StoredBytes, WhatIf = !confirmed };
        if (!confirmed)
        {
            _whatIfCount++;
            _whatIfBytes += plan.StoredBytes;
            if (PassThru) WriteObject(removal);
            return;
        }

        RemovalResult? removed = null;
        RunAndDrain(async (post, ct) => removed = await remover.RemoveAsync(plan, post, ct).ConfigureAwait(false));
        if (removed is null) return;
        if (PassThru) WriteObject(removal);
        var summary = $"Removed {plan.Id}: {removed.Experiments} experiment(s), {removed.Files} artifact(s), {SizeText.Format(removed.Bytes)}.";
        WriteVerbose(summary);
        WriteInformation(new InformationRecord(summary, MyInvocation.MyCommand.Name) { Tags = { "Summary" } });
    }

    protected override void EndProcessing()
    {
        // Under -WhatIf the total is one more "What if:" line (never called otherwise, so it never prompts).
        if (_whatIfCount > 0) ShouldProcess($"Would free {SizeText.Format(_whatIfBytes)} in total from {_whatIfCount} {Noun}(s).", "", "");
        base.EndProcessing();
    }

    /// <summary>"run" or "experiment", for the -WhatIf total.</summary>
    protected abstract string Noun { get; }

    /// <summary>True for items with a tag that matches -Tag (all when it is not given) and none that matches -ExcludeTag.</summary>
    protected static Func<IReadOnlyList<string>, bool> Tagged(string[]? tag) => Targets.TagFilter(tag);

    protected static Func<IReadOnlyList<string>, bool> Excluded(string[]? excludeTag) =>
        excludeTag is { Length: > 0 } ? Targets.TagFilter(excludeTag) : _ => false;
}

/// <summary>
/// Deletes runs: their records and every artifact of every experiment. Nothing else deletes
/// artifacts. By name (set Name), or by retention rules over the finished runs (set Retention).
/// </summary>
[Cmdlet(VerbsCommon.Remove, "GridRun", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High, DefaultParameterSetName = NameSet)]
[OutputType(typeof(GridRemoval))]
public sealed class RemoveGridRunCommand : GridRemoveCmdlet
{
    private const string NameSet = "Name", RetentionSet = "Retention";

    /// <summary>Run names; wildcards are supported. Binds from runs on the pipeline (their Name), never from experiments or artifacts.</summary>
    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true, ParameterSetName = NameSet)]
    [Parameter(Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true, ParameterSetName = RetentionSet)]
    [SupportsWildcards]
    [ArgumentCompleter(typeof(RunNameCompleter))]
    [ValidateNotNullOrEmpty]
    public string[] Name { get; set; } = Array.Empty<string>();

    /// <summary>Keeps runs that finished within this long (of the store's clock); older finished runs go, unless another rule keeps them.</summary>
    [Parameter(ParameterSetName = RetentionSet)]
    public TimeSpan? OlderThan { get; set; }

    /// <summary>Keeps the newest N finished runs (by Created); the older ones go, unless another rule keeps them.</summary>
    [Parameter(ParameterSetName = RetentionSet)]
    [ValidateRange(0, int.MaxValue)]
    public int? KeepLatest { get; set; }

    protected override string Noun => "run";

    /// <summary>In a clean-up, the names that came, each with its store (piped runs bring their own).</summary>
    private readonly List<(string? Store, string[] Names)> _named = new();

    protected override void BeginProcessing()
    {
        base.BeginProcessing();
        if (ParameterSetName != RetentionSet) return;
        if (OlderThan is null && KeepLatest is null)
        {
            ThrowTerminatingError(ToErrorRecord(new GridException(GridErrorKind.InvalidArgument, "RetentionRuleMissing", "Give a rule: -OlderThan, -KeepLatest or both. -ExcludeTag only keeps runs that a rule would remove.", null)));
        }
        if (OlderThan is { } age && age < TimeSpan.FromMinutes(1))
        {
            // PowerShell reads a bare number as ticks: -OlderThan 30 is 3 microseconds, which would take every run.
            ThrowTerminatingError(ToErrorRecord(new GridException(GridErrorKind.InvalidArgument, "OlderThanTooShort", $"-OlderThan {age} is under a minute, so nothing of it was planned. Give a TimeSpan: 30.00:00:00, or (New-TimeSpan -Days 30).", age)));
        }
    }

    protected override void ProcessRecord()
    {
        if (ParameterSetName == RetentionSet)
        {
            // Planned once, over every run of each store, when the input ends.
            if (MyInvocation.BoundParameters.ContainsKey(nameof(Name))) _named.Add((Store, Name));
            return;
        }
        var catalog = OpenCatalog();
        var runs = new List<string>();
        RunAndDrain(async (post, ct) =>
        {
            runs.AddRange(await Targets.ResolveRunsAsync(catalog, Name, post, ct).ConfigureAwait(false));
            if (Tag is null && ExcludeTag is null) return;
            var read = await catalog.Runs.GetRunsAsync(runs, ct).ConfigureAwait(false);
            foreach (var e in read.Errors) post(e);
            var (tagged, excluded) = (Tagged(Tag), Excluded(ExcludeTag));
            runs = read.Items.Where(r => tagged(r.Tags) && !excluded(r.Tags)).Select(r => r.Name).ToList();
        });
        foreach (var run in runs) Remove(catalog, run, null);
    }

    protected override void EndProcessing()
    {
        if (ParameterSetName == RetentionSet)
        {
            // A pipeline that brought nothing names no run: it never widens to the whole store.
            if (_named.Count == 0 && MyInvocation.ExpectingInput) WriteVerbose("No run came down the pipeline, so none was looked at.");
            else if (_named.Count == 0) ApplyRetention(OpenCatalog(), null);
            else foreach (var group in _named.GroupBy(n => n.Store, StringComparer.Ordinal)) ApplyRetention(OpenCatalog(group.Key), group.SelectMany(n => n.Names).ToList());
        }
        base.EndProcessing();
    }

    /// <param name="names">The runs the rules look at (names or wildcards); null for every run.</param>
    private void ApplyRetention(GridCatalog catalog, IReadOnlyList<string>? names)
    {
        List<RetentionDecision<GridRun>> plan = new();
        IReadOnlyDictionary<string, List<string>> keys = new Dictionary<string, List<string>>();
        RunAndDrain(async (post, ct) => (plan, keys) = await new RunRemover(catalog)
            .PlanRetentionAsync(Targets.Matcher(names), Tagged(Tag), Excluded(ExcludeTag), KeepLatest, OlderThan, post, ct).ConfigureAwait(false));
        foreach (var d in plan.Where(d => d.Reason == RetentionReason.Protected)) WriteWarning($"Kept {d.Item.Name}: it is protected.");
        foreach (var d in plan.Where(d => d.Remove)) Remove(catalog, d.Item.Name, null, retention: true, keys.TryGetValue(d.Item.Name, out var k) ? k : null);
    }
}

/// <summary>
/// Deletes experiments (run-expN, or -Run with -Experiment): their records and every artifact. Or,
/// within sweeps, keeps the best N by a metric and deletes the other finished ones (set KeepBest).
/// </summary>
[Cmdlet(VerbsCommon.Remove, "GridExperiment", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High, DefaultParameterSetName = NameSet)]
[OutputType(typeof(GridRemoval))]
public sealed class RemoveGridExperimentCommand : GridRemoveCmdlet
{
    private const string NameSet = "Name", KeepBestSet = "KeepBest";

    /// <summary>Experiment ids (run-expN) or, with -Experiment or -KeepBest, runs; wildcards are supported.</summary>
    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
    [SupportsWildcards]
    [ArgumentCompleter(typeof(RunOrExperimentCompleter))]
    [ValidateNotNullOrEmpty]
    public string[] Run { get; set; } = Array.Empty<string>();

    [Parameter(Position = 1, ValueFromPipelineByPropertyName = true, ParameterSetName = NameSet)]
    [ArgumentCompleter(typeof(ExperimentNameCompleter))]
    [SupportsWildcards]
    public string[]? Experiment { get; set; }

    /// <summary>Keeps this many finished experiments of each run, the best by -By; the other finished ones that have the metric go.</summary>
    [Parameter(Mandatory = true, ParameterSetName = KeepBestSet)]
    [ValidateRange(1, int.MaxValue)]
    public int KeepBest { get; set; }

    /// <summary>The metric that ranks the experiments (lowest first, as for a loss).</summary>
    [Parameter(Mandatory = true, ParameterSetName = KeepBestSet)]
    [ArgumentCompleter(typeof(MetricNameCompleter))]
    [ValidateNotNullOrEmpty]
    public string By { get; set; } = "";

    /// <summary>Ranks highest first (for accuracy-like metrics).</summary>
    [Parameter(ParameterSetName = KeepBestSet)]
    public SwitchParameter Descending { get; set; }

    protected override string Noun => "experiment";

    protected override void ProcessRecord()
    {
        if (ParameterSetName == KeepBestSet)
        {
            KeepBestOf(OpenCatalog());
            return;
        }
        if (Experiment is null && Run.Any(r => GridNames.SplitTarget(r).Experiment is null))
        {
            ThrowTerminatingError(ToErrorRecord(new GridException(GridErrorKind.InvalidArgument, "ExperimentNotNamed", "Name the experiments: run-expN, or -Run with -Experiment. To remove a whole run, use Remove-GridRun.", Run)));
        }
        var catalog = OpenCatalog();
        var pairs = new List<(string Run, string Experiment)>();
        RunAndDrain(async (post, ct) =>
        {
            pairs.AddRange(await Targets.ResolveExperimentsAsync(catalog, Run, Experiment, post, ct).ConfigureAwait(false));
            if (Tag is null && ExcludeTag is null) return;
            var labels = await catalog.Runs.GetLabelsAsync(pairs.Select(p => p.Run).Distinct().ToList(), ct).ConfigureAwait(false);
            var (tagged, excluded) = (Tagged(Tag), Excluded(ExcludeTag));
            pairs = pairs.Where(p => labels[p.Run].TagsOf(p.Experiment) is var t && tagged(t) && !excluded(t)).ToList();
        });
        foreach (var (run, exp) in pairs) Remove(catalog, run, exp);
    }

    private void KeepBestOf(GridCatalog catalog)
    {
        var runs = new List<string>();
        RunAndDrain(async (post, ct) =>
        {
            foreach (var target in Run)
            {
                if (GridNames.SplitTarget(target).Experiment is not null)
                {
                    post(new GridException(GridErrorKind.InvalidArgument, "KeepBestNeedsRun",
                        $"'{target}' names one experiment; -KeepBest ranks the experiments of a run. Name the run ({GridNames.SplitTarget(target).Run}).", target));
                    continue;
                }
                runs.AddRange(await Targets.ResolveRunsAsync(catalog, new[] { target }, post, ct).ConfigureAwait(false));
            }
        });
        foreach (var run in runs.Distinct(StringComparer.Ordinal))
        {
            List<RetentionDecision<GridExperiment>>? plan = null;
            RunAndDrain(async (post, ct) => plan = await new RunRemover(catalog)
                .PlanKeepBestAsync(run, KeepBest, By, Descending, Tagged(Tag), Excluded(ExcludeTag), post, ct).ConfigureAwait(false));
            if (plan is null) continue;
            foreach (var d in plan.Where(d => d.Reason == RetentionReason.NoMetric))
                WriteWarning($"Kept {d.Item.Id}: it has no metric '{By}'.");
            foreach (var d in plan.Where(d => !d.Remove)) WriteVerbose($"Kept {d.Item.Id}: {d.Reason}.");
            foreach (var d in plan.Where(d => d.Remove)) Remove(catalog, run, d.Item.Experiment, retention: true);
        }
    }
}
