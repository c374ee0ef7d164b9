using System.Net;
using Amazon.S3;
using GridArtifacts.Core.Transfer;
using GridArtifacts.Model;

namespace GridArtifacts.Core.Stores;

/// <summary>The S3 store's conditional create: a PUT with If-None-Match, and whether the server honours it.</summary>
public sealed partial class S3Store
{
    /// <summary>Whether each server (endpoint and bucket) honours If-None-Match on PUT: asked once per process.</summary>
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, Lazy<Task<bool>>> ConditionalProbes = new(StringComparer.Ordinal);

    /// <summary>
    /// Whether this server refuses a PUT with <c>If-None-Match: *</c> when the key exists, as AWS S3
    /// does. Asked once per process and bucket: a probe object is written, written again with the
    /// condition (a server that honours it answers 412), and removed. A server that ignores the
    /// condition, or refuses the header, is not exclusive, and callers claim and read back instead.
    /// </summary>
    public ValueTask<bool> CreatesExclusivelyAsync(CancellationToken cancellationToken)
    {
        var probe = ConditionalProbes.GetOrAdd($"{EndpointText}/{_location.Bucket}/{_location.KeyPrefix}", _ => new Lazy<Task<bool>>(ProbeConditionalCreateAsync));
        return new ValueTask<bool>(probe.Value.WaitAsync(cancellationToken));
    }

    /// <summary>
    /// Whether the server honours <c>If-None-Match: *</c> on PUT: one probe key under the store's prefix
    /// for every process, created with the condition. Refused (412): it was there and the server
    /// honours the condition, in one request (every process after the first). Created: the first
    /// process, or a server that ignores the condition; a second conditional PUT tells which.
    /// The key stays (its bytes never matter; no reader lists <c>probes/</c>).
    /// </summary>
    private async Task<bool> ProbeConditionalCreateAsync()
    {
        try
        {
            return !await TryCreateAsync(ConditionalProbeKey, "probe"u8.ToArray(), CancellationToken.None).ConfigureAwait(false)
                || !await TryCreateAsync(ConditionalProbeKey, "probe"u8.ToArray(), CancellationToken.None).ConfigureAwait(false);
        }
        catch (GridException ex) when (ex.Kind == GridErrorKind.StoreUnavailable && !ex.IsTransient)
        {
            return false; // the header refused (501 NotImplemented, 400): not exclusive here
        }
    }

    /// <summary>The key <see cref="CreatesExclusivelyAsync"/> probes the server with.</summary>
    internal const string ConditionalProbeKey = "probes/conditional-create";

    public async Task<bool> TryCreateAsync(string key, ReadOnlyMemory<byte> content, CancellationToken cancellationToken)
    {
        // 409 ConditionalRequestConflict: another conditional write of the key was in flight; asked again, it is then 412 or done.
        try
        {
            return await Retry.OnCollisionAsync(async c =>
            {
                await PutBytesAsync(key, content, ifNoneMatch: "*", c).ConfigureAwait(false);
                return true;
            }, ex => ex is GridException { InnerException: AmazonS3Exception { StatusCode: HttpStatusCode.Conflict } }, Clock, cancellationToken).ConfigureAwait(false);
        }
        catch (GridException ex) when (ex.InnerException is AmazonS3Exception { StatusCode: HttpStatusCode.PreconditionFailed })
        {
            return false;
        }
    }
}
