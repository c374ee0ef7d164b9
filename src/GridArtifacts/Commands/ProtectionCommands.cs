using System.Management.Automation;
using GridArtifacts.Model;

namespace GridArtifacts.Commands;

/// <summary>What Protect-GridRun and Unprotect-GridRun share: runs by name (wildcards, the pipeline), each confirmed.</summary>
public abstract class GridProtectionCmdlet : GridStoreCmdlet
{
    /// <summary>Run names; wildcards are supported. Binds from runs on the pipeline (their Name).</summary>
    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [SupportsWildcards]
    [ArgumentCompleter(typeof(RunNameCompleter))]
    [ValidateNotNullOrEmpty]
    public string[] Name { get; set; } = Array.Empty<string>();

    /// <summary>Writes each run, as it reads after the change.</summary>
    [Parameter]
    public SwitchParameter PassThru { get; set; }

    /// <summary>True to protect, false to let removals take the run again.</summary>
    protected abstract bool Protecting { get; }

    protected override void ProcessRecord()
    {
        var catalog = OpenCatalog();
        var runs = new List<string>();
        RunAndDrain(async (post, ct) => runs.AddRange(await Targets.ResolveRunsAsync(catalog, Name, post, ct).ConfigureAwait(false)));
        foreach (var run in runs)
        {
            if (!ShouldProcess(run, Protecting ? "Protect from removal" : "Allow removal again")) continue;
            RunAndDrain(async (post, ct) =>
            {
                try
                {
                    if (Protecting) await catalog.Remover.ProtectAsync(run, ct).ConfigureAwait(false);
                    else await catalog.Remover.UnprotectAsync(run, ct).ConfigureAwait(false);
                    if (PassThru) post(await catalog.Runs.GetRunAsync(run, ct).ConfigureAwait(false));
                }
                catch (GridException ex)
                {
                    post(ex);
                }
            });
        }
    }
}

/// <summary>Protects runs from removal: Remove-GridRun and Remove-GridExperiment refuse them (RunProtected), whatever -Force says.</summary>
[Cmdlet(VerbsSecurity.Protect, "GridRun", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Low)]
[OutputType(typeof(GridRun))]
public sealed class ProtectGridRunCommand : GridProtectionCmdlet
{
    protected override bool Protecting => true;
}

/// <summary>Lets runs be removed again.</summary>
[Cmdlet(VerbsSecurity.Unprotect, "GridRun", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium)]
[OutputType(typeof(GridRun))]
public sealed class UnprotectGridRunCommand : GridProtectionCmdlet
{
    protected override bool Protecting => false;
}
