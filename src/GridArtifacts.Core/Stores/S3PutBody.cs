using System.Buffers;
using System.Security.Cryptography;

namespace GridArtifacts.Core.Stores;

/// <summary>
/// The body of a direct PUT (<see cref="S3Direct.PutAsync"/>): bytes of an open file and their
/// SHA-256, which the request signs. Up to <see cref="BufferedBytes"/> are read once, by offset, into
/// a buffer from the shared pool, hashed, and sent from it; a larger body is hashed, then streamed
/// from the file (the second read comes from the page cache). Disposed once the request has its
/// answer: a server answers a PUT once it has read the body, and an early refusal ends the connection.
/// </summary>
internal sealed class S3PutBody : IDisposable
{
    /// <summary>Bodies up to this size are read into memory once; 32 files in flight hold at most 32 MiB.</summary>
    public const int BufferedBytes = 1 << 20;

    private byte[]? _rented;

    private S3PutBody(HttpContent content, string sha256, byte[]? rented)
    {
        Content = content;
        Sha256 = sha256;
        _rented = rented;
    }

    public HttpContent Content { get; }

    /// <summary>The SHA-256 of the body, lowercase hex: what is signed, and what the manifest records for a whole file.</summary>
    public string Sha256 { get; }

    /// <summary>Bytes <paramref name="offset"/> to <paramref name="offset"/> + <paramref name="length"/> of the file, hashed.</summary>
    public static async Task<S3PutBody> ReadAsync(LocalFile file, long offset, long length, CancellationToken ct)
    {
        if (length <= BufferedBytes)
        {
            var buffer = ArrayPool<byte>.Shared.Rent((int)Math.Max(length, 1));
            try
            {
                for (var read = 0; read < length;)
                {
                    var n = await RandomAccess.ReadAsync(file.Handle, buffer.AsMemory(read, (int)length - read), offset + read, ct).ConfigureAwait(false);
                    if (n == 0) throw new FileShrankException(file.Path);
                    read += n;
                }
                var sha = Convert.ToHexString(SHA256.HashData(buffer.AsSpan(0, (int)length))).ToLowerInvariant();
                return new S3PutBody(new ByteArrayContent(buffer, 0, (int)length), sha, buffer);
            }
            catch
            {
                ArrayPool<byte>.Shared.Return(buffer);
                throw;
            }
        }
        // Hashed a pooled megabyte at a time, then streamed from the file.
        var hash = await file.Sha256Async(offset, length, ct).ConfigureAwait(false);
        return new S3PutBody(new StreamContent(file.OpenRead(offset, length), 64 << 10), hash, null);
    }

    public void Dispose()
    {
        Content.Dispose();
        if (Interlocked.Exchange(ref _rented, null) is { } buffer) ArrayPool<byte>.Shared.Return(buffer);
    }
}
