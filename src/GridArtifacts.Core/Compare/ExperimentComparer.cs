using GridArtifacts.Model;

namespace GridArtifacts.Core.Compare;

/// <summary>One side of a comparison: a run, or one experiment of it, in its catalog's store.</summary>
public sealed record CompareSide(GridCatalog Catalog, string Run, string? Experiment)
{
    /// <summary>The run, or run-expN.</summary>
    public string Id => Experiment is null ? Run : GridNames.ExperimentId(Run, Experiment);
}

/// <summary>
/// What was read of one side. A value left null could not be read (a damaged record) or was not
/// asked for, and is then not compared, so it never reads as "only on the other side".
/// </summary>
public sealed class CompareSnapshot
{
    internal CompareSnapshot(string id, string? experiment, IReadOnlyDictionary<string, string>? parameters, IReadOnlyDictionary<string, double>? metrics,
        IReadOnlyDictionary<string, GridArtifact>? artifacts, IReadOnlyList<CompareSnapshot>? experiments, IReadOnlyList<GridException> errors)
    {
        Id = id;
        Experiment = experiment;
        Parameters = parameters;
        Metrics = metrics;
        Artifacts = artifacts;
        Experiments = experiments;
        Errors = errors;
    }

    public string Id { get; }
    internal string? Experiment { get; }
    internal IReadOnlyDictionary<string, string>? Parameters { get; }
    internal IReadOnlyDictionary<string, double>? Metrics { get; }
    internal IReadOnlyDictionary<string, GridArtifact>? Artifacts { get; }
    /// <summary>A run's experiments, in index order; null for an experiment.</summary>
    internal IReadOnlyList<CompareSnapshot>? Experiments { get; }
    /// <summary>What could not be read (damaged records, artifacts a sealed manifest lists but the store lacks): the rest is still compared.</summary>
    public IReadOnlyList<GridException> Errors { get; }
}

/// <summary>The rows, in order, and the artifacts (run-expN/path) whose hash was missing on a side, so only their sizes were compared.</summary>
public sealed record ComparisonResult(IReadOnlyList<GridComparison> Rows, IReadOnlyList<string> ComparedBySize);

/// <summary>
/// Compares two experiments, or two runs, as Compare-Object compares objects: <c>&lt;=</c> only in
/// the reference, <c>=&gt;</c> only in the difference, <c>&lt;&gt;</c> changed, <c>==</c> equal (only
/// with <see cref="IncludeEqual"/>). Artifacts are joined by path and changed when their SHA-256
/// differ, or, when a side has no hash, their sizes; parameters compare as ordinal strings and
/// metrics by exact equality. Two runs: their own parameters, then their experiments paired by name.
/// Reading and comparing are apart, so a caller comparing many sides with one reads it once.
/// </summary>
public sealed class ExperimentComparer
{
    private readonly HashSet<GridComparisonKind> _kinds;

    public ExperimentComparer(bool includeEqual = false, IEnumerable<GridComparisonKind>? kinds = null)
    {
        IncludeEqual = includeEqual;
        _kinds = kinds?.ToHashSet() is { Count: > 0 } some ? some : Enum.GetValues<GridComparisonKind>().ToHashSet();
    }

    public bool IncludeEqual { get; }

    /// <summary>A run against an experiment is CompareMismatch: there is nothing to pair them by.</summary>
    public static void CheckPair(CompareSide reference, CompareSide difference)
    {
        if ((reference.Experiment is null) == (difference.Experiment is null)) return;
        var (run, exp) = reference.Experiment is null ? (reference, difference) : (difference, reference);
        throw new GridException(GridErrorKind.InvalidArgument, "CompareMismatch",
            $"'{run.Id}' is a run and '{exp.Id}' is an experiment: compare an experiment with an experiment ('{GridNames.ExperimentId(run.Run, exp.Experiment!)}' with '{exp.Id}'), " +
            $"or a run with a run ('{run.Id}' with '{exp.Run}').", difference.Id);
    }

