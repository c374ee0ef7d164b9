using System.Management.Automation;
using GridArtifacts.Model;

namespace GridArtifacts.Commands;

/// <summary>Lists the artifacts of runs or experiments, filtered by path wildcards and a regular expression.</summary>
[Cmdlet(VerbsCommon.Get, "GridArtifact")]
[OutputType(typeof(GridArtifact))]
public sealed class GetGridArtifactCommand : GridStoreCmdlet
{
    /// <summary>Run names or experiment ids (<c>run-expN</c>); wildcards are supported.</summary>
    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [SupportsWildcards]
    [ArgumentCompleter(typeof(RunOrExperimentCompleter))]
    [ValidateNotNullOrEmpty]
    public string[] Run { get; set; } = Array.Empty<string>();

    /// <summary>Experiment names (exp0, exp1, ...); wildcards are supported.</summary>
    [Parameter(ValueFromPipelineByPropertyName = true)]
    [ArgumentCompleter(typeof(ExperimentNameCompleter))]
    [SupportsWildcards]
    [ValidateNotNullOrEmpty]
    public string[]? Experiment { get; set; }

    /// <summary>Relative artifact paths; wildcards are supported and '*' crosses folders.</summary>
    [Parameter(Position = 1)]
    [SupportsWildcards]
    [ValidateNotNullOrEmpty]
    public string[]? Path { get; set; }

    /// <summary>Leaves out artifacts whose relative path matches any of these wildcards.</summary>
    [Parameter]
    [SupportsWildcards]
    public string[]? Exclude { get; set; }

    /// <summary>Only artifacts whose relative path matches this regular expression (the product CLI's --match_regex).</summary>
    [Parameter]
    [Alias("MatchRegex")]
    public string? Match { get; set; }

    protected override void ProcessRecord()
    {
        ArtifactQuery.CheckRegex(this, Match);
        var query = new ArtifactQuery(Run, Experiment, Path, Exclude, Match);
        var catalog = OpenCatalog();
        RunAndDrain(async (post, ct) =>
        {
            foreach (var a in await query.ListAsync(catalog, post, ct).ConfigureAwait(false)) post(a);
        });
    }
}
