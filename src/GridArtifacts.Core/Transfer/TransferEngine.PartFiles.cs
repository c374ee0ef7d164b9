using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using GridArtifacts.Core.Stores;
using GridArtifacts.Model;
using Microsoft.Win32.SafeHandles;

namespace GridArtifacts.Core.Transfer;

public sealed partial class TransferEngine
{
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
}
