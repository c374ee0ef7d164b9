using GridArtifacts.Model;
namespace GridArtifacts.Core.Stores;

/// <summary>
/// The body of a (ranged) read, with the version it came from. Disposing it releases the connection.
/// </summary>
public sealed class ObjectRead : IDisposable
{
    public ObjectRead(Stream body, long totalLength, string version)
    {
        Body = body;
        TotalLength = totalLength;
        Version = version;
    }

    public Stream Body { get; }
    /// <summary>The whole object's length, whatever range was asked for.</summary>
    public long TotalLength { get; }
    /// <summary>An opaque version (the ETag in S3): ranges read with it as <c>ifVersion</c> all come from one version.</summary>
    public string Version { get; }
    public void Dispose() => Body.Dispose();
}

/// <summary>An object (or a common prefix, for a listing that does not recurse) in a store.</summary>
public sealed record ObjectEntry(string Key, long Size, DateTimeOffset LastModified, bool IsPrefix = false);

/// <summary>
/// The few operations the store contract needs from a place that holds bytes by key: a folder or a
/// bucket. Keys are forward-slash paths relative to the store's root. Everything about runs,
/// experiments and manifests is built once on top of this (<see cref="GridCatalog"/>), so a second
/// store implements only these and passes the same contract suite.
/// </summary>
public interface IObjectStore : IDisposable
{
    /// <summary>The store's location as a user writes it: a folder path or <c>s3://bucket/prefix</c>.</summary>
    string Location { get; }

    /// <summary>
    /// Entries whose key starts with <paramref name="prefix"/>, in ordinal key order. When
    /// <paramref name="recursive"/> is false, deeper keys are folded into one prefix entry each
    /// (key ending in '/'), as an S3 listing with a '/' delimiter does.
    /// </summary>
    IAsyncEnumerable<ObjectEntry> ListAsync(string prefix, bool recursive, CancellationToken cancellationToken);

    /// <summary>
    /// A record, whole, or null when there is none. Never more than <see cref="StoreLayout.MaxRecordBytes"/>
    /// is read or held: a longer object is a DamagedRecord <see cref="GridException"/> naming its key
    /// (<see cref="RecordJson.ReadBoundedAsync"/>). Not for artifacts, logs or manifests: those are streamed.
    /// </summary>
    Task<byte[]?> TryReadAllBytesAsync(string key, CancellationToken cancellationToken);

    /// <summary>
    /// The longest key this store holds, in UTF-8 bytes, as keys are given here (relative to the
    /// store's root): S3 allows 1,024 for the whole key, so less the store's own prefix; a folder, what
    /// its file system allows of a path, less the root's. <see cref="ArtifactStore.ArtifactPathProblem"/> asks it.
    /// </summary>
    int MaxKeyBytes { get; }

    /// <summary>The longest part of a key between two slashes, in UTF-8 bytes: a folder's file-name limit; in S3 the key's own.</summary>
    int MaxKeyPartBytes { get; }

    /// <summary>Opens an object for reading; a missing key is a NotFound <see cref="GridException"/>.</summary>
    Task<Stream> OpenReadAsync(string key, CancellationToken cancellationToken);

    /// <summary>
    /// Reads <paramref name="length"/> bytes from <paramref name="offset"/> (a length of 0: to the end). With <paramref name="ifVersion"/>,
    /// an object that has changed since is an IntegrityFailure ("ObjectChanged"), never a mix of versions.
    /// Not retried here: the caller retries the request and the body together.
    /// </summary>
    Task<ObjectRead> ReadRangeAsync(string key, long offset, long length, string? ifVersion, CancellationToken cancellationToken);

    /// <summary>Writes an object atomically: a reader sees the old object or the whole new one, never part.</summary>
    Task PutAsync(string key, ReadOnlyMemory<byte> content, CancellationToken cancellationToken);

