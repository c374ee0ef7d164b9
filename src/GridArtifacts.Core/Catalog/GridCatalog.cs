using GridArtifacts.Core.Stores;
using GridArtifacts.Core.Transfer;
using GridArtifacts.Model;

namespace GridArtifacts.Core;

/// <summary>
/// Runs, experiments and artifacts on top of any <see cref="IObjectStore"/>: the store contract's
/// layout, records and status rules, written once for every store. The catalog is its parts, each
/// one job; it holds only what they share (the store, the clock, the engine, the Lost rule).
/// </summary>
public sealed class GridCatalog
{
    private readonly CatalogContext _context;

    public GridCatalog(IObjectStore store, TimeSpan? lostAfter = null, TimeProvider? clock = null)
    {
        _context = new CatalogContext(store, lostAfter ?? TimeSpan.FromMinutes(2), clock ?? TimeProvider.System);
        Manifests = new ManifestStore(_context);
        Runs = new RunReader(_context, Manifests);
        Artifacts = new ArtifactStore(_context, Runs, Manifests);
        Writer = new RecordWriter(_context, Runs);
        Claims = new ExperimentClaims(_context, Runs, Writer);
        Remover = new Remover(_context, Runs, Artifacts);
    }

    public IObjectStore Store => _context.Store;
    public string Location => _context.Location;
    /// <summary>An active experiment whose heartbeat is older than this reads as Lost.</summary>
    public TimeSpan LostAfter => _context.LostAfter;
    /// <summary>The one clock of this catalog and of what works on it: records' times, heartbeat ages, the claims' settle, the pauses between a request's attempts.</summary>
    public TimeProvider Clock => _context.Clock;

    /// <summary>What sends this catalog's files (artifacts, logs, manifests): the process's one engine, unless a test gives its own.</summary>
    public TransferEngine Engine { get => _context.Engine; init => _context.Engine = value; }

    /// <summary>How long a creator waits after writing its claim before it reads back the claims (or the record), on a store that cannot create exclusively, and a writer taking over a queued or Lost experiment before it reads its claim back.</summary>
    public TimeSpan ClaimSettle { get => _context.ClaimSettle; init => _context.ClaimSettle = value; }

    /// <summary>Runs and experiments as their records and index keys show them, their labels and logs.</summary>
    public RunReader Runs { get; }
    /// <summary>Experiments' manifests: read, merged, written, compacted, sealed.</summary>
    public ManifestStore Manifests { get; }
    /// <summary>Experiments' artifacts: listed with their hashes, opened, stored.</summary>
    public ArtifactStore Artifacts { get; }
    /// <summary>The writer of records, index keys, tags, stop requests and logs (claims and protection keys aside).</summary>
    public RecordWriter Writer { get; }
    /// <summary>Claiming an experiment for its one writer, and ending a queued one.</summary>
    public ExperimentClaims Claims { get; }
    /// <summary>Removal and protection: the only place anything is deleted.</summary>
    public Remover Remover { get; }

    /// <summary>Whether a per-item error names one of the run's records (its target is a key under the run's folder).</summary>
    public static bool Concerns(GridException error, string run) =>
        error.Target is string key && key.StartsWith(StoreLayout.RunPrefix(run), StringComparison.Ordinal);
}
