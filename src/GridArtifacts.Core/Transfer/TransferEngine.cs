using System.Buffers;
using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using GridArtifacts.Core.Stores;
using GridArtifacts.Model;
using Microsoft.Win32.SafeHandles;

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
/// (requests in flight, bandwidth, memory for large files) hold across concurrent calls; each call
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
public sealed class TransferEngine
{
    public const string PartialFolder = ".grid-partial";
    public const string PartSuffix = ".part";
    /// <summary>Added to a part file's name for its resume state.</summary>
    private const string StateExtension = ".json";

    public static TransferEngine Shared { get; } = new(new TransferOptions());

    private readonly BandwidthLimiter _bandwidth = new();
    private readonly ConcurrencyLimiter _requests;
    private MemoryBudget _memory;
    private TransferOptions _options;
    private long _requestsMade;

    public TransferEngine(TransferOptions options)
    {
        _options = options;
        _requests = new ConcurrencyLimiter(options.MaxConcurrency);
        _memory = new MemoryBudget(options.MemoryBudget);
        _bandwidth.Rate = options.BandwidthLimit;
    }

    public TransferOptions Options => _options;

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
    /// </summary>
    public void Configure(TransferOptions options)
    {
        _requests.Limit = options.MaxConcurrency;
        if (options.MemoryBudget != _options.MemoryBudget) _memory = new MemoryBudget(options.MemoryBudget);
        _bandwidth.Rate = options.BandwidthLimit;
        _options = options;
    }

