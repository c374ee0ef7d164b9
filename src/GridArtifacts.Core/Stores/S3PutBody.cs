using GridArtifacts.Core.Transfer;
using System.Security.Cryptography;

namespace GridArtifacts.Core.Stores;

/// <summary>
/// The body of a direct PUT (<see cref="S3Direct.PutAsync"/>): bytes of an open file and their
/// SHA-256, which the request signs. A body that fits one buffer (<see cref="LocalFile.RentBufferAsync"/>:
/// a block of the transfer's lease, a megabyte) is read once, by offset, into it, hashed, and sent
/// from it; a larger body is hashed through the buffer, which is then given back, and streamed from
/// the file (the second read comes from the page cache; the HTTP stack's own small copy buffer is
/// not the pool's). Disposed once the request has its answer: a server answers a PUT once it has
/// read the body, and an early refusal ends the connection.
/// </summary>
internal sealed class S3PutBody : IDisposable
{
    /// <summary>Bodies up to this size are read into memory once; 32 files in flight hold at most 32 MiB.</summary>
    public const int BufferedBytes = 1 << 20;

    private MemoryBlock? _buffer;

    private S3PutBody(HttpContent content, string sha256, MemoryBlock? buffer)
    {
        Content = content;
        Sha256 = sha256;
        _buffer = buffer;
    }

    public HttpContent Content { get; }

    /// <summary>The SHA-256 of the body, lowercase hex: what is signed, and what the manifest records for a whole file.</summary>
    public string Sha256 { get; }

    /// <summary>Bytes <paramref name="offset"/> to <paramref name="offset"/> + <paramref name="length"/> of the file, hashed.</summary>
    public static async Task<S3PutBody> ReadAsync(LocalFile file, long offset, long length, CancellationToken ct)
    {
        if (length <= BufferedBytes)
        {
            var block = await file.RentBufferAsync((int)Math.Max(length, 1), ct).ConfigureAwait(false);
            try
            {
                var buffer = block.Array;
                if (length <= buffer.Length)
                {
                    for (var read = 0; read < length;)
                    {
                        var n = await RandomAccess.ReadAsync(file.Handle, buffer.AsMemory(read, (int)length - read), offset + read, ct).ConfigureAwait(false);
                        if (n == 0) throw new FileShrankException(file.Path);
                        read += n;
                    }
                    var sha = Convert.ToHexString(SHA256.HashData(buffer.AsSpan(0, (int)length))).ToLowerInvariant();
                    return new S3PutBody(new ByteArrayContent(buffer, 0, (int)length), sha, block);
                }
            }
            catch
            {
                block.Dispose();
                throw;
            }
            block.Dispose(); // a block smaller than the body (never with the engine's 1 MiB blocks): streamed below
        }
        // Hashed a buffer at a time, then streamed from the file.
        var hash = await file.Sha256Async(offset, length, ct).ConfigureAwait(false);
        return new S3PutBody(new StreamContent(file.OpenRead(offset, length), 64 << 10), hash, null);
    }

    public void Dispose()
    {
        Content.Dispose();
        Interlocked.Exchange(ref _buffer, null)?.Dispose();
    }
}
