using System.Collections.Concurrent;
using System.Net;
using GridArtifacts.Model;

namespace GridArtifacts.Core.Sharing;

/// <summary>
/// How a request is served: the accept loop and its bound, the route table (method and path to a
/// handler), the gate in front of each route, and the log of what went wrong.
/// </summary>
public sealed partial class ArtifactServer
{
    /// <summary>
    /// At most this many requests are served at once. A page asks for at most six at a time (a
    /// browser's connections per host); the rest is room for downloads and zips that last minutes,
    /// links opened by others and a few pages. A request holds no thread while it waits on the store or
    /// the network and at most one 64 KiB copy buffer, so 64 keep the server to a few MiB.
    /// </summary>
    internal const int MaxConcurrentRequests = 64;

    /// <summary>
    /// At most this many requests wait for a turn; any more get 503 at once. Waiting is bounded in
    /// number as well as in time (<see cref="QueueWait"/>), so a flood costs a fixed amount of memory.
    /// </summary>
    internal const int MaxWaitingRequests = 256;

    /// <summary>What a 503 asks the client to wait, in seconds.</summary>
    internal const int RetryAfterSeconds = 5;

    /// <summary>The log keeps this many messages (the newest).</summary>
    private const int LogCapacity = 200;

    /// <summary>How long a request waits for a turn before it gets 503 with Retry-After (tests shorten it).</summary>
    internal TimeSpan QueueWait { get; set; } = TimeSpan.FromSeconds(10);

    private readonly SemaphoreSlim _turns = new(MaxConcurrentRequests, MaxConcurrentRequests);
    private int _waiting;
    private readonly IReadOnlyList<Route> _routes;
    private readonly ConcurrentQueue<string> _log = new();

    /// <summary>
    /// A request that failed, by error id: the method, the path (never the query, so never a link's
    /// signature or the access token) and the GridException id and kind, or the exception's type.
    /// Raised on the request's thread.
    /// </summary>
    public event Action<string>? Logged;

    /// <summary>Requests being served now (those waiting for a turn not counted).</summary>
    internal int InFlight => MaxConcurrentRequests - _turns.CurrentCount;

    /// <summary>The newest messages of the log (at most 200), oldest first.</summary>
    public IReadOnlyList<string> RecentLog => _log.ToArray();

    private delegate Task Handler(HttpListenerContext ctx, CancellationToken cancel);

    /// <summary>What lets a request through to its route: the page's token, or a link's own signature.</summary>
    private enum Gate { Token, Signature }

    private sealed record Route(Gate Gate, string[] Methods, string Path, Handler Handle, bool Prefix = false)
    {
        public bool Matches(string path) => Prefix ? path.StartsWith(Path, StringComparison.Ordinal) : path == Path;
    }

    private IReadOnlyList<Route> BuildRoutes()
    {
        string[] get = ["GET"], read = ["GET", "HEAD"], post = ["POST"];
        var routes = new List<Route>
        {
            new(Gate.Signature, read, "/a/", ServeSignedLinkAsync, Prefix: true),
            new(Gate.Token, get, "/api/store", ServeStoreAsync),
            new(Gate.Token, get, "/api/runs", ServeRunsAsync),
            new(Gate.Token, get, "/api/experiments", ServeExperimentsAsync),
            new(Gate.Token, get, "/api/artifacts", ServeArtifactListAsync),
            new(Gate.Token, get, "/api/metrics", ServeMetricsAsync),
            new(Gate.Token, post, "/api/link", ServeNewLinkAsync),
            new(Gate.Token, read, "/file", ServeFileAsync),
            new(Gate.Token, post, "/zip", ServeZipAsync),
        };
        routes.AddRange(Assets.Keys.Select(path => new Route(Gate.Token, get, path, ServeAssetAsync)));
        return routes;
    }

