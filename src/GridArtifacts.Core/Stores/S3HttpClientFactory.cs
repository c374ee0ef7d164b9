using System.Net;
using Amazon.Runtime;
using GridArtifacts.Model;

namespace GridArtifacts.Core.Stores;

/// <summary>
/// The SDK's HTTP client, less <c>Expect: 100-continue</c>, which the SDK puts on every PUT of an
/// object or a part. .NET sends the body anyway when no answer came within a second; a server
/// that answered early (an error, before reading the body) and keeps the connection without
/// reading past that body (Ceph's RADOS Gateway) then takes the body for the next request, and
/// the request after it on the connection gets that answer. Without the header, a server that
/// refuses a PUT early reads past its body or closes the connection. The cost: a refused PUT
/// sends its body (one part at most) for nothing.
/// </summary>
internal sealed class S3HttpClientFactory : HttpClientFactory
{
    public static readonly S3HttpClientFactory Instance = new();

    public override HttpClient CreateHttpClient(IClientConfig clientConfig) => Create(clientConfig, clientConfig.AllowAutoRedirect);

    /// <summary>
    /// The client of the store's own signed requests (<see cref="S3Direct"/>): the same, but never
    /// following a redirect, which would send the body again under a signature made for another
    /// address; a 3xx is an answer, and says what is wrong.
    /// </summary>
    public HttpClient CreateDirectClient(IClientConfig clientConfig) => Create(clientConfig, allowRedirects: false);

    private static HttpClient Create(IClientConfig clientConfig, bool allowRedirects)
    {
        // As the SDK makes its own (HttpRequestMessageFactory): no decompression, its proxy and limits.
        var handler = new SocketsHttpHandler
        {
            AllowAutoRedirect = allowRedirects,
            AutomaticDecompression = DecompressionMethods.None,
        };
        if (clientConfig.MaxConnectionsPerServer is { } most) handler.MaxConnectionsPerServer = most;
        if (clientConfig.ConnectTimeout is { } connect) handler.ConnectTimeout = connect;
        if (clientConfig.GetWebProxy() is { } proxy)
        {
            if (clientConfig.ProxyCredentials is not null) proxy.Credentials = clientConfig.ProxyCredentials;
            handler.Proxy = proxy;
        }
        var client = new HttpClient(new NoExpectContinue(handler));
        if (clientConfig.Timeout is { } timeout) client.Timeout = timeout;
        return client;
    }

    /// <summary>Shared by every store with the same settings, as the SDK shares its own clients (one connection pool).</summary>
    public override string GetConfigUniqueString(IClientConfig clientConfig) => string.Join('|', "GridArtifacts.NoExpectContinue",
        clientConfig.AllowAutoRedirect, clientConfig.MaxConnectionsPerServer, clientConfig.ConnectTimeout, clientConfig.Timeout,
        clientConfig.GetWebProxy()?.GetProxy(new Uri("https://s3.amazonaws.com/")));

    private sealed class NoExpectContinue(HttpMessageHandler inner) : DelegatingHandler(inner)
    {
        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            request.Headers.ExpectContinue = false;
            return base.SendAsync(request, cancellationToken);
        }
    }
}
