using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using Microsoft.Win32.SafeHandles;

namespace GridArtifacts.Core.Capture;

/// <summary>
/// The few system calls .NET does not offer and capture needs to read a hostile folder safely: a
/// file's type before it is opened (a FIFO blocks an open, a device may act on one), where an open
/// file really is (links resolved by the kernel, not by comparing strings), and a folder's device
/// and inode (so no folder is walked twice). Linux only; elsewhere <see cref="Supported"/> is false
/// and callers fall back to what .NET can tell.
/// </summary>
internal static class NativeFiles
{
    public static bool Supported { get; } = OperatingSystem.IsLinux();

    // Flags of the generic Linux ABI (x86-64 and arm64 alike).
    private const int O_RDONLY = 0;
    private const int O_CLOEXEC = 0x80000;
    private const int O_PATH = 0x200000;
    private const int AT_FDCWD = -100;
    private const int AT_SYMLINK_NOFOLLOW = 0x100;
    private const int AT_EMPTY_PATH = 0x1000;
    private const uint STATX_BASIC_STATS = 0x7ff;
    private const int EPERM = 1, ENOENT = 2, EACCES = 13, ENOTDIR = 20, ELOOP = 40;

    /// <summary>Paths as the kernel gives them, decoded strictly: bytes that are not UTF-8 never pass for a name that is.</summary>
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    [DllImport("libc", SetLastError = true, EntryPoint = "open")]
    private static extern int Open([MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags);

    [DllImport("libc", SetLastError = true, EntryPoint = "close")]
    private static extern int Close(int fd);

    [DllImport("libc", SetLastError = true, EntryPoint = "statx")]
    private static extern int Statx(int dirfd, [MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags, uint mask, byte[] buffer);

    [DllImport("libc", SetLastError = true, EntryPoint = "mkdir")]
    private static extern int MkDir([MarshalAs(UnmanagedType.LPUTF8Str)] string path, uint mode);

    private const int EEXIST = 17;

    /// <summary>Makes a folder (mode 0777 less the umask, as .NET does); false when something of that name is there already.</summary>
    public static bool MakeDirectory(string path)
    {
        if (MkDir(path, 0x1ff) == 0) return true;
        var errno = Marshal.GetLastPInvokeError();
        if (errno == EEXIST) return false;
        throw new IOException($"Could not make the folder '{path}' (error {errno}).");
    }

    [DllImport("libc", SetLastError = true, EntryPoint = "readlink")]
    private static extern nint ReadLink([MarshalAs(UnmanagedType.LPUTF8Str)] string path, byte[] buffer, nint size);

    /// <summary>What a path is, as statx tells it.</summary>
    public readonly record struct Status(int Mode, ulong Device, ulong Inode, long Length, long LastWriteTicks, uint Links)
    {
        public bool IsRegularFile => (Mode & 0xF000) == 0x8000;
        public bool IsDirectory => (Mode & 0xF000) == 0x4000;

        /// <summary>What a file that is neither a regular file nor a folder is, in words.</summary>
        public string Kind => (Mode & 0xF000) switch
        {
            0x1000 => "a FIFO (named pipe)",
            0x2000 => "a character device",
            0x6000 => "a block device",
            0xC000 => "a socket",
            0xA000 => "a symbolic link",
            0x4000 => "a folder",
            _ => "not a regular file",
        };
    }

    /// <summary>Why a path could not be looked at.</summary>
    public enum Failure { None, Gone, Loop, Denied, Other }

    private static Failure FailureOf(int errno) => errno switch
    {
        ENOENT or ENOTDIR => Failure.Gone,
        ELOOP => Failure.Loop,
        EACCES or EPERM => Failure.Denied,
        _ => Failure.Other,
    };

    /// <summary>The length and last write time of an open file, in one call.</summary>
    public static (long Length, DateTime LastWriteTimeUtc) SizeAndTime(SafeFileHandle handle)
    {
        var buffer = new byte[256];
        var added = false;
        handle.DangerousAddRef(ref added);
        try
        {
            if (Statx((int)handle.DangerousGetHandle(), "", AT_EMPTY_PATH, STATX_BASIC_STATS, buffer) != 0)
                throw new IOException($"The file could not be looked at (error {Marshal.GetLastPInvokeError()}).");
        }
        finally
        {
            if (added) handle.DangerousRelease();
        }
        var status = Read(buffer);
        return (status.Length, new DateTime(status.LastWriteTicks, DateTimeKind.Utc));
    }

    /// <summary>The status of <paramref name="path"/>, the link itself when <paramref name="follow"/> is false.</summary>
    public static Failure TryStat(string path, bool follow, out Status status)
    {
        var buffer = new byte[256];
        if (Statx(AT_FDCWD, path, follow ? 0 : AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS, buffer) != 0)
        {
            status = default;
            return FailureOf(Marshal.GetLastPInvokeError());
        }
        status = Read(buffer);
        return Failure.None;
    }

    private static Status Read(byte[] b)
    {
        var links = BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(16));
        var mode = BinaryPrimitives.ReadUInt16LittleEndian(b.AsSpan(28));
        var inode = BinaryPrimitives.ReadUInt64LittleEndian(b.AsSpan(32));
        var size = BinaryPrimitives.ReadInt64LittleEndian(b.AsSpan(40));
        var mtimeSeconds = BinaryPrimitives.ReadInt64LittleEndian(b.AsSpan(112));
        var mtimeNanos = BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(120));
        var device = ((ulong)BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(136)) << 32) | BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(140));
        var ticks = DateTime.UnixEpoch.Ticks + mtimeSeconds * TimeSpan.TicksPerSecond + mtimeNanos / 100;
        return new Status(mode, device, inode, size, ticks, links);
    }

    /// <summary>
    /// Opens <paramref name="path"/> (links followed) for reading only if it is a regular file whose
    /// real location <paramref name="allowed"/> accepts; nothing else is ever opened for reading (a
    /// FIFO or a device is only looked at). The location is the kernel's, of the very file opened,
    /// so a link swapped in meanwhile changes nothing. Returns the handle, or null with what it is
    /// (<paramref name="status"/>, <paramref name="realPath"/>) and why not (<paramref name="failure"/>).
    /// </summary>
    public static SafeFileHandle? TryOpenRegular(string path, Func<string, bool> allowed, out Status status, out string? realPath, out Failure failure)
    {
        status = default;
        realPath = null;
        var at = Open(path, O_PATH | O_CLOEXEC);
        if (at < 0)
        {
            failure = FailureOf(Marshal.GetLastPInvokeError());
            return null;
        }
        try
        {
            var buffer = new byte[256];
            if (Statx(at, "", AT_EMPTY_PATH, STATX_BASIC_STATS, buffer) != 0)
            {
                failure = FailureOf(Marshal.GetLastPInvokeError());
                return null;
            }
            status = Read(buffer);
            failure = Failure.None;
            if (status.Links == 0) { failure = Failure.Gone; return null; } // removed since
            var self = "/proc/self/fd/" + at.ToString(System.Globalization.CultureInfo.InvariantCulture);
            realPath = ReadLinkText(self);
            if (!status.IsRegularFile || realPath is null || !allowed(realPath)) return null;
            // Opened again through the descriptor: the same file, whatever its path names now.
            var fd = Open(self, O_RDONLY | O_CLOEXEC);
            if (fd < 0)
            {
                var errno = Marshal.GetLastPInvokeError();
                failure = FailureOf(errno);
                if (failure == Failure.Other) throw new IOException($"'{path}' could not be opened (error {errno}).");
                return null;
            }
            return new SafeFileHandle(fd, ownsHandle: true);
        }
        finally
        {
            Close(at);
        }
    }

    /// <summary>The target of a link as text, or null.</summary>
    private static string? ReadLinkText(string path)
    {
        for (var size = 512; size <= 1 << 16; size *= 4)
        {
            var buffer = new byte[size];
            var n = ReadLink(path, buffer, size);
            if (n < 0) return null;
            if (n < size)
            {
                try { return StrictUtf8.GetString(buffer, 0, (int)n); }
                catch (DecoderFallbackException) { return null; }
            }
        }
        return null;
    }

    /// <summary>
    /// The real path of <paramref name="path"/>: every link on the way resolved, by the kernel; null
    /// when it does not exist or leads nowhere.
    /// </summary>
    public static string? RealPath(string path)
    {
        if (!Supported)
        {
            try
            {
                var full = Path.GetFullPath(path);
                var target = new FileInfo(full).LinkTarget is not null ? File.ResolveLinkTarget(full, returnFinalTarget: true)?.FullName : full;
                return target is not null && Path.Exists(target) ? Path.TrimEndingDirectorySeparator(target) : null;
            }
            catch (IOException) { return null; }
        }
        var at = Open(path, O_PATH | O_CLOEXEC);
        if (at < 0) return null;
        try { return ReadLinkText("/proc/self/fd/" + at.ToString(System.Globalization.CultureInfo.InvariantCulture)); }
        finally { Close(at); }
    }
}

/// <summary>The folders one walk has entered, by device and inode (where they can be had): none is entered twice.</summary>
internal sealed class WalkedFolders
{
    private readonly HashSet<(ulong, ulong)> _seen = new();

    /// <summary>True the first time <paramref name="folder"/> (by its identity) is met; true too where identities cannot be had.</summary>
    public bool FirstVisit(string folder) =>
        !NativeFiles.Supported || NativeFiles.TryStat(folder, follow: true, out var status) != NativeFiles.Failure.None || _seen.Add((status.Device, status.Inode));
}
