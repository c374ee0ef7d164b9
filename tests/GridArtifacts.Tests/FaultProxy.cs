using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;

namespace GridArtifacts.Tests;

public enum Fault
{
    None, Status500, SlowDown503, Status403, Reset, Truncate, Stall,
    /// <summary>405 MethodNotAllowed, what s3rver 3.7.1 answers to AbortMultipartUpload.</summary>
    MethodNotAllowed,
    /// <summary>The request is held, never forwarded nor answered, until the proxy is disposed.</summary>
    Hang,
    /// <summary>Answered 204 No Content without forwarding (what AWS answers to a successful abort).</summary>
    NoContent,
}

/// <summary>
/// A fault-injecting HTTP proxy on loopback between the S3 client and the S3 server (s3rver, or a
/// real one such as Ceph's RADOS Gateway). Each request is forwarded unless <see cref="Decide"/> names
/// a fault for it: an error status, a connection reset before any answer, a body cut short mid-way,
/// or a body that stalls. Forwarded requests keep every header the client signed, Host included, so
/// a server that checks SigV4 signatures accepts them; the one request the proxy makes itself (the
/// existence check of <see cref="HonourIfNoneMatch"/>) is signed with the test keys.
/// </summary>
public sealed class FaultProxy : IDisposable
{
    private readonly HttpListener _listener = new();
    private readonly HttpClient _upstream = new(new SocketsHttpHandler { AllowAutoRedirect = false, AutomaticDecompression = DecompressionMethods.None });
    private readonly Uri _target;
    private readonly Lazy<Amazon.S3.AmazonS3Client> _signed;
    private readonly CancellationTokenSource _stop = new();
    private int _requests;

    public FaultProxy(string target)
    {
        _target = new Uri(target);
        _signed = new(() => new Amazon.S3.AmazonS3Client(new Amazon.Runtime.BasicAWSCredentials(S3ServerFixture.AccessKey, S3ServerFixture.SecretKey),
            new Amazon.S3.AmazonS3Config { ServiceURL = target, ForcePathStyle = true, AuthenticationRegion = "us-east-1", MaxErrorRetry = 0 }));
        var port = TestNet.FreePort();
        Endpoint = $"http://127.0.0.1:{port}";
        _listener.Prefixes.Add(Endpoint + "/");
        _listener.Start();
        _ = Task.Run(LoopAsync);
    }

    public string Endpoint { get; }

    /// <summary>Chooses a fault from the method, the path (with query) and the request's number (1-based).</summary>
    public Func<string, string, int, Fault> Decide { get; set; } = (_, _, _) => Fault.None;

    /// <summary>How many requests each path (without query) received.</summary>
    public ConcurrentDictionary<string, int> PerPath { get; } = new();

