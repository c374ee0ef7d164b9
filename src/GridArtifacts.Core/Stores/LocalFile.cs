using GridArtifacts.Core.Transfer;
using Microsoft.Win32.SafeHandles;

namespace GridArtifacts.Core.Stores;

/// <summary>
/// A local file open for sending: its handle, and its length and time as they were when it was
/// opened. Whatever sends it reads exactly <see cref="Length"/> bytes by offset (parts may be read
/// at once), never the path again: a file that grows meanwhile is sent as far as it was, never read
/// without end, and a link or file swapped in at its path is not what is read.
/// </summary>
public sealed class LocalFile : IDisposable
{
    public LocalFile(SafeFileHandle handle, string path)
        : this(handle, path, RandomAccess.GetLength(handle), File.GetLastWriteTimeUtc(handle))
    {
    }

    /// <summary>A file whose length and time the caller read from the open handle already.</summary>
    public LocalFile(SafeFileHandle handle, string path, long length, DateTime lastWriteTimeUtc)
    {
        Handle = handle;
        Path = path;
        Length = length;
        LastWriteTimeUtc = lastWriteTimeUtc;
    }

    /// <summary>Opens one of the module's own files (a log, a manifest segment) or a file a user named.</summary>
    public static LocalFile Open(string path) =>
        new(File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete), path);

    public SafeFileHandle Handle { get; }

    /// <summary>The path it was opened by, for messages.</summary>
    public string Path { get; }

    /// <summary>Its length when opened: what is sent.</summary>
    public long Length { get; }

    public DateTime LastWriteTimeUtc { get; }

    /// <summary>Whether the file has changed since it was opened (its length or time), as the open handle sees it.</summary>
    public bool ChangedSinceOpened(out long length, out DateTime lastWriteTimeUtc)
    {
        (length, lastWriteTimeUtc) = ChangedSince is { } look ? look(Handle) : (RandomAccess.GetLength(Handle), File.GetLastWriteTimeUtc(Handle));
        return length != Length || lastWriteTimeUtc != LastWriteTimeUtc;
    }

    /// <summary>How the length and time of an open file are read again in one call, where the system offers one (set by the opener).</summary>
    public Func<SafeFileHandle, (long, DateTime)>? ChangedSince { get; init; }

    /// <summary>
    /// The blocks of the transfer engine's memory pool that whatever sends this file reads it through
    /// (<see cref="RentBufferAsync"/>); null outside the engine: the shared array pool.
    /// </summary>
    public MemoryLease? Buffers { get; private init; }

    /// <summary>
    /// The same open file, read through the blocks of <paramref name="buffers"/>. It shares the handle:
    /// this file, not the copy, is disposed.
    /// </summary>
    public LocalFile ReadingThrough(MemoryLease buffers) =>
        new(Handle, Path, Length, LastWriteTimeUtc) { ChangedSince = ChangedSince, Buffers = buffers };

    /// <summary>
    /// A buffer to read the file through: a block of <see cref="Buffers"/> (waiting while the
    /// transfer's other workers hold them all), else an array of at least <paramref name="size"/>
    /// bytes from the shared pool. Disposing it gives it back.
    /// </summary>
    internal ValueTask<MemoryBlock> RentBufferAsync(int size, CancellationToken ct) =>
        Buffers is { } lease ? lease.TakeAsync(ct) : ValueTask.FromResult(MemoryBlock.Shared(size));

    /// <summary>A seekable stream of bytes <paramref name="offset"/> to <paramref name="offset"/> + <paramref name="length"/> (to <see cref="Length"/> when null).</summary>
    public Stream OpenRead(long offset = 0, long? length = null) => new Region(this, offset, length ?? Length - offset, owns: false);

    /// <summary>The whole file as a stream that closes the file when it is disposed.</summary>
    public Stream ToStream() => new Region(this, 0, Length, owns: true);

    public void Dispose() => Handle.Dispose();

    /// <summary>The SHA-256 of the file's bytes as far as its length when opened, lowercase hex.</summary>
    public Task<string> Sha256Async(CancellationToken ct) => Sha256Async(0, Length, ct);

    /// <summary>
    /// The SHA-256 of bytes <paramref name="offset"/> to <paramref name="offset"/> + <paramref name="length"/>,
    /// lowercase hex, read by offset through one buffer (<see cref="RentBufferAsync"/>: a block of the
    /// transfer's lease, else a shared one no larger than they are, a megabyte at most).
    /// </summary>
    public async Task<string> Sha256Async(long offset, long length, CancellationToken ct)
    {
        using var block = await RentBufferAsync((int)Math.Clamp(length, 4096, 1 << 20), ct).ConfigureAwait(false);
        var buffer = block.Array;
        using var hash = System.Security.Cryptography.IncrementalHash.CreateHash(System.Security.Cryptography.HashAlgorithmName.SHA256);
        for (long done = 0; done < length;)
        {
            var n = await RandomAccess.ReadAsync(Handle, buffer.AsMemory(0, (int)Math.Min(buffer.Length, length - done)), offset + done, ct).ConfigureAwait(false);
            if (n == 0) throw new FileShrankException(Path);
            hash.AppendData(buffer, 0, n);
            done += n;
        }
        return Convert.ToHexString(hash.GetHashAndReset()).ToLowerInvariant();
    }

    /// <summary>The SHA-256 of the file at <paramref name="path"/>, lowercase hex.</summary>
    public static async Task<string> Sha256Async(string path, CancellationToken ct)
    {
        using var file = Open(path);
        return await file.Sha256Async(ct).ConfigureAwait(false);
    }

    /// <summary>A part of the file, read by offset; one that became shorter meanwhile is an error, never a short body.</summary>
    private sealed class Region(LocalFile file, long start, long length, bool owns) : Stream
    {
        private long _position;

        public override bool CanRead => true;
        public override bool CanSeek => true;
        public override bool CanWrite => false;
        public override long Length => length;

        public override long Position
        {
            get => _position;
            set => _position = value is >= 0 ? value : throw new ArgumentOutOfRangeException(nameof(value));
        }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            var want = (int)Math.Min(buffer.Length, Math.Max(0, length - _position));
            if (want == 0) return 0;
            var n = RandomAccess.Read(file.Handle, buffer[..want], start + _position);
            return Advance(n);
        }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            var want = (int)Math.Min(buffer.Length, Math.Max(0, length - _position));
            if (want == 0) return 0;
            var n = await RandomAccess.ReadAsync(file.Handle, buffer[..want], start + _position, cancellationToken).ConfigureAwait(false);
            return Advance(n);
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        private int Advance(int n)
        {
            if (n == 0) throw new FileShrankException(file.Path);
            _position += n;
            return n;
        }

        public override long Seek(long offset, SeekOrigin origin) => Position = origin switch
        {
            SeekOrigin.Begin => offset,
            SeekOrigin.Current => _position + offset,
            _ => length + offset,
        };

        protected override void Dispose(bool disposing)
        {
            if (disposing && owns) file.Dispose();
            base.Dispose(disposing);
        }

        public override void Flush() { }
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}

/// <summary>A file that became shorter while it was read to be sent: it is sent again once it has settled.</summary>
public sealed class FileShrankException(string path)
    : IOException($"'{path}' became shorter while it was read; it is sent again once it has settled.");

public static class LocalFileStoreExtensions
{
    /// <summary>Writes the file at <paramref name="localPath"/> as an object (<see cref="IObjectStore.PutFileAsync"/>).</summary>
    public static async Task<string> PutFileAsync(this IObjectStore store, string key, string localPath, CancellationToken cancellationToken)
    {
        using var file = LocalFile.Open(localPath);
        return await store.PutFileAsync(key, file, cancellationToken).ConfigureAwait(false);
    }
}
