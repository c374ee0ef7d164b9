using GridArtifacts.Model;
using Polly;
using Polly.Retry;

namespace GridArtifacts.Core.Transfer;

/// <summary>
/// The one retry policy of the process: jittered exponential backoff on transient failures (500, 502,
/// 503 SlowDown, 504, resets, time-outs, bodies cut short), none on errors that cannot succeed (403,
/// 404, a changed object). The SDK's own retries are off (MaxErrorRetry = 0), so a request and its
/// body are tried at most <see cref="MaxAttempts"/> times in all.
/// </summary>
public static class Retry
{
    public const int MaxAttempts = 5;
    private static long _retries;

    /// <summary>Retries made since the process started (for summaries and tests).</summary>
    public static long RetriesMade => Interlocked.Read(ref _retries);

    public static bool IsTransient(Exception ex) => ex is GridException { IsTransient: true };

    public static ResiliencePipeline Pipeline { get; } = new ResiliencePipelineBuilder()
        .AddRetry(new RetryStrategyOptions
        {
            ShouldHandle = new PredicateBuilder().Handle<GridException>(e => e.IsTransient),
            MaxRetryAttempts = MaxAttempts - 1,
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

    public static ValueTask<T> RunAsync<T>(Func<CancellationToken, ValueTask<T>> work, CancellationToken ct) =>
        Pipeline.ExecuteAsync(work, ct);

    public static ValueTask RunAsync(Func<CancellationToken, ValueTask> work, CancellationToken ct) =>
        Pipeline.ExecuteAsync(work, ct);
}