    /// <summary>Reads one side. An unknown run or experiment is thrown (RunNotFound, ExperimentNotFound); damage is kept in <see cref="CompareSnapshot.Errors"/>.</summary>
    public async Task<CompareSnapshot> ReadAsync(CompareSide side, CancellationToken ct)
    {
        var catalog = side.Catalog;
        if (side.Experiment is not null) return await ReadExperimentAsync(catalog, side.Run, side.Experiment, ct).ConfigureAwait(false);
        var errors = new List<GridException>();
        var record = await Tolerate(catalog.Runs.ReadRunRecordAsync(side.Run, ct), errors).ConfigureAwait(false);
        var names = await catalog.Runs.ListExperimentNamesAsync(side.Run, ct).ConfigureAwait(false);
        var read = await ReadMany.AllAsync(names, async (exp, c) =>
        {
            try { return await ReadExperimentAsync(catalog, side.Run, exp, c).ConfigureAwait(false); }
            catch (GridException ex)
            {
                // Listed but unreadable (removed meanwhile, the store failing): paired still, so it
                // never reads as an experiment of the other side alone, with nothing to compare.
                return new CompareSnapshot(GridNames.ExperimentId(side.Run, exp), exp, null, null, null, null, new[] { ex });
            }
        }, ct).ConfigureAwait(false);
        errors.AddRange(read.Items.SelectMany(e => e.Errors));
        return new CompareSnapshot(side.Id, null, record?.Parameters, null, null, read.Items, errors);
    }

    private async Task<CompareSnapshot> ReadExperimentAsync(GridCatalog catalog, string run, string experiment, CancellationToken ct)
    {
        var errors = new List<GridException>();
        // The record is read whatever -Kind says: it is what tells an unknown experiment.
        var record = await Tolerate(catalog.Runs.GetExperimentAsync(run, experiment, ct, withArtifactSummary: false), errors).ConfigureAwait(false);
        Dictionary<string, GridArtifact>? artifacts = null;
        if (_kinds.Contains(GridComparisonKind.Artifact))
        {
            // A damaged manifest is an error here, and its artifacts come without hashes: compared by size.
            var listed = await catalog.Artifacts.GetArtifactsAsync(run, experiment, ct).ConfigureAwait(false);
            errors.AddRange(listed.Errors);
            artifacts = listed.Items.ToDictionary(a => a.Path, StringComparer.Ordinal);
        }
        return new CompareSnapshot(GridNames.ExperimentId(run, experiment), experiment, record?.Parameters, record?.Metrics, artifacts, null, errors);
    }

    private static async Task<T?> Tolerate<T>(Task<T> read, List<GridException> errors) where T : class
    {
        try { return await read.ConfigureAwait(false); }
        catch (GridException ex) when (ex.Kind == GridErrorKind.DamagedRecord)
        {
            errors.Add(ex);
            return null;
        }
    }

    /// <summary>The rows for two sides read by <see cref="ReadAsync"/>, ordered by Kind, then Name (ordinal), then experiment.</summary>
    public ComparisonResult Compare(CompareSnapshot reference, CompareSnapshot difference)
    {
        var pair = new Pair(reference.Id, difference.Id, new List<GridComparison>(), new List<string>());
        Add(pair, reference, difference, null);
        pair.Rows.Sort(static (x, y) =>
        {
            var c = x.Kind.CompareTo(y.Kind);
            if (c == 0) c = string.CompareOrdinal(x.Name, y.Name);
            return c != 0 ? c : Index(x.Experiment).CompareTo(Index(y.Experiment));
        });
        return new ComparisonResult(pair.Rows, pair.ComparedBySize);
    }

    private sealed record Pair(string Reference, string Difference, List<GridComparison> Rows, List<string> ComparedBySize);

    private static int Index(string? experiment) => experiment is null ? -1 : GridNames.ExperimentIndex(experiment);