    /// <summary>
    /// Writes a local file as an object atomically, streaming it from disk, in one request, and
    /// returns the SHA-256 (lower-case hex) of the bytes it sent, taken as they were read: the file is
    /// read once for both, and no further than its length when opened (<see cref="LocalFile"/>). Not retried here: the transfer engine sends files
    /// (<see cref="Transfer.TransferEngine.UploadFileAsync"/>), retries them, and splits large ones
    /// into parts where the store takes parts (<see cref="IMultipartUploads"/>).
    /// </summary>
    Task<string> PutFileAsync(string key, LocalFile file, CancellationToken cancellationToken);

    /// <summary>Deletes an object; deleting a missing key is not an error.</summary>
    Task DeleteAsync(string key, CancellationToken cancellationToken);

    /// <summary>Deletes many objects (S3: in batches of 1,000); missing keys are not an error.</summary>
    Task DeleteManyAsync(IReadOnlyList<string> keys, CancellationToken cancellationToken);
}

/// <summary>
/// An optional store ability: creating an object only if its key is free, atomically, so that of
/// two writers at one moment exactly one succeeds. The folder store does it with a link that fails
/// when the name exists; S3 with <c>If-None-Match: *</c> on PUT, which AWS S3 honours and some
/// S3-compatible servers ignore: <see cref="CreatesExclusivelyAsync"/> says which (docs/s3-compatibility.md).
/// </summary>
public interface IConditionalCreate
{
    /// <summary>Whether <see cref="TryCreateAsync"/> is exclusive on this store (asked of the server once per process).</summary>
    ValueTask<bool> CreatesExclusivelyAsync(CancellationToken cancellationToken);

    /// <summary>Writes the object if no object has its key: true when this call created it, false when the key was taken.</summary>
    Task<bool> TryCreateAsync(string key, ReadOnlyMemory<byte> content, CancellationToken cancellationToken);
}

/// <summary>
/// Called once per name of a listing: the part of the key after the prefix's last '/', and whether
/// it is a folder (deeper keys folded into one, as a '/' delimiter folds them). The name is only
/// valid during the call.
/// </summary>
public delegate void NameVisitor(ReadOnlySpan<char> name, bool isFolder);

/// <summary>
/// An optional store ability: the names one level under a prefix, without their size or time, in no
/// particular order and handed over in place (no string per name), where the store pays for what
/// <see cref="IObjectStore.ListAsync"/> adds: a folder store asks each file its size and time, makes
/// a key of each name, and sorts. Stores without it are listed with ListAsync
/// (<see cref="ObjectStoreNames.VisitNamesAsync"/>).
/// </summary>
public interface INameListing
{
    Task VisitNamesAsync(string prefix, NameVisitor visit, CancellationToken cancellationToken);
}

/// <summary>
/// An optional store ability: every object under a prefix, at any depth, in no particular order,
/// each handed over as it is met and not kept, where <see cref="IObjectStore.ListAsync"/> has to hold
/// them all to sort them (a folder store). Stores without it are walked with ListAsync, which
/// streams (<see cref="ObjectStoreNames.VisitObjectsAsync"/>). The objects of one folder (a run's)
/// come one after another either way.
/// </summary>
public interface IObjectWalk
{
    Task VisitObjectsAsync(string prefix, Action<ObjectEntry> visit, CancellationToken cancellationToken);
}

public static class ObjectStoreNames
{
    /// <summary>Calls <paramref name="visit"/> for each object under <paramref name="prefix"/>, at any depth: the store's own walk where it has one.</summary>
    public static async Task VisitObjectsAsync(this IObjectStore store, string prefix, Action<ObjectEntry> visit, CancellationToken cancellationToken)
    {
        if (store is IObjectWalk walk)
        {
            await walk.VisitObjectsAsync(prefix, visit, cancellationToken).ConfigureAwait(false);
            return;
        }
        await foreach (var e in store.ListAsync(prefix, recursive: true, cancellationToken).ConfigureAwait(false))
            if (!e.IsPrefix) visit(e);
    }

