using Amazon.S3;
using Amazon.S3.Model;
using GridArtifacts.Core.Transfer;
using GridArtifacts.Model;

namespace GridArtifacts.Core.Stores;

/// <summary>The S3 store's writes of files: single PUTs and multipart uploads, and the sweep of abandoned ones.</summary>
public sealed partial class S3Store
{
    /// <summary>
    /// One PUT of the file (the engine sends large files in parts instead); returns the SHA-256 of
    /// what was sent. Sent directly (<see cref="S3Direct"/>), its body is read as <see cref="S3PutBody"/>
    /// says, its SHA-256 signed. Through the SDK, which reads
    /// the body twice, once to sign its SHA-256 and once to send it, the first read is hashed for the
    /// caller too (<see cref="HashingStream"/>), so the file is read for no third time.
    /// </summary>
    public async Task<string> PutFileAsync(string key, LocalFile file, CancellationToken cancellationToken)
    {
        if (PutsDirectly && _direct.Value is { } direct)
        {
            return await PutDirectlyAsync(direct, key, file, 0, file.Length, uploadId: null, 0, cancellationToken).ConfigureAwait(false);
        }
        using var body = new HashingStream(new BufferedStream(file.OpenRead(), 64 << 10));
        var request = PutRequest(key, body);
        await Send(() => _client.PutObjectAsync(request, cancellationToken), key).ConfigureAwait(false);
        // Read out of order (never seen from this SDK): hashed on its own.
        return body.Sha256 ?? await file.Sha256Async(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// A direct PUT of bytes <paramref name="offset"/> to <paramref name="offset"/> + <paramref name="length"/>
    /// of the file, whole object or part: returns their SHA-256 for a whole object, the ETag for a part.
    /// </summary>
    private async Task<string> PutDirectlyAsync(S3Direct direct, string key, LocalFile file, long offset, long length, string? uploadId, int partNumber, CancellationToken ct)
    {
        using var body = await S3PutBody.ReadAsync(file, offset, length, ct).ConfigureAwait(false);
        var tag = await Send(() => direct.PutAsync(key, body.Content, body.Sha256, uploadId, partNumber, ct), key).ConfigureAwait(false);
        return uploadId is null ? body.Sha256 : tag;
    }

    /// <summary>
    /// Starts a multipart upload. Its id is recorded in the store before any part is sent
    /// (<see cref="StoreLayout.UploadJournalKey"/>) and the record removed once the upload completes
    /// or is aborted, so an upload whose writer was killed is known and can be aborted later
    /// (<see cref="AbortAbandonedUploadsAsync"/>). An upload that cannot be recorded is aborted at once.
    /// </summary>
    public async Task<string> StartUploadAsync(string key, CancellationToken cancellationToken)
    {
        var init = await Send(() => _client.InitiateMultipartUploadAsync(
            new InitiateMultipartUploadRequest { BucketName = _location.Bucket, Key = FullKey(key) }, cancellationToken), key).ConfigureAwait(false);
        try
        {
            await PutAsync(StoreLayout.UploadJournalKey(key, init.UploadId),
                RecordJson.Serialize(new UploadJournalRecord { Key = key, UploadId = init.UploadId, Started = Clock.GetUtcNow() }), cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            await TryAbortAsync(key, init.UploadId).ConfigureAwait(false);
            throw;
        }
        return init.UploadId;
    }

    /// <summary>One part, read straight from the file: exact bytes, its payload signed (directly, <see cref="PutDirectlyAsync"/>, where the store can).</summary>
    public async Task<string> PutPartAsync(string key, string uploadId, int partNumber, LocalFile file, long offset, long length, CancellationToken cancellationToken)
    {
        if (PutsDirectly && _direct.Value is { } direct)
        {
            return await PutDirectlyAsync(direct, key, file, offset, length, uploadId, partNumber, cancellationToken).ConfigureAwait(false);
        }
        await using var part = file.OpenRead(offset, length);
        var response = await Send(() => _client.UploadPartAsync(new UploadPartRequest
        {
            BucketName = _location.Bucket,
            Key = FullKey(key),
            UploadId = uploadId,
            PartNumber = partNumber,
            InputStream = part,
            PartSize = length,
            UseChunkEncoding = false,
        }, cancellationToken), key).ConfigureAwait(false);
        return response.ETag;
    }

    public async Task CompleteUploadAsync(string key, string uploadId, IReadOnlyList<string> partTags, CancellationToken cancellationToken)
    {
        await Send(() => _client.CompleteMultipartUploadAsync(new CompleteMultipartUploadRequest
        {
            BucketName = _location.Bucket,
            Key = FullKey(key),
            UploadId = uploadId,
            PartETags = partTags.Select((tag, i) => new PartETag(i + 1, tag)).ToList(),
        }, cancellationToken), key).ConfigureAwait(false);
        // Completed: the record has done its work. If removing it fails, the next sweep finds the
        // upload already gone (NoSuchUpload) and removes the record then.
        try { await DeleteAsync(StoreLayout.UploadJournalKey(key, uploadId), CancellationToken.None).ConfigureAwait(false); } catch (GridException) { }
    }

    public async Task AbortUploadAsync(string key, string uploadId)
    {
        // An upload that cannot be aborted now keeps its record, and the experiment's next agent aborts it.
        if (await TryAbortAsync(key, uploadId).ConfigureAwait(false) is null)
        {
            try { await DeleteAsync(StoreLayout.UploadJournalKey(key, uploadId), CancellationToken.None).ConfigureAwait(false); } catch (GridException) { }
        }
    }

    /// <summary>Aborts one multipart upload; null when it is gone (aborted now, or already completed or aborted), else why not.</summary>
    private async Task<GridException?> TryAbortAsync(string key, string uploadId)
    {
        try
        {
            await Call(() => _client.AbortMultipartUploadAsync(new AbortMultipartUploadRequest
            {
                BucketName = _location.Bucket, Key = FullKey(key), UploadId = uploadId,
            }, CancellationToken.None), key).ConfigureAwait(false);
            return null;
        }
        catch (GridException ex) when (ex.InnerException is AmazonS3Exception { ErrorCode: "NoSuchUpload" })
        {
            return null;
        }
        catch (GridException ex)
        {
            return ex;
        }
    }

    /// <summary>
    /// Aborts every multipart upload recorded under <paramref name="journalPrefix"/> (uploads whose
    /// writer died before completing or aborting them) and removes their records. Only the one writer
    /// of those keys may call it (the experiment's agent, once it holds the experiment), since an
    /// upload still in flight would be aborted too. An upload the server will not abort keeps its
    /// record and is returned in <see cref="UploadSweep.NotAborted"/>.
    /// </summary>
    public async Task<UploadSweep> AbortAbandonedUploadsAsync(string journalPrefix, CancellationToken ct)
    {
        var aborted = new List<string>();
        var failed = new List<GridException>();
        var records = new List<string>();
        await foreach (var e in ListAsync(journalPrefix, recursive: true, ct).ConfigureAwait(false))
        {
            if (!e.IsPrefix && e.Key.EndsWith(".json", StringComparison.Ordinal)) records.Add(e.Key);
        }
        foreach (var recordKey in records)
        {
            var bytes = await TryReadAllBytesAsync(recordKey, ct).ConfigureAwait(false);
            if (bytes is null) continue;
            UploadJournalRecord record;
            try { record = RecordJson.Deserialize<UploadJournalRecord>(bytes, Display, recordKey); }
            catch (GridException ex) { failed.Add(ex); continue; }
            var why = await TryAbortAsync(record.Key, record.UploadId).ConfigureAwait(false);
            if (why is null)
            {
                await DeleteAsync(recordKey, ct).ConfigureAwait(false);
                aborted.Add(record.UploadId);
            }
            else
            {
                failed.Add(new GridException(why.Kind, "UploadNotAborted",
                    $"Store '{Display}': the unfinished multipart upload {record.UploadId} of '{record.Key}' (started {record.Started:u}) could not be aborted ({why.Message}). " +
                    "Its parts are not visible as an object; a bucket lifecycle rule (AbortIncompleteMultipartUpload) removes them, or the next run tries again.", record.Key, why));
            }
        }
        return new UploadSweep(aborted, failed);
    }
}
