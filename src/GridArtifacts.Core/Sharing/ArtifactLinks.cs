using GridArtifacts.Core.Stores;
using GridArtifacts.Model;

namespace GridArtifacts.Core.Sharing;

/// <summary>
/// Expiring links to one artifact, the same way for New-GridArtifactLink and the artifacts page:
/// SigV4 presigned GETs on an S3 store; on a folder store, HMAC-signed links served by this
/// process's <see cref="ArtifactServer"/>.
/// </summary>
public static class ArtifactLinks
{
    public static readonly TimeSpan DefaultLifetime = TimeSpan.FromHours(24);

    /// <summary>
    /// The longest a link lives, on either store: seven days, as long as an S3 presigned URL can.
    /// A folder store's server refuses any link that expires later than this from now.
    /// </summary>
    public static readonly TimeSpan MaxLifetime = TimeSpan.FromDays(7);

    /// <summary>Refuses (InvalidExpiry) a lifetime that is not positive or is longer than <see cref="MaxLifetime"/>.</summary>
    public static void CheckLifetime(TimeSpan lifetime)
    {
        if (lifetime <= TimeSpan.Zero || lifetime > MaxLifetime)
        {
            throw new GridException(GridErrorKind.InvalidArgument, "InvalidExpiry",
                $"A link lives more than 0 seconds and at most 7 days (the longest an S3 presigned URL lives), on every store; {lifetime} was asked for.", lifetime);
        }
    }

    public static async Task<(Uri Url, DateTimeOffset ExpiresAt)> CreateAsync(IObjectStore store, string run, string experiment, string path, TimeSpan lifetime, Action<string> warn)
    {
        CheckLifetime(lifetime);
        var key = StoreLayout.ArtifactKey(run, experiment, path);
        switch (store)
        {
            case IPresignedLinks presigned:
                return await presigned.PresignGetAsync(key, lifetime, warn).ConfigureAwait(false);
            case ILocalFolder:
                var server = ArtifactServer.For(store.Location)
                    ?? throw new GridException(GridErrorKind.StoreUnavailable, "NoLinkServer",
                        $"Links to the folder store '{store.Location}' are served by this session: run Start-GridArtifactServer -Store '{store.Location}' first.",
                        GridNames.ExperimentId(run, experiment) + "/" + path);
                return server.Sign(run, experiment, path, lifetime);
            default:
                throw new GridException(GridErrorKind.InvalidArgument, "LinksUnsupported", $"Store '{store.Location}' cannot make links.", store.Location);
        }
    }
}

/// <summary>What the page may show of an artifact, by its name alone (never by sniffing its bytes).</summary>
public static class ArtifactKinds
{
    private static readonly Dictionary<string, string> Images = new(StringComparer.OrdinalIgnoreCase)
    {
        [".png"] = "image/png",
        [".jpg"] = "image/jpeg",
        [".jpeg"] = "image/jpeg",
        [".gif"] = "image/gif",
        [".svg"] = "image/svg+xml",
        [".webp"] = "image/webp",
    };

    private static readonly HashSet<string> Texts = new(StringComparer.OrdinalIgnoreCase)
    {
        ".txt", ".log", ".csv", ".tsv", ".json", ".jsonl", ".yaml", ".yml", ".md", ".out", ".err", ".ini", ".toml", ".cfg",
    };

    public static string? ImageContentType(string name) => Images.TryGetValue(Path.GetExtension(name), out var t) ? t : null;

    /// <summary>"image", "text" or "other".</summary>
    public static string Of(string name)
    {
        var ext = Path.GetExtension(name);
        return Images.ContainsKey(ext) ? "image" : Texts.Contains(ext) ? "text" : "other";
    }
}
