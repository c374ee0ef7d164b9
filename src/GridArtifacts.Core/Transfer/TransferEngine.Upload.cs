using GridArtifacts.Core.Stores;
using GridArtifacts.Model;

namespace GridArtifacts.Core.Transfer;

public sealed partial class TransferEngine
{
    /// <summary>
    /// Uploads a local file to <paramref name="key"/>, every request under the process-wide limits:
    /// requests in flight (adaptive), bandwidth, and the memory pool. A file larger than
    /// <see cref="TransferOptions.RangedThreshold"/> goes up in parts of <see cref="TransferOptions.PartSize"/>
    /// (larger where the store allows fewer parts), <see cref="TransferOptions.PartsPerFile"/> at once,
    /// where the store takes parts; anything else in one request. Each request is retried on its own,
    /// and a failed multipart upload is aborted. Returns the SHA-256 of what was sent: taken by the
    /// store as it read the file for a single request, and beside the parts for a multipart upload.
    /// The pauses between a request's attempts are timed by <paramref name="clock"/> (the caller's: a catalog's <see cref="GridCatalog.Clock"/>).
    /// </summary>
    public async Task<string> UploadFileAsync(IObjectStore store, string key, string localPath, TimeProvider clock, CancellationToken ct)
    {
        using var file = LocalFile.Open(localPath);
        return await UploadFileAsync(store, key, file, clock, ct).ConfigureAwait(false);
    }

    /// <inheritdoc cref="UploadFileAsync(IObjectStore, string, string, TimeProvider, CancellationToken)"/>
    /// <remarks>
    /// Exactly <see cref="LocalFile.Length"/> bytes of the open file are sent. The store reads it
    /// through blocks of the memory pool (<see cref="LocalFile.ReadingThrough"/>): one for a single
    /// request; for a multipart upload, one for each part in flight and one for the hash beside them.
    /// </remarks>
    public async Task<string> UploadFileAsync(IObjectStore store, string key, LocalFile file, TimeProvider clock, CancellationToken ct)
    {
        var length = file.Length;
        if (length <= _options.RangedThreshold || store is not IMultipartUploads multipart)
        {
            using var buffer = await BuffersAsync(1, ct).ConfigureAwait(false);
            var sent = file.ReadingThrough(buffer);
            return await RequestAsync(async c =>
            {
                await _bandwidth.ConsumeAsync(length, c).ConfigureAwait(false);
                return await store.PutFileAsync(key, sent, c).ConfigureAwait(false);
            }, clock, ct).ConfigureAwait(false);
        }
        var partSize = Math.Max(Math.Max(_options.PartSize, multipart.MinPartSize), (length + multipart.MaxParts - 1) / multipart.MaxParts);
        var parts = (int)((length + partSize - 1) / partSize);
        using var buffers = await BuffersAsync(Math.Clamp(_options.PartsPerFile, 1, parts) + 1, ct).ConfigureAwait(false);
        var leased = file.ReadingThrough(buffers);
        // Hashing and the parts read the same file at once (the second read comes from the page cache).
        var hash = leased.Sha256Async(ct);
        try
        {
            await UploadPartsAsync(multipart, key, leased, partSize, parts, Math.Max(1, buffers.Count - 1), clock, ct).ConfigureAwait(false);
        }
        finally
        {
            await hash.ContinueWith(static _ => { }, TaskScheduler.Default).ConfigureAwait(false); // never leave the hash reading a file behind
        }
        return await hash.ConfigureAwait(false);
    }

    private async Task UploadPartsAsync(IMultipartUploads store, string key, LocalFile file, long partSize, int parts, int parallel, TimeProvider clock, CancellationToken ct)
    {
        var length = file.Length;
        var uploadId = await RequestAsync(c => store.StartUploadAsync(key, c), clock, ct).ConfigureAwait(false);
        try
        {
            var tags = new string[parts];
            await Parallel.ForEachAsync(Enumerable.Range(0, parts), new ParallelOptions { MaxDegreeOfParallelism = parallel, CancellationToken = ct }, async (i, c) =>
            {
                var offset = i * partSize;
                var size = Math.Min(partSize, length - offset);
                tags[i] = await RequestAsync(async c2 =>
                {
                    await _bandwidth.ConsumeAsync(size, c2).ConfigureAwait(false);
                    return await store.PutPartAsync(key, uploadId, i + 1, file, offset, size, c2).ConfigureAwait(false);
                }, clock, c).ConfigureAwait(false);
            }).ConfigureAwait(false);
            await RequestAsync(async c => { await store.CompleteUploadAsync(key, uploadId, tags, c).ConfigureAwait(false); return true; }, clock, ct).ConfigureAwait(false);
        }
        catch
        {
            await store.AbortUploadAsync(key, uploadId).ConfigureAwait(false);
            throw;
        }
    }
}
