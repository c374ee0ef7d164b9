using System.Diagnostics.CodeAnalysis;
using GridArtifacts.Model;
using Polly;
using Polly.Retry;

namespace GridArtifacts.Core.Transfer;

/// <summary>
/// The one retry policy of the process: jittered exponential backoff on transient failures (500, 502,
/// 503 SlowDown, 504, resets, time-outs, bodies cut short), none on errors that cannot succeed (403,
/// 404, a changed object). The SDK's own retries are off (MaxErrorRetry = 0), so a request and its
/// body are tried at most <see cref="MaxAttempts"/> times in all, or <see cref="MaxThrottledAttempts"/>
/// while the server answers that it is busy.
/// </summary>
public static class Retry
{
    public const int MaxAttempts = 5;

    /// <summary>
    /// Attempts at a request the server keeps throttling (503 SlowDown, 429, a refused connection):
    /// it asks to be called again later, and the adaptive window narrows meanwhile, so a request that
    /// happened to be the one over the server's limit a few times running is not lost for it. Any
    /// other failure among them ends the request after <see cref="MaxAttempts"/> in all.
    /// </summary>
    public const int MaxThrottledAttempts = 10;
    private static long _retries;

    /// <summary>Retries made since the process started (for summaries and tests).</summary>
    public static long RetriesMade => Interlocked.Read(ref _retries);

    public static bool IsTransient(Exception ex) => ex is GridException { IsTransient: true };

    /// <summary>The request policy on <paramref name="clock"/>: its pauses are timed by that clock (one pipeline per clock, kept while the clock lives).</summary>
    public static ResiliencePipeline Pipeline(TimeProvider clock) => Pipelines.GetValue(clock, NewPipeline);

    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<TimeProvider, ResiliencePipeline> Pipelines = new();

    private static ResiliencePipeline NewPipeline(TimeProvider clock) => new ResiliencePipelineBuilder { TimeProvider = clock }
        .AddRetry(new RetryStrategyOptions
        {
            ShouldHandle = args => new ValueTask<bool>(args.Outcome.Exception is GridException { IsTransient: true } e
                && args.AttemptNumber + 1 < (e.IsThrottling ? MaxThrottledAttempts : MaxAttempts)),
            MaxRetryAttempts = MaxThrottledAttempts - 1,
            BackoffType = DelayBackoffType.Exponential,
            UseJitter = true,
            Delay = TimeSpan.FromMilliseconds(100),
            MaxDelay = TimeSpan.FromSeconds(5),
            OnRetry = _ =>
            {
                Interlocked.Increment(ref _retries);
                return default;
            },
        })
        .Build();

    /// <summary>
    /// A write that must happen (an experiment's status, its sealed manifest): tried once at least,
    /// then again after 1 s, 2 s, 4 s, ... up to 30 s apart while <paramref name="passing"/> says its
    /// failure may pass (the store is away for now) and the next try would still come before
    /// <paramref name="deadline"/> (asked each time: a signal's budget may shorten it). Then the last
    /// failure is thrown. <paramref name="onRetry"/> is told each failure and the pause before the next try.
    /// </summary>
    /// <param name="clock">The clock <paramref name="deadline"/> is read on, and the pauses are timed by.</param>
    public static ValueTask UntilAsync(Func<CancellationToken, ValueTask> work, Func<Exception, bool> passing, Func<DateTimeOffset> deadline,
        Action<Exception, TimeSpan> onRetry, TimeProvider clock, CancellationToken ct) =>
        new ResiliencePipelineBuilder { TimeProvider = clock }
            .AddRetry(new RetryStrategyOptions
            {
                ShouldHandle = args => new ValueTask<bool>(args.Outcome.Exception is { } e && passing(e)
                    && clock.GetUtcNow() + PersistPause(args.AttemptNumber) < deadline()),
                MaxRetryAttempts = int.MaxValue,
                DelayGenerator = args => new ValueTask<TimeSpan?>(PersistPause(args.AttemptNumber)),
                OnRetry = args =>
                {
                    onRetry(args.Outcome.Exception!, args.RetryDelay);
                    return default;
                },
            })
            .Build()
            .ExecuteAsync(work, ct);

    /// <summary>
    /// Work that is done again while its result says something is left (<paramref name="again"/>: the
    /// files a final sync did not get into the store) and <paramref name="deadline"/> (asked each time)
    /// has not passed: after 1 s, 2 s, 4 s, ... up to 30 s apart, as <see cref="UntilAsync"/>, the last
    /// pause cut short at the deadline. <paramref name="onRetry"/> is told each result and the pause
    /// before the next try. Returns the last result; a cancelled pause ends it (OperationCanceledException).
    /// </summary>
    /// <remarks>Polly keeps every member of <typeparamref name="T"/> for trimming (its AddRetry asks so): the annotation passes that on.</remarks>
    public static ValueTask<T> WhileAsync<[DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.All)] T>(Func<CancellationToken, ValueTask<T>> work, Func<T, bool> again, Func<DateTimeOffset> deadline,
        Action<T, TimeSpan> onRetry, TimeProvider clock, CancellationToken ct) =>
        new ResiliencePipelineBuilder<T> { TimeProvider = clock }
            .AddRetry(new RetryStrategyOptions<T>
            {
                ShouldHandle = args => new ValueTask<bool>(args.Outcome.Exception is null && again(args.Outcome.Result!) && clock.GetUtcNow() < deadline()),
                MaxRetryAttempts = int.MaxValue,
                DelayGenerator = args =>
                {
                    var left = deadline() - clock.GetUtcNow();
                    var pause = PersistPause(args.AttemptNumber);
                    return new ValueTask<TimeSpan?>(left < pause ? (left > TimeSpan.Zero ? left : TimeSpan.Zero) : pause);
                },
                OnRetry = args =>
                {
                    onRetry(args.Outcome.Result!, args.RetryDelay);
                    return default;
                },
            })
            .Build()
            .ExecuteAsync(work, ct);

    /// <summary>The pause after failed try <paramref name="attempt"/> (0 first) of <see cref="UntilAsync"/> and <see cref="WhileAsync{T}"/>: 1 s, doubling, at most 30 s.</summary>
    private static TimeSpan PersistPause(int attempt) => TimeSpan.FromSeconds(Math.Min(30, Math.Pow(2, Math.Min(attempt, 5))));

    /// <summary>
    /// A request tried again at once when <paramref name="again"/> says its failure was a collision with
    /// another writer (a 409 of a conditional write): after 100 ms, 200 ms, ..., <see cref="MaxAttempts"/> in all, on <paramref name="clock"/>.
    /// </summary>
    public static ValueTask<T> OnCollisionAsync<T>(Func<CancellationToken, ValueTask<T>> work, Func<Exception, bool> again, TimeProvider clock, CancellationToken ct) =>
        new ResiliencePipelineBuilder { TimeProvider = clock }
            .AddRetry(new RetryStrategyOptions
            {
                ShouldHandle = args => new ValueTask<bool>(args.Outcome.Exception is { } e && again(e)),
                MaxRetryAttempts = MaxAttempts - 1,
                BackoffType = DelayBackoffType.Linear,
                Delay = TimeSpan.FromMilliseconds(100),
            })
            .Build()
            .ExecuteAsync(work, ct);

    /// <summary>A request under the request policy, its pauses timed by <paramref name="clock"/>.</summary>
    public static ValueTask<T> RunAsync<T>(Func<CancellationToken, ValueTask<T>> work, TimeProvider clock, CancellationToken ct) =>
        Pipeline(clock).ExecuteAsync(work, ct);
}
