using System.Management.Automation;
using GridArtifacts.Core;
using GridArtifacts.Model;
using GridArtifacts.Core.Launch;

namespace GridArtifacts.Commands;

/// <summary>
/// Stops a run, or one experiment: each active experiment's agent stops its script, syncs what it
/// wrote, and ends as Stopped; queued experiments end Stopped without starting (on a Slurm run,
/// their tasks are cancelled).
/// </summary>
[Cmdlet(VerbsLifecycle.Stop, "GridRun", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium)]
[OutputType(typeof(GridExperiment))]
public sealed class StopGridRunCommand : GridStoreCmdlet
{
    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [ArgumentCompleter(typeof(RunOrExperimentCompleter))]
    [ValidateNotNullOrEmpty]
    public string[] Run { get; set; } = Array.Empty<string>();

    [Parameter(ValueFromPipelineByPropertyName = true)]
    [ArgumentCompleter(typeof(ExperimentNameCompleter))]
    public string[]? Experiment { get; set; }

    [Parameter]
    public SwitchParameter PassThru { get; set; }

    protected override void ProcessRecord()
    {
        var catalog = OpenCatalog();
        var targets = new List<GridExperiment>();
        RunAndDrain(async (post, ct) =>
        {
            var pairs = await Targets.ResolveExperimentsAsync(catalog, Run, Experiment, post, ct).ConfigureAwait(false);
            var read = await ReadMany.AllAsync(pairs, (p, c) => catalog.Runs.GetExperimentAsync(p.Run, p.Experiment, c, withArtifactSummary: false), ct).ConfigureAwait(false);
            foreach (var e in read.Errors) post(e);
            targets.AddRange(read.Items.Where(e => e.Status.IsActive()));
        });
        var approved = targets.Where(e => ShouldProcess(e.Id, "Stop")).ToList();
        if (approved.Count == 0) return;
        RunAndDrain(async (post, ct) =>
        {
            // Queued ones of a Slurm run: their tasks cancelled; the rest: a stop request each.
            await ClusterRuns.StopAsync(catalog, approved, post, ct).ConfigureAwait(false);
            if (!PassThru) return;
            foreach (var e in approved) post(await catalog.Runs.GetLabelledExperimentAsync(e.Run, e.Experiment, ct).ConfigureAwait(false));
        });
    }
}
