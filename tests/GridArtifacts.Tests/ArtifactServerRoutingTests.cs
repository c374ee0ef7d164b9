using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using GridArtifacts.Core;
using GridArtifacts.Core.Sharing;
using GridArtifacts.Core.Stores;
using Xunit;

namespace GridArtifacts.Tests;

/// <summary>How the server serves rather than what: its bound on requests at once, its log, its module files.</summary>
public sealed class ArtifactServerRoutingTests : IDisposable
{
    private readonly TempDir _temp = new();
    private readonly FileSystemStore _store;
    private readonly ArtifactServer _server;
    private readonly HttpClient _client = new(new HttpClientHandler { AllowAutoRedirect = false, UseCookies = false });

    public ArtifactServerRoutingTests()
    {
        _store = new FileSystemStore(_temp.Sub("store"));
        _server = ArtifactServer.Start(new GridCatalog(_store));
    }

    public void Dispose()
    {
        ArtifactServer.Stop(_server.Store);
        _client.Dispose();
        _store.Dispose();
        _temp.Dispose();
    }

    private string Token => _server.PageUrl.Query["?token=".Length..];

    private Task<HttpResponseMessage> GetAsync(string relative)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, new Uri(_server.BaseUrl, relative));
        request.Headers.Add("Cookie", $"grid_token_{_server.Port}={Token}");
        return _client.SendAsync(request);
    }

    [Fact]
    public async Task A_failed_API_request_is_logged_by_its_error_id_and_path_without_its_query()
    {
        var logged = new List<string>();
        _server.Logged += m => { lock (logged) logged.Add(m); };
        // The token in the query this time: it must not reach the log.
        using var res = await _client.GetAsync(new Uri(_server.BaseUrl, $"api/experiments?run=no-such-run&token={Token}"));
        Assert.Equal(HttpStatusCode.NotFound, res.StatusCode);
        var errorId = JsonDocument.Parse(await res.Content.ReadAsStringAsync()).RootElement.GetProperty("errorId").GetString();
        Assert.False(string.IsNullOrEmpty(errorId));
        var line = Assert.Single(_server.RecentLog);
        Assert.Equal($"GET /api/experiments: {errorId} (NotFound)", line);
        lock (logged) Assert.Equal(line, Assert.Single(logged));
        Assert.DoesNotContain(Token, line);
    }

    [Fact]
    public async Task A_signed_link_to_a_missing_artifact_is_404_and_logged_without_its_signature()
    {
        var (url, _) = _server.Sign("gone-run", "exp0", "model.pt", TimeSpan.FromHours(1));
        using var plain = new HttpClient();
        using var res = await plain.GetAsync(url);
        Assert.Equal(HttpStatusCode.NotFound, res.StatusCode);
        var line = Assert.Single(_server.RecentLog);
        Assert.StartsWith("GET /a/gone-run/exp0/model.pt: ", line);
        Assert.Contains("(NotFound)", line);
        var signature = Regex.Match(url.Query, "s=([0-9a-f]+)").Groups[1].Value;
        Assert.Equal(64, signature.Length);
        Assert.DoesNotContain(signature, line);
        Assert.DoesNotContain("?", line);
    }

    [Fact]
    public async Task Requests_refused_at_the_gate_are_not_errors_and_are_not_logged()
    {
        using var noToken = await _client.GetAsync(new Uri(_server.BaseUrl, "api/runs"));
        Assert.Equal(HttpStatusCode.Unauthorized, noToken.StatusCode);
        using var unknown = await GetAsync("no/such/route");
        Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
        using var wrongMethod = await _client.PostAsync(new Uri(_server.BaseUrl, "a/x/exp0/y"), new StringContent(""));
        Assert.Equal(HttpStatusCode.MethodNotAllowed, wrongMethod.StatusCode);
        Assert.Empty(_server.RecentLog);
    }

    /// <summary>A zip request whose body never comes: it holds its turn until the connection closes.</summary>
    private async Task<TcpClient> StallAsync()
    {
        var tcp = new TcpClient();
        await tcp.ConnectAsync(IPAddress.Loopback, _server.Port);
        var head = $"POST /zip HTTP/1.1\r\nHost: 127.0.0.1:{_server.Port}\r\nOrigin: http://127.0.0.1:{_server.Port}\r\n" +
            $"Cookie: grid_token_{_server.Port}={Token}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\nitems=";
        await tcp.GetStream().WriteAsync(Encoding.ASCII.GetBytes(head));
        return tcp;
    }

    private async Task WaitForAsync(Func<bool> condition)
    {
        for (var i = 0; i < 500 && !condition(); i++) await Task.Delay(20);
        Assert.True(condition());
    }

    [Fact]
    public async Task Beyond_the_bound_a_request_waits_for_a_turn_and_past_its_patience_gets_503_with_Retry_After()
    {
        _server.QueueWait = TimeSpan.FromMilliseconds(300);
        var stalled = new List<TcpClient>();
        try
        {
            for (var i = 0; i < ArtifactServer.MaxConcurrentRequests; i++) stalled.Add(await StallAsync());
            await WaitForAsync(() => _server.InFlight == ArtifactServer.MaxConcurrentRequests);

            using (var busy = await GetAsync("api/store"))
            {
                Assert.Equal(HttpStatusCode.ServiceUnavailable, busy.StatusCode);
                Assert.Equal(TimeSpan.FromSeconds(ArtifactServer.RetryAfterSeconds), busy.Headers.RetryAfter?.Delta);
            }

            // A request that waits gets the first turn that frees.
            _server.QueueWait = TimeSpan.FromSeconds(30);
            var waiting = GetAsync("api/store");
            await Task.Delay(200);
            Assert.False(waiting.IsCompleted);
            stalled[0].Dispose();
            using var served = await waiting;
            Assert.Equal(HttpStatusCode.OK, served.StatusCode);
        }
        finally
        {
            foreach (var tcp in stalled) tcp.Dispose();
        }
        await WaitForAsync(() => _server.InFlight == 0);
        using var after = await GetAsync("api/store");
        Assert.Equal(HttpStatusCode.OK, after.StatusCode);
    }

    [Fact]
    public async Task Every_module_the_page_imports_is_served_as_JavaScript_under_the_page_policy()
    {
        using var page = await GetAsync("");
        var policy = page.Headers.GetValues("Content-Security-Policy").Single();
        var html = await page.Content.ReadAsStringAsync();
        Assert.Matches("<script src=\"/app.js\" type=\"module\">", html);
        var pending = new Queue<string>(new[] { "app.js" });
        var seen = new HashSet<string>();
        while (pending.TryDequeue(out var module))
        {
            if (!seen.Add(module)) continue;
            using var res = await GetAsync(module);
            Assert.Equal(HttpStatusCode.OK, res.StatusCode);
            Assert.Equal("text/javascript", res.Content.Headers.ContentType?.MediaType);
            Assert.Equal(policy, res.Headers.GetValues("Content-Security-Policy").Single());
            foreach (Match m in Regex.Matches(await res.Content.ReadAsStringAsync(), @"^import .* from '\./([a-z-]+\.js)';$", RegexOptions.Multiline)) pending.Enqueue(m.Groups[1].Value);
        }
        Assert.True(seen.Count > 5, $"the page's modules: {string.Join(", ", seen)}");
    }
}
