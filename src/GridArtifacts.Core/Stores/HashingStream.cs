using System.Security.Cryptography;

namespace GridArtifacts.Core.Stores;

/// <summary>
/// A seekable read-only stream over another that takes the SHA-256 of its bytes as they are first
/// read, in order: a reader that reads it through, seeks back and reads it again (as the S3 SDK does,
/// once to sign the body and once to send it) has it hashed once. A read that skips ahead of what was
/// hashed leaves no hash (<see cref="Sha256"/> is null), never a wrong one.
/// </summary>
internal sealed class HashingStream : Stream
{
    private readonly Stream _inner;
    private readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
    private long _hashed;
    private bool _skipped;
    private string? _result;

    public HashingStream(Stream inner) => _inner = inner;

    /// <summary>The SHA-256 (lower-case hex) of the whole stream, once every byte has been read in order; else null.</summary>
    public string? Sha256
    {
        get
        {
            if (_result is null && !_skipped && _hashed == _inner.Length) _result = Convert.ToHexString(_hash.GetHashAndReset()).ToLowerInvariant();
            return _result;
        }
    }

    private void Saw(long position, ReadOnlySpan<byte> read)
    {
        if (position > _hashed) _skipped = true;
        else if (!_skipped && position + read.Length > _hashed)
        {
            _hash.AppendData(read[(int)(_hashed - position)..]);
            _hashed = position + read.Length;
        }
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        var position = _inner.Position;
        var n = _inner.Read(buffer);
        Saw(position, buffer[..n]);
        return n;
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        var position = _inner.Position;
        var n = await _inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
        Saw(position, buffer.Span[..n]);
        return n;
    }

    public override bool CanRead => true;
    public override bool CanSeek => true;
    public override bool CanWrite => false;
    public override long Length => _inner.Length;
    public override long Position { get => _inner.Position; set => _inner.Position = value; }
    public override long Seek(long offset, SeekOrigin origin) => _inner.Seek(offset, origin);
    public override void Flush() { }
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing) _hash.Dispose();
        base.Dispose(disposing);
    }
}
