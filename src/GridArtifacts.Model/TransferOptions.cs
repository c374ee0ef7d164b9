namespace GridArtifacts.Model;

/// <summary>Process-wide limits of the transfer engine; they hold across runspaces and concurrent calls.</summary>
public sealed record TransferOptions
{
    /// <summary>Requests in flight in the whole process (whole objects and parts together).</summary>
    public int MaxConcurrency { get; init; } = 32;

    /// <summary>
    /// Whether requests in flight back off when the server throttles (503 SlowDown, 429, refused
    /// connections): halved at once, then one more per window of requests that succeed, up to
    /// <see cref="MaxConcurrency"/>. Off, the limit stays fixed.
    /// </summary>
    public bool AdaptiveConcurrency { get; init; } = true;

    /// <summary>Bytes per second for the whole process; null for no cap.</summary>
    public long? BandwidthLimit { get; init; }

    /// <summary>
    /// What transfers may hold in buffers for file and part data, process-wide: the cap of the
    /// engine's memory pool, which every download and upload rents its buffers from (the product's
    /// promise: never more than 200 MiB).
    /// </summary>
    public long MemoryBudget { get; init; } = 200L << 20;

    /// <summary>What one large file may hold in buffers (the product's promise: 50 MiB).</summary>
    public long PerFileMemory { get; init; } = 50L << 20;

    /// <summary>Objects larger than this move in parts: parallel ranged reads down, a multipart upload up (where the store takes parts).</summary>
    public long RangedThreshold { get; init; } = 32L << 20;

    /// <summary>Size of one part, read or written (a written one is larger where the store allows fewer parts).</summary>
    public long PartSize { get; init; } = 16L << 20;

    /// <summary>Parts of one object in flight at once.</summary>
    public int PartsPerFile { get; init; } = 8;

    /// <summary>
    /// Files one call moves at once unless told otherwise (Save-GridArtifact and Import-GridArtifact
    /// -ThrottleLimit, Copy-GridRun, the capture agent's uploads): as many as requests in flight by
    /// default, so small files fill the request cap (docs/transfer-engine.md, "Defaults").
    /// </summary>
    public const int DefaultFilesInFlight = 32;

    /// <summary>Each reader's buffer: one block of the memory pool.</summary>
    public const int BufferSize = 1 << 20;
}
