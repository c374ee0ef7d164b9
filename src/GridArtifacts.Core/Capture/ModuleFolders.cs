using GridArtifacts.Core.Stores;

namespace GridArtifacts.Core.Capture;

/// <summary>
/// The folders the module itself writes (a folder store, its home ~/.grid with the experiments'
/// working folders, its settings, its temporary folders), which are never artifacts: a folder
/// imported or watched that holds one of them skips it, with a warning that names it, so the
/// store's own records are never stored into the store.
/// </summary>
public sealed class ModuleFolders
{
    /// <summary>Where Start-GridRun makes the experiments' working folders unless told otherwise.</summary>
    public static string DefaultWorkRoot => Path.Combine(Home, "work");

    /// <summary>The module's own folder in the user's home (the default store and working folders).</summary>
    public static string Home => Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".grid");

    /// <summary>Temporary folders the module makes under the system's temporary folder, by name prefix.</summary>
    public static readonly string[] TempPrefixes = { "grid-logs-", "grid-copy-" };

    private readonly Dictionary<string, string> _excluded = new(StringComparer.Ordinal);
    /// <summary>The same folders by device and inode, where they can be had: a bind mount reaches one by any path.</summary>
    private readonly Dictionary<(ulong Device, ulong Inode), string> _identities = new();
    private readonly string _temp = Trim(Path.GetTempPath());
    private readonly string? _store;
    /// <summary>The store's folder with every link resolved (it may be reached through one).</summary>
    private readonly string? _storeReal;

    /// <summary>The module's folders, with the store being written to (when it is a folder) and any <paramref name="more"/>.</summary>
    public ModuleFolders(IObjectStore store, IEnumerable<(string Path, string Why)>? more = null)
    {
        if (store is ILocalFolder folder)
        {
            _store = Trim(Path.GetFullPath(folder.Root));
            _storeReal = NativeFiles.RealPath(_store) is { } real ? Trim(real) : null;
            Add(folder.Root, "it is the store's own folder (its records are not artifacts)");
        }
        Add(Home, "it is the module's own folder (the default store and the experiments' working folders)");
        Add(StoreSettings.ConfigFolder, "it holds the module's settings");
        foreach (var (path, why) in more ?? Array.Empty<(string, string)>()) Add(path, why);
    }

    /// <summary>
    /// A folder by the path given, by its real path (links resolved) and by its device and inode, so a
    /// link to it or a bind mount of it is known for what it is.
    /// </summary>
    private void Add(string path, string why)
    {
        _excluded.TryAdd(Trim(Path.GetFullPath(path)), why);
        if (NativeFiles.RealPath(path) is { } real) _excluded.TryAdd(Trim(real), why);
        if (NativeFiles.Supported && NativeFiles.TryStat(path, follow: true, out var status) == NativeFiles.Failure.None && status.IsDirectory)
            _identities.TryAdd((status.Device, status.Inode), why);
    }

    private static string Trim(string path) => Path.TrimEndingDirectorySeparator(path);

    /// <summary>Why a folder met inside a tree is skipped, or null when it is walked.</summary>
    public string? WhySkipped(string folder) => WhySkipped(folder, out _);

    /// <inheritdoc cref="WhySkipped(string)"/>
    /// <param name="otherPath">Set when it is one of these folders reached by another path (a bind mount).</param>
    public string? WhySkipped(string folder, out bool otherPath)
    {
        otherPath = false;
        var full = Trim(folder);
        if (_excluded.TryGetValue(full, out var why)) return why;
        var parent = Path.GetDirectoryName(full);
        if (parent is not null && Trim(parent) == _temp)
        {
            var name = Path.GetFileName(full);
            if (TempPrefixes.Any(p => name.StartsWith(p, StringComparison.Ordinal))) return "it is one of the module's temporary folders";
        }
        if (_identities.Count > 0 && NativeFiles.TryStat(full, follow: false, out var status) == NativeFiles.Failure.None && status.IsDirectory
            && _identities.TryGetValue((status.Device, status.Inode), out why))
        {
            otherPath = true;
            return why + ", reached here by another path (a bind mount)";
        }
        return null;
    }

    /// <summary>
    /// Whether <paramref name="path"/> is the folder store being written to, or inside it: by the path
    /// as given and by its real path, so a link to the store (or into it) is known for what it is.
    /// </summary>
    public bool IsInStore(string path)
    {
        if (_store is null) return false;
        var full = Trim(Path.GetFullPath(path));
        if (IsAtOrUnder(full, _store)) return true;
        return _storeReal is not null && NativeFiles.RealPath(full) is { } real && IsAtOrUnder(Trim(real), _storeReal);
    }

    /// <summary>Whether <paramref name="realPath"/>, a path with every link already resolved, is the folder store or inside it.</summary>
    public bool IsRealPathInStore(string realPath) =>
        _store is not null && (IsAtOrUnder(Trim(realPath), _store) || (_storeReal is not null && IsAtOrUnder(Trim(realPath), _storeReal)));

    private static bool IsAtOrUnder(string path, string folder) =>
        path == folder || path.StartsWith(folder + Path.DirectorySeparatorChar, StringComparison.Ordinal);
}
