using GridArtifacts.Model;

namespace GridArtifacts.Core.Transfer;

/// <summary>
/// The memory transfers hold: a cap of bytes in blocks of one size, which every transfer of the
/// engine rents its file and part buffers from, in both directions. A rent is a <see cref="MemoryLease"/>
/// of several blocks, granted whole or not at all, in the order asked: a transfer that needs several
/// blocks never holds some while it waits for the rest, so two transfers never each hold half of
/// what both need. One that asks for more than the cap is granted the cap. Blocks are made when first
/// needed and kept for the next rent (the arrays made, in use and free, never exceed the cap once the
/// leases taken under a higher one are back); blocks no rent needed for a whole
/// <see cref="TrimPeriod"/> are let go.
///
/// <see cref="Capacity"/> changes the cap of this one pool in place: lowered, new rents wait until
/// enough is back; leases taken earlier stay valid and come back to the same pool.
/// </summary>
public sealed class MemoryPool
{
    /// <summary>How long a free block is kept when no rent needs it.</summary>
    public static readonly TimeSpan TrimPeriod = TimeSpan.FromSeconds(10);

    private readonly object _gate = new();
    private readonly LinkedList<Waiter> _waiters = new();
    private readonly Stack<byte[]> _free = new();
    private readonly ITimer _trim; // the pool keeps its timer; the timer holds the pool only weakly
    private long _capacity;
    private int _capBlocks;
    private int _outstanding; // blocks granted and not yet returned
    private int _highWater;
    private int _made; // arrays that exist: in use, or free in _free
    private int _leastFree; // the fewest free blocks since the last trim

    public MemoryPool(long capacity, int blockSize = TransferOptions.BufferSize, TimeProvider? clock = null)
    {
        BlockSize = blockSize > 0 ? blockSize : throw new ArgumentOutOfRangeException(nameof(blockSize));
        SetCapacityLocked(capacity);
        // The timer holds the pool weakly: a pool no one uses any more is collected, and its timer stops.
        var trimmer = new Trimmer(new WeakReference<MemoryPool>(this));
        _trim = trimmer.Timer = (clock ?? TimeProvider.System).CreateTimer(static s => ((Trimmer)s!).Tick(), trimmer, TrimPeriod, TrimPeriod);
    }

    /// <summary>Bytes of one block: each buffer a transfer holds is one block.</summary>
    public int BlockSize { get; }

    /// <summary>The cap in bytes (at least one block). Set: the same pool with a new cap; see the class's remarks.</summary>
    public long Capacity
    {
        get { lock (_gate) return _capacity; }
        set
        {
            lock (_gate)
            {
                SetCapacityLocked(value);
                while (_made > _capBlocks && _free.TryPop(out _)) _made--; // free blocks over a lowered cap go now
                _leastFree = Math.Min(_leastFree, _free.Count);
                GrantLocked();
            }
        }
    }

    /// <summary>Bytes rented now.</summary>
    public long RentedBytes { get { lock (_gate) return (long)_outstanding * BlockSize; } }

    /// <summary>The most bytes ever rented at once.</summary>
    public long HighWaterBytes { get { lock (_gate) return (long)_highWater * BlockSize; } }

    /// <summary>Bytes of the blocks that exist now, rented or kept free.</summary>
    public long AllocatedBytes { get { lock (_gate) return (long)_made * BlockSize; } }

    /// <summary>Rents waiting now.</summary>
    public int Waiting { get { lock (_gate) return _waiters.Count; } }

