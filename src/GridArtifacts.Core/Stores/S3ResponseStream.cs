using System.Net;
using Amazon.Runtime;
using GridArtifacts.Model;

namespace GridArtifacts.Core.Stores;

/// <summary>
/// The body of a GET; disposing it releases the response and its connection. A read that fails
/// (reset, cut short) or stalls longer than <see cref="S3Store.ReadStallTimeout"/> is a transient GridException.
/// </summary>
internal sealed class S3ResponseStream : Stream
{
    private readonly IDisposable _response;
    private readonly Stream _inner;
    private readonly long _length;
    private readonly S3Store _store;
    private readonly string _key;
    private CancellationTokenSource? _stall;
    private CancellationToken _stallFor;
    public S3ResponseStream(IDisposable response, Stream inner, long length, S3Store store, string key)
    {
        _response = response;
        _inner = inner;
        _length = length;
        _store = store;
        _key = key;
    }
    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => _length;
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();
    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        // One stall timer per body, reset for each read (a 1 GiB body is tens of thousands of reads).
        if (_stall is null || _stallFor != cancellationToken || !_stall.TryReset())
        {
            _stall?.Dispose();
            _stall = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            _stallFor = cancellationToken;
        }
        _stall.CancelAfter(S3Store.ReadStallTimeout);
        try
        {
            return await _inner.ReadAsync(buffer, _stall.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new GridException(GridErrorKind.StoreUnavailable, "ReadStalled",
                $"Store '{_store.Display}': no data for '{_key}' in {S3Store.ReadStallTimeout.TotalSeconds:0} s.", _key) { IsTransient = true };
        }
        catch (Exception ex) when (ex is not OperationCanceledException && _store.Translate(ex, _key) is { } error)
        {
            throw error;
        }
    }
    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();
    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _response.Dispose();
            _stall?.Dispose();
        }
        base.Dispose(disposing);
    }
}
