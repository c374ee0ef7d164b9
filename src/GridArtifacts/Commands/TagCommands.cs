using System.Management.Automation;
using GridArtifacts.Core;
using GridArtifacts.Model;

namespace GridArtifacts.Commands;

/// <summary>
/// What Add-GridTag and Remove-GridTag share: targets are runs or experiments, by name (<c>run</c>,
/// <c>run-expN</c>, wildcards) or from the pipeline (a GridRun tags the run, a GridExperiment the
/// experiment), each confirmed. Tags are checked before anything is written.
/// </summary>
public abstract class GridTagCmdlet : GridStoreCmdlet
{
    /// <summary>Runs or experiments (<c>run-expN</c>); wildcards are supported.</summary>
    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ParameterSetName = "Name")]
    [SupportsWildcards]
    [ArgumentCompleter(typeof(RunOrExperimentCompleter))]
    [ValidateNotNullOrEmpty]
    public string[] Run { get; set; } = Array.Empty<string>();

    /// <summary>
    /// Runs or experiments from Get-GridRun or Get-GridExperiment. Not bound by property name: an
    /// experiment's Run property would tag its whole run.
    /// </summary>
    [Parameter(Mandatory = true, ValueFromPipeline = true, ParameterSetName = "InputObject")]
    [ValidateNotNull]
    public GridItem[] InputObject { get; set; } = Array.Empty<GridItem>();

    /// <summary>Writes each run or experiment as it reads after the change.</summary>
    [Parameter]
    public SwitchParameter PassThru { get; set; }

    /// <summary>The tags, as given.</summary>
    protected abstract string[] Given { get; }

    /// <summary>Whether the tags given may be patterns (only the literal ones are then checked as tags).</summary>
    protected virtual bool TakesPatterns => false;

    /// <summary>The tags as stored (checked and lower-cased).</summary>
    protected IReadOnlyList<string> Tags { get; private set; } = Array.Empty<string>();

    protected override void BeginProcessing()
    {
        base.BeginProcessing();
        try { Tags = GridNames.CheckTags(TakesPatterns ? Given.Where(t => !Targets.IsWildcard(t)) : Given); }
        catch (GridException ex) { ThrowTerminatingError(ToErrorRecord(ex)); }
    }

    /// <summary>Adds or removes <see cref="Tags"/> on one run (experiment null) or experiment; returns the tags it changed.</summary>
    protected abstract Task<IReadOnlyList<string>> ChangeAsync(GridCatalog catalog, string run, string? experiment, Action<object> post, CancellationToken ct);

    protected abstract string Action { get; }

    protected override void ProcessRecord()
    {
        var targets = new List<(GridCatalog Catalog, string Run, string? Experiment)>();
        if (ParameterSetName == "Name")
        {
            var catalog = OpenCatalog();
            RunAndDrain(async (post, ct) =>
            {
                foreach (var target in Run)
                {
                    var (runPart, expPart) = GridNames.SplitTarget(target);
                    if (expPart is null)
                        targets.AddRange((await Targets.ResolveRunsAsync(catalog, new[] { runPart }, post, ct).ConfigureAwait(false)).Select(r => (catalog, r, (string?)null)));
                    else
                        targets.AddRange((await Targets.ResolveExperimentsAsync(catalog, new[] { target }, null, post, ct).ConfigureAwait(false)).Select(p => (catalog, p.Run, (string?)p.Experiment)));
                }
            });
        }
        else
        {
            foreach (var item in InputObject)
            {
                switch (item)
                {
                    case GridRun r: targets.Add((OpenCatalog(r.Store), r.Run, null)); break;
                    case GridExperiment e: targets.Add((OpenCatalog(e.Store), e.Run, e.Experiment)); break;
                    default:
                        WriteGridError(new GridException(GridErrorKind.InvalidArgument, "TagTargetInvalid",
                            $"'{item}' is a {item.GetType().Name}; tags go on runs and experiments. Pipe Get-GridRun or Get-GridExperiment instead.", item));
                        break;
                }
            }
        }
        foreach (var (catalog, run, experiment) in targets)
        {
            var id = experiment is null ? run : GridNames.ExperimentId(run, experiment);
            if (!ShouldProcess(id, $"{Action} tag(s) {string.Join(", ", TakesPatterns ? Given : Tags)}")) continue;
            RunAndDrain(async (post, ct) =>
            {
                try
                {
                    await ChangeAsync(catalog, run, experiment, post, ct).ConfigureAwait(false);
                    if (!PassThru) return;
                    post(experiment is null
                        ? await catalog.Runs.GetRunAsync(run, ct).ConfigureAwait(false)
                        : await catalog.Runs.GetLabelledExperimentAsync(run, experiment, ct).ConfigureAwait(false));
                }
                catch (GridException ex)
                {
                    post(ex);
                }
            });
        }
    }
}

