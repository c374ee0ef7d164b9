using System.Management.Automation;
using GridArtifacts.Model;

namespace GridArtifacts.Commands;

/// <summary>Lists the artifacts of runs or experiments, filtered by path wildcards and a regular expression.</summary>
[Cmdlet(VerbsCommon.Get, "GridArtifact")]
[OutputType(typeof(GridArtifact))]
public sealed class GetGridArtifactCommand : GridArtifactQueryCmdlet
{
    /// <summary>Relative artifact paths; wildcards are supported and '*' crosses folders.</summary>
    [Parameter(Position = 1, ParameterSetName = NameSet)]
    [SupportsWildcards]
    [ValidateNotNullOrEmpty]
    public override string[]? Path { get; set; }

    protected override void ProcessRecord()
    {
        var query = Query();
        var catalog = OpenCatalog();
        RunAndDrain(async (post, ct) =>
        {
            foreach (var a in await query.ListAsync(catalog, post, ct).ConfigureAwait(false)) post(a);
        });
    }
}
