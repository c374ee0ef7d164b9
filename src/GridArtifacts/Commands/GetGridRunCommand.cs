using System.Management.Automation;
using GridArtifacts.Model;

namespace GridArtifacts.Commands;

/// <summary>
/// Lists runs, newest first. <c>-Active</c> is the product's <c>grid status</c>; <c>-Finished</c> is its
/// <c>grid history</c>.
/// </summary>
[Cmdlet(VerbsCommon.Get, "GridRun")]
[OutputType(typeof(GridRun))]
public sealed class GetGridRunCommand : GridStoreCmdlet
{
    /// <summary>Run names; wildcards are supported. A name that is not a wildcard and is not found is an error.</summary>
    [Parameter(Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [Alias("Run")]
    [SupportsWildcards]
    [ArgumentCompleter(typeof(RunNameCompleter))]
    [ValidateNotNullOrEmpty]
    public string[]? Name { get; set; }

    /// <summary>Only runs with one of these statuses.</summary>
    [Parameter]
    public GridStatus[]? Status { get; set; }

    /// <summary>Only runs that are queued, running or syncing (the product's <c>grid status</c>).</summary>
    [Parameter]
    public SwitchParameter Active { get; set; }

    /// <summary>Only runs that have ended (the product's <c>grid history</c>).</summary>
    [Parameter]
    public SwitchParameter Finished { get; set; }

    private readonly List<string> _names = new();

    protected override void ProcessRecord()
    {
        if (Name is not null) _names.AddRange(Name);
    }

    protected override void EndProcessing()
    {
        var catalog = OpenCatalog();
        RunAndDrain(async (post, ct) =>
        {
            var names = _names.Count == 0
                ? await catalog.ListRunNamesAsync(ct).ConfigureAwait(false)
                : await Targets.ResolveRunsAsync(catalog, _names, post, ct).ConfigureAwait(false);
            var result = await catalog.GetRunsAsync(names, ct).ConfigureAwait(false);
            foreach (var e in result.Errors) post(e);
            var statuses = Status is { Length: > 0 } ? new HashSet<GridStatus>(Status) : null;
            foreach (var run in result.Items.OrderByDescending(r => r.Created).ThenBy(r => r.Name, StringComparer.Ordinal))
            {
                if (statuses is not null && !statuses.Contains(run.Status)) continue;
                if (Active && !run.Status.IsActive()) continue;
                if (Finished && !run.Status.IsFinished()) continue;
                post(run);
            }
        });
        base.EndProcessing();
    }
}
