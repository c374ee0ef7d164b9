using GridArtifacts.Core.Stores;
using GridArtifacts.Model;

namespace GridArtifacts.Core.Capture;

/// <summary>
/// The capture agent's folders: the working folder and the artifact roots, every file seen in them
/// (<see cref="Table"/>, about 90 bytes a file), which files changed since they last went up
/// (<see cref="Pending"/>), and how a change is noticed: change notifications, a rescan of what they
/// name, and a full rescan now and then. Nothing is read outside the roots (<see cref="Scope"/>); a
/// folder link, the store's folder and the module's folders are never walked, each said once.
/// </summary>
internal sealed class FolderWatch
{
    private readonly List<(string Root, string Prefix)> _roots = new();
    private readonly ModuleFolders _folders;
    private readonly TimeSpan _fullRescanInterval;
    private readonly TimeProvider _clock;
    private readonly Action<string> _warn;
    private readonly Action<string, string> _unstorable;
    private readonly Action _wake;
    private readonly HashSet<string> _reportedSkipped = new(StringComparer.Ordinal);
    /// <summary>Paths the change notifications named since the last pass; too many, and the next pass is a full one.</summary>
    private readonly HashSet<string> _changed = new(StringComparer.Ordinal);
    private const int MaxChangedPaths = 16_384;
    private bool _changesOverflowed;
    private bool _watching;
    private DateTimeOffset _nextFullPass = DateTimeOffset.MinValue;
    private DateTimeOffset _lastFullPass = DateTimeOffset.MinValue;
    private TimeSpan _lastFullPassTook;
    private bool _fullPassRequested;

    /// <param name="warn">Told each folder skipped (once) and each walk cut short.</param>
    /// <param name="unstorable">Told a file that cannot be stored, and why.</param>
    /// <param name="wake">Called on each change notification, so the agent's loop passes sooner.</param>
    /// <param name="clock">Times the full rescans.</param>
    public FolderWatch(string workingDirectory, IEnumerable<string> artifactRoots, IObjectStore store, TimeSpan fullRescanInterval, TimeProvider clock,
        Action<string> warn, Action<string, string> unstorable, Action wake)
    {
        _roots.Add((Path.GetFullPath(workingDirectory), ""));
        foreach (var r in artifactRoots)
        {
            var full = Path.GetFullPath(r);
            _roots.Add((full, Path.GetFileName(full.TrimEnd(Path.DirectorySeparatorChar)) + "/"));
        }
        // A root inside another is watched as itself, not a second time under the outer one.
        _folders = new ModuleFolders(store, _roots.Select(r => (r.Root, "it is watched as a folder of its own")));
        _fullRescanInterval = fullRescanInterval;
        _clock = clock;
        Table = new FileTable(clock);
        _warn = warn;
        _unstorable = unstorable;
        _wake = wake;
    }

    /// <summary>Every file seen, in flat arrays (about 90 bytes a file): what the agent knows of it.</summary>
    public FileTable Table { get; }

    /// <summary>Files changed since their last upload (or never uploaded): the only ones a pass looks at.</summary>
    public HashSet<int> Pending { get; } = new();

    /// <summary>What may be read, once the roots exist (<see cref="Start"/>): nothing outside them, no special file.</summary>
    public ReadScope Scope { get; private set; } = null!;

    /// <summary>The script's working folder (the first root).</summary>
    public string WorkingDirectory => _roots[0].Root;

    /// <summary>How many folders were skipped (each said once).</summary>
    public int SkippedFolders => _reportedSkipped.Count;

    /// <summary>Creates the roots, and takes note of what is in them before the script starts (an artifact only once it changes).</summary>
    public void Start()
    {
        foreach (var (root, _) in _roots) Directory.CreateDirectory(root);
        Scope = new ReadScope(_roots.Select(r => r.Root), _folders);
        Scan(WholeRoots(), Table.Now, baseline: true);
    }

