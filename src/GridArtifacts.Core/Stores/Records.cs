using GridArtifacts.Core.Stores;
using GridArtifacts.Model;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace GridArtifacts.Core.Stores;

/// <summary><c>runs/&lt;run&gt;/run.json</c>: what was run, when, with which parameters. Written once, when the run starts.</summary>
public sealed class RunRecord
{
    public int Schema { get; set; } = StoreLayout.SchemaVersion;
    public string Name { get; set; } = "";
    public DateTimeOffset Created { get; set; }
    public string? Command { get; set; }
    public Dictionary<string, string> Parameters { get; set; } = new();
    /// <summary>
    /// Who created the run (a random id). On a store that cannot create exclusively, creators read
    /// the record back after a pause and only the one whose claim is there goes on.
    /// </summary>
    public string? Claim { get; set; }
}

/// <summary><c>runs/&lt;run&gt;/&lt;exp&gt;/experiment.json</c>: one writer (the experiment's agent) rewrites it as the experiment goes.</summary>
public sealed class ExperimentRecord
{
    public int Schema { get; set; } = StoreLayout.SchemaVersion;
    public string Run { get; set; } = "";
    public string Experiment { get; set; } = "";
    public GridStatus Status { get; set; }
    public int? ExitCode { get; set; }
    /// <summary>
    /// The signal that stopped the agent ("SIGTERM", "SIGINT"), or null (optional, so older readers
    /// pass it over; absent before 0.4.0). A SIGTERM no stop request asked for ends the experiment Failed.
    /// </summary>
    public string? Signal { get; set; }
    public DateTimeOffset Created { get; set; }
    public DateTimeOffset? Started { get; set; }
    public DateTimeOffset? Finished { get; set; }
    public DateTimeOffset? Heartbeat { get; set; }
    public Dictionary<string, string> Parameters { get; set; } = new();
    /// <summary>The command the agent ran, as text.</summary>
    public string? Command { get; set; }
    /// <summary>Live sync state while the agent runs; the final figures once it is done.</summary>
    public GridSyncState? Sync { get; set; }
    /// <summary>The capture agent that holds the experiment (host, process id and a random part); one at a time.</summary>
    public string? Agent { get; set; }
    /// <summary>
    /// Schema 2: the sequence number of the index key written for this record. With the record's
    /// own fields it spells that key, so the next writer deletes it without listing anything.
    /// </summary>
    public long? IndexSequence { get; set; }
    /// <summary>The metrics its script wrote, as last read by its writer (optional: absent before 0.3.0).</summary>
    public MetricsRecord? Metrics { get; set; }
    /// <summary>Why it ended without an agent (its cluster task ended before the agent started), or null (optional: absent before 0.4.0).</summary>
    public string? Reason { get; set; }
    /// <summary>
    /// The folder its script ran in, on its agent's host, while that folder is there: null once the
    /// agent has removed it (Start-GridRun's folders, after a final sync that stored every file)
    /// (optional: absent before 0.4.2).
    /// </summary>
    public string? WorkingDirectory { get; set; }
    /// <summary>The index key of this record as last written or read (not stored).</summary>
    [JsonIgnore]
    public string? IndexKey { get; set; }
}

/// <summary>An experiment's metrics, in its record: where they were read, how many rows, the last values, and any problem.</summary>
public sealed class MetricsRecord
{
    /// <summary>The artifact path they were read from (metrics.json or a metrics.csv).</summary>
    public string Source { get; set; } = "";
    public int Rows { get; set; }
    public Dictionary<string, double> Values { get; set; } = new();
    /// <summary>Why the file gave no metrics (malformed), or null.</summary>
    public string? Problem { get; set; }
}

/// <summary>
/// <c>runs/&lt;run&gt;/&lt;exp&gt;/uploads/&lt;id&gt;.json</c>: a multipart upload in flight. Written before its
/// first part and removed once it completes or is aborted, so an upload whose writer was killed is
/// known and aborted by the experiment's next agent.
/// </summary>
public sealed class UploadJournalRecord
{
    public int Schema { get; set; } = StoreLayout.SchemaVersion;
    public string Key { get; set; } = "";
    public string UploadId { get; set; } = "";
    public DateTimeOffset Started { get; set; }
}

/// <summary><c>runs/&lt;run&gt;/&lt;exp&gt;/manifest.json</c>: every artifact with its size and SHA-256, as uploaded.</summary>
public sealed class ManifestRecord
{
    public int Schema { get; set; } = StoreLayout.SchemaVersion;
    public string Run { get; set; } = "";
    public string Experiment { get; set; } = "";
    /// <summary>True once the final sync has written it; nothing is added after that.</summary>
    public bool Sealed { get; set; }
    public DateTimeOffset Updated { get; set; }
    /// <summary>
    /// Schema 2: the last segment folded into this manifest. Readers add the segments after it; a
    /// sealed manifest is whole and its segments are ignored.
    /// </summary>
    public long? Through { get; set; }
    public List<ManifestEntry> Artifacts { get; set; } = new();
}

public sealed class ManifestEntry
{
    public string Path { get; set; } = "";
    public long Size { get; set; }
    public string Sha256 { get; set; } = "";
    public DateTimeOffset Modified { get; set; }
}
