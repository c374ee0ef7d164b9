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

/// <summary>How records are written and read: camelCase JSON, enums as strings, indented for people who open the files.</summary>
public static class RecordJson
{
    public static readonly JsonSerializerOptions Options = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        Converters = { new JsonStringEnumConverter() },
    };

    /// <summary>Manifests and their segments: one entry per file, so not indented.</summary>
    public static readonly JsonSerializerOptions Compact = new(Options) { WriteIndented = false };

    public static byte[] Serialize<T>(T value) => JsonSerializer.SerializeToUtf8Bytes(value, value is ManifestRecord ? Compact : Options);

    /// <summary>Parses a record; any defect (bad JSON, missing fields, a newer schema) is a DamagedRecord error naming the key.</summary>
    public static T Deserialize<T>(byte[] bytes, string storeLocation, string key) where T : class
    {
        T? value;
        try
        {
            value = JsonSerializer.Deserialize<T>(bytes, Options);
        }
        catch (JsonException ex)
        {
            throw Damaged(storeLocation, key, $"it is not valid JSON ({ex.Message})", ex);
        }
        if (value is null) throw Damaged(storeLocation, key, "it is empty", null);
        var schema = value switch
        {
            RunRecord r => r.Schema,
            ExperimentRecord e => e.Schema,
            ManifestRecord m => m.Schema,
            UploadJournalRecord u => u.Schema,
            _ => StoreLayout.SchemaVersion,
        };
        if (schema < 1 || schema > StoreLayout.SchemaVersion)
        {
            throw Damaged(storeLocation, key, $"its schema version {schema} is not one this module reads (1 to {StoreLayout.SchemaVersion}); update the module", null);
        }
        return value;
    }

    internal static GridException Damaged(string store, string key, string why, Exception? inner) =>
        new(GridErrorKind.DamagedRecord, "DamagedRecord", $"The record '{key}' in store '{store}' is damaged: {why}. The other records are still read.", key, inner);

    /// <summary>A record longer than <see cref="StoreLayout.MaxRecordBytes"/>: damaged, whatever it holds.</summary>
    public static GridException TooLarge(string store, string key, long? length) =>
        Damaged(store, key, (length is { } n ? $"it is {n:N0} bytes" : "it is longer") +
            $", more than the {StoreLayout.MaxRecordBytes >> 20} MiB a record may have, so it was not read", null);

    /// <summary>
    /// A record's body, read to its end but never past <see cref="StoreLayout.MaxRecordBytes"/>: the
    /// buffer grows with what arrives, not with the length the store declares, so a record claiming
    /// (or holding) gigabytes costs at most the bound. Too long is <see cref="TooLarge"/>.
    /// </summary>
    public static async Task<byte[]> ReadBoundedAsync(Stream body, long? declaredLength, string store, string key, CancellationToken ct)
    {
        if (declaredLength > StoreLayout.MaxRecordBytes) throw TooLarge(store, key, declaredLength);
        var buffer = new byte[(int)Math.Clamp(declaredLength ?? 4096, 256, StoreLayout.MaxRecordBytes) + 1];
        var filled = 0;
        while (true)
        {
            if (filled == buffer.Length)
            {
                if (buffer.Length > StoreLayout.MaxRecordBytes) throw TooLarge(store, key, null);
                Array.Resize(ref buffer, Math.Min(buffer.Length * 2, StoreLayout.MaxRecordBytes + 1));
            }
            var n = await body.ReadAsync(buffer.AsMemory(filled), ct).ConfigureAwait(false);
            if (n == 0) break;
            filled += n;
        }
        if (filled > StoreLayout.MaxRecordBytes) throw TooLarge(store, key, null);
        return filled == buffer.Length ? buffer : buffer[..filled];
    }
}
