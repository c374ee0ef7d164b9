using GridArtifacts.Core.Transfer;
using Microsoft.Extensions.Time.Testing;
using Xunit;

namespace GridArtifacts.Tests;

/// <summary>The process-wide bandwidth cap, on a fake clock: each transfer waits as long as its bytes take at the rate.</summary>
public sealed class BandwidthLimiterTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task Bytes_wait_as_long_as_they_take_at_the_rate_and_idle_time_pays_off_debt_with_no_more_than_a_50_ms_burst_kept()
    {
        var clock = new FakeTimeProvider();
        var cap = new BandwidthLimiter(clock) { Rate = 1_000 };

        // 500 bytes at 1,000 bytes a second: half a second, and not a moment less.
        var first = cap.ConsumeAsync(500, default).AsTask();
        clock.Advance(TimeSpan.FromMilliseconds(499));
        Assert.False(first.IsCompleted);
        clock.Advance(TimeSpan.FromMilliseconds(1));
        await first.WaitAsync(Patience);

        // Sent at once after it, 1,000 more bytes wait their whole second: the first half second was paid, nothing more.
        var second = cap.ConsumeAsync(1_000, default).AsTask();
        clock.Advance(TimeSpan.FromMilliseconds(999));
        Assert.False(second.IsCompleted);
        clock.Advance(TimeSpan.FromMilliseconds(1));
        await second.WaitAsync(Patience);

        // An idle minute is no credit beyond 50 ms: 50 bytes go at once, 100 bytes wait 50 ms.
        clock.Advance(TimeSpan.FromMinutes(1));
        Assert.True(cap.ConsumeAsync(50, default).IsCompleted);
        clock.Advance(TimeSpan.FromMinutes(1));
        var burst = cap.ConsumeAsync(100, default).AsTask();
        clock.Advance(TimeSpan.FromMilliseconds(49));
        Assert.False(burst.IsCompleted);
        clock.Advance(TimeSpan.FromMilliseconds(1));
        await burst.WaitAsync(Patience);
    }

    [Fact]
    public async Task Without_a_rate_nothing_waits_and_a_new_rate_starts_with_no_debt()
    {
        var clock = new FakeTimeProvider();
        var cap = new BandwidthLimiter(clock);
        Assert.True(cap.ConsumeAsync(long.MaxValue / 2, default).IsCompleted);
        cap.Rate = 1_000;
        var owing = cap.ConsumeAsync(10_000, default).AsTask(); // ten seconds owed
        Assert.False(owing.IsCompleted);
        clock.Advance(TimeSpan.FromSeconds(10));
        await owing.WaitAsync(Patience);
        var again = cap.ConsumeAsync(10_000, default).AsTask();
        cap.Rate = 1_000_000; // a new cap forgets what was owed under the old one
        Assert.True(cap.ConsumeAsync(1, default).IsCompleted);
        clock.Advance(TimeSpan.FromSeconds(10));
        await again.WaitAsync(Patience);
    }
}
