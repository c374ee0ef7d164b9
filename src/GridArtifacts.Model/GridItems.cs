namespace GridArtifacts.Model;

/// <summary>
/// What every object on the pipeline carries, so that by-property-name binding
/// (<c>-Run</c>, <c>-Store</c>) works from any of them.
/// </summary>
public abstract class GridItem
{
    protected GridItem(string run, string store)
    {
        Run = run;
        Store = store;
    }

    /// <summary>The run's name.</summary>
    public string Run { get; }

    /// <summary>The store the item was read from (a folder path or an s3:// URI).</summary>
    public string Store { get; }
}

/// <summary>One run: a script started once, as one experiment or a sweep of several.</summary>
public sealed class GridRun : GridItem
{
    public GridRun(string run, string store) : base(run, store) { }

    public string Name => Run;
    public GridStatus Status { get; init; }
    public DateTimeOffset Created { get; init; }
    public DateTimeOffset? Finished { get; init; }
    public string? Command { get; init; }
    public int ExperimentCount { get; init; }
    public IReadOnlyList<string> Experiments { get; init; } = Array.Empty<string>();
    /// <summary>Its experiments still Queued (not yet started by their agent), in index order.</summary>
    public IReadOnlyList<string> QueuedExperiments { get; init; } = Array.Empty<string>();
    public IReadOnlyDictionary<string, string> Parameters { get; init; } = new Dictionary<string, string>();
    /// <summary>Protected from removal (Protect-GridRun): no removal touches it or its experiments.</summary>
    public bool Protected { get; init; }
    /// <summary>Every tag on the run or on any of its experiments, sorted.</summary>
    public IReadOnlyList<string> Tags { get; init; } = Array.Empty<string>();
    /// <summary>Artifacts its experiments have synced, as the index shows them.</summary>
    public long ArtifactCount { get; init; }
    /// <summary>Bytes of artifacts its experiments have synced, as the index shows them.</summary>
    public long ArtifactBytes { get; init; }
    /// <summary>What runs its experiments: Local (a supervisor on the machine that started it) or a cluster's scheduler.</summary>
    public GridScheduler Scheduler { get; init; }
    /// <summary>The scheduler's job (Slurm's array job id), or null for a Local run.</summary>
    public string? JobId { get; init; }
    /// <summary>The cluster the job was submitted to, as the scheduler names it (Slurm's ClusterName), or null.</summary>
    public string? Cluster { get; init; }

    public override string ToString() => Name;
}

/// <summary>One experiment of a run; its id is <c>&lt;run&gt;-expN</c>.</summary>
public sealed class GridExperiment : GridItem
{
    public GridExperiment(string run, string experiment, string store) : base(run, store)
    {
        Experiment = experiment;
    }

    /// <summary><c>&lt;run&gt;-expN</c>: accepted anywhere a run name is.</summary>
    public string Id => GridNames.ExperimentId(Run, Experiment);
    /// <summary><c>expN</c>.</summary>
    public string Experiment { get; }
    public int Index => GridNames.ExperimentIndex(Experiment);
    public GridStatus Status { get; init; }
    public int? ExitCode { get; init; }
    /// <summary>The signal that stopped its agent (SIGTERM: a scheduler's time limit or cancel; SIGINT: Ctrl+C), or null.</summary>
    public string? Signal { get; init; }
    public DateTimeOffset Created { get; init; }
    public DateTimeOffset? Started { get; init; }
    public DateTimeOffset? Finished { get; init; }
    public DateTimeOffset? Heartbeat { get; init; }
    public IReadOnlyDictionary<string, string> Parameters { get; init; } = new Dictionary<string, string>();
    /// <summary>Artifacts listed in the experiment's manifest.</summary>
    public int ArtifactCount { get; init; }
    /// <summary>Bytes listed in the experiment's manifest.</summary>
    public long ArtifactBytes { get; init; }
    /// <summary>What the capture agent has synced and what it still holds (null for imported experiments).</summary>
    public GridSyncState? Sync { get; init; }
    public string? Command { get; init; }
    /// <summary>Its own tags and its run's, sorted.</summary>
    public IReadOnlyList<string> Tags { get; init; } = Array.Empty<string>();
    /// <summary>The tags on the experiment itself (not its run's).</summary>
    public IReadOnlyList<string> OwnTags { get; init; } = Array.Empty<string>();
    /// <summary>Its run is protected (Protect-GridRun).</summary>
    public bool Protected { get; init; }
    /// <summary>
    /// The last value of each metric its script wrote (metrics.json, or the newest metrics.csv's last row, empty
    /// cells filled from earlier rows), by name without case: <c>$_.Metrics['val_loss']</c>; a missing one is $null.
    /// </summary>
    public IReadOnlyDictionary<string, double> Metrics { get; init; } = NoMetrics;
    /// <summary>The artifact the metrics were read from, or null.</summary>
    public string? MetricsSource { get; init; }
    /// <summary>Why it ended without its agent, when it did (its cluster task ended before the agent started), or null.</summary>
    public string? Reason { get; init; }
    /// <summary>
    /// The folder its script ran in (on the host that ran it) while it is there, or null: Start-GridRun
    /// removes its folders after a final sync that stored every file, and keeps the others (see Sync.Unstorable).
    /// </summary>
    public string? WorkingDirectory { get; init; }

    /// <summary>
    /// The parameters whose values differ among the experiments of its run that Get-GridExperiment
    /// listed with it, by name: what tells one experiment of a sweep from another (a parameter that
    /// some of them lack counts). Null when it was not listed with others of its run.
    /// </summary>
    public IReadOnlyList<string>? VaryingParameters { get; private set; }

