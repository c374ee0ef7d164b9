namespace GridArtifacts.Core.Transfer;

/// <summary>A process-wide bytes-per-second cap: readers borrow time in proportion to what they read, on <paramref name="clock"/> (the system's unless given).</summary>
internal sealed class BandwidthLimiter(TimeProvider? clock = null)
{
    private readonly TimeProvider _clock = clock ?? TimeProvider.System;
    private readonly object _gate = new();
    private long? _rate;
    private double _debtSeconds;
    private long _last; // set with the rate: no time is counted before there is a cap

    public long? Rate
    {
        get { lock (_gate) return _rate; }
        set { lock (_gate) { _rate = value; _debtSeconds = 0; _last = _clock.GetTimestamp(); } }
    }

    /// <summary>Waits as long as <paramref name="bytes"/> take at the cap, shared fairly by every transfer (reads as their bytes arrive, writes as each request is sent).</summary>
    public async ValueTask ConsumeAsync(long bytes, CancellationToken ct)
    {
        double wait;
        lock (_gate)
        {
            if (_rate is not { } rate || rate <= 0) return;
            var now = _clock.GetTimestamp();
            // Time that passed pays off debt; no credit beyond a 50 ms burst is kept.
            _debtSeconds = Math.Max(-0.05, _debtSeconds - _clock.GetElapsedTime(_last, now).TotalSeconds);
            _last = now;
            _debtSeconds += (double)bytes / rate;
            wait = _debtSeconds;
        }
        if (wait > 0.001) await Task.Delay(TimeSpan.FromSeconds(wait), _clock, ct).ConfigureAwait(false);
    }
}

/// <summary>
/// A cap on requests in flight whose limit can change while requests are in flight: one count of
/// holders and one limit, so a request taken under the old limit is given back to the same count and
/// the cap never grows past what was set. Waiters are served in order.
/// </summary>
internal sealed class ConcurrencyLimiter
{
    private readonly object _gate = new();
    private readonly LinkedList<TaskCompletionSource<bool>> _waiters = new();
    private readonly TimeProvider _clock;
    private int _limit;
    private int _inFlight;
    // Adaptive: the window the server allows now, at most the limit. It halves when the server
    // throttles (503 SlowDown, 429, refused connections), at most once per window of requests, and
    // grows by one after each window of requests that succeed (additive increase, multiplicative
    // decrease, as TCP does), so a throttling server or prefix is not hammered and a recovered one is
    // used fully again.
    private int _window;
    private int _successes;
    private long _requestsSinceDecrease;
    private long? _lastDecrease;

    public ConcurrencyLimiter(int limit, TimeProvider? clock = null)
    {
        _limit = _window = Math.Max(1, limit);
        _clock = clock ?? TimeProvider.System;
    }

    public int Limit
    {
        get { lock (_gate) return _limit; }
        set
        {
            lock (_gate)
            {
                _limit = _window = Math.Max(1, value);
                WakeLocked();
            }
        }
    }

    /// <summary>Requests the server allows in flight now: the limit, or less while it throttles.</summary>
    public int Window { get { lock (_gate) return _window; } }

    /// <summary>Times the window was halved (tests and summaries).</summary>
    public int Decreases { get; private set; }

    /// <summary>A request ended well: after a window's worth, the window grows by one, up to the limit.</summary>
    public void Succeeded()
    {
        lock (_gate)
        {
            _requestsSinceDecrease++;
            if (_window >= _limit || ++_successes < _window) return;
            _successes = 0;
            _window++;
            WakeLocked();
        }
    }

    /// <summary>The server throttled a request: the window halves, once for the requests already in flight under it.</summary>
    public void Throttled()
    {
        lock (_gate)
        {
            var now = _clock.GetTimestamp();
            // Requests started under the old window fail together: one halving for them all, unless a
            // window's worth of requests has gone by or a second has passed.
            if (_lastDecrease is { } last && _requestsSinceDecrease < _window && _clock.GetElapsedTime(last, now) < TimeSpan.FromSeconds(1)) return;
            _window = Math.Max(1, _window / 2);
            _successes = 0;
            _requestsSinceDecrease = 0;
            _lastDecrease = now;
            Decreases++;
        }
    }

    /// <summary>Requests holding a place now (never more than the limit once those taken under a higher one are back).</summary>
    public int InFlight { get { lock (_gate) return _inFlight; } }

    public async ValueTask<Lease> AcquireAsync(CancellationToken ct)
    {
        TaskCompletionSource<bool> waiter;
        LinkedListNode<TaskCompletionSource<bool>> node;
        lock (_gate)
        {
            if (_inFlight < _window && _waiters.Count == 0)
            {
                _inFlight++;
                return new Lease(this);
            }
            waiter = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
            node = _waiters.AddLast(waiter);
        }
        using (ct.Register(() =>
        {
            lock (_gate)
            {
                // Only a waiter not yet handed a place is cancelled; one already woken keeps its place.
                if (node.List is null) return;
                _waiters.Remove(node);
            }
            waiter.TrySetCanceled(ct);
        }))
        {
            await waiter.Task.ConfigureAwait(false);
        }
        return new Lease(this);
    }

    private void Release()
    {
        lock (_gate)
        {
            _inFlight--;
            WakeLocked();
        }
    }

    private void WakeLocked()
    {
        while (_inFlight < _window && _waiters.First is { } first)
        {
            _waiters.RemoveFirst();
            _inFlight++;
            first.Value.TrySetResult(true);
        }
    }

    /// <summary>One place; disposing it gives the place back, once.</summary>
    public struct Lease : IDisposable
    {
        private ConcurrencyLimiter? _owner;
        internal Lease(ConcurrencyLimiter owner) => _owner = owner;
        public void Dispose() => Interlocked.Exchange(ref _owner, null)?.Release();
    }
}