    /// <summary>Downloads a batch; each result or error is reported as it happens, one per artifact.</summary>
    public async Task DownloadAsync(IReadOnlyList<SaveItem> items, Func<string, GridCatalog> openStore, bool force, int throttleLimit,
        TransferProgress progress, Action<GridSaveResult> onDone, Action<GridException> onError, CancellationToken ct)
    {
        // Large files first, so they overlap with the many small ones instead of trailing at the end.
        var ordered = items.OrderByDescending(i => i.Artifact.Size).ToList();
        var folders = new SaveFolders();
        try
        {
            await Parallel.ForEachAsync(ordered,
                new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, throttleLimit), CancellationToken = ct },
                async (item, c) =>
                {
                    GridSaveAction? action = null;
                    try
                    {
                        var source = openStore(item.Artifact.Store);
                        var result = await SaveOneAsync(item, source.Store, source.Clock, force, folders, progress, c).ConfigureAwait(false);
                        action = result.Action;
                        onDone(result);
                    }
                    catch (GridException ex)
                    {
                        onError(ex);
                    }
                    catch (IOException ex)
                    {
                        onError(LocalWriteError(item, ex));
                    }
                    catch (UnauthorizedAccessException ex)
                    {
                        onError(new GridException(GridErrorKind.AccessDenied, "SaveAccessDenied", $"Could not write '{item.LocalPath}': {ex.Message}", item.Artifact, ex));
                    }
                    finally
                    {
                        progress.FileDone(action);
                    }
                }).ConfigureAwait(false);
        }
        finally
        {
            folders.RemoveEmptyPartialFolders();
        }
    }

    /// <summary>What a batch would do: files to fetch with their bytes, and files already up to date.</summary>
    public static async Task<(int Fetch, long FetchBytes, int UpToDate)> PlanAsync(IReadOnlyList<SaveItem> items, bool force, CancellationToken ct)
    {
        int fetch = 0, same = 0;
        long bytes = 0;
        foreach (var item in items)
        {
            if (!force && await IsUpToDateAsync(item, ct).ConfigureAwait(false)) same++;
            else { fetch++; bytes += item.Artifact.Size; }
        }
        return (fetch, bytes, same);
    }

    private static async Task<bool> IsUpToDateAsync(SaveItem item, CancellationToken ct)
    {
        var a = item.Artifact;
        for (var attempt = 0; ; attempt++)
        {
            var info = new FileInfo(item.LocalPath);
            // A link is never a saved file, whatever it points to: the save replaces it (the link, not its target).
            if (a.Sha256 is null || !info.Exists || IsLink(info) || info.Length != a.Size) return false;
            try
            {
                return await LocalFile.Sha256Async(item.LocalPath, ct).ConfigureAwait(false) == a.Sha256;
            }
            catch (IOException ex) when (IsLockedByAnother(ex) && attempt < LockedDestinationPolls)
            {
                // Another call has just renamed its part file into place and still holds its lock
                // for the moment it takes to close it: wait for it rather than fail.
                await Task.Delay(PartLockPoll / 4, ct).ConfigureAwait(false);
            }
            catch (FileNotFoundException)
            {
                return false; // replaced or removed between the look and the open
            }
        }
    }

    /// <summary>How many times a destination held by another call is waited for (50 ms each) before the lock is reported.</summary>
    private const int LockedDestinationPolls = 200;

    private async Task<GridSaveResult> SaveOneAsync(SaveItem item, IObjectStore store, TimeProvider clock, bool force, SaveFolders folders, TransferProgress progress, CancellationToken ct)
    {
        var artifact = item.Artifact;
        var root = RootOf(item);
        folders.Prepare(item, root); // before any look at the file: a linked folder on the way is refused, never read through
        var existed = new FileInfo(item.LocalPath).Exists; // a link too, even one to nothing
        if (existed && !force && await IsUpToDateAsync(item, ct).ConfigureAwait(false)) return Skipped(item, progress);

        var part = PartPathOf(item, root);
        var ranged = artifact.Size > _options.RangedThreshold;
        // One writer per destination file, across calls and processes: whoever holds the part file's
        // exclusive lock. Another call saving the same file is waited for, and what it saved is kept.
        (SafeFileHandle Handle, bool Created)? opened;
        while ((opened = OpenPart(item, root, part, folders, ranged ? artifact.Size : 0, asynchronous: ranged)) is null)
        {
            await Task.Delay(PartLockPoll, ct).ConfigureAwait(false);
            if (!force && await IsUpToDateAsync(item, ct).ConfigureAwait(false)) return Skipped(item, progress);
        }
        var (handle, created) = opened.Value;
        var statePath = part + StateExtension;
        var key = StoreLayout.ArtifactKey(artifact.Run, artifact.Experiment, artifact.Path);
        var keep = false;
        var moved = false;
        try
        {
            string sha;
            if (ranged)
            {
                keep = true; // an interrupted ranged download resumes from its .part and .part.json
                sha = await DownloadRangedAsync(store, clock, key, artifact, handle, statePath, resumable: !created, progress, ct).ConfigureAwait(false);
            }
            else
            {
                sha = await DownloadWholeAsync(store, clock, key, artifact, handle, progress, ct).ConfigureAwait(false);
            }
            if (artifact.Sha256 is not null && sha != artifact.Sha256)
            {
                keep = false;
                throw new GridException(GridErrorKind.IntegrityFailure, "HashMismatch",
                    $"'{artifact}' arrived with SHA-256 {sha} but the store recorded {artifact.Sha256}; nothing was written to '{item.LocalPath}'.", artifact);
            }
            File.SetLastWriteTimeUtc(handle, artifact.LastModified.UtcDateTime); // through the handle: no path lookup
            keep = false;
            if (ranged) File.Delete(statePath);
            // The artifact's own path is the one name a save replaces. A link there is removed first, so
            // the file takes its place and nothing is written where it pointed (a move to another file
            // system copies, and a copy would open the link).
            if (IsLink(new FileInfo(item.LocalPath))) File.Delete(item.LocalPath);
            // Renamed while still locked, so no other call starts on this part file in between.
            File.Move(part, item.LocalPath, overwrite: true);
            moved = true;
            return new GridSaveResult(artifact, item.LocalPath, existed ? GridSaveAction.Overwritten : GridSaveAction.Downloaded) { Sha256 = sha };
        }
        catch (GridException ex) when (ex.Kind is GridErrorKind.IntegrityFailure or GridErrorKind.NotFound)
        {
            keep = false; // a changed or missing object: what is on disk is of no use
            throw;
        }
        catch (IOException ex) when (FileSystemStore.IsDiskFull(ex))
        {
            keep = false; // a full disk: a part file kept would only hold the space
            throw;
        }
        finally
        {
            // Removed while still locked, and never after the rename: by then the name may be another call's part file.
            if (!keep && !moved)
            {
                File.Delete(part);
                File.Delete(statePath);
            }
            handle.Dispose();
        }
    }

    /// <summary>How often a call waits on another call's part file.</summary>
    private static readonly TimeSpan PartLockPoll = TimeSpan.FromMilliseconds(200);

    private static GridSaveResult Skipped(SaveItem item, TransferProgress progress)
    {
        progress.AddBytes(item.Artifact.Size);
        return new GridSaveResult(item.Artifact, item.LocalPath, GridSaveAction.Skipped) { Sha256 = item.Artifact.Sha256 };
    }

    /// <summary>The destination folder an item was planned under: its <see cref="SaveItem.Root"/> when the path lies below it, else the path's own folder.</summary>
    private static string RootOf(SaveItem item)
    {
        var folder = Path.GetDirectoryName(item.LocalPath)!;
        if (item.Root is null) return folder;
        var root = Path.TrimEndingDirectorySeparator(Path.GetFullPath(item.Root));
        var relative = Path.GetRelativePath(root, folder);
        return relative == ".." || relative.StartsWith(".." + Path.DirectorySeparatorChar, StringComparison.Ordinal) || Path.IsPathRooted(relative) ? folder : root;
    }

    /// <summary>
    /// An item's part file: <c>&lt;root&gt;/.grid-partial/&lt;hash&gt;.part</c>, named by the SHA-256 of the item's path
    /// below its root (case-folded where file names are), so each destination file has one part file,
    /// whatever its name's length, that no artifact or file of the user's can be.
    /// </summary>
    internal static string PartPathOf(SaveItem item) => PartPathOf(item, RootOf(item));

    /// <summary>Where a ranged download of an item records its finished ranges: beside its part file.</summary>
    internal static string StatePathOf(SaveItem item) => PartPathOf(item) + StateExtension;

    private static string PartPathOf(SaveItem item, string root)
    {
        var relative = Path.GetRelativePath(root, item.LocalPath);
        if (!OperatingSystem.IsLinux()) relative = relative.ToUpperInvariant();
        var hash = SHA256.HashData(Encoding.UTF8.GetBytes(relative));
        return Path.Combine(root, PartialFolder, Convert.ToHexString(hash, 0, 16).ToLowerInvariant() + PartSuffix);
    }

    /// <summary>
    /// The part file, opened for this call alone (an exclusive lock, which other processes see too),
    /// or null while another call holds it; and whether this call created it. A new part file is
    /// created exclusively (O_CREAT|O_EXCL, which opens nothing through a link at its name) and, for a
    /// ranged download, preallocated, so a disk too small fails at once. One that an earlier call
    /// left is opened only when it is not a link: a ranged download resumes from it.
    /// </summary>
    private static (SafeFileHandle Handle, bool Created)? OpenPart(SaveItem item, string root, string part, SaveFolders folders, long preallocate, bool asynchronous)
    {
        // Windows: FileShare.Delete still keeps every other opener out, and lets the file be renamed while open.
        var share = OperatingSystem.IsWindows() ? FileShare.Delete : FileShare.None;
        // A whole object is written as it arrives, a buffer at a time, from the task that reads it:
        // a synchronous handle writes in place, where an asynchronous one would send every write
        // through the thread pool.
        var options = asynchronous ? FileOptions.Asynchronous : FileOptions.None;
        folders.PreparePartial(item, root, again: false);
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return (File.OpenHandle(part, FileMode.CreateNew, FileAccess.ReadWrite, share, options, preallocate), true);
            }
            catch (IOException ex) when (IsLockedByAnother(ex))
            {
                return null;
            }
            catch (IOException ex) when ((ex is DirectoryNotFoundException or FileNotFoundException) && attempt < OpenAttempts)
            {
                // Another call ended and removed the folder, empty, in between: make it again.
                folders.PreparePartial(item, root, again: true);
                continue;
            }
            catch (IOException ex) when (!FileSystemStore.IsDiskFull(ex) && new FileInfo(part).Exists)
            {
                // There already: left by an earlier call, or another call's now. Opened below.
            }
            catch (IOException ex) when (preallocate > 0 && !FileSystemStore.IsDiskFull(ex) && FreeSpace(part) is { } free && free < preallocate)
            {
                // .NET reports a failed preallocation without its errno: say what it was, so it reads as a full disk.
                throw new IOException(ex.Message, 28 /* ENOSPC */);
            }
            if (IsLink(new FileInfo(part)))
            {
                throw new GridException(GridErrorKind.UnsafePath, "LinkedPartFile",
                    $"'{item.Artifact}' was not saved: its temporary file '{part}' is a link, and a save writes through no link. Nothing was written through it; remove it and save again.", item.Artifact);
            }
            try
            {
                return (File.OpenHandle(part, FileMode.Open, FileAccess.ReadWrite, share, options), false);
            }
            catch (IOException ex) when (IsLockedByAnother(ex))
            {
                return null;
            }
            catch (IOException ex) when ((ex is FileNotFoundException or DirectoryNotFoundException) && attempt < OpenAttempts)
            {
                // Renamed into place by the call that held it (which may then have removed the empty
                // folder): create it anew.
                folders.PreparePartial(item, root, again: true);
            }
        }
    }

    /// <summary>How many times a part file that comes and goes under other calls is tried before the error stands.</summary>
    private const int OpenAttempts = 5;

    private static bool IsLink(FileSystemInfo info) =>
        (info.Attributes & FileAttributes.ReparsePoint) != 0 && info.LinkTarget is not null;

    private static GridException LinkedFolder(SaveItem item, string folder) =>
        new(GridErrorKind.UnsafePath, "LinkedFolder",
            $"'{item.Artifact}' was not saved: '{folder}' is a link, and a save follows no link below its destination. Nothing was written through it; " +
            "remove the link, or save to another -Destination.", item.Artifact);

    /// <summary>
    /// The folders one call has checked below its destinations, so each is looked at once per call
    /// rather than once per file: each is made by the call or found a real folder, and a link there
    /// is refused, never followed. Also the destinations' .grid-partial folders the call used, which
    /// it removes at its end when they are empty.
    /// </summary>
    private sealed class SaveFolders
    {
        private readonly ConcurrentDictionary<string, bool> _checked = new(OperatingSystem.IsLinux() ? StringComparer.Ordinal : StringComparer.OrdinalIgnoreCase);
        private readonly ConcurrentDictionary<string, bool> _partial = new(OperatingSystem.IsLinux() ? StringComparer.Ordinal : StringComparer.OrdinalIgnoreCase);

        /// <summary>Makes or checks each folder from the root (the caller's, which may itself be a link) down to the item's.</summary>
        public void Prepare(SaveItem item, string root)
        {
            var folder = Path.GetDirectoryName(item.LocalPath)!;
            if (_checked.ContainsKey(folder)) return;
            Directory.CreateDirectory(root);
            var relative = Path.GetRelativePath(root, folder);
            if (relative != ".")
            {
                var current = root;
                foreach (var name in relative.Split(Path.DirectorySeparatorChar))
                {
                    current = Path.Combine(current, name);
                    if (_checked.ContainsKey(current)) continue;
                    CheckFolder(item, current);
                    _checked.TryAdd(current, true);
                }
            }
            _checked.TryAdd(folder, true);
        }

        /// <summary>Makes or checks the root's .grid-partial folder: once per call, or <paramref name="again"/> after another call removed it.</summary>
        public void PreparePartial(SaveItem item, string root, bool again)
        {
            var partial = Path.Combine(root, PartialFolder);
            if (!again && _partial.ContainsKey(partial)) return;
            Directory.CreateDirectory(root);
            CheckFolder(item, partial);
            _partial.TryAdd(partial, true);
        }

        /// <summary>Removes the .grid-partial folders this call used that are empty; the state of unfinished downloads stays.</summary>
        public void RemoveEmptyPartialFolders()
        {
            foreach (var partial in _partial.Keys)
            {
                try
                {
                    if ((File.GetAttributes(partial) & FileAttributes.ReparsePoint) == 0) Directory.Delete(partial, recursive: false);
                }
                catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
                {
                    // Not empty (a download to resume, or another call's now), or gone already.
                }
            }
        }

        private static void CheckFolder(SaveItem item, string path)
        {
            FileAttributes attributes;
            try
            {
                attributes = File.GetAttributes(path); // the entry itself: a link is not followed
            }
            catch (IOException ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
            {
                Directory.CreateDirectory(path); // one folder: the one above it is checked
                attributes = File.GetAttributes(path);
            }
            if ((attributes & FileAttributes.ReparsePoint) != 0) throw LinkedFolder(item, path);
            if ((attributes & FileAttributes.Directory) == 0) throw new IOException($"'{path}' is a file where the save needs a folder.");
        }
    }

    private static long? FreeSpace(string path)
    {
        try { return new DriveInfo(Path.GetDirectoryName(Path.GetFullPath(path))!).AvailableFreeSpace; }
        catch (Exception ex) when (ex is IOException or ArgumentException or UnauthorizedAccessException) { return null; }
    }

    private static bool IsLockedByAnother(IOException ex) =>
        OperatingSystem.IsWindows() ? (ex.HResult & 0xFFFF) is 32 or 33 : ex.HResult is 11; // sharing violation / EWOULDBLOCK

    /// <summary>
    /// The SHA-256 of a ranged download, taken while it downloads: each range is hashed as soon as it
    /// and every range before it are written (the hash must see the bytes in order), read back
    /// through one pooled buffer while the next ranges are still arriving. So the hash ends a moment
    /// after the last range instead of a whole pass over the file later.
    /// </summary>
    private sealed class RangeHash : IDisposable
    {
        private readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        private readonly SafeFileHandle _handle;
        private readonly long _size, _partSize;
        private readonly bool[] _done;
        private readonly SemaphoreSlim _signal = new(0);
        private readonly CancellationTokenSource _stop;
        private readonly Task<string> _hashing;

        public RangeHash(SafeFileHandle handle, long size, long partSize, int parts, CancellationToken ct)
        {
            (_handle, _size, _partSize, _done) = (handle, size, partSize, new bool[parts]);
            _stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
            _hashing = Task.Run(() => HashInOrderAsync(_stop.Token));
        }

        /// <summary>Range <paramref name="index"/> is on disk, whole.</summary>
        public void Done(int index)
        {
            lock (_done) _done[index] = true;
            _signal.Release();
        }

        /// <summary>The hash, once every range is done.</summary>
        public Task<string> ResultAsync() => _hashing;

        private async Task<string> HashInOrderAsync(CancellationToken ct)
        {
            var buffer = ArrayPool<byte>.Shared.Rent(TransferOptions.BufferSize);
            try
            {
                for (var next = 0; next < _done.Length; next++)
                {
                    while (!IsDone(next)) await _signal.WaitAsync(ct).ConfigureAwait(false);
                    var end = Math.Min(_size, (next + 1) * _partSize);
                    for (var offset = next * _partSize; offset < end;)
                    {
                        var n = await RandomAccess.ReadAsync(_handle, buffer.AsMemory(0, (int)Math.Min(TransferOptions.BufferSize, end - offset)), offset, ct).ConfigureAwait(false);
                        if (n == 0) throw new IOException($"The part file ended at {offset} of {_size} bytes while it was hashed.");
                        _hash.AppendData(buffer, 0, n);
                        offset += n;
                    }
                }
                return Convert.ToHexString(_hash.GetHashAndReset()).ToLowerInvariant();
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }
        }

        private bool IsDone(int index)
        {
            lock (_done) return _done[index];
        }

        public void Dispose()
        {
            // A download that failed stops the hashing; it is waited for, so nothing reads the part file after this.
            _stop.Cancel();
            try { _hashing.Wait(); }
            catch (AggregateException) { }
            _stop.Dispose();
            _signal.Dispose();
            _hash.Dispose();
        }
    }

    /// <summary>One read of the whole object, hashed as it is written; the read and its body are retried together.</summary>
    private async Task<string> DownloadWholeAsync(IObjectStore store, TimeProvider clock, string key, GridArtifact artifact, SafeFileHandle part, TransferProgress progress, CancellationToken ct)
    {
        return await RequestAsync(async c =>
        {
            var written = new StrongBox<long>();
            using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            try
            {
                using var read = await store.ReadRangeAsync(key, 0, artifact.Size, null, c).ConfigureAwait(false);
                CheckTotal(key, read.TotalLength, artifact.Size);
                RandomAccess.SetLength(part, 0); // a retry starts the file again
                await CopyAsync(read.Body, null, part, 0, written, progress, c, hash).ConfigureAwait(false);
                CheckLength(key, written.Value, artifact.Size);
                return Convert.ToHexString(hash.GetHashAndReset()).ToLowerInvariant();
            }
            catch
            {
                progress.AddBytes(-written.Value); // a retry counts its bytes again
                throw;
            }
        }, clock, ct).ConfigureAwait(false);
    }

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

    /// <summary>
    /// Uploads a local file to <paramref name="key"/>, every request under the process-wide limits:
    /// requests in flight (adaptive), bandwidth, and memory for files over 1 GiB. A file larger than
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
    /// <remarks>Exactly <see cref="LocalFile.Length"/> bytes of the open file are sent.</remarks>
    public async Task<string> UploadFileAsync(IObjectStore store, string key, LocalFile file, TimeProvider clock, CancellationToken ct)
    {
        var length = file.Length;
        if (length <= _options.RangedThreshold || store is not IMultipartUploads multipart)
        {
            return await RequestAsync(async c =>
            {
                await _bandwidth.ConsumeAsync(length, c).ConfigureAwait(false);
                return await store.PutFileAsync(key, file, c).ConfigureAwait(false);
            }, clock, ct).ConfigureAwait(false);
        }
        // Hashing and the parts read the same file at once (the second read comes from the page cache).
        var hash = file.Sha256Async(ct);
        try
        {
            await UploadPartsAsync(multipart, key, file, clock, ct).ConfigureAwait(false);
        }
        finally
        {
            await hash.ContinueWith(static _ => { }, TaskScheduler.Default).ConfigureAwait(false); // never leave the hash reading a file behind
        }
        return await hash.ConfigureAwait(false);
    }

    private async Task UploadPartsAsync(IMultipartUploads store, string key, LocalFile file, TimeProvider clock, CancellationToken ct)
    {
        var length = file.Length;
        var partSize = Math.Max(Math.Max(_options.PartSize, store.MinPartSize), (length + store.MaxParts - 1) / store.MaxParts);
        var parts = (int)((length + partSize - 1) / partSize);
        var parallel = Math.Clamp(_options.PartsPerFile, 1, parts);
        using var lease = await LargeFileLeaseAsync(length, parallel, ct).ConfigureAwait(false);
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

    /// <summary>
    /// Files over 1 GiB take their buffers from the process budget (50 MiB each at most), in both
    /// directions; smaller ones use none beyond the shared pool.
    /// </summary>
    private async ValueTask<IDisposable?> LargeFileLeaseAsync(long size, int parallel, CancellationToken ct) =>
        size > TransferOptions.LargeFileBytes
            ? await _memory.TakeAsync(Math.Min(_options.PerFileMemory, (long)parallel * TransferOptions.BufferSize), ct).ConfigureAwait(false)
            : null;

    private sealed class RangedState
    {
        public string Version { get; set; } = "";
        public long Size { get; set; }
        public long PartSize { get; set; }
        public List<int> Done { get; set; } = new();
    }

    /// <summary>
    /// Parallel ranged reads written at their offsets into a preallocated part file. The first read
    /// fixes the version; every other read is conditional on it. Finished ranges are recorded so
    /// that a later call resumes instead of starting again.
    /// </summary>
    private async Task<string> DownloadRangedAsync(IObjectStore store, TimeProvider clock, string key, GridArtifact artifact, SafeFileHandle handle, string statePath, bool resumable, TransferProgress progress, CancellationToken ct)
    {
        var size = artifact.Size;
        var partSize = _options.PartSize;
        var parts = (int)((size + partSize - 1) / partSize);
        // Resume only from a part file of the right length with its state beside it.
        var state = resumable && RandomAccess.GetLength(handle) == size ? ReadState(statePath, size, partSize) : null;
        state ??= new RangedState { Size = size, PartSize = partSize };
        var done = new HashSet<int>(state.Done);
        foreach (var i in done) progress.AddBytes(Math.Min(partSize, size - (long)i * partSize));

        var parallel = Math.Max(1, Math.Min(_options.PartsPerFile, parts));
        using var lease = await LargeFileLeaseAsync(size, parallel, ct).ConfigureAwait(false);

        if (RandomAccess.GetLength(handle) != size) RandomAccess.SetLength(handle, size);
        using var hash = new RangeHash(handle, size, partSize, parts, ct);
        foreach (var i in done) hash.Done(i); // resumed: on disk from an earlier call
        var stateLock = new object();
        var todo = Enumerable.Range(0, parts).Where(i => !done.Contains(i)).ToList();

        // The version: from the saved state when resuming, else from the first range read.
        if (string.IsNullOrEmpty(state.Version) && todo.Count > 0)
        {
            var first = todo[0];
            todo.RemoveAt(0);
            state.Version = await ReadPartAsync(store, clock, key, handle, first, partSize, size, null, progress, ct).ConfigureAwait(false);
            lock (stateLock) { state.Done.Add(first); WriteState(statePath, state); }
            hash.Done(first);
        }
        await Parallel.ForEachAsync(todo, new ParallelOptions { MaxDegreeOfParallelism = parallel, CancellationToken = ct }, async (i, c) =>
        {
            await ReadPartAsync(store, clock, key, handle, i, partSize, size, state.Version, progress, c).ConfigureAwait(false);
            lock (stateLock) { state.Done.Add(i); WriteState(statePath, state); }
            hash.Done(i);
        }).ConfigureAwait(false);
        return await hash.ResultAsync().ConfigureAwait(false);
    }

    private async Task<string> ReadPartAsync(IObjectStore store, TimeProvider clock, string key, SafeFileHandle handle, int index, long partSize, long size, string? version, TransferProgress progress, CancellationToken ct)
    {
        var offset = index * partSize;
        var length = Math.Min(partSize, size - offset);
        return await RequestAsync(async c =>
        {
            var written = new StrongBox<long>();
            try
            {
                using var read = await store.ReadRangeAsync(key, offset, length, version, c).ConfigureAwait(false);
                CheckTotal(key, read.TotalLength, size);
                await CopyAsync(read.Body, null, handle, offset, written, progress, c).ConfigureAwait(false);
                CheckLength(key, written.Value, length);
                return read.Version;
            }
            catch
            {
                progress.AddBytes(-written.Value); // a retry counts its bytes again
                throw;
            }
        }, clock, ct).ConfigureAwait(false);
    }

    /// <summary>Copies a body to a stream or to a file at an offset, through a pooled buffer and the bandwidth cap.</summary>
    private async Task CopyAsync(Stream body, Stream? target, SafeFileHandle? handle, long offset, StrongBox<long> written, TransferProgress progress, CancellationToken ct, IncrementalHash? hash = null)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(TransferOptions.BufferSize);
        try
        {
            int n;
            while ((n = await body.ReadAsync(buffer.AsMemory(0, TransferOptions.BufferSize), ct).ConfigureAwait(false)) > 0)
            {
                await _bandwidth.ConsumeAsync(n, ct).ConfigureAwait(false);
                hash?.AppendData(buffer, 0, n);
                if (target is not null) await target.WriteAsync(buffer.AsMemory(0, n), ct).ConfigureAwait(false);
                else if (handle!.IsAsync) await RandomAccess.WriteAsync(handle, buffer.AsMemory(0, n), offset + written.Value, ct).ConfigureAwait(false);
                else RandomAccess.Write(handle, buffer.AsSpan(0, n), offset + written.Value);
                written.Value += n;
                progress.AddBytes(n);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>An object whose length is not the listed one has changed since it was listed: not worth retrying.</summary>
    private static void CheckTotal(string key, long total, long listed)
    {
        if (total != listed)
        {
            throw new GridException(GridErrorKind.IntegrityFailure, "ObjectChanged",
                $"'{key}' is now {total} bytes, not the {listed} listed; run the command again to get the new version.", key);
        }
    }

    private static void CheckLength(string key, long written, long expected)
    {
        if (written < expected)
        {
            throw new GridException(GridErrorKind.StoreUnavailable, "TruncatedBody",
                $"'{key}' ended after {written} of {expected} bytes.", key) { IsTransient = true };
        }
        if (written > expected)
        {
            throw new GridException(GridErrorKind.IntegrityFailure, "SizeMismatch",
                $"'{key}' arrived with more bytes ({written}) than the store lists ({expected}); run the command again.", key);
        }
    }

    private static RangedState? ReadState(string path, long size, long partSize)
    {
        try
        {
            if (IsLink(new FileInfo(path))) return null; // not one this engine wrote
            var s = JsonSerializer.Deserialize<RangedState>(File.ReadAllBytes(path), RecordJson.Options);
            return s is not null && s.Size == size && s.PartSize == partSize ? s : null;
        }
        catch (Exception ex) when (ex is IOException or JsonException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    private static void WriteState(string path, RangedState state)
    {
        // Written anew (never through whatever is at its name) and renamed over the last state.
        var tmp = path + ".tmp";
        File.Delete(tmp);
        using (var file = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None))
        {
            file.Write(JsonSerializer.SerializeToUtf8Bytes(state, RecordJson.Options));
        }
        File.Move(tmp, path, overwrite: true);
    }

    private static GridException LocalWriteError(SaveItem item, IOException ex) =>
        FileSystemStore.IsDiskFull(ex)
            ? new GridException(GridErrorKind.WriteFailed, "DestinationDiskFull",
                $"The disk is full; '{item.LocalPath}' was not written. Free space and run the command again; finished files are kept and skipped.", item.Artifact, ex)
            : new GridException(GridErrorKind.WriteFailed, "SaveFailed", $"Could not save '{item.Artifact}' to '{item.LocalPath}': {ex.Message}", item.Artifact, ex);
}
