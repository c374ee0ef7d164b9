using System.Management.Automation;
using GridArtifacts.Core;
using GridArtifacts.Model;

namespace GridArtifacts.Commands;

/// <summary>
/// Runs, experiments, artifacts and bytes of a store, in total with its largest runs, or run by run
/// (<c>-PerRun</c>). The figures come from one listing of the index; <c>-Exact</c> sums what is
/// stored from one recursive listing instead.
/// </summary>
[Cmdlet(VerbsDiagnostic.Measure, "GridStore", DefaultParameterSetName = TotalSet)]
[OutputType(typeof(GridStoreMeasure), ParameterSetName = new[] { TotalSet })]
[OutputType(typeof(GridRunMeasure), ParameterSetName = new[] { PerRunSet })]
public sealed class MeasureGridStoreCommand : GridStoreCmdlet
{
    public const string TotalSet = "Total";
    public const string PerRunSet = "PerRun";

    /// <summary>Only runs with these names; wildcards are supported.</summary>
    [Parameter(Position = 0)]
    [SupportsWildcards]
    [ArgumentCompleter(typeof(RunNameCompleter))]
    [ValidateNotNullOrEmpty]
    public string[]? Name { get; set; }

    /// <summary>Only runs with a tag (on the run or any of its experiments) that matches one of these; wildcards are supported.</summary>
    [Parameter]
    [SupportsWildcards]
    [ArgumentCompleter(typeof(TagCompleter))]
    [ValidateNotNullOrEmpty]
    public string[]? Tag { get; set; }

    /// <summary>How many of the largest runs the total names.</summary>
    [Parameter(ParameterSetName = TotalSet)]
    [ValidateRange(0, 10000)]
    public int Top { get; set; } = 10;

    /// <summary>One object per run, largest first, instead of the total.</summary>
    [Parameter(Mandatory = true, ParameterSetName = PerRunSet)]
    public SwitchParameter PerRun { get; set; }

    /// <summary>Sizes as stored, from one recursive listing, with records, manifests and logs apart; not the index's figures.</summary>
    [Parameter]
    public SwitchParameter Exact { get; set; }

    /// <summary>The stores named, each once, in the order first named: piped objects carry their own.</summary>
    private readonly List<string?> _stores = new();

    protected override void ProcessRecord()
    {
        if (!_stores.Contains(Store)) _stores.Add(Store);
    }

    protected override void EndProcessing()
    {
        var named = Targets.Matcher(Name);
        var tagged = Targets.TagFilter(Tag);
        var literals = Name?.Where(n => !Targets.IsWildcard(n)).ToList() ?? new List<string>();
        foreach (var store in _stores)
        {
            var catalog = OpenCatalog(store);
            RunAndDrain(async (post, ct) =>
            {
                var seen = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
                var measured = await StoreMeasurer.MeasureAsync(catalog, run =>
                {
                    if (!named(run.Name)) return false;
                    seen.Add(run.Name);
                    return tagged(run.Tags);
                }, Exact, PerRun ? 0 : Top, ct).ConfigureAwait(false);
                foreach (var e in measured.Errors) post(e);
                // A name without wildcards that the listing did not show is read by name, which says
                // why (unknown, invalid, damaged), unless the listing already reported its record.
                foreach (var name in literals.Where(n => !seen.Contains(n)).Distinct(StringComparer.OrdinalIgnoreCase))
                {
                    if (measured.Errors.Any(e => GridCatalog.Concerns(e, name))) continue;
                    try { await catalog.Runs.GetRunAsync(name, ct).ConfigureAwait(false); }
                    catch (GridException ex) { post(ex); }
                }
                if (PerRun) foreach (var run in measured.Runs) post(run);
                else post(measured.Total);
            });
        }
        base.EndProcessing();
    }
}
