using GridArtifacts.Model;
using System.Runtime.CompilerServices;

namespace GridArtifacts.Core.Stores;

/// <summary>The folder store's listings: keys with sizes, names only (<see cref="INameListing"/>), and whole trees.</summary>
public sealed partial class FileSystemStore
{
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
}
