using GridArtifacts.Core.Stores;
using GridArtifacts.Model;

namespace GridArtifacts.Core.Transfer;

/// <summary>One artifact and where it goes.</summary>
public sealed record SaveItem(GridArtifact Artifact, string LocalPath)
{
    /// <summary>
    /// The destination folder <see cref="LocalPath"/> was planned under. The save makes the folders
    /// below it and follows none that is a link, and keeps its temporary files in its
    /// <see cref="TransferEngine.PartialFolder"/>. Null: the path's own folder.
    /// </summary>
    public string? Root { get; init; }
}

/// <summary>Running totals of one batch, safe to read from another thread while it goes.</summary>
public sealed class TransferProgress
{
    private long _filesDone, _bytesDone, _skipped, _failed;
    public TransferProgress(int filesTotal, long bytesTotal)
    {
        FilesTotal = filesTotal;
        BytesTotal = bytesTotal;
    }
    public int FilesTotal { get; }
    public long BytesTotal { get; }
    public long FilesDone => Interlocked.Read(ref _filesDone);
    public long BytesDone => Interlocked.Read(ref _bytesDone);
    public long Skipped => Interlocked.Read(ref _skipped);
    public long Failed => Interlocked.Read(ref _failed);
    internal void AddBytes(long n) => Interlocked.Add(ref _bytesDone, n);
    internal void FileDone(GridSaveAction? action)
    {
        if (action is null) Interlocked.Increment(ref _failed);
        else if (action == GridSaveAction.Skipped) Interlocked.Increment(ref _skipped);
        Interlocked.Increment(ref _filesDone);
    }
}

/// <summary>
/// The process's one transfer engine, shared by every cmdlet and runspace. Process-wide limits
/// (requests in flight, bandwidth, the memory of transfers' buffers) hold across concurrent calls; each call
/// caps its own files in flight with its throttle limit.
///
/// A download goes to a part file in the destination's own <c>.grid-partial</c> folder, named by a
/// hash of its path (never beside the artifact, where that name may be another artifact or the
/// user's file), and is renamed into place only after its size and SHA-256 match the store's record,
/// so a failed or cancelled artifact never leaves a file at its final path. Large objects are read as
/// parallel ranged reads written at their offsets, every range pinned to the version the first one
/// saw; a <c>.part.json</c> beside the part file lets an interrupted download resume. Files already
/// there with the recorded content are skipped. No link below the destination is followed
/// (docs/reliability.md, "Hostile destinations").
/// </summary>
public sealed partial class TransferEngine
{
    public const string PartialFolder = ".grid-partial";
    public const string PartSuffix = ".part";
    /// <summary>Added to a part file's name for its resume state.</summary>
    private const string StateExtension = ".json";

    public static TransferEngine Shared { get; } = new(new TransferOptions());

    private readonly BandwidthLimiter _bandwidth = new();
    private readonly ConcurrencyLimiter _requests;
    private readonly MemoryPool _memory;
    private TransferOptions _options;
    private long _requestsMade;

    public TransferEngine(TransferOptions options)
    {
        _options = options;
        _requests = new ConcurrencyLimiter(options.MaxConcurrency);
        _memory = new MemoryPool(options.MemoryBudget);
        _bandwidth.Rate = options.BandwidthLimit;
    }

    public TransferOptions Options => _options;

    /// <summary>The memory every transfer's file and part buffers are rented from, capped at <see cref="TransferOptions.MemoryBudget"/>.</summary>
    public MemoryPool Memory => _memory;

    /// <summary>Requests made through the engine, reads and writes (first attempts and retries); tests bound it.</summary>
    public long RequestsMade => Interlocked.Read(ref _requestsMade);

    /// <summary>Requests in flight now, across every call (tests bound it).</summary>
    public int RequestsInFlight => _requests.InFlight;

    /// <summary>Requests the server allows in flight now: the limit, or less while the server throttles.</summary>
    public int ConcurrencyWindow => _requests.Window;

    /// <summary>Times the server's throttling halved the window.</summary>
    public int ConcurrencyDecreases => _requests.Decreases;

    /// <summary>
    /// New limits. A new concurrency applies at once to requests not yet started; requests in flight
    /// finish and give their place back to the same count, so the cap never exceeds the new limit.
    /// A new memory budget is the same pool's new cap: buffers rented under the old one come back to it,
    /// and no new rent is granted until what is rented fits under the new one.
    /// </summary>
    public void Configure(TransferOptions options)
    {
        _requests.Limit = options.MaxConcurrency;
        _memory.Capacity = options.MemoryBudget; // the same pool: leases taken under the old cap come back to it
        _bandwidth.Rate = options.BandwidthLimit;
        _options = options;
    }

    /// <summary>
    /// Buffers for one transfer: <paramref name="blocks"/> blocks of the pool, one for each of its
    /// workers that reads or writes at once, at most <see cref="TransferOptions.PerFileMemory"/>'s worth
    /// and at most the pool's cap. Rented whole before the transfer takes any request place and held
    /// across its retries: memory first, then a request place, never the other way round, so no
    /// transfer holds a place while it waits for memory another holds while waiting for a place.
    /// </summary>
    private ValueTask<MemoryLease> BuffersAsync(int blocks, CancellationToken ct) =>
        _memory.RentAsync(Math.Clamp(blocks, 1, (int)Math.Max(1, _options.PerFileMemory / _memory.BlockSize)), ct);

    /// <summary>
    /// One request to a store, retried on transient failures: each attempt holds a place under the
    /// process-wide cap for as long as it runs (its body included), and tells the adaptive window
    /// whether the server took it or throttled it. The pauses between attempts are timed by <paramref name="clock"/>.
    /// </summary>
    private ValueTask<T> RequestAsync<T>(Func<CancellationToken, Task<T>> attempt, TimeProvider clock, CancellationToken ct) =>
        Retry.RunAsync(async c =>
        {
            using var place = await _requests.AcquireAsync(c).ConfigureAwait(false);
            Interlocked.Increment(ref _requestsMade);
            try
            {
                var result = await attempt(c).ConfigureAwait(false);
                if (_options.AdaptiveConcurrency) _requests.Succeeded();
                return result;
            }
            catch (GridException ex) when (ex.IsThrottling && _options.AdaptiveConcurrency)
            {
                _requests.Throttled();
                throw;
            }
        }, clock, ct);
}
