using System.Security.Cryptography;
using GridArtifacts.Model;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace GridArtifacts.Core.Stores;

/// <summary>
/// The embedded default store: the contract's keys as files under one folder. Writes go to a
/// temporary file under <c>&lt;root&gt;/.tmp</c> (same volume) and are renamed into place, so readers
/// never see part of a file.
/// </summary>
public sealed partial class FileSystemStore : IObjectStore, IConditionalCreate, ILocalFolder, INameListing, IObjectWalk
{
    private const string TempFolder = ".tmp";
    private const int CopyBufferSize = 1 << 20;
    private readonly string _root;

    public FileSystemStore(string root)
    {
        _root = Path.GetFullPath(root);
        Location = _root;
    }

    public string Location { get; }

    public string Root => _root;

    public async Task<byte[]?> TryReadAllBytesAsync(string key, CancellationToken cancellationToken)
    {
        FileStream fs;
        try
        {
            fs = new FileStream(PathOf(key), FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete, 1, FileOptions.Asynchronous);
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
        {
            return null;
        }
        await using (fs.ConfigureAwait(false))
        {
            return await RecordJson.ReadBoundedAsync(fs, fs.Length, Location, key, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// The longest key, in UTF-8 bytes: what the file system allows of a whole path (4,096 bytes on
    /// Linux, 1,024 on macOS, with its terminating zero) less the root's own path.
    /// </summary>
    public int MaxKeyBytes => (OperatingSystem.IsMacOS() ? 1024 : OperatingSystem.IsWindows() ? 32767 : 4096) - 1
        - System.Text.Encoding.UTF8.GetByteCount(Path.TrimEndingDirectorySeparator(_root)) - 1;

    /// <summary>A file or folder name: 255 bytes on the file systems Linux and macOS use (255 UTF-16 units on Windows, never more bytes than that).</summary>
    public int MaxKeyPartBytes => 255;

    public Task<Stream> OpenReadAsync(string key, CancellationToken cancellationToken)
    {
        try
        {
            Stream s = new FileStream(PathOf(key), FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete,
                CopyBufferSize, FileOptions.Asynchronous | FileOptions.SequentialScan);
            return Task.FromResult(s);
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new GridException(GridErrorKind.NotFound, "ObjectNotFound", $"'{key}' is not in store '{Location}'.", key, ex)
                { Cause = GridErrorCause.ObjectMissing };
        }
    }

    public Task<ObjectRead> ReadRangeAsync(string key, long offset, long length, string? ifVersion, CancellationToken cancellationToken)
    {
        FileStream fs;
        try
        {
            fs = new FileStream(PathOf(key), FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete, 1, FileOptions.Asynchronous);
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new GridException(GridErrorKind.NotFound, "ObjectNotFound", $"'{key}' is not in store '{Location}'.", key, ex)
                { Cause = GridErrorCause.ObjectMissing };
        }
        // Atomic replacement gives a new file (inode) under the same name: its version changes with it.
        var version = $"{File.GetLastWriteTimeUtc(fs.SafeFileHandle).Ticks:x}-{fs.Length:x}"; // from the open file: no second lookup of its path
        if (ifVersion is not null && ifVersion != version)
        {
            fs.Dispose();
            throw ObjectChanged(key);
        }
        fs.Position = Math.Min(offset, fs.Length);
        var available = Math.Max(0, fs.Length - offset);
        return Task.FromResult(new ObjectRead(new BoundedStream(fs, length > 0 ? Math.Min(length, available) : available), fs.Length, version));
    }

    internal GridException ObjectChanged(string key) =>
        new(GridErrorKind.IntegrityFailure, "ObjectChanged", $"'{key}' in store '{Location}' changed while it was being read; run the command again to get the new version.", key);

    public Task PutAsync(string key, ReadOnlyMemory<byte> content, CancellationToken cancellationToken) =>
        WriteAtomicAsync(key, async tmp =>
        {
            await using var fs = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 4096, FileOptions.Asynchronous);
            await fs.WriteAsync(content, cancellationToken).ConfigureAwait(false);
        }, cancellationToken);

    /// <summary>Always exclusive here: the finished temporary file is linked to the name, which fails if the name exists (<see cref="TryPlaceNew"/>).</summary>
    public ValueTask<bool> CreatesExclusivelyAsync(CancellationToken cancellationToken) => ValueTask.FromResult(true);

    public async Task<bool> TryCreateAsync(string key, ReadOnlyMemory<byte> content, CancellationToken cancellationToken)
    {
        var created = true;
        await WriteAtomicAsync(key, async tmp =>
        {
            await using var fs = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 4096, FileOptions.Asynchronous);
            await fs.WriteAsync(content, cancellationToken).ConfigureAwait(false);
        }, cancellationToken, replace: false, taken: () => created = false).ConfigureAwait(false);
        return created;
    }

    public async Task<string> PutFileAsync(string key, LocalFile file, CancellationToken cancellationToken)
    {
        string? sha = null;
        await WriteAtomicAsync(key, async tmp =>
        {
            // One copy buffer: a block of the transfer's lease (LocalFile.RentBufferAsync), or outside
            // the engine a shared one no larger than the file. Hashed as it is copied.
            await using var src = file.OpenRead();
            await using var dst = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1, FileOptions.Asynchronous);
            using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            using var block = await file.RentBufferAsync((int)Math.Clamp(file.Length, 4096, CopyBufferSize), cancellationToken).ConfigureAwait(false);
            var size = (int)Math.Min(block.Array.Length, CopyBufferSize);
            int n;
            while ((n = await src.ReadAsync(block.Array.AsMemory(0, size), cancellationToken).ConfigureAwait(false)) > 0)
            {
                hash.AppendData(block.Array, 0, n);
                await dst.WriteAsync(block.Array.AsMemory(0, n), cancellationToken).ConfigureAwait(false);
            }
            sha = Convert.ToHexString(hash.GetHashAndReset()).ToLowerInvariant();
        }, cancellationToken).ConfigureAwait(false);
        return sha!;
    }

    public Task DeleteAsync(string key, CancellationToken cancellationToken)
    {
        var path = PathOf(key);
        if (File.Exists(path)) File.Delete(path);
        // Leave no empty folders behind, up to (not including) the root.
        var dir = Path.GetDirectoryName(path);
        while (dir is not null && dir.Length > _root.Length && Directory.Exists(dir) && !Directory.EnumerateFileSystemEntries(dir).Any())
        {
            Directory.Delete(dir);
            dir = Path.GetDirectoryName(dir);
        }
        return Task.CompletedTask;
    }

    public async Task DeleteManyAsync(IReadOnlyList<string> keys, CancellationToken cancellationToken)
    {
        foreach (var key in keys)
        {
            cancellationToken.ThrowIfCancellationRequested();
            await DeleteAsync(key, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>A temporary file this old was left by a writer that was killed: no write takes a day.</summary>
    public static readonly TimeSpan LeftoverAge = TimeSpan.FromDays(1);
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, bool> Swept = new(StringComparer.Ordinal);

    /// <summary>Once per store and process, before the first write: removes what killed writers left in .tmp.</summary>
    private static void SweepLeftovers(string tmpDir)
    {
        if (!Swept.TryAdd(tmpDir, true)) return;
        var before = DateTime.UtcNow - LeftoverAge;
        foreach (var file in new DirectoryInfo(tmpDir).EnumerateFiles())
        {
            try { if (file.LastWriteTimeUtc < before) file.Delete(); }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException) { /* another sweeper, or not ours to remove */ }
        }
    }

    /// <summary>
    /// Writes to a temporary file, then moves it to the key's name. With <paramref name="replace"/>
    /// false the move fails if the name exists (.NET links the file under its new name, which is
    /// atomic, where the file system allows it) and <paramref name="taken"/> is called instead.
    /// </summary>
    private async Task WriteAtomicAsync(string key, Func<string, Task> write, CancellationToken cancellationToken, bool replace = true, Action? taken = null)
    {
        var target = PathOf(key);
        var tmpDir = Path.Combine(_root, TempFolder);
        Directory.CreateDirectory(tmpDir);
        SweepLeftovers(tmpDir);
        Directory.CreateDirectory(Path.GetDirectoryName(target)!);
        var tmp = Path.Combine(tmpDir, Guid.NewGuid().ToString("N"));
        try
        {
            await write(tmp).ConfigureAwait(false);
            cancellationToken.ThrowIfCancellationRequested();
            if (replace)
            {
                File.Move(tmp, target, overwrite: true);
            }
            else if (!TryPlaceNew(tmp, target))
            {
                taken!();
            }
        }
        catch (IOException ex) when (IsDiskFull(ex))
        {
            throw new GridException(GridErrorKind.WriteFailed, "StoreDiskFull",
                $"The disk holding store '{Location}' is full; '{key}' was not written and nothing already stored was changed. Free space and try again.", key, ex);
        }
        finally
        {
            if (File.Exists(tmp)) File.Delete(tmp);
        }
    }

    /// <summary>
    /// Puts the finished temporary file at <paramref name="target"/> only if nothing has that name,
    /// in one step: on Unix a hard link, which fails with EEXIST when the name is taken (.NET's
    /// File.Move without overwrite checks and then renames, so two movers at once can both win: a
    /// stress test saw up to five of eight). On Windows a move without replace, which is one step
    /// there. On a Unix file system without hard links, the name is taken with an exclusive create
    /// and the content written into it (readers may then see the record while it is written).
    /// </summary>
    private static bool TryPlaceNew(string tmp, string target)
    {
        if (OperatingSystem.IsWindows())
        {
            try { File.Move(tmp, target, overwrite: false); return true; }
            catch (IOException) when (File.Exists(target) || Directory.Exists(target)) { return false; }
        }
        if (Link(tmp, target) == 0) return true; // the temporary name is removed by the caller
        var errno = Marshal.GetLastPInvokeError();
        if (errno == EEXIST) return false;
        if (errno is not (EPERM or EXDEV or EMLINK or ENOSYS or EOPNOTSUPP))
        {
            throw new IOException($"'{target}' could not be created ({Marshal.GetPInvokeErrorMessage(errno)}).", errno);
        }
        try
        {
            using var created = new FileStream(target, FileMode.CreateNew, FileAccess.Write, FileShare.None);
            using var source = new FileStream(tmp, FileMode.Open, FileAccess.Read);
            source.CopyTo(created);
            return true;
        }
        catch (IOException) when (File.Exists(target)) { return false; }
    }

    private const int EPERM = 1, EEXIST = 17, EXDEV = 18, EMLINK = 31, ENOSYS = 38, EOPNOTSUPP = 95;

    [DllImport("libc", EntryPoint = "link", SetLastError = true)]
    private static extern int Link([MarshalAs(UnmanagedType.LPUTF8Str)] string existing, [MarshalAs(UnmanagedType.LPUTF8Str)] string created);

    internal static bool IsDiskFull(IOException ex) =>
        ex.HResult == 28 || ex.HResult == unchecked((int)0x80070070) || ex.HResult == unchecked((int)0x80070027);

    /// <summary>Maps a key to a path under the root; keys come from <see cref="StoreLayout"/>, whose parts are validated.</summary>
    private string PathOf(string key)
    {
        var rel = Path.DirectorySeparatorChar == '/' ? key : key.Replace('/', Path.DirectorySeparatorChar);
        var full = Path.GetFullPath(Path.Combine(_root, rel));
        if (!full.StartsWith(_root, StringComparison.Ordinal))
        {
            throw new GridException(GridErrorKind.UnsafePath, "UnsafeKey", $"The key '{key}' would leave store '{Location}'.", key);
        }
        return full;
    }

    public void Dispose() { }
}
