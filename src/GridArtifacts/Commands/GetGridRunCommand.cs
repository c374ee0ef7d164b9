using System.Management.Automation;
using GridArtifacts.Core;
using GridArtifacts.Model;
using GridArtifacts.Core.Launch;

namespace GridArtifacts.Commands;

/// <summary>
/// Lists runs, newest first. <c>-Active</c> is the product's <c>grid status</c>; <c>-Finished</c> is its
/// <c>grid history</c>.
/// </summary>
[Cmdlet(VerbsCommon.Get, "GridRun")]
[OutputType(typeof(GridRun))]
public sealed class GetGridRunCommand : GridStatusFilterCmdlet
{
    /// <summary>Run names; wildcards are supported. A name that is not a wildcard and is not found is an error.</summary>
    [Parameter(Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [Alias("Run")]
    [SupportsWildcards]
    [ArgumentCompleter(typeof(RunNameCompleter))]
    [ValidateNotNullOrEmpty]
    public string[]? Name { get; set; }

    /// <summary>Only runs that are queued, running or syncing (the product's <c>grid status</c>).</summary>
    [Parameter]
    public SwitchParameter Active { get; set; }

    /// <summary>Only runs that have ended (the product's <c>grid history</c>).</summary>
    [Parameter]
    public SwitchParameter Finished { get; set; }

    /// <summary>The names asked for, with the store each came with: piped runs carry their own store.</summary>
    private readonly List<(string? Store, string[] Names)> _asked = new();

    protected override void ProcessRecord()
    {
        if (Name is not null) _asked.Add((Store, Name));
    }

    protected override void EndProcessing()
    {
        // One listing per store, in the order the stores were first named; nothing named: every run of the store.
        var groups = _asked.Count == 0
            ? new List<(string? Store, List<string>? Names)> { (Store, null) }
            : _asked.GroupBy(a => a.Store, StringComparer.Ordinal).Select(g => (g.Key, (List<string>?)g.SelectMany(a => a.Names).ToList())).ToList();
        var statuses = Status is { Length: > 0 } ? new HashSet<GridStatus>(Status) : null;
        var tagged = Targets.TagFilter(Tag);
        foreach (var (store, asked) in groups)
        {
            var catalog = OpenCatalog(store);
            RunAndDrain(async (post, ct) =>
            {
                // Every run: one listing of the store's index. Names: wildcards resolved, then read.
                var result = asked is null
                    ? await catalog.Runs.ListRunsAsync(ct).ConfigureAwait(false)
                    : await catalog.Runs.GetRunsAsync(await Targets.ResolveRunsAsync(catalog, asked, post, ct).ConfigureAwait(false), ct).ConfigureAwait(false);
                foreach (var e in result.Errors) post(e);
                var items = await WithStrandedEndedAsync(catalog, result.Items, post, ct).ConfigureAwait(false);
                foreach (var run in items.OrderByDescending(r => r.Created).ThenBy(r => r.Name, StringComparer.Ordinal))
                {
                    if (statuses is not null && !statuses.Contains(run.Status)) continue;
                    if (Active && !run.Status.IsActive()) continue;
                    if (Finished && !run.Status.IsFinished()) continue;
                    if (!tagged(run.Tags)) continue;
                    post(run);
                }
            });
        }
        base.EndProcessing();
    }

    /// <summary>The runs, with Slurm runs' queued experiments whose tasks ended before their agents started ended now (and those runs read again).</summary>
    private static async Task<IReadOnlyList<GridRun>> WithStrandedEndedAsync(GridCatalog catalog, IReadOnlyList<GridRun> runs, Action<object> post, CancellationToken ct)
    {
        var changed = await ClusterRuns.EndStrandedAsync(catalog, ClusterRuns.QueuedOf(runs), post, ct).ConfigureAwait(false);
        if (changed.Count == 0) return runs;
        var list = new List<GridRun>(runs.Count);
        foreach (var r in runs) list.Add(changed.Contains(r.Name) ? await catalog.Runs.GetRunAsync(r.Name, ct).ConfigureAwait(false) : r);
        return list;
    }
}