    /// <summary>
    /// Starts the change notifications; disposing the result stops them. A folder met twice before the
    /// start (a bind mount of a folder into itself) would send the notifications' own walk round
    /// without end: then, and where notifications cannot be had, every pass is a full rescan instead.
    /// </summary>
    public IDisposable Watch()
    {
        var watchers = new WatcherSet(_folderMetTwice ? Array.Empty<string>() : _roots.Select(r => r.Root), OnChanged, OnOverflow);
        _watching = watchers.Complete && !_folderMetTwice;
        return watchers;
    }

    /// <summary>
    /// Notices what changed since the last pass: what the notifications named, and the pending files
    /// again; every file of every root when <paramref name="final"/>, after an overflow, without
    /// notifications, and now and then for what no notification told of.
    /// </summary>
    public void Notice(bool final, uint tick)
    {
        string[] changed;
        bool overflowed;
        lock (_changed)
        {
            changed = _changed.ToArray();
            _changed.Clear();
            overflowed = _changesOverflowed;
            _changesOverflowed = false;
        }
        // After an overflow the next full pass comes soon, but never more often than ten times its own
        // length: a burst of writes costs at most a tenth of the time in rescans, and what it missed
        // is found by that pass (or the final one).
        if (overflowed) _fullPassRequested = true;
        var now = _clock.GetUtcNow();
        var fullDue = now >= _nextFullPass
            || (_fullPassRequested && now >= _lastFullPass + TimeSpan.FromTicks(Math.Max(TimeSpan.FromSeconds(2).Ticks, _lastFullPassTook.Ticks * 10)));
        if (final || !_watching || fullDue)
        {
            // Every file of every root: at the end, after a notification queue overflowed, where
            // notifications cannot be had, and now and then for what no notification told of.
            var started = _clock.GetTimestamp();
            Scan(WholeRoots(), tick, baseline: false);
            var took = _clock.GetElapsedTime(started);
            _lastFullPass = _clock.GetUtcNow();
            _nextFullPass = _lastFullPass + TimeSpan.FromTicks(Math.Max(_fullRescanInterval.Ticks, took.Ticks * 20));
            _lastFullPassTook = took;
            _fullPassRequested = false;
        }
        else
        {
            foreach (var path in changed) ObservePath(path, tick);
            // A file still settling is looked at again, notified or not.
            if (Pending.Count <= 10_000)
            {
                foreach (var i in Pending.ToArray()) Restat(i, tick);
            }
        }
    }

    private IEnumerable<(int Root, string Folder)> WholeRoots() => _roots.Select((r, i) => (i, r.Root));

