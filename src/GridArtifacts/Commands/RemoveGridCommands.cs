using System.Management.Automation;
using GridArtifacts.Core;
using GridArtifacts.Model;

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

    private static readonly TimeSpan StopWait = TimeSpan.FromMinutes(5);

    /// <summary>Removes one run (experiment null) or one experiment, if confirmed.</summary>
    protected void Remove(GridCatalog catalog, string run, string? experiment)
    {
        var id = experiment is null ? run : GridNames.ExperimentId(run, experiment);
        IReadOnlyList<GridExperiment> experiments = Array.Empty<GridExperiment>();
        int files = 0;
        long bytes = 0;
        var ok = true;
        RunAndDrain(async (post, ct) =>
        {
            try
            {
                await catalog.CheckNotProtectedAsync(run, ct).ConfigureAwait(false);
                if (experiment is null)
                {
                    await catalog.ReadRunRecordAsync(run, ct).ConfigureAwait(false);
                    experiments = (await catalog.GetExperimentsAsync(run, ct).ConfigureAwait(false)).Items;
                }
                else
                {
                    experiments = new[] { await catalog.GetExperimentAsync(run, experiment, ct, withArtifactSummary: false).ConfigureAwait(false) };
                }
                foreach (var e in experiments)
                {
                    var plan = await catalog.PlanExperimentRemovalAsync(e.Run, e.Experiment, ct).ConfigureAwait(false);
                    files += plan.Files;
                    bytes += plan.Bytes;
                }
            }
            catch (GridException ex)
            {
                ok = false;
                post(ex);
            }
        });
        if (!ok) return;

        var active = experiments.Where(e => e.Status.IsActive()).ToList();
        if (active.Count > 0 && !Force)
        {
            WriteError(new ErrorRecord(new InvalidOperationException(
                    $"{string.Join(", ", active.Select(e => e.Id))} {(active.Count == 1 ? "is" : "are")} {active[0].Status}; nothing of {id} was removed. Stop it first (Stop-GridRun), or add -Force to stop it and then remove it."),
                "ExperimentRunning", ErrorCategory.ResourceBusy, id));
            return;
        }
        var what = $"Remove {(experiment is null ? $"run with {experiments.Count} experiment(s)" : "experiment")}, {files} artifact(s), {SizeText.Format(bytes)}";
        if (!ShouldProcess(id, what)) return;

        Core.GridCatalog.Removal? removed = null;
        RunAndDrain(async (post, ct) =>
        {
            if (active.Count > 0)
            {
                await Task.WhenAll(active.Select(async e =>
                {
                    await catalog.RequestStopAsync(e.Run, e.Experiment, ct).ConfigureAwait(false);
                    // A queued one is ended here, so its agent, starting after the removal, has nothing to run
                    // and recreates nothing; one an agent took meanwhile stops on its request.
                    if (e.Status == GridStatus.Queued) await catalog.StopQueuedAsync(e.Run, e.Experiment, ct).ConfigureAwait(false);
                })).ConfigureAwait(false);
                var deadline = DateTime.UtcNow + StopWait;
                while (true)
                {
                    var states = await GridCatalog.ReadManyAsync(active, (e, c) => catalog.GetExperimentAsync(e.Run, e.Experiment, c, withArtifactSummary: false), ct).ConfigureAwait(false);
                    if (states.Items.All(s => !s.Status.IsActive())) break;
                    if (DateTime.UtcNow > deadline)
                    {
                        post(new GridException(GridErrorKind.InvalidArgument, "StopTimedOut", $"{id} did not stop within {StopWait.TotalMinutes:0} minutes; nothing was removed.", id));
                        return;
                    }
                    await Task.Delay(250, ct).ConfigureAwait(false);
                }
            }
            removed = experiment is null
                ? await catalog.RemoveRunAsync(run, ct).ConfigureAwait(false)
                : await catalog.RemoveExperimentAsync(run, experiment, ct).ConfigureAwait(false);
        });
        if (removed is null) return;
        var summary = $"Removed {id}: {removed.Experiments} experiment(s), {removed.Files} artifact(s), {SizeText.Format(removed.Bytes)}.";
        WriteVerbose(summary);
        WriteInformation(new InformationRecord(summary, MyInvocation.MyCommand.Name) { Tags = { "Summary" } });
    }
}

/// <summary>Deletes runs: their records and every artifact of every experiment. Nothing else deletes artifacts.</summary>
[Cmdlet(VerbsCommon.Remove, "GridRun", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High)]
[OutputType(typeof(void))]
public sealed class RemoveGridRunCommand : GridRemoveCmdlet
{
    /// <summary>Run names; wildcards are supported. Binds from runs on the pipeline (their Name), never from experiments or artifacts.</summary>
    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [SupportsWildcards]
    [ArgumentCompleter(typeof(RunNameCompleter))]
    [ValidateNotNullOrEmpty]
    public string[] Name { get; set; } = Array.Empty<string>();

    protected override void ProcessRecord()
    {
        var catalog = OpenCatalog();
        var runs = new List<string>();
        RunAndDrain(async (post, ct) => runs.AddRange(await Targets.ResolveRunsAsync(catalog, Name, post, ct).ConfigureAwait(false)));
        foreach (var run in runs) Remove(catalog, run, null);
    }
}

/// <summary>Deletes experiments (run-expN, or -Run with -Experiment): their records and every artifact.</summary>
[Cmdlet(VerbsCommon.Remove, "GridExperiment", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High)]
[OutputType(typeof(void))]
public sealed class RemoveGridExperimentCommand : GridRemoveCmdlet
{
    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
    [SupportsWildcards]
    [ArgumentCompleter(typeof(RunOrExperimentCompleter))]
    [ValidateNotNullOrEmpty]
    public string[] Run { get; set; } = Array.Empty<string>();

    [Parameter(Position = 1, ValueFromPipelineByPropertyName = true)]
    [ArgumentCompleter(typeof(ExperimentNameCompleter))]
    [SupportsWildcards]
    public string[]? Experiment { get; set; }

    protected override void ProcessRecord()
    {
        if (Experiment is null && Run.Any(r => GridNames.SplitTarget(r).Experiment is null))
        {
            ThrowTerminatingError(new ErrorRecord(new ArgumentException("Name the experiments: run-expN, or -Run with -Experiment. To remove a whole run, use Remove-GridRun."),
                "ExperimentNotNamed", ErrorCategory.InvalidArgument, Run));
        }
        var catalog = OpenCatalog();
        var pairs = new List<(string Run, string Experiment)>();
        RunAndDrain(async (post, ct) => pairs.AddRange(await Targets.ResolveExperimentsAsync(catalog, Run, Experiment, post, ct).ConfigureAwait(false)));
        foreach (var (run, exp) in pairs) Remove(catalog, run, exp);
    }
}
