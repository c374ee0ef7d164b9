using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Serialization;
using GridArtifacts.Core.Stores;
using GridArtifacts.Model;
using Microsoft.Win32.SafeHandles;

namespace GridArtifacts.Core.Transfer;

public sealed partial class TransferEngine
{
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

    /// <summary>What a batch would do: files to fetch with their bytes, and files already up to date (waits are on each store's catalog's clock).</summary>
    public static async Task<(int Fetch, long FetchBytes, int UpToDate)> PlanAsync(IReadOnlyList<SaveItem> items, bool force, Func<string, GridCatalog> openStore, CancellationToken ct)
    {
        int fetch = 0, same = 0;
        long bytes = 0;
        foreach (var item in items)
        {
            if (!force && await IsUpToDateAsync(item, null, openStore(item.Artifact.Store).Clock, ct).ConfigureAwait(false)) same++;
            else { fetch++; bytes += item.Artifact.Size; }
        }
        return (fetch, bytes, same);
    }

    /// <summary>
    /// Whether the file at the item's path has the artifact's size and SHA-256: hashed through a block
    /// of <paramref name="memory"/> (a save's), or of the shared pool when only planning (-WhatIf).
    /// A file another call still holds is waited for on <paramref name="clock"/>.
    /// </summary>
    private static async Task<bool> IsUpToDateAsync(SaveItem item, MemoryPool? memory, TimeProvider clock, CancellationToken ct)
    {
        var a = item.Artifact;
        for (var attempt = 0; ; attempt++)
        {
            var info = new FileInfo(item.LocalPath);
            // A link is never a saved file, whatever it points to: the save replaces it (the link, not its target).
            if (a.Sha256 is null || !info.Exists || IsLink(info) || info.Length != a.Size) return false;
            try
            {
                if (memory is null) return await LocalFile.Sha256Async(item.LocalPath, ct).ConfigureAwait(false) == a.Sha256;
                using var buffers = await memory.RentAsync(1, ct).ConfigureAwait(false);
                using var file = LocalFile.Open(item.LocalPath);
                return await file.ReadingThrough(buffers).Sha256Async(ct).ConfigureAwait(false) == a.Sha256;
            }
            catch (IOException ex) when (IsLockedByAnother(ex) && attempt < LockedDestinationPolls)
            {
                // Another call has just renamed its part file into place and still holds its lock
                // for the moment it takes to close it: wait for it rather than fail.
                await Task.Delay(PartLockPoll / 4, clock, ct).ConfigureAwait(false);
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
        if (existed && !force && await IsUpToDateAsync(item, _memory, clock, ct).ConfigureAwait(false)) return Skipped(item, progress);

        var part = PartPathOf(item, root);
        var ranged = artifact.Size > _options.RangedThreshold;
        // One writer per destination file, across calls and processes: whoever holds the part file's
        // exclusive lock. Another call saving the same file is waited for, and what it saved is kept.
        (SafeFileHandle Handle, bool Created)? opened;
        while ((opened = OpenPart(item, root, part, folders, ranged ? artifact.Size : 0, asynchronous: ranged)) is null)
        {
            await Task.Delay(PartLockPoll, clock, ct).ConfigureAwait(false);
            if (!force && await IsUpToDateAsync(item, _memory, clock, ct).ConfigureAwait(false)) return Skipped(item, progress);
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

    /// <summary>
    /// One read of the whole object through one block of the memory pool, hashed as it is written;
    /// the read and its body are retried together.
    /// </summary>
    private async Task<string> DownloadWholeAsync(IObjectStore store, TimeProvider clock, string key, GridArtifact artifact, SafeFileHandle part, TransferProgress progress, CancellationToken ct)
    {
        using var buffers = await BuffersAsync(1, ct).ConfigureAwait(false);
        return await RequestAsync(async c =>
        {
            var written = new StrongBox<long>();
            using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            try
            {
                using var read = await store.ReadRangeAsync(key, 0, artifact.Size, null, c).ConfigureAwait(false);
                CheckTotal(key, read.TotalLength, artifact.Size);
                RandomAccess.SetLength(part, 0); // a retry starts the file again
                await CopyAsync(read.Body, buffers, part, 0, written, progress, c, hash).ConfigureAwait(false);
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

    private sealed class RangedState
    {
        public string Version { get; set; } = "";
        public long Size { get; set; }
        public long PartSize { get; set; }
        public List<int> Done { get; set; } = new();
    }

    /// <summary>A ranged download's state file, with the records' options (<see cref="RecordJsonContext"/>), generated at build time.</summary>
    [JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull, UseStringEnumConverter = true)]
    [JsonSerializable(typeof(RangedState))]
    private sealed partial class RangedStateJson : JsonSerializerContext;

    /// <summary>
    /// Parallel ranged reads written at their offsets into a preallocated part file. The first read
    /// fixes the version; every other read is conditional on it. Finished ranges are recorded so
    /// that a later call resumes instead of starting again. One lease of the memory pool holds a
    /// block for each range in flight and one for the hash: a lease of fewer (a cap lower than that)
    /// reads fewer ranges at once, and with one block the ranges and the hash take turns.
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
        using var buffers = await BuffersAsync(parallel + 1, ct).ConfigureAwait(false);
        parallel = Math.Max(1, buffers.Count - 1);

        if (RandomAccess.GetLength(handle) != size) RandomAccess.SetLength(handle, size);
        using var hash = new RangeHash(handle, size, partSize, parts, buffers, ct);
        foreach (var i in done) hash.Done(i); // resumed: on disk from an earlier call
        var stateLock = new object();
        var todo = Enumerable.Range(0, parts).Where(i => !done.Contains(i)).ToList();

        // The version: from the saved state when resuming, else from the first range read.
        if (string.IsNullOrEmpty(state.Version) && todo.Count > 0)
        {
            var first = todo[0];
            todo.RemoveAt(0);
            state.Version = await ReadPartAsync(store, clock, key, handle, buffers, first, partSize, size, null, progress, ct).ConfigureAwait(false);
            lock (stateLock) { state.Done.Add(first); WriteState(statePath, state); }
            hash.Done(first);
        }
        await Parallel.ForEachAsync(todo, new ParallelOptions { MaxDegreeOfParallelism = parallel, CancellationToken = ct }, async (i, c) =>
        {
            await ReadPartAsync(store, clock, key, handle, buffers, i, partSize, size, state.Version, progress, c).ConfigureAwait(false);
            lock (stateLock) { state.Done.Add(i); WriteState(statePath, state); }
            hash.Done(i);
        }).ConfigureAwait(false);
        return await hash.ResultAsync().ConfigureAwait(false);
    }

    private async Task<string> ReadPartAsync(IObjectStore store, TimeProvider clock, string key, SafeFileHandle handle, MemoryLease buffers, int index, long partSize, long size, string? version, TransferProgress progress, CancellationToken ct)
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
                await CopyAsync(read.Body, buffers, handle, offset, written, progress, c).ConfigureAwait(false);
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

    /// <summary>
    /// Copies a body to a file at an offset through a block of <paramref name="buffers"/>, taken for the
    /// whole body (one take per request, not per read), and through the bandwidth cap.
    /// </summary>
    private async Task CopyAsync(Stream body, MemoryLease buffers, SafeFileHandle handle, long offset, StrongBox<long> written, TransferProgress progress, CancellationToken ct, IncrementalHash? hash = null)
    {
        using var block = await buffers.TakeAsync(ct).ConfigureAwait(false);
        var buffer = block.Array;
        int n;
        while ((n = await body.ReadAsync(buffer, ct).ConfigureAwait(false)) > 0)
        {
            await _bandwidth.ConsumeAsync(n, ct).ConfigureAwait(false);
            hash?.AppendData(buffer, 0, n);
            if (handle.IsAsync) await RandomAccess.WriteAsync(handle, buffer.AsMemory(0, n), offset + written.Value, ct).ConfigureAwait(false);
            else RandomAccess.Write(handle, buffer.AsSpan(0, n), offset + written.Value);
            written.Value += n;
            progress.AddBytes(n);
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
            var s = JsonSerializer.Deserialize(File.ReadAllBytes(path), RangedStateJson.Default.RangedState);
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
            file.Write(JsonSerializer.SerializeToUtf8Bytes(state, RangedStateJson.Default.RangedState));
        }
        File.Move(tmp, path, overwrite: true);
    }

    private static GridException LocalWriteError(SaveItem item, IOException ex) =>
        FileSystemStore.IsDiskFull(ex)
            ? new GridException(GridErrorKind.WriteFailed, "DestinationDiskFull",
                $"The disk is full; '{item.LocalPath}' was not written. Free space and run the command again; finished files are kept and skipped.", item.Artifact, ex)
            : new GridException(GridErrorKind.WriteFailed, "SaveFailed", $"Could not save '{item.Artifact}' to '{item.LocalPath}': {ex.Message}", item.Artifact, ex);
}
