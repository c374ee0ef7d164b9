namespace GridArtifacts.Core.Capture;

/// <summary>
/// A signal that stops the agent (SIGTERM, SIGINT) and the time it leaves: the first signal is the one
/// recorded; from it, the end (final sync, logs, sealed manifest, status) has the stop budget, after
/// which what is still uploading is cut off. Callable from any thread, at any time.
/// </summary>
internal sealed class StopSignal : IDisposable
{
    private readonly TimeProvider _clock;
    private readonly TimeSpan? _budget;
    private string? _signal;
    private readonly CancellationTokenSource _signalled = new();
    private readonly CancellationTokenSource _budgetOver;
    /// <summary>When the stop budget runs out (UTC ticks), or 0.</summary>
    private long _budgetEnds;

    public StopSignal(TimeProvider clock, TimeSpan? budget)
    {
        _clock = clock;
        _budget = budget;
        _budgetOver = new CancellationTokenSource(Timeout.InfiniteTimeSpan, clock);
    }

    /// <summary>The first signal, or null.</summary>
    public string? Signal => Volatile.Read(ref _signal);

    /// <summary>Cancelled by the first signal: it stops the agent as its caller's token does.</summary>
    public CancellationToken Signalled => _signalled.Token;

    /// <summary>Cancelled when the stop budget runs out.</summary>
    public CancellationToken BudgetOver => _budgetOver.Token;

    /// <summary>The end of the stop budget, once a signal has started one.</summary>
    public DateTimeOffset? BudgetEnds => Interlocked.Read(ref _budgetEnds) is var t and > 0 ? new DateTimeOffset(t, TimeSpan.Zero) : null;

    /// <summary>The earlier of <paramref name="patience"/> and the end of the stop budget, asked each time.</summary>
    public Func<DateTimeOffset> Until(DateTimeOffset patience) => () => BudgetEnds is { } ends && ends < patience ? ends : patience;

    /// <summary>Records <paramref name="signal"/> if it is the first, and starts the budget.</summary>
    public void Take(string signal)
    {
        if (Interlocked.CompareExchange(ref _signal, signal, null) is not null) return;
        if (_budget is { } budget)
        {
            Interlocked.Exchange(ref _budgetEnds, (_clock.GetUtcNow() + budget).UtcTicks);
            _budgetOver.CancelAfter(budget < TimeSpan.FromDays(20) ? budget : TimeSpan.FromDays(20));
        }
        _signalled.Cancel();
    }

    public void Dispose()
    {
        _signalled.Dispose();
        _budgetOver.Dispose();
    }
}