    private async Task AcceptAsync()
    {
        while (_listener.IsListening)
        {
            HttpListenerContext ctx;
            try { ctx = await _listener.GetContextAsync().ConfigureAwait(false); }
            catch (Exception) { return; }
            // Off the accept loop at once; the request then waits for its turn without holding a thread.
            _ = Task.Run(() => ServeAsync(ctx));
        }
    }

    private async Task ServeAsync(HttpListenerContext ctx)
    {
        var res = ctx.Response;
        var turn = false;
        try
        {
            res.Headers["X-Content-Type-Options"] = "nosniff";
            res.Headers["Referrer-Policy"] = "same-origin"; // same-origin POSTs keep their Origin; nothing goes elsewhere
            res.Headers["Cache-Control"] = "no-store";
            res.Headers["X-Frame-Options"] = "DENY";
            if (_hosts is not null && !_hosts.Contains(ctx.Request.Headers["Host"] ?? ""))
            {
                // A name that resolves here but is not ours: a DNS-rebinding page, or a mistake.
                res.StatusCode = 421;
                return;
            }
            if (!(turn = await WaitForTurnAsync().ConfigureAwait(false)))
            {
                res.StatusCode = 503;
                res.Headers["Retry-After"] = RetryAfterSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
                return;
            }
            // HttpListener says a client has gone only when a write to it fails, which ends the handler;
            // the server stopping cancels every store read under way.
            await DispatchAsync(ctx, _stopping.Token).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            if (!(ex is OperationCanceledException && _stopping.IsCancellationRequested)) LogError(ctx, ex);
            try { res.StatusCode = 500; } catch (InvalidOperationException) { }
        }
        finally
        {
            try { res.Close(); } catch (Exception) { }
            if (turn) _turns.Release();
        }
    }

    /// <summary>True when a turn is free, or frees within <see cref="QueueWait"/> for one of the first <see cref="MaxWaitingRequests"/> in line.</summary>
    private async Task<bool> WaitForTurnAsync()
    {
        if (_turns.Wait(0)) return true;
        try
        {
            if (Interlocked.Increment(ref _waiting) > MaxWaitingRequests) return false;
            using var deadline = new CancellationTokenSource(QueueWait, _catalog.Clock);
            using var either = CancellationTokenSource.CreateLinkedTokenSource(deadline.Token, _stopping.Token);
            await _turns.WaitAsync(either.Token).ConfigureAwait(false);
            return true;
        }
        catch (OperationCanceledException) { return false; }
        finally { Interlocked.Decrement(ref _waiting); }
    }

    /// <summary>The request's route behind its gate: 404 for a page path no route has, 405 for a link asked with another method.</summary>
    private async Task DispatchAsync(HttpListenerContext ctx, CancellationToken cancel)
    {
        var method = ctx.Request.HttpMethod;
        var path = ctx.Request.Url!.AbsolutePath;
        var onPath = _routes.Where(r => r.Matches(path)).ToList();
        var gate = onPath.Count > 0 ? onPath[0].Gate : Gate.Token;
        if (gate == Gate.Token && !await PassPageGateAsync(ctx, path).ConfigureAwait(false)) return;
        if (onPath.FirstOrDefault(r => r.Methods.Contains(method, StringComparer.Ordinal)) is not { } route)
        {
            ctx.Response.StatusCode = gate == Gate.Signature ? 405 : 404;
            return;
        }
        await route.Handle(ctx, cancel).ConfigureAwait(false);
    }

    private void LogError(HttpListenerContext ctx, Exception ex)
    {
        var what = ex is GridException g ? $"{g.ErrorId} ({g.Kind})" : ex.GetType().Name;
        var message = $"{ctx.Request.HttpMethod} {ctx.Request.Url?.AbsolutePath}: {what}";
        _log.Enqueue(message);
        while (_log.Count > LogCapacity && _log.TryDequeue(out _)) { }
        try { Logged?.Invoke(message); }
        catch (Exception) { } // A listener's failure is not the request's.
    }
}
