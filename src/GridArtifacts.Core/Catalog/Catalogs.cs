using System.Collections.Concurrent;
using GridArtifacts.Core.Stores;

namespace GridArtifacts.Core;

/// <summary>The catalog of each store location, one per process, so clients and connections are reused across calls and runspaces.</summary>
public static class Catalogs
{
    /// <summary>Seconds without a heartbeat after which an active experiment reads as Lost (120 by default).</summary>
    public const string LostAfterVariable = "GRID_LOST_AFTER_SECONDS";

    private static readonly ConcurrentDictionary<string, GridCatalog> ByLocation = new(StringComparer.Ordinal);

    private static TimeSpan? LostAfter() =>
        double.TryParse(Environment.GetEnvironmentVariable(LostAfterVariable), System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var s) && s > 0
            ? TimeSpan.FromSeconds(s)
            : null;

    /// <summary>The catalog of <paramref name="location"/> (a folder, or s3://bucket/prefix), opened on first use.</summary>
    public static GridCatalog Open(string location) =>
        ByLocation.GetOrAdd(location, static loc =>
            new GridCatalog(StoreSettings.IsS3(loc) ? new S3Store(loc) : new FileSystemStore(loc), LostAfter()));
}