    /// <summary>
    /// The metrics its table shows, in order, of those it has: the ones named by Get-GridExperiment
    /// -Metric, else val_loss (what the artifacts page charts first) and then the rest by name, without
    /// the <see cref="MetricCounters"/>.
    /// </summary>
    public IReadOnlyList<string> KeyMetrics => _keyMetrics ??= Metrics.Keys
        .Where(k => !MetricCounters.Contains(k))
        .OrderBy(k => k.Equals("val_loss", StringComparison.OrdinalIgnoreCase) ? 0 : 1)
        .ThenBy(k => k, StringComparer.OrdinalIgnoreCase).ToArray();

    private IReadOnlyList<string>? _keyMetrics;

    /// <summary>Metrics that count progress (as Lightning's metrics.csv has them), not measure it: left out of <see cref="KeyMetrics"/>.</summary>
    public static readonly IReadOnlySet<string> MetricCounters = new HashSet<string>(StringComparer.OrdinalIgnoreCase) { "epoch", "step" };

    /// <summary>
    /// A copy to show with the experiments of its run listed with it: <paramref name="varyingParameters"/>
    /// as its <see cref="VaryingParameters"/>, and <paramref name="keyMetrics"/> (when not null) as its <see cref="KeyMetrics"/>.
    /// </summary>
    public GridExperiment ShownWith(IReadOnlyList<string>? varyingParameters, IReadOnlyList<string>? keyMetrics)
    {
        var copy = (GridExperiment)MemberwiseClone();
        copy.VaryingParameters = varyingParameters;
        if (keyMetrics is not null) copy._keyMetrics = keyMetrics;
        return copy;
    }

    /// <summary>The (shared, empty) metrics of an experiment that has none.</summary>
    public static readonly IReadOnlyDictionary<string, double> NoMetrics = new Dictionary<string, double>(StringComparer.OrdinalIgnoreCase);

    public override string ToString() => Id;
}

/// <summary>One file a run wrote, as stored.</summary>
public sealed class GridArtifact : GridItem
{
    public GridArtifact(string run, string experiment, string path, string store) : base(run, store)
    {
        Experiment = experiment;
        Path = path;
    }

    public string Experiment { get; }
    /// <summary><c>&lt;run&gt;-expN</c>.</summary>
    public string ExperimentId => GridNames.ExperimentId(Run, Experiment);
    /// <summary>The relative, forward-slash path the script wrote.</summary>
    public string Path { get; }
    public long Size { get; init; }
    public DateTimeOffset LastModified { get; init; }
    /// <summary>Lower-case hex SHA-256 of the content, recorded at upload; null when the store has no record of it.</summary>
    public string? Sha256 { get; init; }

    public override string ToString() => $"{ExperimentId}/{Path}";
}

/// <summary>Where the module reads and writes, and which setting chose it.</summary>
public sealed class GridStoreInfo
{
    public GridStoreInfo(string location, GridStoreKind kind, GridStoreSource source)
    {
        Location = location;
        Kind = kind;
        Source = source;
    }

    public string Location { get; }
    public GridStoreKind Kind { get; }
    public GridStoreSource Source { get; }
    public override string ToString() => Location;
}

public enum GridStoreKind { FileSystem, S3 }

/// <summary>Which setting chose the store, strongest first.</summary>
public enum GridStoreSource { Parameter, Environment, Config, Default }

/// <summary>What Save-GridArtifact did with one artifact (emitted with -PassThru).</summary>
public sealed class GridSaveResult
{
    public GridSaveResult(GridArtifact artifact, string localPath, GridSaveAction action)
    {
        Artifact = artifact;
        LocalPath = localPath;
        Action = action;
    }

    public GridArtifact Artifact { get; }
    public string Run => Artifact.Run;
    public string Experiment => Artifact.Experiment;
    public string Path => Artifact.Path;
    public long Size => Artifact.Size;
    public string? Sha256 { get; init; }
    public string LocalPath { get; }
    public GridSaveAction Action { get; }
    public override string ToString() => LocalPath;
}

public enum GridSaveAction { Downloaded, Overwritten, Skipped }

/// <summary>A capture agent's sync state, written with its heartbeat.</summary>
public sealed class GridSyncState
{
    public int FilesSynced { get; set; }
    public long BytesSynced { get; set; }
    public int FilesPending { get; set; }
    public long BytesPending { get; set; }
    public string? LastFile { get; set; }
    public DateTimeOffset? LastSynced { get; set; }
    /// <summary>The agent's working set, in bytes.</summary>
    public long AgentMemory { get; set; }
    /// <summary>Files that could not be stored, by name, with the reason.</summary>
    public List<string> Unstorable { get; set; } = new();
    public override string ToString() => $"{FilesSynced} synced, {FilesPending} pending";
}

/// <summary>An expiring link to one artifact. The URL carries its signature: share it, do not log it.</summary>
public sealed class GridArtifactLink : GridItem
{
    public GridArtifactLink(string run, string experiment, string path, string store, Uri url, DateTimeOffset expiresAt) : base(run, store)
    {
        Experiment = experiment;
        Path = path;
        Url = url;
        ExpiresAt = expiresAt;
    }

    public string Experiment { get; }
    public string ExperimentId => GridNames.ExperimentId(Run, Experiment);
    public string Path { get; }
    public Uri Url { get; }
    /// <summary>When the link stops working (earlier than asked when the signing credentials expire first).</summary>
    public DateTimeOffset ExpiresAt { get; }
    public override string ToString() => Url.AbsoluteUri;
}
