using System.Collections;
using System.Management.Automation;
using GridArtifacts.Core;
using GridArtifacts.Core.Compare;
using GridArtifacts.Model;

namespace GridArtifacts.Commands;

/// <summary>
/// Compares two experiments, or two runs, the way Compare-Object compares objects: artifacts (by
/// SHA-256, with sizes), parameters and metrics only in the reference (&lt;=), only in the difference
/// (=&gt;), or changed (&lt;&gt;); -IncludeEqual adds the equal ones (==). Piped experiments are each
/// compared with the reference, which is read once.
/// </summary>
[Cmdlet(VerbsData.Compare, "GridExperiment")]
[OutputType(typeof(GridComparison))]
public sealed class CompareGridExperimentCommand : GridStoreCmdlet
{
    /// <summary>The run or experiment compared against: run or run-expN, a GridRun or a GridExperiment.</summary>
    [Parameter(Mandatory = true, Position = 0)]
    [CompareTargetTransformation]
    [ArgumentCompleter(typeof(RunOrExperimentCompleter))]
    public object Reference { get; set; } = null!;

    /// <summary>What is compared with the reference; binds from the pipeline, as Compare-Object's -DifferenceObject.</summary>
    [Parameter(Mandatory = true, Position = 1, ValueFromPipeline = true)]
    [CompareTargetTransformation(AllowMany = true)]
    [ArgumentCompleter(typeof(RunOrExperimentCompleter))]
    public object Difference { get; set; } = null!;

    /// <summary>Also writes what is equal (==).</summary>
    [Parameter]
    public SwitchParameter IncludeEqual { get; set; }

    /// <summary>Only these kinds of rows: Experiment, Parameter, Metric, Artifact.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public GridComparisonKind[]? Kind { get; set; }

    private ExperimentComparer? _comparer;
    /// <summary>The reference as read, per store: a piped -Store (or none) may change from one input to the next.</summary>
    private readonly Dictionary<string, CompareSnapshot> _references = new(StringComparer.Ordinal);
    private readonly List<string> _comparedBySize = new();

    protected override void ProcessRecord()
    {
        _comparer ??= new ExperimentComparer(IncludeEqual, Kind);
        var comparer = _comparer;
        // The reference is the same for every input: if it cannot be named or read, nothing can be compared.
        if (Side(CompareTarget.From(Reference)) is not { } reference) return;
        var key = reference.Catalog.Location + "\n" + reference.Id;
        foreach (var target in CompareTarget.Many(Difference))
        {
            if (Side(target, reference) is not { } difference) continue;
            if (!_references.TryGetValue(key, out var a))
            {
                RunAndDrain(async (post, ct) =>
                {
                    a = await comparer.ReadAsync(reference, ct).ConfigureAwait(false);
                    foreach (var e in a.Errors) post(e);
                });
                _references[key] = a!;
            }
            RunAndDrain(async (post, ct) =>
            {
                try
                {
                    var b = await comparer.ReadAsync(difference, ct).ConfigureAwait(false);
                    foreach (var e in b.Errors) post(e);
                    var result = comparer.Compare(a!, b);
                    // Read on the pipeline thread only after this work has ended.
                    _comparedBySize.AddRange(result.ComparedBySize);
                    foreach (var row in result.Rows) post(row);
                }
                catch (GridException ex)
                {
                    post(ex);
                }
            });
        }
    }

    /// <summary>
    /// The side a target names, in its own store (a string: this call's). Without <paramref name="reference"/>
    /// it is the reference, and a problem ends the command; else a problem is this input's error.
    /// </summary>
    private CompareSide? Side(CompareTarget target, CompareSide? reference = null)
    {
        var catalog = OpenCatalog(target.Store ?? Store);
        try
        {
            var side = target.Resolve(catalog);
            if (reference is not null) ExperimentComparer.CheckPair(reference, side);
            return side;
        }
        catch (GridException ex)
        {
            if (reference is null) ThrowTerminatingError(ToErrorRecord(ex));
            WriteGridError(ex);
            return null;
        }
    }

    protected override void EndProcessing()
    {
        if (_comparedBySize.Count > 0)
        {
            WriteWarning($"{_comparedBySize.Count} artifact(s) were compared by size only, because no SHA-256 is recorded for them on one side (for example {_comparedBySize[0]}): " +
                "a change that keeps the size would not show. Their rows have HashCompared = $false.");
        }
        base.EndProcessing();
    }
}

/// <summary>What -Reference or -Difference names: a run or run-expN, typed (in the call's store) or from a GridRun or GridExperiment (in its own).</summary>
internal sealed record CompareTarget(string Name, string? Store)
{
    public static CompareTarget From(object? value) => (value is PSObject p ? p.BaseObject : value) switch
    {
        CompareTarget t => t,
        GridExperiment e => new(e.Id, e.Store),
        GridRun r => new(r.Name, r.Store),
        string s => new(s, null),
        var other => throw new ArgumentTransformationMetadataException(
            $"Compare-GridExperiment compares runs and experiments: give a run or run-expN name, a GridRun or a GridExperiment, not {(other is null ? "$null" : "a " + other.GetType().Name)}."),
    };

    public static IEnumerable<CompareTarget> Many(object value) => value as CompareTarget[] ?? new[] { From(value) };

    /// <summary>The side it names; a wildcard is refused, since each side is one run or one experiment.</summary>
    public CompareSide Resolve(GridCatalog catalog)
    {
        if (WildcardPattern.ContainsWildcardCharacters(Name))
        {
            throw new GridException(GridErrorKind.InvalidArgument, "WildcardNotSupported",
                $"'{Name}' is a wildcard, and each side of a comparison is one run or one experiment. To compare many with one, pipe them in: " +
                $"Get-GridExperiment '{Name}' | Compare-GridExperiment <reference>.", Name);
        }
        var (run, experiment) = GridNames.SplitTarget(Name);
        GridNames.CheckRunName(run);
        if (experiment is not null) GridNames.CheckExperimentName(experiment);
        return new CompareSide(catalog, run, experiment);
    }
}

/// <summary>Turns a string, a GridRun or a GridExperiment into a <see cref="CompareTarget"/>; with <see cref="AllowMany"/>, a list into an array of them.</summary>
internal sealed class CompareTargetTransformationAttribute : ArgumentTransformationAttribute
{
    public bool AllowMany { get; set; }

    public override object Transform(EngineIntrinsics engineIntrinsics, object inputData)
    {
        var value = inputData is PSObject p ? p.BaseObject : inputData;
        if (value is string or CompareTarget or not IEnumerable) return CompareTarget.From(value);
        var targets = ((IEnumerable)value).Cast<object?>().Select(CompareTarget.From).ToArray();
        if (AllowMany) return targets;
        return targets.Length == 1 ? targets[0]
            : throw new ArgumentTransformationMetadataException($"-Reference is one run or experiment, not {targets.Length}; to compare many with one, give them to -Difference or pipe them in.");
    }
}
