using GridArtifacts.Core.Stores;

namespace GridArtifacts.Core.Capture;

/// <summary>
/// What capture may read: regular files whose real location (every link resolved) is inside one of
/// its roots and outside the module's own folders (<see cref="ModuleFolders"/>). A link whose target
/// lies inside a root is read as its target (a checkpoint's <c>last.ckpt</c> link arrives); one that
/// leads out of every root, into the store or the module's folders, or nowhere, is never read, nor is
/// a FIFO, socket or device ever opened. On Linux the checks are the kernel's, on the file actually
/// opened, so a link swapped in between a check and a read reads nothing outside; elsewhere they are
/// made on the resolved path just before the open.
/// </summary>
public sealed class ReadScope
{
    private readonly List<(string Given, string Real)> _roots = new();
    private readonly ModuleFolders _excluded;

    /// <param name="roots">The folders captured, which must exist.</param>
    /// <param name="excluded">The folders never read, wherever they are met.</param>
    public ReadScope(IEnumerable<string> roots, ModuleFolders excluded)
    {
        _excluded = excluded;
        foreach (var root in roots)
        {
            var given = Path.TrimEndingDirectorySeparator(Path.GetFullPath(root));
            _roots.Add((given, NativeFiles.RealPath(given) ?? given));
        }
    }

    /// <summary>The real path of root <paramref name="index"/>.</summary>
    public string RealRoot(int index) => _roots[index].Real;

    /// <summary>
    /// Opens <paramref name="path"/> for reading when it may be read. Null when it is gone (removed
    /// since it was seen), or when it may not be read, with <paramref name="skipped"/> saying why in
    /// words that name its target.
    /// </summary>
    public LocalFile? TryOpen(string path, out string? skipped)
    {
        skipped = null;
        if (NativeFiles.Supported)
        {
            var handle = NativeFiles.TryOpenRegular(path, real => WhyNotRead(real) is null, out var status, out var real, out var failure);
            if (handle is not null)
            {
                // Its length and time as looked at through the descriptor it was opened from: the same file.
                return new LocalFile(handle, path, status.Length, new DateTime(status.LastWriteTicks, DateTimeKind.Utc)) { ChangedSince = NativeFiles.SizeAndTime };
            }
            skipped = failure switch
            {
                NativeFiles.Failure.Gone when IsLink(path) => "it is a link that leads nowhere (its target does not exist)",
                NativeFiles.Failure.Gone => null,
                NativeFiles.Failure.Loop => "it is a link that leads round in a loop; not followed",
                // Not a passing failure: said once, and tried again only once the file changes.
                NativeFiles.Failure.Denied => "it cannot be read (permission denied)",
                NativeFiles.Failure.Other => throw new IOException($"'{path}' could not be looked at."),
                _ when !status.IsRegularFile => $"it is {status.Kind}{Via(path, real)}: only regular files are read, and this one is never opened",
                _ when real is null => "its real path is not valid UTF-8, so where it leads cannot be checked; it is not read",
                _ => $"{Describe(path, real)}: {WhyNotRead(real)}",
            };
            return null;
        }
        // Where the kernel cannot be asked about the open file: the resolved path, just before the open.
        if (!File.Exists(path)) return null;
        var resolved = NativeFiles.RealPath(path);
        if (resolved is null) return null;
        if (WhyNotRead(resolved) is { } why)
        {
            skipped = $"{Describe(path, resolved)}: {why}";
            return null;
        }
        return LocalFile.Open(path);
    }

    /// <summary>Why nothing at real path <paramref name="real"/> is read; null when it may be.</summary>
    public string? WhyNotRead(string real)
    {
        // The innermost root it is in: folders between it and the file may be the module's own.
        var root = -1;
        for (var r = 0; r < _roots.Count; r++)
        {
            if (IsInside(real, _roots[r].Real) && (root < 0 || _roots[r].Real.Length > _roots[root].Real.Length)) root = r;
        }
        if (root < 0) return "it leads outside the folders captured, and nothing outside them is read";
        // Wherever the roots are, the store's own records are never read (a root may be a link to the store).
        if (_excluded.IsRealPathInStore(real)) return "it leads into the store's own folder, whose records are not artifacts";
        for (var folder = Path.GetDirectoryName(real); folder is not null && folder.Length > _roots[root].Real.Length; folder = Path.GetDirectoryName(folder))
        {
            if (_excluded.WhySkipped(folder) is { } why) return $"it leads into '{folder}', and {why}";
        }
        return null;
    }

    /// <summary>
    /// What to say of a link to a folder met in a walk (folder links are never walked: a target inside
    /// a root is captured under its own path), or of a folder whose target cannot be found.
    /// </summary>
    public string FolderLinkProblem(string link)
    {
        var real = NativeFiles.RealPath(link);
        if (real is null) return "it is a link to a folder that cannot be reached (it leads nowhere or round in a loop); not followed";
        var linkFolder = Path.GetDirectoryName(Path.TrimEndingDirectorySeparator(link)) ?? "";
        var linkFolderReal = NativeFiles.RealPath(linkFolder) ?? linkFolder;
        if (IsInside(linkFolderReal, real) || linkFolderReal == real)
            return $"it is a link to '{real}', a folder that holds it (a loop); not followed";
        if (WhyNotRead(real) is { } why) return $"it is a link to '{real}': {why}";
        return $"it is a link to '{real}', whose files are captured under their own paths; not followed";
    }

    private static bool IsLink(string path)
    {
        try { return new FileInfo(path).LinkTarget is not null; }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException) { return false; }
    }

    private static bool IsInside(string path, string folder) =>
        path == folder || (path.Length > folder.Length && path.StartsWith(folder, StringComparison.Ordinal)
            && (path[folder.Length] == Path.DirectorySeparatorChar || folder.EndsWith(Path.DirectorySeparatorChar)));

    private static string Via(string path, string? real) =>
        real is not null && real != Path.GetFullPath(path) ? $" ('{real}', through a link)" : "";

    private static string Describe(string path, string? real) =>
        real is not null && real != Path.GetFullPath(path) ? $"it is a link to '{real}'" : "it is inside a folder never read";
}
