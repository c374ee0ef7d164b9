using System.Buffers;
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
public sealed class FileSystemStore : IObjectStore, IConditionalCreate, ILocalFolder, INameListing, IObjectWalk
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

    public async IAsyncEnumerable<ObjectEntry> ListAsync(string prefix, bool recursive, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var (folder, folderKey, namePrefix) = SplitPrefix(prefix);
        if (!Directory.Exists(folder)) yield break;

        var entries = new List<ObjectEntry>();
        await Task.Run(() =>
        {
            var listed = ListFolder(folder, folderKey, namePrefix, Entry);
            foreach (var (name, isDirectory, length, modified) in listed)
            {
                cancellationToken.ThrowIfCancellationRequested();
                var key = folderKey + name;
                if (isDirectory)
                {
                    if (recursive) AddTree(new DirectoryInfo(Path.Combine(folder, name)), key + "/", entries, cancellationToken);
                    else entries.Add(new ObjectEntry(key + "/", 0, DateTimeOffset.MinValue, IsPrefix: true));
                }
                else if (length >= 0)
                {
                    entries.Add(new ObjectEntry(key, length, modified));
                }
            }
        }, cancellationToken).ConfigureAwait(false);

        entries.Sort((a, b) => string.CompareOrdinal(a.Key, b.Key));
        foreach (var e in entries) yield return e;
    }

    /// <summary>
    /// One entry of a folder, with no file object per entry: the name and type come from the folder
    /// listing, and only files are asked their size and time. A file removed while the folder is
    /// listed has the length -1, and is left out.
    /// </summary>
    private static readonly System.IO.Enumeration.FileSystemEnumerable<(string Name, bool IsDirectory, long Length, DateTimeOffset Modified)>.FindTransform Entry =
        (ref System.IO.Enumeration.FileSystemEntry e) =>
        {
            var name = e.FileName.ToString();
            if (e.IsDirectory) return (name, true, 0L, DateTimeOffset.MinValue);
            try { return (name, false, e.Length, (DateTimeOffset)e.LastWriteTimeUtc); }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException) { return (name, false, -1L, default(DateTimeOffset)); }
        };

    /// <summary>
    /// Every file under a prefix, folder by folder, each handed over as it is read: a walk of a
    /// million files holds the folders still to visit, not the million entries ListAsync sorts.
    /// Depth first, so the files of one folder (a run's) come one after another.
    /// </summary>
    public Task VisitObjectsAsync(string prefix, Action<ObjectEntry> visit, CancellationToken cancellationToken) => Task.Run(() =>
    {
        var pending = new Stack<(string Folder, string FolderKey, string NamePrefix)>();
        pending.Push(SplitPrefix(prefix));
        while (pending.TryPop(out var at))
        {
            foreach (var (name, isDirectory, length, modified) in ListFolderLazily(at.Folder, at.FolderKey, at.NamePrefix, Entry))
            {
                cancellationToken.ThrowIfCancellationRequested();
                if (isDirectory) pending.Push((Path.Combine(at.Folder, name), at.FolderKey + name + "/", ""));
                else if (length >= 0) visit(new ObjectEntry(at.FolderKey + name, length, modified));
            }
        }
    }, cancellationToken);

    /// <summary>
    /// The names of one folder, handed over as the folder lists them: no file is asked its size or
    /// time, no key is made and nothing is sorted. One thread reads the folder into batches of names
    /// while the caller's visitor takes the batches before, so reading the folder (most of it the
    /// kernel's) and what the visitor does with each name overlap.
    /// </summary>
    public async Task VisitNamesAsync(string prefix, NameVisitor visit, CancellationToken cancellationToken)
    {
        var (folder, folderKey, namePrefix) = SplitPrefix(prefix);
        if (!Directory.Exists(folder)) return;
        var batches = System.Threading.Channels.Channel.CreateBounded<NameBatch>(new System.Threading.Channels.BoundedChannelOptions(4) { SingleReader = true, SingleWriter = true });
        var spare = new System.Collections.Concurrent.ConcurrentBag<NameBatch>();
        var reader = Task.Run(async () =>
        {
            try
            {
                var batch = new NameBatch();
                // The transform runs inside the enumerator and cannot wait: full batches are queued after it returns.
                var full = new Queue<NameBatch>();
                var entries = ListFolderLazily(folder, folderKey, namePrefix, (ref System.IO.Enumeration.FileSystemEntry e) =>
                {
                    if (!batch.TryAdd(e.FileName, e.IsDirectory))
                    {
                        full.Enqueue(batch);
                        batch = spare.TryTake(out var b) ? b : new NameBatch();
                        batch.TryAdd(e.FileName, e.IsDirectory);
                    }
                    return (string?)null; // a reference type: the enumerator's shared code is precompiled with the framework
                });
                foreach (var _ in entries)
                {
                    while (full.TryDequeue(out var f)) await batches.Writer.WriteAsync(f, cancellationToken).ConfigureAwait(false);
                }
                if (batch.Count > 0) await batches.Writer.WriteAsync(batch, cancellationToken).ConfigureAwait(false);
                batches.Writer.Complete();
            }
            catch (Exception ex)
            {
                batches.Writer.Complete(ex);
            }
        }, cancellationToken);
        await Task.Run(async () =>
        {
            await foreach (var batch in batches.Reader.ReadAllAsync(cancellationToken).ConfigureAwait(false))
            {
                for (var i = 0; i < batch.Count; i++) visit(batch.Name(i), batch.IsFolder(i));
                batch.Clear();
                spare.Add(batch);
            }
        }, cancellationToken).ConfigureAwait(false);
        await reader.ConfigureAwait(false);
    }

    /// <summary>Up to 4,096 names, or 256 KiB of them, kept in one buffer.</summary>
    private sealed class NameBatch
    {
        private readonly char[] _chars = new char[1 << 17];
        private readonly int[] _ends = new int[4096];
        private readonly bool[] _folders = new bool[4096];
        private int _used;

        public int Count { get; private set; }

        public bool TryAdd(ReadOnlySpan<char> name, bool folder)
        {
            if (Count == _ends.Length || _used + name.Length > _chars.Length)
            {
                if (Count > 0) return false;
                throw new PathTooLongException($"A name of {name.Length} characters is longer than any this store writes.");
            }
            name.CopyTo(_chars.AsSpan(_used));
            _used += name.Length;
            _ends[Count] = _used;
            _folders[Count++] = folder;
            return true;
        }

        public ReadOnlySpan<char> Name(int i)
        {
            var start = i == 0 ? 0 : _ends[i - 1];
            return _chars.AsSpan(start, _ends[i] - start);
        }

        public bool IsFolder(int i) => _folders[i];

        public void Clear() => (_used, Count) = (0, 0);
    }

    /// <summary>A prefix names a folder ("runs/r/") or a folder plus the start of a name ("runs/r/exp").</summary>
    private (string Folder, string FolderKey, string NamePrefix) SplitPrefix(string prefix)
    {
        var slash = prefix.LastIndexOf('/');
        var folderKey = slash < 0 ? "" : prefix[..(slash + 1)];
        return (PathOf(folderKey), folderKey, prefix[(slash + 1)..]);
    }

    /// <summary>One folder's entries whose names start with <paramref name="namePrefix"/> (the root's temporary folder left out); none when the folder goes before or while it is listed.</summary>
    private static List<T> ListFolder<T>(string folder, string folderKey, string namePrefix, System.IO.Enumeration.FileSystemEnumerable<T>.FindTransform transform) =>
        new(ListFolderLazily(folder, folderKey, namePrefix, transform));

    /// <summary>As <see cref="ListFolder"/>, entry by entry as the folder is read.</summary>
    private static IEnumerable<T> ListFolderLazily<T>(string folder, string folderKey, string namePrefix, System.IO.Enumeration.FileSystemEnumerable<T>.FindTransform transform)
    {
        var options = new EnumerationOptions { RecurseSubdirectories = false, AttributesToSkip = 0, IgnoreInaccessible = true };
        IEnumerator<T> entries;
        try
        {
            entries = new System.IO.Enumeration.FileSystemEnumerable<T>(folder, transform, options)
            {
                ShouldIncludePredicate = (ref System.IO.Enumeration.FileSystemEntry e) =>
                    e.FileName.StartsWith(namePrefix, StringComparison.Ordinal) && !(folderKey.Length == 0 && e.FileName.SequenceEqual(TempFolder)),
            }.GetEnumerator();
        }
        catch (DirectoryNotFoundException) { yield break; } // the enumerator opens the folder when it is made
        using (entries)
        {
            while (true)
            {
                try
                {
                    if (!entries.MoveNext()) yield break;
                }
                catch (DirectoryNotFoundException) { yield break; } // removed while it was listed
                yield return entries.Current;
            }
        }
    }

    private static void AddTree(DirectoryInfo dir, string keyPrefix, List<ObjectEntry> entries, CancellationToken ct)
    {
        var options = new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = 0, IgnoreInaccessible = true };
        var baseLength = dir.FullName.Length + 1;
        List<FileInfo> files;
        try { files = dir.EnumerateFiles("*", options).ToList(); }
        catch (DirectoryNotFoundException) { return; } // removed while it was listed
        foreach (var file in files)
        {
            ct.ThrowIfCancellationRequested();
            var rel = file.FullName[baseLength..];
            if (Path.DirectorySeparatorChar != '/') rel = rel.Replace(Path.DirectorySeparatorChar, '/');
            long length;
            DateTimeOffset modified;
            try { length = file.Length; modified = file.LastWriteTimeUtc; }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException) { continue; } // removed while listed
            entries.Add(new ObjectEntry(keyPrefix + rel, length, modified));
        }
    }

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
            // One pooled copy buffer no larger than the file: a small file costs no megabyte buffers
            // (the agent sends a million of them). Hashed as it is copied.
            await using var src = file.OpenRead();
            await using var dst = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1, FileOptions.Asynchronous);
            using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            var size = (int)Math.Clamp(file.Length, 4096, CopyBufferSize);
            var buffer = ArrayPool<byte>.Shared.Rent(size);
            try
            {
                int n;
                while ((n = await src.ReadAsync(buffer.AsMemory(0, size), cancellationToken).ConfigureAwait(false)) > 0)
                {
                    hash.AppendData(buffer, 0, n);
                    await dst.WriteAsync(buffer.AsMemory(0, n), cancellationToken).ConfigureAwait(false);
                }
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(buffer);
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
