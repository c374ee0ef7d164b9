using GridArtifacts.Core.Stores;
using GridArtifacts.Core.Transfer;
using GridArtifacts.Model;

namespace GridArtifacts.Core;

/// <summary>What the catalog's parts share: one store, one clock, one engine, one rule for Lost, one way to create exclusively.</summary>
internal sealed class CatalogContext(IObjectStore store, TimeSpan lostAfter, TimeProvider clock)
{
    public IObjectStore Store { get; } = store;
    public string Location => Store.Location;
    public TimeSpan LostAfter { get; } = lostAfter;
    public TimeProvider Clock { get; } = clock;
    public TransferEngine Engine { get; set; } = TransferEngine.Shared;
    public ExclusiveCreate Create { get; } = new(store, clock);
    /// <summary>The wait between writing a claim and reading it back: exclusive create's claims, and a takeover's.</summary>
    public TimeSpan ClaimSettle { get => Create.Settle; set => Create.Settle = value; }
}

/// <summary>A part of the catalog: the shared context, and the reading rules every part applies the same way.</summary>
public abstract class CatalogPart
{
    private readonly CatalogContext _context;

    private protected CatalogPart(CatalogContext context) => _context = context;

    protected IObjectStore Store => _context.Store;
    protected string Location => _context.Location;
    protected TimeProvider Clock => _context.Clock;
    protected TimeSpan LostAfter => _context.LostAfter;
    protected TransferEngine Engine => _context.Engine;
    private protected ExclusiveCreate Create => _context.Create;
    protected TimeSpan ClaimSettle => _context.ClaimSettle;

    /// <summary>An object opened for streaming, or null when there is none.</summary>
    protected async Task<Stream?> TryOpenAsync(string key, CancellationToken ct)
    {
        try
        {
            return await Store.OpenReadAsync(key, ct).ConfigureAwait(false);
        }
        catch (GridException ex) when (ex.Cause == GridErrorCause.ObjectMissing)
        {
            return null;
        }
    }

    protected GridStatus EffectiveStatus(ExperimentRecord record) => EffectiveStatus(record.Status, record.Heartbeat);

    /// <summary>An experiment that says it is going but whose heartbeat is older than <see cref="LostAfter"/> is Lost.</summary>
    protected GridStatus EffectiveStatus(GridStatus status, DateTimeOffset? heartbeat)
    {
        if (status is GridStatus.Running or GridStatus.Syncing && heartbeat is { } beat
            && Clock.GetUtcNow() - beat > LostAfter)
        {
            return GridStatus.Lost;
        }
        return status;
    }

    protected GridException RunNotFound(string run) =>
        new(GridErrorKind.NotFound, "RunNotFound",
            $"No run named '{run}' in store '{Location}'. 'Get-GridRun' lists the runs there.", run);
}