    private void Add(Pair pair, CompareSnapshot a, CompareSnapshot b, string? experiment)
    {
        if (_kinds.Contains(GridComparisonKind.Parameter)) AddValues(pair, GridComparisonKind.Parameter, a.Parameters, b.Parameters, StringComparer.Ordinal, experiment);
        if (_kinds.Contains(GridComparisonKind.Metric)) AddValues(pair, GridComparisonKind.Metric, a.Metrics, b.Metrics, StringComparer.OrdinalIgnoreCase, experiment);
        if (_kinds.Contains(GridComparisonKind.Artifact)) AddArtifacts(pair, a.Artifacts, b.Artifacts, experiment);
        if (a.Experiments is null || b.Experiments is null) return;
        var inB = b.Experiments.ToDictionary(e => e.Experiment!, StringComparer.Ordinal);
        var inA = a.Experiments.ToDictionary(e => e.Experiment!, StringComparer.Ordinal);
        foreach (var name in inA.Keys.Concat(inB.Keys).Distinct(StringComparer.Ordinal))
        {
            var x = inA.GetValueOrDefault(name);
            var y = inB.GetValueOrDefault(name);
            if (x is not null && y is not null) Add(pair, x, y, name);
            // An experiment row says which experiments each run has; what differs within a pair is in its other rows.
            if (!_kinds.Contains(GridComparisonKind.Experiment) || Indicator(x is not null, y is not null, equal: true) is not { } side) continue;
            pair.Rows.Add(Row(pair, GridComparisonKind.Experiment, name, name, side));
        }
    }

    private void AddValues<T>(Pair pair, GridComparisonKind kind, IReadOnlyDictionary<string, T>? a, IReadOnlyDictionary<string, T>? b,
        StringComparer names, string? experiment) where T : notnull
    {
        if (a is null || b is null) return;
        foreach (var name in a.Keys.Concat(b.Keys).Distinct(names))
        {
            var inA = a.TryGetValue(name, out var x);
            var inB = b.TryGetValue(name, out var y);
            if (Indicator(inA, inB, inA && inB && EqualityComparer<T>.Default.Equals(x, y)) is not { } side) continue;
            pair.Rows.Add(Row(pair, kind, name, experiment, side, inA ? x : null, inB ? y : null,
                delta: inA && inB && x is double dx && y is double dy ? dy - dx : null));
        }
    }

    private void AddArtifacts(Pair pair, IReadOnlyDictionary<string, GridArtifact>? a, IReadOnlyDictionary<string, GridArtifact>? b, string? experiment)
    {
        if (a is null || b is null) return;
        foreach (var path in a.Keys.Concat(b.Keys).Distinct(StringComparer.Ordinal))
        {
            var x = a.GetValueOrDefault(path);
            var y = b.GetValueOrDefault(path);
            bool? hashed = x is not null && y is not null ? x.Sha256 is not null && y.Sha256 is not null : null;
            if (hashed == false) pair.ComparedBySize.Add((x!.Sha256 is null ? x : y!).ToString());
            // A stored object whose size is not its sealed hash's (replaced behind the manifest's back) differs, whatever the hash says.
            var equal = hashed is { } h && x!.Size == y!.Size && (!h || string.Equals(x.Sha256, y.Sha256, StringComparison.OrdinalIgnoreCase));
            if (Indicator(x is not null, y is not null, equal) is not { } side) continue;
            pair.Rows.Add(Row(pair, GridComparisonKind.Artifact, path, experiment, side, reference: x, difference: y, hashCompared: hashed));
        }
    }

    /// <summary>Compare-Object's side indicator, or null for an equal item left out.</summary>
    private string? Indicator(bool inReference, bool inDifference, bool equal) =>
        !inDifference ? "<=" : !inReference ? "=>" : !equal ? "<>" : IncludeEqual ? "==" : null;

    private static GridComparison Row(Pair pair, GridComparisonKind kind, string name, string? experiment, string side,
        object? referenceValue = null, object? differenceValue = null, double? delta = null,
        GridArtifact? reference = null, GridArtifact? difference = null, bool? hashCompared = null) => new()
    {
        Kind = kind, Name = name, Experiment = experiment, SideIndicator = side, Reference = pair.Reference, Difference = pair.Difference,
        ReferenceValue = referenceValue, DifferenceValue = differenceValue, Delta = delta,
        ReferenceSize = reference?.Size, DifferenceSize = difference?.Size, ReferenceSha256 = reference?.Sha256, DifferenceSha256 = difference?.Sha256,
        HashCompared = hashCompared,
    };
}