    /// <summary>
    /// Calls <paramref name="visit"/> for each name one level under <paramref name="prefix"/> (the
    /// part after its last '/'), in no particular order: the store's own name listing where it has one.
    /// </summary>
    public static async Task VisitNamesAsync(this IObjectStore store, string prefix, NameVisitor visit, CancellationToken cancellationToken)
    {
        if (store is INameListing names)
        {
            await names.VisitNamesAsync(prefix, visit, cancellationToken).ConfigureAwait(false);
            return;
        }
        var start = prefix.LastIndexOf('/') + 1;
        await foreach (var e in store.ListAsync(prefix, recursive: false, cancellationToken).ConfigureAwait(false))
            visit(e.IsPrefix ? e.Key.AsSpan(start, e.Key.Length - start - 1) : e.Key.AsSpan(start), e.IsPrefix);
    }
}

/// <summary>An optional store ability: links anyone can fetch until they expire, signed by the store's own credentials (S3 presigned GETs).</summary>
public interface IPresignedLinks
{
    /// <summary>
    /// A GET link to <paramref name="key"/> valid for <paramref name="lifetime"/> and the moment it
    /// stops working (earlier than asked when the signing credentials expire first, which
    /// <paramref name="shortened"/> is told).
    /// </summary>
    Task<(Uri Url, DateTimeOffset ExpiresAt)> PresignGetAsync(string key, TimeSpan lifetime, Action<string> shortened);
}

/// <summary>What a sweep of abandoned multipart uploads did: the upload ids aborted, and why the others were not.</summary>
public sealed record UploadSweep(IReadOnlyList<string> Aborted, IReadOnlyList<GridException> NotAborted)
{
    public static UploadSweep None { get; } = new(Array.Empty<string>(), Array.Empty<GridException>());
}

/// <summary>
/// An optional store ability: uploads in parts that a killed writer can leave unfinished (S3
/// multipart), recorded under a journal prefix so the next writer can abort them.
/// </summary>
public interface IAbandonedUploads
{
    /// <summary>Aborts the uploads recorded under <paramref name="journalPrefix"/> and removes their records.</summary>
    Task<UploadSweep> AbortAbandonedUploadsAsync(string journalPrefix, CancellationToken ct);
}

/// <summary>
/// An optional store ability: one object written as parts sent side by side (S3 multipart). The
/// object appears only when the upload completes. The transfer engine decides the part size and how
/// many parts are in flight, sends each part as one request under its limits, and retries it; the
/// store says only what its protocol allows. An upload is recorded in the store from its start to its
/// end, so one whose writer was killed is found and aborted later (<see cref="IAbandonedUploads"/>).
/// </summary>
public interface IMultipartUploads
{
    /// <summary>The smallest part the store takes (every part but the last).</summary>
    long MinPartSize { get; }

    /// <summary>The most parts one object may have.</summary>
    int MaxParts { get; }

    /// <summary>Starts an upload of <paramref name="key"/> and records it; returns its id. One attempt: the caller retries.</summary>
    Task<string> StartUploadAsync(string key, CancellationToken cancellationToken);

    /// <summary>
    /// Sends bytes <paramref name="offset"/> to <paramref name="offset"/> + <paramref name="length"/> of
    /// the file as part <paramref name="partNumber"/> (from 1); returns the part's tag. One attempt: the caller retries.
    /// </summary>
    Task<string> PutPartAsync(string key, string uploadId, int partNumber, LocalFile file, long offset, long length, CancellationToken cancellationToken);

    /// <summary>Makes the object of the parts, whose tags are given in part order, and removes the upload's record. One attempt: the caller retries.</summary>
    Task CompleteUploadAsync(string key, string uploadId, IReadOnlyList<string> partTags, CancellationToken cancellationToken);

    /// <summary>
    /// Aborts an upload that failed and removes its record; an upload the server will not abort now
    /// keeps its record, for the experiment's next writer to abort. Never throws: the failure that
    /// led here is what the caller reports.
    /// </summary>
    Task AbortUploadAsync(string key, string uploadId);
}

/// <summary>
/// A store that is a folder on this machine (the folder store): its links are served by this
/// process's artifact server with a secret kept in the folder, and the folder is never imported or
/// captured into itself.
/// </summary>
public interface ILocalFolder
{
    /// <summary>The folder's full path.</summary>
    string Root { get; }
}
