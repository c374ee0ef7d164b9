using System.Security.Cryptography;
using Microsoft.Win32.SafeHandles;

namespace GridArtifacts.Core.Transfer;

/// <summary>
/// The SHA-256 of a ranged download, taken while it downloads: each range is hashed as soon as it
/// and every range before it are written (the hash must see the bytes in order), read back
/// through a block of the download's lease while the next ranges are still arriving. So the hash ends a moment
/// after the last range instead of a whole pass over the file later.
/// </summary>
internal sealed class RangeHash : IDisposable
{
    private readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
    private readonly SafeFileHandle _handle;
    private readonly MemoryLease _buffers;
    private readonly long _size, _partSize;
    private readonly bool[] _done;
    private readonly SemaphoreSlim _signal = new(0);
    private readonly CancellationTokenSource _stop;
    private readonly Task<string> _hashing;

    public RangeHash(SafeFileHandle handle, long size, long partSize, int parts, MemoryLease buffers, CancellationToken ct)
    {
        (_handle, _size, _partSize, _done, _buffers) = (handle, size, partSize, new bool[parts], buffers);
        _stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        _hashing = Task.Run(() => HashInOrderAsync(_stop.Token));
    }

    /// <summary>Range <paramref name="index"/> is on disk, whole.</summary>
    public void Done(int index)
    {
        lock (_done) _done[index] = true;
        _signal.Release();
    }

    /// <summary>The hash, once every range is done.</summary>
    public Task<string> ResultAsync() => _hashing;

    private async Task<string> HashInOrderAsync(CancellationToken ct)
    {
        for (var next = 0; next < _done.Length; next++)
        {
            while (!IsDone(next)) await _signal.WaitAsync(ct).ConfigureAwait(false);
            // A block of the download's lease for each range, given back between ranges: with a lease
            // of one block, the ranges' reads and the hash take turns.
            using var block = await _buffers.TakeAsync(ct).ConfigureAwait(false);
            var buffer = block.Array;
            var end = Math.Min(_size, (next + 1) * _partSize);
            for (var offset = next * _partSize; offset < end;)
            {
                var n = await RandomAccess.ReadAsync(_handle, buffer.AsMemory(0, (int)Math.Min(buffer.Length, end - offset)), offset, ct).ConfigureAwait(false);
                if (n == 0) throw new IOException($"The part file ended at {offset} of {_size} bytes while it was hashed.");
                _hash.AppendData(buffer, 0, n);
                offset += n;
            }
        }
        return Convert.ToHexString(_hash.GetHashAndReset()).ToLowerInvariant();
    }

    private bool IsDone(int index)
    {
        lock (_done) return _done[index];
    }

    public void Dispose()
    {
        // A download that failed stops the hashing; it is waited for, so nothing reads the part file after this.
        _stop.Cancel();
        try { _hashing.Wait(); }
        catch (AggregateException) { }
        _stop.Dispose();
        _signal.Dispose();
        _hash.Dispose();
    }
}
