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

    public static ResiliencePipeline Pipeline { get; } = new ResiliencePipelineBuilder()
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

    public static ValueTask<T> RunAsync<T>(Func<CancellationToken, ValueTask<T>> work, CancellationToken ct) =>
        Pipeline.ExecuteAsync(work, ct);

    public static ValueTask RunAsync(Func<CancellationToken, ValueTask> work, CancellationToken ct) =>
        Pipeline.ExecuteAsync(work, ct);
}
