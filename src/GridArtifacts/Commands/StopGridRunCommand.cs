using System.Management.Automation;
using GridArtifacts.Core;
using GridArtifacts.Model;

namespace GridArtifacts.Commands;

/// <summary>
/// Stops a run, or one experiment: each active experiment's agent stops its script, syncs what it
/// wrote, and ends as Stopped; queued experiments do not start.
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
        var targets = new List<(string Run, string Experiment)>();
        RunAndDrain(async (post, ct) =>
        {
            var pairs = await Targets.ResolveExperimentsAsync(catalog, Run, Experiment, post, ct).ConfigureAwait(false);
            var read = await GridCatalog.ReadManyAsync(pairs, (p, c) => catalog.GetExperimentAsync(p.Run, p.Experiment, c, withArtifactSummary: false), ct).ConfigureAwait(false);
            foreach (var e in read.Errors) post(e);
            targets.AddRange(read.Items.Where(e => e.Status.IsActive()).Select(e => (e.Run, e.Experiment)));
        });
        foreach (var (run, exp) in targets)
        {
            var id = GridNames.ExperimentId(run, exp);
            if (!ShouldProcess(id, "Stop")) continue;
            RunAndDrain(async (post, ct) =>
            {
                await catalog.RequestStopAsync(run, exp, ct).ConfigureAwait(false);
                if (PassThru) post(await catalog.GetLabelledExperimentAsync(run, exp, ct).ConfigureAwait(false));
            });
        }
    }
}
