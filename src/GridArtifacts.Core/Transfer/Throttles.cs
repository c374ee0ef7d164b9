namespace GridArtifacts.Core.Transfer;

/// <summary>A process-wide bytes-per-second cap: readers borrow time in proportion to what they read.</summary>
internal sealed class BandwidthLimiter
{
    private readonly object _gate = new();
    private long? _rate;
    private double _debtSeconds;
    private long _lastTicks = Environment.TickCount64;

    public long? Rate
    {
        get { lock (_gate) return _rate; }
        set { lock (_gate) { _rate = value; _debtSeconds = 0; _lastTicks = Environment.TickCount64; } }
    }

    /// <summary>Waits as long as <paramref name="bytes"/> take at the cap, shared fairly by every reader.</summary>
    public async ValueTask ConsumeAsync(int bytes, CancellationToken ct)
    {
        double wait;
        lock (_gate)
        {
            if (_rate is not { } rate || rate <= 0) return;
            var now = Environment.TickCount64;
            // Time that passed pays off debt; no credit beyond a 50 ms burst is kept.
            _debtSeconds = Math.Max(-0.05, _debtSeconds - (now - _lastTicks) / 1000.0);
            _lastTicks = now;
            _debtSeconds += (double)bytes / rate;
            wait = _debtSeconds;
        }
        if (wait > 0.001) await Task.Delay(TimeSpan.FromSeconds(wait), ct).ConfigureAwait(false);
    }
}

/// <summary>A counted budget of bytes (for buffers of large transfers), taken and given back whole.</summary>
internal sealed class MemoryBudget
{
    private readonly SemaphoreSlim _mib;
    // One taker at a time gathers its whole amount, so two takers never each hold half of what both need.
    private readonly SemaphoreSlim _taking = new(1, 1);
    public MemoryBudget(long bytes)
    {
        Units = (int)Math.Max(1, bytes >> 20);
        _mib = new SemaphoreSlim(Units);
    }

    public int Units { get; }

    public async ValueTask<IDisposable> TakeAsync(long bytes, CancellationToken ct)
    {
        var units = (int)Math.Clamp((bytes + (1 << 20) - 1) >> 20, 1, Units);
        await _taking.WaitAsync(ct).ConfigureAwait(false);
        var taken = 0;
        try
        {
            for (; taken < units; taken++) await _mib.WaitAsync(ct).ConfigureAwait(false);
        }
        catch
        {
            if (taken > 0) _mib.Release(taken);
            throw;
        }
        finally
        {
            _taking.Release();
        }
        return new Lease(_mib, units);
    }

    private sealed class Lease : IDisposable
    {
        private SemaphoreSlim? _s;
        private readonly int _units;
        public Lease(SemaphoreSlim s, int units) { _s = s; _units = units; }
        public void Dispose() { Interlocked.Exchange(ref _s, null)?.Release(_units); }
    }
}