/// <summary>Tags runs and experiments (one key per tag, so sessions tagging at once never undo each other).</summary>
[Cmdlet(VerbsCommon.Add, "GridTag", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Low, DefaultParameterSetName = "Name")]
[OutputType(typeof(GridRun), typeof(GridExperiment))]
public sealed class AddGridTagCommand : GridTagCmdlet
{
    /// <summary>Tags to add: 1 to 64 letters, digits, '-', '_' and '.', stored lower-case.</summary>
    [Parameter(Mandatory = true, Position = 1)]
    [ArgumentCompleter(typeof(TagCompleter))]
    [ValidateNotNullOrEmpty]
    public string[] Tag { get; set; } = Array.Empty<string>();

    protected override string[] Given => Tag;
    protected override string Action => "Add";

    protected override Task<IReadOnlyList<string>> ChangeAsync(GridCatalog catalog, string run, string? experiment, Action<object> post, CancellationToken ct) =>
        catalog.Writer.AddTagsAsync(run, experiment, Tags, ct);
}

/// <summary>Removes tags from runs and experiments; from a run, also from each of its experiments.</summary>
[Cmdlet(VerbsCommon.Remove, "GridTag", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Low, DefaultParameterSetName = "Name")]
[OutputType(typeof(GridRun), typeof(GridExperiment))]
public sealed class RemoveGridTagCommand : GridTagCmdlet
{
    /// <summary>Tags to remove; wildcards are supported (<c>-Tag *</c> removes every tag).</summary>
    [Parameter(Mandatory = true, Position = 1)]
    [SupportsWildcards]
    [ArgumentCompleter(typeof(TagCompleter))]
    [ValidateNotNullOrEmpty]
    public string[] Tag { get; set; } = Array.Empty<string>();

    protected override string[] Given => Tag;
    protected override bool TakesPatterns => true;
    protected override string Action => "Remove";

    protected override async Task<IReadOnlyList<string>> ChangeAsync(GridCatalog catalog, string run, string? experiment, Action<object> post, CancellationToken ct)
    {
        var labels = (await catalog.Runs.GetLabelsAsync(new[] { run }, ct).ConfigureAwait(false))[run];
        var match = Targets.Matcher(Tag);
        var there = experiment is null ? labels.AllTags : labels.TagsOf(experiment);
        var chosen = there.Where(match).ToList();
        if (experiment is not null)
        {
            var onRun = chosen.Where(t => labels.Tags.Contains(t) && !labels.OwnTagsOf(experiment).Contains(t)).ToList();
            if (onRun.Count > 0)
                post(new WarningMessage($"{GridNames.ExperimentId(run, experiment)} has {string.Join(", ", onRun)} from its run; 'Remove-GridTag {run} {string.Join(",", onRun)}' removes it there. (TagOnRun)"));
        }
        return await catalog.Writer.RemoveTagsAsync(run, experiment, chosen, ct).ConfigureAwait(false);
    }
}
