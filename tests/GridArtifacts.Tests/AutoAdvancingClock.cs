using Microsoft.Extensions.Time.Testing;

namespace GridArtifacts.Tests;

/// <summary>
/// A fake clock that moves on by itself: each timer set on it (a retry's pause, a settle, a delay)
/// brings the clock forward to the moment that timer is due, unless it was stopped first, so a wait on
/// it ends at once while every time read on it is as if the wait had been real. For code whose waiting
/// is the clock's and whose other work (requests, files) is real: the attempts and their schedule are
/// what they would be, only without the seconds. It starts at the real time, so what is written on it
/// reads like any record.
/// </summary>
public sealed class AutoAdvancingClock : FakeTimeProvider
{
    private readonly object _gate = new();
    private long _waitedTicks;

    public AutoAdvancingClock() : base(DateTimeOffset.UtcNow) { }

    /// <summary>How far the clock moved by itself: the time the waits on it would have taken.</summary>
    public TimeSpan Waited => TimeSpan.FromTicks(Interlocked.Read(ref _waitedTicks));

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        var timer = new Timer(this, base.CreateTimer(callback, state, dueTime, period));
        timer.MoveTo(dueTime);
        return timer;
    }

    /// <summary>Brings the clock to <paramref name="dueTime"/> from now, from another thread (a callback never runs inside the call that set its timer).</summary>
    private void MoveLater(Timer timer, TimeSpan dueTime)
    {
        if (dueTime <= TimeSpan.Zero || dueTime == Timeout.InfiniteTimeSpan) return;
        var due = GetUtcNow() + dueTime;
        var version = timer.Version;
        ThreadPool.QueueUserWorkItem(_ =>
        {
            lock (_gate)
            {
                var by = due - GetUtcNow();
                // Stopped, changed, or passed by an earlier move (then it has fired): nothing to wait for.
                if (timer.Version != version || by <= TimeSpan.Zero) return;
                Interlocked.Add(ref _waitedTicks, by.Ticks);
                Advance(by);
            }
        });
    }

    private sealed class Timer(AutoAdvancingClock clock, ITimer inner) : ITimer
    {
        private int _version;
        public int Version => Volatile.Read(ref _version);

        public void MoveTo(TimeSpan dueTime) => clock.MoveLater(this, dueTime);

        public bool Change(TimeSpan dueTime, TimeSpan period)
        {
            Interlocked.Increment(ref _version);
            var changed = inner.Change(dueTime, period);
            if (changed) MoveTo(dueTime);
            return changed;
        }

        public void Dispose()
        {
            Interlocked.Increment(ref _version);
            inner.Dispose();
        }

        public ValueTask DisposeAsync()
        {
            Dispose();
            return default;
        }
    }
}

/// <summary>The system's clock moved ahead by <paramref name="ahead"/>: what a writer whose clock runs later reads (its timers are real).</summary>
public sealed class AheadClock(TimeSpan ahead) : TimeProvider
{
    public override DateTimeOffset GetUtcNow() => System.GetUtcNow() + ahead;
}
