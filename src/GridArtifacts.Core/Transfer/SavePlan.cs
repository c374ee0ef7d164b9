using GridArtifacts.Core.Stores;
using GridArtifacts.Model;

namespace GridArtifacts.Core.Transfer;

/// <summary>
/// What Save-GridArtifact does with a set of artifacts, decided before anything moves: where each
/// goes (<c>&lt;root&gt;/&lt;run&gt;/&lt;exp&gt;/&lt;path&gt;</c>), which are refused (a name that cannot be
/// a local path, a file where another artifact needs a folder), whether the destination can take
/// them at all; then the download, stopped at the first error every other file would meet too.
/// </summary>
public sealed class SavePlan
{
    private SavePlan(string root, List<SaveItem> items, List<GridException> refused)
    {
        Root = root;
        Items = items;
        Refused = refused;
    }

    /// <summary>The destination folder (a full path).</summary>
    public string Root { get; }

    /// <summary>The artifacts to save, each with its local path.</summary>
    public IReadOnlyList<SaveItem> Items { get; }

    /// <summary>The artifacts that are not saved, one error each (UnsafePath and the like, PathConflict).</summary>
    public IReadOnlyList<GridException> Refused { get; }

    public long Bytes => Items.Sum(i => i.Artifact.Size);

    /// <summary>Plans saving <paramref name="artifacts"/> under <paramref name="root"/>.</summary>
    public static SavePlan For(string root, IEnumerable<GridArtifact> artifacts)
    {
        var items = new List<SaveItem>();
        var refused = new List<GridException>();
        foreach (var a in artifacts)
        {
            try
            {
                items.Add(new SaveItem(a, GridNames.LocalPathFor(root, a.Run, a.Experiment, a.Path)) { Root = root });
            }
            catch (GridException ex)
            {
                refused.Add(ex);
            }
        }
        return new SavePlan(root, WithoutPathConflicts(items, root, refused), refused);
    }

    /// <summary>
    /// A bucket can hold keys 'a' and 'a/b' in one experiment; a disk cannot hold a file and a folder
    /// of one name. The folder wins: its files are saved, and the file of the same name is refused
    /// with a PathConflict error (before anything moves, so the outcome does not depend on order).
    /// </summary>
    private static List<SaveItem> WithoutPathConflicts(List<SaveItem> items, string root, List<GridException> refused)
    {
        var comparer = OperatingSystem.IsLinux() ? StringComparer.Ordinal : StringComparer.OrdinalIgnoreCase;
        var folders = new HashSet<string>(comparer);
        var fullRoot = Path.GetFullPath(root);
        foreach (var item in items)
        {
            for (var d = Path.GetDirectoryName(item.LocalPath); d is not null && d.Length > fullRoot.Length && folders.Add(d); d = Path.GetDirectoryName(d)) { }
        }
        var kept = new List<SaveItem>(items.Count);
        foreach (var item in items)
        {
            if (!folders.Contains(item.LocalPath)) { kept.Add(item); continue; }
            var a = item.Artifact;
            refused.Add(new GridException(GridErrorKind.AlreadyExists, "PathConflict",
                $"'{a}' was not saved: {GridNames.ExperimentId(a.Run, a.Experiment)} also has artifacts under '{a.Path}/', and a disk cannot hold a file and a folder of one name at '{item.LocalPath}'. " +
                $"The artifacts under '{a.Path}/' are saved; to get this one, save it alone to another -Destination.", a));
        }
        return kept;
    }

    /// <summary>What the save would do (-WhatIf): files and bytes to fetch, files already up to date (all fetched with <paramref name="force"/>).</summary>
    public Task<(int Fetch, long FetchBytes, int UpToDate)> PreviewAsync(bool force, Func<string, GridCatalog> openStore, CancellationToken ct) => TransferEngine.PlanAsync(Items, force, openStore, ct);