    public TimeSpan StallFor { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Answers a PUT with <c>If-None-Match: *</c> as AWS S3 does, for a server (s3rver) that ignores
    /// the header: 412 PreconditionFailed when the key exists, else the PUT, one such PUT of a key at
    /// a time (the existence check and the write are one step, as the condition is on AWS).
    /// </summary>
    public bool HonourIfNoneMatch { get; set; }

    /// <summary>PUTs with <c>If-None-Match</c> answered 412, by the server or by <see cref="HonourIfNoneMatch"/>.</summary>
    public int ConditionalRefusals => Volatile.Read(ref _refusals);
    private int _refusals;

    /// <summary>Of <see cref="ConditionalRefusals"/>, those the proxy answered itself (<see cref="HonourIfNoneMatch"/>).</summary>
    public int EmulatedRefusals => Volatile.Read(ref _emulated);
    private int _emulated;
    private readonly ConcurrentDictionary<string, SemaphoreSlim> _keyLocks = new();

    /// <summary>
    /// A server that allows this many requests in flight: each request beyond them is answered
    /// 503 SlowDown, as S3 answers a prefix asked for more than it serves.
    /// </summary>
    public int? ThrottleAbove { get; set; }

    private int _inFlight;

    /// <summary>Requests that came with an <c>Expect</c> header: method, path with query, and the header.</summary>
    public ConcurrentQueue<(string Method, string PathAndQuery, string Expect)> Expecting { get; } = new();

    /// <summary>Every request as it came: method, path with query, and the fault it got.</summary>
    public ConcurrentQueue<(string Method, string PathAndQuery, Fault Fault)> Log { get; } = new();

    private async Task LoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            HttpListenerContext ctx;
            try { ctx = await _listener.GetContextAsync(); }
            catch (Exception) { return; }
            _ = Task.Run(() => HandleAsync(ctx));
        }
    }

    private async Task HandleAsync(HttpListenerContext ctx)
    {
        var req = ctx.Request;
        var res = ctx.Response;
        var n = Interlocked.Increment(ref _requests);
        var pathAndQuery = req.RawUrl ?? "/";
        PerPath.AddOrUpdate(pathAndQuery.Split('?')[0], 1, (_, v) => v + 1);
        var inFlight = Interlocked.Increment(ref _inFlight);
        var fault = ThrottleAbove is { } most && inFlight > most ? Fault.SlowDown503 : Decide(req.HttpMethod, pathAndQuery, n);
        Log.Enqueue((req.HttpMethod, pathAndQuery, fault));
        if (req.Headers["Expect"] is { } expect) Expecting.Enqueue((req.HttpMethod, pathAndQuery, expect));
        try
        {
            switch (fault)
            {
                case Fault.Hang:
                    try { await Task.Delay(Timeout.Infinite, _stop.Token); } catch (OperationCanceledException) { }
                    res.Abort();
                    return;
                case Fault.NoContent:
                    res.StatusCode = 204;
                    res.Close();
                    return;
                case Fault.Status500:
                case Fault.SlowDown503:
                case Fault.Status403:
                case Fault.MethodNotAllowed:
                    var (status, code) = fault switch
                    {
                        Fault.Status500 => (500, "InternalError"),
                        Fault.SlowDown503 => (503, "SlowDown"),
                        Fault.MethodNotAllowed => (405, "MethodNotAllowed"),
                        _ => (403, "AccessDenied"),
                    };
                    var xml = System.Text.Encoding.UTF8.GetBytes($"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>injected</Message></Error>");
                    res.StatusCode = status;
                    res.ContentType = "application/xml";
                    res.ContentLength64 = xml.Length;
                    await res.OutputStream.WriteAsync(xml);
                    res.Close();
                    return;
            }

            SemaphoreSlim? keyLock = null;
            if (HonourIfNoneMatch && req.HttpMethod == "PUT" && req.Headers["If-None-Match"] == "*")
            {
                keyLock = _keyLocks.GetOrAdd(pathAndQuery.Split('?')[0], _ => new SemaphoreSlim(1, 1));
                await keyLock.WaitAsync();
            }
            try
            {
                if (keyLock is not null)
                {
                    if (await ExistsAsync(pathAndQuery.Split('?')[0]))
                    {
                        Interlocked.Increment(ref _refusals);
                        Interlocked.Increment(ref _emulated);
                        var refusal = System.Text.Encoding.UTF8.GetBytes("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>PreconditionFailed</Code><Message>At least one of the pre-conditions you specified did not hold</Message><Condition>If-None-Match</Condition></Error>");
                        res.StatusCode = 412;
                        res.ContentType = "application/xml";
                        res.ContentLength64 = refusal.Length;
                        await res.OutputStream.WriteAsync(refusal);
                        res.Close();
                        return;
                    }
                }
                await ForwardAsync(req, res, pathAndQuery, fault);
            }
            finally
            {
                keyLock?.Release();
            }
        }
        catch (Exception)
        {
            try { res.Abort(); } catch (Exception) { }
        }
        finally
        {
            Interlocked.Decrement(ref _inFlight);
        }
    }

    /// <summary>Whether the object at a path-style path (/bucket/key) exists, asked with a signed HEAD.</summary>
    private async Task<bool> ExistsAsync(string path)
    {
        var slash = path.IndexOf('/', 1);
        try
        {
            await _signed.Value.GetObjectMetadataAsync(Uri.UnescapeDataString(path[1..slash]), Uri.UnescapeDataString(path[(slash + 1)..]));
            return true;
        }
        catch (Amazon.S3.AmazonS3Exception ex) when (ex.StatusCode == HttpStatusCode.NotFound)
        {
            return false;
        }
    }

    private async Task ForwardAsync(HttpListenerRequest req, HttpListenerResponse res, string pathAndQuery, Fault fault)
    {
        {
            using var forward = new HttpRequestMessage(new HttpMethod(req.HttpMethod), new Uri(_target, pathAndQuery));
            var body = new MemoryStream();
            await req.InputStream.CopyToAsync(body);
            if (body.Length > 0 || req.HttpMethod is "PUT" or "POST") forward.Content = new ByteArrayContent(body.ToArray());
            foreach (var name in req.Headers.AllKeys)
            {
                if (name is null || name.Equals("Content-Length", StringComparison.OrdinalIgnoreCase)) continue;
                var value = req.Headers[name]!;
                // The client signed the Host it sent (the proxy's address): the server checks the signature against it.
                if (name.Equals("Host", StringComparison.OrdinalIgnoreCase)) { forward.Headers.Host = value; continue; }
                if (!forward.Headers.TryAddWithoutValidation(name, value)) forward.Content?.Headers.TryAddWithoutValidation(name, value);
            }
            using var answer = await _upstream.SendAsync(forward, HttpCompletionOption.ResponseHeadersRead);
            var bytes = await answer.Content.ReadAsByteArrayAsync();
            if (answer.StatusCode == HttpStatusCode.PreconditionFailed && req.HttpMethod == "PUT" && req.Headers["If-None-Match"] is not null) Interlocked.Increment(ref _refusals);
            res.StatusCode = (int)answer.StatusCode;
            foreach (var h in answer.Headers.Concat(answer.Content.Headers))
            {
                if (h.Key.Equals("Content-Length", StringComparison.OrdinalIgnoreCase) || h.Key.Equals("Transfer-Encoding", StringComparison.OrdinalIgnoreCase)
                    || h.Key.Equals("Connection", StringComparison.OrdinalIgnoreCase) || h.Key.Equals("Keep-Alive", StringComparison.OrdinalIgnoreCase)) continue;
                res.Headers[h.Key] = string.Join(",", h.Value);
            }
            res.ContentLength64 = bytes.Length;
            if (fault == Fault.Reset)
            {
                // The connection drops once the headers are out, before any byte of the body.
                await res.OutputStream.FlushAsync();
                res.Abort();
                return;
            }
            if (fault == Fault.Truncate && bytes.Length > 0)
            {
                await res.OutputStream.WriteAsync(bytes.AsMemory(0, bytes.Length / 2));
                await res.OutputStream.FlushAsync();
                res.Abort();
                return;
            }
            if (fault == Fault.Stall && bytes.Length > 1)
            {
                await res.OutputStream.WriteAsync(bytes.AsMemory(0, bytes.Length / 2));
                await res.OutputStream.FlushAsync();
                await Task.Delay(StallFor);
                res.Abort();
                return;
            }
            if (bytes.Length > 0) await res.OutputStream.WriteAsync(bytes);
            res.Close();
        }
    }


    public void Dispose()
    {
        _stop.Cancel();
        _listener.Close();
        _upstream.Dispose();
        if (_signed.IsValueCreated) _signed.Value.Dispose();
    }
}