    /// <summary>
    /// Takes note of every file under the given folders (each inside root <c>Root</c>), its size and
    /// time read as the folder is listed. Nothing is allocated per file: each path is spelled into
    /// one reused buffer and looked up in the table as it is (a full rescan of 1,000,000 files makes
    /// no garbage of a million strings).
    /// </summary>
    private void Scan(IEnumerable<(int Root, string Folder)> folders, uint now, bool baseline)
    {
        var options = new EnumerationOptions { RecurseSubdirectories = true, IgnoreInaccessible = true, AttributesToSkip = 0 };
        // Every folder walked, by device and inode: none is walked twice in a pass (a bind mount of a
        // folder into itself, two roots that are one folder).
        var walked = new WalkedFolders();
        foreach (var (r, folder) in folders)
        {
            var (root, prefix) = _roots[r];
            if (!Directory.Exists(folder) || !FirstVisit(folder, walked)) continue;
            if (_folders.IsInStore(folder))
            {
                // A root that is the store, or inside it, by a link: its records are never artifacts.
                if (_reportedSkipped.Add(folder)) _warn($"Skipped '{folder}': it is the store's own folder, or inside it (its records are not artifacts).");
                continue;
            }
            var index = r;
            // Entries name their folder without a trailing separator; what follows the root (and its separator) is the relative folder.
            var trimmed = Path.TrimEndingDirectorySeparator(root);
            var skip = trimmed.Length + (Path.EndsInDirectorySeparator(trimmed) ? 0 : 1);
            try
            {
                var files = new System.IO.Enumeration.FileSystemEnumerable<bool>(folder, (ref System.IO.Enumeration.FileSystemEntry e) =>
                {
                    var dir = e.Directory.Length > skip ? e.Directory[skip..] : ReadOnlySpan<char>.Empty;
                    var path = SpellPath(prefix, dir, e.FileName);
                    long length, ticks;
                    try { length = e.Length; ticks = e.LastWriteTimeUtc.UtcTicks; }
                    catch (Exception ex) when (ex is IOException or UnauthorizedAccessException) { return false; } // gone since the folder was listed
                    // A link is seen by its target's size and time, so a change of the target is noticed
                    // (where it leads is checked when it is read).
                    if ((e.Attributes & FileAttributes.ReparsePoint) != 0) TargetSizeAndTime(e.ToFullPath(), ref length, ref ticks);
                    Observe(path, index, length, ticks, now, baseline);
                    return true;
                }, options)
                {
                    ShouldIncludePredicate = (ref System.IO.Enumeration.FileSystemEntry e) => !e.IsDirectory,
                    // A link to a folder is never walked (its target, if captured, is walked as itself);
                    // the store's own folder, and the module's working and temporary folders, never are.
                    ShouldRecursePredicate = (ref System.IO.Enumeration.FileSystemEntry e) =>
                        (e.Attributes & FileAttributes.ReparsePoint) != 0 ? SkipFolderLink(e.ToFullPath())
                        : prefix.Length + e.Directory.Length - skip + 1 + e.FileName.Length > GridNames.MaxArtifactPathBytes ? SkipTooDeep(e.ToFullPath())
                        : ShouldWalk(e.ToFullPath()) && FirstVisit(e.ToFullPath(), walked),
                };
                foreach (var _ in files) { }
            }
            catch (DirectoryNotFoundException) { } // removed by the script meanwhile: what was stored stays stored
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                // What the walk found before it stands; the next pass walks again.
                if (_reportedSkipped.Add("walk:" + folder)) _warn($"'{folder}' could not be walked to its end: {ex.Message}");
            }
        }
    }

    /// <summary>Set once a walk has met a folder a second time (by device and inode).</summary>
    private bool _folderMetTwice;

    /// <summary>Whether this pass walks <paramref name="folder"/> for the first time (by device and inode, where they can be had).</summary>
    private bool FirstVisit(string folder, WalkedFolders walked)
    {
        if (walked.FirstVisit(folder)) return true;
        _folderMetTwice = true;
        if (_reportedSkipped.Add(folder)) _warn($"Skipped '{folder}': it is a folder already captured by another path (the same device and inode); no folder is walked twice.");
        return false;
    }

    /// <summary>A folder whose path is already longer than any artifact's may be: nothing in it could be stored.</summary>
    private bool SkipTooDeep(string folder)
    {
        if (_reportedSkipped.Add(folder)) _warn($"Skipped '{folder}': its path is longer than an artifact's may be ({GridNames.MaxArtifactPathBytes} bytes), so nothing in it can be stored.");
        return false;
    }

    /// <summary>A link to a folder, met in a walk: never followed, said once.</summary>
    private bool SkipFolderLink(string link)
    {
        if (_reportedSkipped.Add(link)) _warn($"Skipped '{link}': {Scope.FolderLinkProblem(link)}.");
        return false;
    }

    /// <summary>The size and time of a link's target; the link's own when it leads nowhere (reading it then says why).</summary>
    private static void TargetSizeAndTime(string link, ref long length, ref long ticks)
    {
        if (NativeFiles.Supported)
        {
            if (NativeFiles.TryStat(link, follow: true, out var target) == NativeFiles.Failure.None) (length, ticks) = (target.Length, target.LastWriteTicks);
            return;
        }
        try
        {
            if (File.ResolveLinkTarget(link, returnFinalTarget: true) is FileInfo { Exists: true } info) (length, ticks) = (info.Length, info.LastWriteTimeUtc.Ticks);
        }
        catch (IOException) { }
    }

    private char[] _pathBuffer = new char[1024];

    /// <summary>An artifact path (root prefix, relative folder, name; '/' between) in the reused buffer.</summary>
    private ReadOnlySpan<char> SpellPath(string prefix, ReadOnlySpan<char> dir, ReadOnlySpan<char> name)
    {
        var length = prefix.Length + dir.Length + (dir.IsEmpty ? 0 : 1) + name.Length;
        if (length > _pathBuffer.Length) _pathBuffer = new char[Math.Max(length, _pathBuffer.Length * 2)];
        var span = _pathBuffer.AsSpan(0, length);
        prefix.AsSpan().CopyTo(span);
        var at = prefix.Length;
        if (!dir.IsEmpty)
        {
            dir.CopyTo(span[at..]);
            if (Path.DirectorySeparatorChar != '/') span.Slice(at, dir.Length).Replace(Path.DirectorySeparatorChar, '/');
            at += dir.Length;
            span[at++] = '/';
        }
        name.CopyTo(span[at..]);
        return span;
    }

    private bool ShouldWalk(string folder)
    {
        if (_folders.WhySkipped(folder, out var otherPath) is not { } why) return true;
        if (otherPath) _folderMetTwice = true;
        if (_reportedSkipped.Add(folder)) _warn($"Skipped '{folder}': {why}.");
        return false;
    }

    /// <summary>The local path of a file, built only when it is needed (an upload, a name check).</summary>
    public string FullPathOf(int root, string path)
    {
        var (folder, prefix) = _roots[root];
        return Path.Join(folder, path.AsSpan(prefix.Length));
    }

    /// <summary>
    /// Takes note of one file as a pass found it: a new size or time marks it changed (pending) and
    /// restarts its settle time; with <paramref name="baseline"/> (before the script starts) it is only remembered.
    /// </summary>
    private void Observe(ReadOnlySpan<char> path, int root, long length, long ticks, uint now, bool baseline)
    {
        // A name whose bytes are not UTF-8 reads back with U+FFFD in it and cannot be opened by that name.
        if (path.Contains('\uFFFD') && !File.Exists(FullPathOf(root, path.ToString())))
        {
            if (!baseline) _unstorable(path.ToString(), "the file name is not valid UTF-8, so it cannot be read or stored by name; rename it");
            return;
        }
        var i = Table.FindOrAdd(path, (byte)root, out _);
        ref var s = ref Table[i];
        s.Root = (byte)root;
        if (s.Length == length && s.Ticks == ticks) return;
        s.Length = length;
        s.Ticks = ticks;
        if (baseline) return;
        s.SeenAt = now;
        s.Flags |= FileTable.SlotFlags.Dirty;
        Pending.Add(i);
    }

    /// <summary>A path a change notification named: the file itself, or every file of a folder that appeared.</summary>
    private void ObservePath(string fullPath, uint now)
    {
        // The innermost root it is under (a nested root is watched as itself).
        var root = -1;
        for (var r = 0; r < _roots.Count; r++)
        {
            var folder = Path.TrimEndingDirectorySeparator(_roots[r].Root);
            if (fullPath.Length > folder.Length && fullPath.StartsWith(folder, StringComparison.Ordinal) && fullPath[folder.Length] == Path.DirectorySeparatorChar
                && (root < 0 || folder.Length > _roots[root].Root.Length)) root = r;
        }
        if (root < 0) return;
        var top = Path.TrimEndingDirectorySeparator(_roots[root].Root);
        // Deeper than any artifact path may be: nothing there can be stored (a full rescan names the folder).
        if (_roots[root].Prefix.Length + fullPath.Length - top.Length - 1 > GridNames.MaxArtifactPathBytes) return;
        // Never inside a folder a rescan skips (the store's own, the module's).
        for (var dir = Path.GetDirectoryName(fullPath); dir is not null && dir.Length > top.Length; dir = Path.GetDirectoryName(dir))
        {
            if (_folders.WhySkipped(dir) is not null) return;
        }
        FileAttributes attributes;
        try { attributes = File.GetAttributes(fullPath); }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException) { return; } // removed since (what was stored stays stored), or not ours to look at
        if ((attributes & FileAttributes.Directory) != 0)
        {
            if ((attributes & FileAttributes.ReparsePoint) != 0) SkipFolderLink(fullPath);
            else if (ShouldWalk(fullPath)) Scan(new[] { (root, fullPath) }, now, baseline: false);
            return;
        }
        var rel = fullPath[(top.Length + 1)..];
        if (Path.DirectorySeparatorChar != '/') rel = rel.Replace(Path.DirectorySeparatorChar, '/');
        if (!SizeAndTime(fullPath, out var length, out var ticks)) return;
        Observe(_roots[root].Prefix + rel, root, length, ticks, now, baseline: false);
    }

    /// <summary>Looks at a pending file again: a new size or time restarts its settle time.</summary>
    private void Restat(int i, uint now)
    {
        var s = Table[i];
        if (!SizeAndTime(FullPathOf(s.Root, Table.PathOf(i)), out var length, out var ticks)) return; // the upload finds it gone
        if (length == s.Length && ticks == s.Ticks) return;
        ref var slot = ref Table[i];
        slot.Length = length;
        slot.Ticks = ticks;
        slot.SeenAt = now;
    }

    /// <summary>A file's size and time (a link's target's); false when it is gone or cannot be looked at.</summary>
    private static bool SizeAndTime(string fullPath, out long length, out long ticks)
    {
        length = ticks = -1;
        var info = new FileInfo(fullPath);
        try
        {
            if ((int)info.Attributes == -1) return false;
            (length, ticks) = (info.Length, info.LastWriteTimeUtc.Ticks);
            if ((info.Attributes & FileAttributes.ReparsePoint) != 0) TargetSizeAndTime(fullPath, ref length, ref ticks);
            return true;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException) { return false; }
    }

    /// <summary>A file done with for now (uploaded as it is, gone, or unstorable): off the pending list.</summary>
    public void Settle(int i)
    {
        Table[i].Flags &= ~FileTable.SlotFlags.Dirty;
        Pending.Remove(i);
    }

    private void OnChanged(string path)
    {
        lock (_changed)
        {
            if (_changed.Count < MaxChangedPaths) _changed.Add(path);
            else _changesOverflowed = true;
        }
        _wake();
    }

    private void OnOverflow()
    {
        lock (_changed) _changesOverflowed = true;
        _wake();
    }

    /// <summary>Change notifications for every root, by path; an overflow makes the next pass a full rescan.</summary>
    private sealed class WatcherSet : IDisposable
    {
        private readonly List<FileSystemWatcher> _watchers = new();
        public WatcherSet(IEnumerable<string> roots, Action<string> changed, Action overflowed)
        {
            Complete = true;
            foreach (var root in roots)
            {
                try
                {
                    var w = new FileSystemWatcher(root) { IncludeSubdirectories = true, InternalBufferSize = 64 * 1024 };
                    w.Changed += (_, e) => changed(e.FullPath);
                    w.Created += (_, e) => changed(e.FullPath);
                    w.Renamed += (_, e) => changed(e.FullPath);
                    w.Error += (_, _) => overflowed();
                    w.EnableRaisingEvents = true;
                    _watchers.Add(w);
                }
                catch (Exception ex) when (ex is IOException or ArgumentException)
                {
                    // Too many watches (inotify limits): every pass is then a full rescan.
                    Complete = false;
                }
            }
        }

        /// <summary>Whether every root is watched.</summary>
        public bool Complete { get; }

        public void Dispose() { foreach (var w in _watchers) w.Dispose(); }
    }
}