    /// <summary>
    /// Refuses a destination that no file of the plan could be saved to: a file where the folder
    /// should be (or on its way), a folder that cannot be made or written (one byte is written and
    /// removed), or too little free space for the bytes still to fetch (files already there at their
    /// size are not counted). Folders made for the check are removed again when it fails.
    /// </summary>
    /// <exception cref="GridException">DestinationNotFolder, DestinationNotWritable or DestinationDiskFull: nothing was saved.</exception>
    public void CheckDestination()
    {
        var root = Root;
        var full = Path.GetFullPath(root);
        var made = new List<string>();
        for (var p = full; p is not null && !Directory.Exists(p); p = Path.GetDirectoryName(p))
        {
            if (File.Exists(p))
            {
                throw new GridException(GridErrorKind.WriteFailed, "DestinationNotFolder",
                    $"Nothing was saved: '{root}' cannot be saved into, because '{p}' is a file, not a folder. Give -Destination a folder (it is made when missing).", root);
            }
            made.Add(p);
        }
        try
        {
            Directory.CreateDirectory(full);
            var probe = Path.Combine(full, ".grid-probe-" + Guid.NewGuid().ToString("N"));
            using var file = new FileStream(probe, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1, FileOptions.DeleteOnClose);
            file.WriteByte(0);
            file.Flush(flushToDisk: true);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            var diskFull = ex is IOException io && IsDiskFull(io);
            Remove(made);
            throw new GridException(ex is UnauthorizedAccessException ? GridErrorKind.AccessDenied : GridErrorKind.WriteFailed,
                diskFull ? "DestinationDiskFull" : "DestinationNotWritable",
                $"Nothing was saved: '{root}' cannot be written ({ex.Message}). Free space or make it writable, or give another -Destination.", root, ex);
        }

        var fetch = Items.Where(i => !(new FileInfo(i.LocalPath) is { Exists: true } f && f.Length == i.Artifact.Size)).ToList();
        var need = fetch.Sum(i => i.Artifact.Size);
        long free;
        try
        {
            var drive = new DriveInfo(full);
            // A file system that reports no size at all (some network and virtual ones) is not judged by it.
            if (drive.TotalSize <= 0) return;
            free = drive.AvailableFreeSpace;
        }
        catch (Exception ex) when (ex is IOException or ArgumentException or UnauthorizedAccessException)
        {
            return;
        }
        if (need <= free) return;
        Remove(made);
        throw new GridException(GridErrorKind.WriteFailed, "DestinationDiskFull",
            $"Nothing was saved: '{root}' has {SizeText.Format(free)} free, and the {fetch.Count} artifact(s) to fetch need {SizeText.Format(need)}. " +
            "Free space, or save fewer (-Path, -Exclude), or give another -Destination.", root);

        static void Remove(List<string> folders)
        {
            foreach (var f in folders) // deepest first
            {
                try { Directory.Delete(f, recursive: false); }
                catch (Exception ex) when (ex is IOException or UnauthorizedAccessException) { return; }
            }
        }
    }

    /// <summary>
    /// Downloads the plan's items through the process's engine. A destination that fills up (or turns
    /// read-only) fails every file after it the same way: the first such error stops the save and is
    /// thrown (DestinationDiskFull or DestinationNotWritable, saying how many files were saved whole),
    /// instead of one error per file still to come. Other errors go to <paramref name="onError"/>.
    /// </summary>
    public async Task DownloadAsync(Func<string, GridCatalog> openStore, bool force, int throttleLimit, TransferProgress progress,
        Action<GridSaveResult> onDone, Action<GridException> onError, CancellationToken ct)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        GridException? fatal = null;
        var saved = 0;
        try
        {
            await TransferEngine.Shared.DownloadAsync(Items, openStore, force, throttleLimit, progress,
                r =>
                {
                    if (r.Action != GridSaveAction.Skipped) Interlocked.Increment(ref saved);
                    onDone(r);
                },
                e =>
                {
                    if (!IsDestinationWide(e)) onError(e);
                    else if (Interlocked.CompareExchange(ref fatal, e, null) is null) stop.Cancel();
                },
                stop.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (fatal is not null && !ct.IsCancellationRequested)
        {
            // Stopped here, for the error below; the files in flight removed their part files.
        }
        if (fatal is null) return;
        var diskFull = IsDiskFull(fatal);
        var cause = diskFull ? "the disk is full" : fatal.InnerException?.Message ?? fatal.Message;
        var file = (fatal.Target as GridArtifact)?.Path;
        throw new GridException(GridErrorKind.WriteFailed, diskFull ? "DestinationDiskFull" : "DestinationNotWritable",
            $"Saving to '{Root}' stopped: {cause}{(file is null ? "" : $" ('{file}' was not written)")}. {saved} file(s) were saved whole before that; the rest were not started. " +
            "Free space (or give another -Destination) and run the command again: files already saved are skipped.", Root, fatal);
    }

    /// <summary>A write error that every other file of the save would meet too: a full or read-only file system.</summary>
    public static bool IsDestinationWide(GridException e) => IsDiskFull(e) || e.InnerException is IOException { HResult: ReadOnlyFileSystem };

    /// <summary>A file that was not written because its disk is full (the engine's DestinationDiskFull).</summary>
    private static bool IsDiskFull(GridException e) => e.InnerException is IOException io && IsDiskFull(io);

    private static bool IsDiskFull(IOException ex) => FileSystemStore.IsDiskFull(ex);

    private const int ReadOnlyFileSystem = 30; // EROFS
}
