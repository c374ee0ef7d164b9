using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using GridArtifacts.Core.Stores;
using GridArtifacts.Model;

namespace GridArtifacts.Core.Sharing;

/// <summary>
/// One store's HTTP server in this process, on 127.0.0.1 by default. It serves two things:
/// <list type="bullet">
/// <item>the artifacts page at <c>/</c> and its API, for any store, only to whoever holds the server's
/// random access token (given in the page URL once, or traded for a one-time code from an entry file,
/// then kept in an HttpOnly, SameSite=Strict cookie);</item>
/// <item>a folder store's expiring links at <c>/a/</c>, signed with HMAC-SHA256 over the artifact and
/// its expiry with a per-store secret (created once, readable only by its owner). An expired,
/// altered or foreign link, or one ending more than 7 days ahead, gets 403 and no data; Range requests work. S3 stores need no such
/// route: their links are presigned by S3.</item>
/// </list>
/// Every request is checked for a Host this server answers to (no DNS rebinding), and nothing
/// outside the store's artifacts and the page's own files is ever served. A route table maps each
/// method and path to one handler, at most <see cref="MaxConcurrentRequests"/> are served at once,
/// and a request that fails is logged by its error id (<see cref="Logged"/>).
/// Its parts: Routes (the table, the bound, the log), Access (token, cookie, entry codes), Api (JSON),
/// Bytes (page files, artifacts, zips), Links (signing and the <c>/a/</c> route).
/// </summary>
public sealed partial class ArtifactServer : IDisposable
{
    private static readonly ConcurrentDictionary<string, ArtifactServer> Running = new(StringComparer.Ordinal);
    private readonly HttpListener _listener = new();
    private readonly GridCatalog _catalog;
    private readonly byte[]? _secret;
    private readonly byte[] _token;
    private readonly HashSet<string>? _hosts;
    /// <summary>Cancelled when the server stops: every request's token derives from it.</summary>
    private readonly CancellationTokenSource _stopping = new();

    private ArtifactServer(GridCatalog catalog, string address, int port)
    {
        _catalog = catalog;
        if (catalog.Store is ILocalFolder folder) _secret = LoadOrCreateSecret(folder.Root);
        _token = Encoding.ASCII.GetBytes(Base64Url(RandomNumberGenerator.GetBytes(32)));
        Port = port == 0 ? FreePort(address) : port;
        // On every address, links and the page name this machine; elsewhere, the address itself.
        var wildcard = IsWildcard(address);
        var host = wildcard ? Dns.GetHostName() : address.Contains(':') && !address.StartsWith('[') ? $"[{address}]" : address;
        BaseUrl = new Uri($"http://{host}:{Port}/");
        _hosts = wildcard ? null : new HashSet<string>(StringComparer.OrdinalIgnoreCase)
        {
            $"{host}:{Port}",
            $"127.0.0.1:{Port}",
            $"localhost:{Port}",
            $"[::1]:{Port}",
        };
        _listener.Prefixes.Add(wildcard ? $"http://*:{Port}/" : BaseUrl.ToString());
        // HttpListener answers only the host names of its prefixes (others get its own 404), so
        // "localhost" needs one too. It listens where the name resolves first, so the prefix is added
        // only where that is the address already listened on: it must open nothing new.
        if (!wildcard && IPAddress.TryParse(address, out var ip) && IPAddress.IsLoopback(ip) && ResolvesFirstTo("localhost", ip))
        {
            _listener.Prefixes.Add($"http://localhost:{Port}/");
        }
        _routes = BuildRoutes();
        _listener.Start();
        _ = Task.Run(AcceptAsync);
    }

    public int Port { get; }
    public Uri BaseUrl { get; }
    /// <summary>The page, with the access token: whoever has this URL can browse the store.</summary>
    public Uri PageUrl => new(BaseUrl, "?token=" + Encoding.ASCII.GetString(_token));
    public string Store => _catalog.Location;
    public bool SignsLinks => _secret is not null;
    private string CookieName => "grid_token_" + Port.ToString(CultureInfo.InvariantCulture);

    /// <summary>Starts (or returns the running) server of a store in this process.</summary>
    public static ArtifactServer Start(GridCatalog catalog, string address = "127.0.0.1", int port = 0)
    {
        // One listener per store: two runspaces starting it at once must not both bind a port.
        lock (Running)
        {
            return Running.TryGetValue(catalog.Location, out var running)
                ? running
                : Running[catalog.Location] = new ArtifactServer(catalog, address, port);
        }
    }

    public static ArtifactServer? For(string storeLocation) => Running.TryGetValue(storeLocation, out var s) ? s : null;

    /// <summary>The stores whose servers run in this process, in name order.</summary>
    public static IReadOnlyList<string> RunningStores
    {
        get { lock (Running) return Running.Keys.OrderBy(k => k, StringComparer.Ordinal).ToList(); }
    }

    public static bool Stop(string storeLocation)
    {
        ArtifactServer? s;
        lock (Running) { if (!Running.TryRemove(storeLocation, out s)) return false; }
        s.Dispose();
        return true;
    }

    private static bool ResolvesFirstTo(string name, IPAddress ip)
    {
        try { return Dns.GetHostAddresses(name) is [var first, ..] && first.Equals(ip); }
        catch (System.Net.Sockets.SocketException) { return false; }
    }

    private static bool IsWildcard(string address) =>
        address is "*" or "+" || (IPAddress.TryParse(address, out var ip) && (ip.Equals(IPAddress.Any) || ip.Equals(IPAddress.IPv6Any)));

    private static string Base64Url(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    private static int FreePort(string address)
    {
        var ip = IsWildcard(address) ? IPAddress.Any : IPAddress.Parse(address);
        var l = new System.Net.Sockets.TcpListener(ip, 0);
        l.Start();
        var port = ((IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        return port;
    }

    public void Dispose()
    {
        SweepEntryCodes(all: true);
        // Requests being served stop reading the store; those waiting for a turn give up.
        _stopping.Cancel();
        // .NET's HttpListener removes each prefix by resolving its host again, and where "localhost"
        // now resolves elsewhere it tries to open a listener there, which can fail (seen: "Address
        // already in use" from Close in a test run). The server has stopped answering either way
        // (its loop ends with Stop); at worst the socket stays bound until the process ends.
        try { _listener.Stop(); _listener.Close(); } catch (Exception ex) when (ex is ObjectDisposedException or HttpListenerException) { }
    }
}
