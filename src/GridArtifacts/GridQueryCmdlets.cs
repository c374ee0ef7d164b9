using System.Management.Automation;
using GridArtifacts.Model;

namespace GridArtifacts;

/// <summary>
/// A cmdlet that names artifacts by run, experiment and path (Get-GridArtifact, Save-GridArtifact):
/// -Run, -Experiment, -Exclude and -Match are declared here once, in the Name parameter set. -Path
/// is declared by each (Get-GridArtifact takes it at position 1; Save-GridArtifact's position 1 is
/// -Destination).
/// </summary>
public abstract class GridArtifactQueryCmdlet : GridStoreCmdlet
{
    /// <summary>The parameter set of artifacts named by run, experiment and path.</summary>
    protected const string NameSet = "Name";

    /// <summary>Run names or experiment ids (<c>run-expN</c>); wildcards are supported.</summary>
    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true, ParameterSetName = NameSet)]
    [SupportsWildcards]
    [ArgumentCompleter(typeof(RunOrExperimentCompleter))]
    [ValidateNotNullOrEmpty]
    public string[] Run { get; set; } = Array.Empty<string>();

    /// <summary>Experiment names (exp0, exp1, ...); wildcards are supported.</summary>
    [Parameter(ValueFromPipelineByPropertyName = true, ParameterSetName = NameSet)]
    [ArgumentCompleter(typeof(ExperimentNameCompleter))]
    [SupportsWildcards]
    [ValidateNotNullOrEmpty]
    public string[]? Experiment { get; set; }

    /// <summary>Relative artifact paths; wildcards are supported and '*' crosses folders.</summary>
    public abstract string[]? Path { get; set; }

    /// <summary>Leaves out artifacts whose relative path matches any of these wildcards.</summary>
    [Parameter(ParameterSetName = NameSet)]
    [SupportsWildcards]
    public string[]? Exclude { get; set; }

    /// <summary>Only artifacts whose relative path matches this regular expression (the product CLI's --match_regex).</summary>
    [Parameter(ParameterSetName = NameSet)]
    [Alias("MatchRegex")]
    public string? Match { get; set; }

    /// <summary>The artifacts these parameters name (a -Match that is not a regular expression is a terminating error).</summary>
    private protected ArtifactQuery Query()
    {
        ArtifactQuery.CheckRegex(this, Match);
        return new ArtifactQuery(Run, Experiment, Path, Exclude, Match);
    }
}

/// <summary>
/// A cmdlet that lists runs or experiments filtered by status and tag (Get-GridRun,
/// Get-GridExperiment): -Status and -Tag are declared here once.
/// </summary>
public abstract class GridStatusFilterCmdlet : GridStoreCmdlet
{
    /// <summary>Only items with one of these statuses.</summary>
    [Parameter]
    public GridStatus[]? Status { get; set; }

    /// <summary>
    /// Only items with a tag that matches one of these (a run's own or any of its experiments'; an
    /// experiment's own or its run's); wildcards are supported.
    /// </summary>
    [Parameter]
    [SupportsWildcards]
    [ArgumentCompleter(typeof(TagCompleter))]
    [ValidateNotNullOrEmpty]
    public string[]? Tag { get; set; }
}