    /// <summary>
    /// Rents <paramref name="blocks"/> blocks (at most the cap's worth), waiting in order until they
    /// fit under the cap. A rent cancelled while it waits takes nothing; one granted as it is
    /// cancelled gives its blocks straight back.
    /// </summary>
    public async ValueTask<MemoryLease> RentAsync(int blocks, CancellationToken ct)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(blocks, 1);
        Waiter waiter;
        LinkedListNode<Waiter> node;
        lock (_gate)
        {
            var n = Math.Min(blocks, _capBlocks);
            if (_waiters.Count == 0 && _outstanding + n <= _capBlocks) return GrantLocked(n);
            waiter = new Waiter(blocks);
            node = _waiters.AddLast(waiter);
        }
        using (ct.Register(() =>
        {
            lock (_gate)
            {
                // Only a waiter not yet granted is cancelled; one granted already has its lease.
                if (node.List is null) return;
                _waiters.Remove(node);
                GrantLocked(); // the next one in line may fit now
            }
            waiter.TrySetCanceled(ct);
        }))
        {
            var lease = await waiter.Task.ConfigureAwait(false);
            if (ct.IsCancellationRequested)
            {
                lease.Dispose();
                ct.ThrowIfCancellationRequested();
            }
            return lease;
        }
    }

    /// <summary>Lets go of free blocks that no rent needed since the last trim.</summary>
    internal void Trim()
    {
        lock (_gate)
        {
            for (var i = 0; i < _leastFree && _free.TryPop(out _); i++) _made--;
            _leastFree = _free.Count;
        }
    }

    private void SetCapacityLocked(long capacity)
    {
        _capBlocks = (int)Math.Clamp(capacity / BlockSize, 1, int.MaxValue);
        _capacity = (long)_capBlocks * BlockSize;
    }

    private MemoryLease GrantLocked(int n)
    {
        _outstanding += n;
        _highWater = Math.Max(_highWater, _outstanding);
        var arrays = new byte[n][];
        var have = 0;
        for (; have < n && _free.TryPop(out var array); have++) arrays[have] = array;
        _leastFree = Math.Min(_leastFree, _free.Count);
        _made += n - have;
        // Made under the lock: a block is made once and used for many transfers, so this is rare.
        for (var i = have; i < n; i++) arrays[i] = GC.AllocateUninitializedArray<byte>(BlockSize);
        return new MemoryLease(this, arrays);
    }

    /// <summary>Grants the waiters in order, as far as each fits; the first that does not fit holds the rest back.</summary>
    private void GrantLocked()
    {
        while (_waiters.First is { } first)
        {
            var n = Math.Min(first.Value.Blocks, _capBlocks);
            if (_outstanding + n > _capBlocks) return;
            _waiters.RemoveFirst();
            if (!first.Value.TrySetResult(GrantLocked(n))) throw new InvalidOperationException("A memory rent was granted twice.");
        }
    }

    /// <summary>
    /// A lease of <paramref name="granted"/> blocks comes back with <paramref name="arrays"/>: kept free
    /// up to the cap, the rest let go (and any not handed back, which the pool then no longer counts).
    /// </summary>
    internal void Return(byte[][] arrays, int granted)
    {
        lock (_gate)
        {
            _outstanding -= granted;
            _made -= granted - arrays.Length;
            foreach (var array in arrays)
            {
                if (_made <= _capBlocks) _free.Push(array);
                else _made--;
            }
            GrantLocked();
        }
    }

    private sealed class Trimmer(WeakReference<MemoryPool> pool)
    {
        public ITimer? Timer { get; set; }

        public void Tick()
        {
            if (pool.TryGetTarget(out var target)) target.Trim();
            else Timer?.Dispose();
        }
    }

    private sealed class Waiter(int blocks) : TaskCompletionSource<MemoryLease>(TaskCreationOptions.RunContinuationsAsynchronously)
    {
        public int Blocks { get; } = blocks;
    }
}

/// <summary>
/// Blocks rented from a <see cref="MemoryPool"/> for one transfer, which its workers take one at a
/// time (<see cref="TakeAsync"/>) and give back when a file, part or range is done. Disposed, every
/// block goes back to the pool it came from, once.
/// </summary>
public sealed class MemoryLease : IDisposable
{
    private MemoryPool? _pool;
    private readonly byte[][] _arrays;
    private readonly Stack<byte[]> _idle;
    private readonly SemaphoreSlim _available;

    internal MemoryLease(MemoryPool pool, byte[][] arrays)
    {
        _pool = pool;
        _arrays = arrays;
        _idle = new Stack<byte[]>(arrays);
        _available = new SemaphoreSlim(arrays.Length);
    }

    /// <summary>Blocks in the lease: as many workers as this can hold a block at once.</summary>
    public int Count => _arrays.Length;

    /// <summary>Bytes of each block.</summary>
    public int BlockSize => _arrays[0].Length;

    /// <summary>One block of the lease, waiting while the transfer's other workers hold them all.</summary>
    public async ValueTask<MemoryBlock> TakeAsync(CancellationToken ct)
    {
        await _available.WaitAsync(ct).ConfigureAwait(false);
        byte[] array;
        lock (_idle)
        {
            ObjectDisposedException.ThrowIf(_pool is null, this);
            array = _idle.Pop();
        }
        return new MemoryBlock(array, this);
    }

    internal void Give(byte[] array)
    {
        lock (_idle) _idle.Push(array);
        _available.Release();
    }

    public void Dispose()
    {
        MemoryPool? pool;
        byte[][] back;
        lock (_idle)
        {
            pool = _pool;
            _pool = null;
            back = _idle.ToArray();
            _idle.Clear();
        }
        // A block still taken (never, when the workers are awaited first) is not kept by the pool.
        pool?.Return(back, _arrays.Length);
    }
}

/// <summary>
/// One buffer a transfer holds: a block of its lease, or (for a store used outside the engine) an
/// array from the shared pool. Disposing it gives it back, once.
/// </summary>
public sealed class MemoryBlock : IDisposable
{
    private byte[]? _array;
    private readonly MemoryLease? _lease;

    internal MemoryBlock(byte[] array, MemoryLease? lease)
    {
        _array = array;
        _lease = lease;
    }

    /// <summary>An array from <see cref="System.Buffers.ArrayPool{T}.Shared"/>, for code that runs outside the engine (no lease).</summary>
    internal static MemoryBlock Shared(int size) => new(System.Buffers.ArrayPool<byte>.Shared.Rent(size), null);

    public byte[] Array => _array ?? throw new ObjectDisposedException(nameof(MemoryBlock));

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _array, null) is not { } array) return;
        if (_lease is not null) _lease.Give(array);
        else System.Buffers.ArrayPool<byte>.Shared.Return(array);
    }
}
