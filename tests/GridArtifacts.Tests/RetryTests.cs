using GridArtifacts.Core.Transfer;
using GridArtifacts.Model;
using Xunit;

namespace GridArtifacts.Tests;

/// <summary>
/// The retry policies besides a request's (<see cref="Retry.RunAsync{T}"/>): a write that must happen
/// by a deadline (the agent's status, its sealed manifest) and a conditional write that collided.
/// </summary>
public sealed class RetryTests
{
    private static GridException Away() => new(GridErrorKind.StoreUnavailable, "StoreUnavailable", "The store is away.", "k") { IsTransient = true };

    [Fact]
    public async Task A_write_that_must_happen_is_tried_again_after_1_s_then_2_s_and_says_so_each_time()
    {
        var clock = new AutoAdvancingClock();
        var attempts = 0;
        var pauses = new List<TimeSpan>();
        await Retry.UntilAsync(_ =>
        {
            if (++attempts < 3) throw Away();
            return default;
        }, ex => ex is GridException { IsTransient: true }, () => clock.GetUtcNow().AddMinutes(1), (_, pause) => pauses.Add(pause), clock, default);
        Assert.Equal(3, attempts);
        Assert.Equal(new[] { TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(2) }, pauses);
        Assert.Equal(TimeSpan.FromSeconds(3), clock.Waited); // the pauses said are the pauses waited
    }

    [Fact]
    public async Task A_write_that_must_happen_gives_up_with_its_last_error_when_the_next_try_would_come_after_the_deadline()
    {
        var clock = new AutoAdvancingClock();
        var attempts = 0;
        var start = clock.GetUtcNow();
        var deadline = start.AddSeconds(2.5);
        var error = await Assert.ThrowsAsync<GridException>(async () => await Retry.UntilAsync(_ =>
        {
            attempts++;
            throw Away();
        }, ex => ex is GridException { IsTransient: true }, () => deadline, (_, _) => { }, clock, default));
        // Tried at once and after 1 s; the next pause (2 s) would end after the deadline.
        Assert.Equal(2, attempts);
        Assert.Equal("StoreUnavailable", error.ErrorId);
        var elapsed = clock.GetUtcNow() - start;
        Assert.True(elapsed >= TimeSpan.FromSeconds(0.9), $"the second try came {elapsed.TotalSeconds:0.00} s after the first");
    }

    [Fact]
    public async Task A_write_that_must_happen_is_not_tried_again_after_a_failure_that_will_not_pass()
    {
        var attempts = 0;
        var error = await Assert.ThrowsAsync<GridException>(async () => await Retry.UntilAsync(_ =>
        {
            attempts++;
            throw new GridException(GridErrorKind.AccessDenied, "AccessDenied", "No.", "k");
        }, ex => ex is GridException { IsTransient: true }, () => DateTimeOffset.UtcNow.AddMinutes(1), (_, _) => { }, TimeProvider.System, default));
        Assert.Equal(1, attempts);
        Assert.Equal("AccessDenied", error.ErrorId);
    }

    [Fact]
    public async Task A_collision_is_tried_again_up_to_five_times_in_all_and_anything_else_is_thrown_at_once()
    {
        var clock = new AutoAdvancingClock();
        var attempts = 0;
        Assert.True(await Retry.OnCollisionAsync(_ => ++attempts < 3 ? throw new InvalidOperationException("409") : ValueTask.FromResult(true),
            ex => ex.Message == "409", clock, default));
        Assert.Equal(3, attempts);

        attempts = 0;
        await Assert.ThrowsAsync<InvalidOperationException>(async () => await Retry.OnCollisionAsync<bool>(_ => { attempts++; throw new InvalidOperationException("409"); },
            ex => ex.Message == "409", clock, default));
        Assert.Equal(Retry.MaxAttempts, attempts);

        attempts = 0;
        await Assert.ThrowsAsync<InvalidOperationException>(async () => await Retry.OnCollisionAsync<bool>(_ => { attempts++; throw new InvalidOperationException("412"); },
            ex => ex.Message == "409", clock, default));
        Assert.Equal(1, attempts);
    }
}
