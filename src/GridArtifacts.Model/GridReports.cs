namespace GridArtifacts.Model;

/// <summary>What a row of Compare-GridExperiment is about.</summary>
public enum GridComparisonKind { Experiment, Parameter, Metric, Artifact }

/// <summary>
/// One difference between two experiments (or runs), read the way Compare-Object reads:
/// <c>&lt;=</c> only in the reference, <c>=&gt;</c> only in the difference, <c>&lt;&gt;</c> changed, <c>==</c> equal.
/// </summary>
public sealed class GridComparison
{
    public GridComparisonKind Kind { get; init; }
    /// <summary>The artifact path, parameter or metric name, or the experiment's name for Kind Experiment.</summary>
    public string Name { get; init; } = "";
    /// <summary>When two runs are compared: the experiment (<c>expN</c>) the row belongs to, else null.</summary>
    public string? Experiment { get; init; }
    public string SideIndicator { get; init; } = "";
    /// <summary>The reference side's id (run or run-expN).</summary>
    public string Reference { get; init; } = "";
    public string Difference { get; init; } = "";
    /// <summary>A parameter's text or a metric's number on each side (null when absent).</summary>
    public object? ReferenceValue { get; init; }
    public object? DifferenceValue { get; init; }
    public long? ReferenceSize { get; init; }
    public long? DifferenceSize { get; init; }
    public string? ReferenceSha256 { get; init; }
    public string? DifferenceSha256 { get; init; }
    /// <summary>For a metric on both sides: difference minus reference.</summary>
    public double? Delta { get; init; }
    /// <summary>For an artifact on both sides: whether the hashes were compared (false: only the sizes were known).</summary>
    public bool? HashCompared { get; init; }

    public override string ToString() => $"{SideIndicator} {Kind} {Name}";
}

/// <summary>One run's share of a store (Measure-GridStore).</summary>
public sealed class GridRunMeasure
{
    public string Run { get; init; } = "";
    /// <summary>The store measured, so that a run piped on (to Get-GridRun, Remove-GridRun) is looked for there.</summary>
    public string Store { get; init; } = "";
    public GridStatus Status { get; init; }
    public DateTimeOffset Created { get; init; }
    public DateTimeOffset? Finished { get; init; }
    public int Experiments { get; init; }
    public long Artifacts { get; init; }
    /// <summary>Bytes of artifacts: as the index shows them, or with -Exact as stored under the experiments' artifacts folders.</summary>
    public long Bytes { get; init; }
    /// <summary>With -Exact: bytes of the run's records, manifests, logs and index keys; else null.</summary>
    public long? OtherBytes { get; init; }
    public bool Protected { get; init; }
    public IReadOnlyList<string> Tags { get; init; } = Array.Empty<string>();
    public override string ToString() => Run;
}

/// <summary>What a store holds (Measure-GridStore), in total and for the largest runs.</summary>
public sealed class GridStoreMeasure
{
    public string Store { get; init; } = "";
    public int Runs { get; init; }
    public int ActiveRuns { get; init; }
    public int ProtectedRuns { get; init; }
    public long Experiments { get; init; }
    public long Artifacts { get; init; }
    /// <summary>Bytes of artifacts.</summary>
    public long Bytes { get; init; }
    /// <summary>With -Exact: bytes of records, manifests, logs and index keys; else null.</summary>
    public long? OtherBytes { get; init; }
    public bool Exact { get; init; }
    public DateTimeOffset MeasuredAt { get; init; }
    /// <summary>The largest runs by bytes, largest first.</summary>
    public IReadOnlyList<GridRunMeasure> Top { get; init; } = Array.Empty<GridRunMeasure>();
    public override string ToString() => $"{Runs} runs, {Artifacts} artifacts, {Bytes} bytes";
}

/// <summary>What a removal did, or would do under -WhatIf (Remove-GridRun and Remove-GridExperiment with -PassThru).</summary>
public sealed class GridRemoval
{
    /// <summary>The run, or run-expN.</summary>
    public string Id { get; init; } = "";
    public string Run { get; init; } = "";
    public string? Experiment { get; init; }
    public int Experiments { get; init; }
    public long Artifacts { get; init; }
    /// <summary>Bytes freed: every object removed, artifacts, records, manifests and logs.</summary>
    public long Bytes { get; init; }
    public bool WhatIf { get; init; }
    public override string ToString() => Id;
}
