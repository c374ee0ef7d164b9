using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using Amazon.Runtime;
using Amazon.S3;
using Amazon.S3.Model;

namespace GridArtifacts.Core.Stores;

/// <summary>
/// Artifacts' bytes, GET and PUT (whole objects, ranges and parts), signed here (AWS Signature
/// Version 4) and sent on the store's HTTP client, not through the SDK's request pipeline, which
/// costs about 0.6 ms of CPU a request more (2,000 GETs of 64 KiB at 16 in flight on Ceph's RADOS
/// Gateway: 2.0 s of CPU through the SDK, 0.8 s here; see docs/transfer-engine.md). The SDK still
/// decides where a key lives and how requests are signed: the address (path or virtual-hosted
/// style, the endpoint) and the signing region are read from a URL it presigns once, and the
/// credentials come from the same chain as its own requests. Where that URL is not the SigV4 form
/// expected, or no credentials are found, the store keeps the SDK. A PUT signs its body's SHA-256,
/// as the SDK does: the server refuses a body that is not the one hashed.
/// </summary>
internal sealed class S3Direct
{
    /// <summary>The SHA-256 of an empty body: what a GET signs as its payload, as the SDK does.</summary>
    private const string EmptyPayload = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    private const string ProbeKey = "grid-address-probe";
    /// <summary>An error's body is read up to this many bytes for its code.</summary>
    private const int MaxErrorBody = 64 << 10;
    private static readonly UriCreationOptions RawPath = new() { DangerousDisablePathAndQueryCanonicalization = true };
    private static readonly ConcurrentDictionary<string, HttpClient> Clients = new(StringComparer.Ordinal);

    private readonly HttpClient _http;
    private readonly AWSCredentials _credentials;
    private readonly string _origin;     // scheme://host[:port], as requests are addressed
    private readonly string _host;       // the Host header, as signed
    private readonly string _pathPrefix; // the path before a key ("/bucket/" or "/")
    private readonly string _region;
    private readonly string _keyPrefix;  // the store's own prefix inside the bucket
    private volatile SigningKey? _signingKey;

    private sealed record SigningKey(string Date, string AccessKey, string SecretKey, byte[] Key);

    private S3Direct(HttpClient http, AWSCredentials credentials, Uri probe, string pathPrefix, string region, string keyPrefix)
    {
        _http = http;
        _credentials = credentials;
        _origin = probe.GetLeftPart(UriPartial.Authority);
        _host = probe.IsDefaultPort ? probe.Host : probe.Authority;
        _pathPrefix = pathPrefix;
        _region = region;
        _keyPrefix = keyPrefix;
    }

    /// <summary>
    /// The direct GETs of a bucket, or null where the SDK must keep them: no credentials (or anonymous
    /// ones), or an address the SDK would not sign with SigV4 as a path that ends with the key.
    /// </summary>
    public static S3Direct? TryCreate(AmazonS3Client client, AWSCredentials? credentials, IClientConfig config, S3HttpClientFactory factory,
        string bucket, string keyPrefix, bool http)
    {
        try
        {
            credentials ??= Amazon.Runtime.Credentials.DefaultAWSCredentialsIdentityResolver.GetCredentials(config);
            if (credentials is null or AnonymousAWSCredentials) return null;
            var url = client.GetPreSignedURL(new GetPreSignedUrlRequest
            {
                BucketName = bucket,
                Key = keyPrefix + ProbeKey,
                Verb = HttpVerb.GET,
                Expires = Amazon.Util.AWSSDKUtils.CorrectedUtcNow.AddMinutes(5),
                Protocol = http ? Protocol.HTTP : Protocol.HTTPS,
            });
            var probe = new Uri(url, RawPath);
            var query = System.Web.HttpUtility.ParseQueryString(probe.Query);
            if (query["X-Amz-Algorithm"] != "AWS4-HMAC-SHA256" || query["X-Amz-Credential"]?.Split('/') is not [_, _, var region, "s3", "aws4_request"]) return null;
            var path = probe.AbsolutePath;
            var keyPath = EncodePath(keyPrefix + ProbeKey);
            if (!path.EndsWith(keyPath, StringComparison.Ordinal)) return null;
            var httpClient = Clients.GetOrAdd(factory.GetConfigUniqueString(config), _ => factory.CreateDirectClient(config));
            return new S3Direct(httpClient, credentials, probe, path[..^keyPath.Length], region, keyPrefix);
        }
        catch (Exception ex) when (ex is not (OutOfMemoryException or StackOverflowException))
        {
            // No address or credentials now (a metadata service that did not answer, a bad profile):
            // the SDK's own requests carry on, and say what is wrong in their words.
            return null;
        }
    }

    /// <summary>
    /// GET of a key (the store's prefix is added here), whole or a range, optionally only while its
    /// ETag is <paramref name="ifMatch"/>. An answer other than 200 or 206 is thrown as the SDK would
    /// throw it (an <see cref="AmazonS3Exception"/> with the status and S3's error code), so the store
    /// turns it into the same typed error whichever way the request went.
    /// </summary>
    public async Task<HttpResponseMessage> GetAsync(string key, long offset, long length, string? ifMatch, CancellationToken ct)
    {
        var path = _pathPrefix + EncodePath(_keyPrefix + key);
        using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(_origin + path, RawPath));
        if (length > 0) request.Headers.Range = new RangeHeaderValue(offset, offset + length - 1);
        else if (offset > 0) request.Headers.Range = new RangeHeaderValue(offset, null);
        if (ifMatch is not null) request.Headers.TryAddWithoutValidation("If-Match", ifMatch);
        await SignAsync(request, path, "", EmptyPayload).ConfigureAwait(false);
        var response = await SendAsync(request, ct).ConfigureAwait(false);
        if (response.StatusCode is HttpStatusCode.OK or HttpStatusCode.PartialContent) return response;
        using (response)
        {
            throw await ErrorOfAsync(response, ct).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// PUT of a body whose SHA-256 (lowercase hex) the caller took from the same bytes: a whole
    /// object, or part <paramref name="partNumber"/> of a multipart upload. Returns the ETag.
    /// </summary>
    public async Task<string> PutAsync(string key, HttpContent body, string sha256, string? uploadId, int partNumber, CancellationToken ct)
    {
        var path = _pathPrefix + EncodePath(_keyPrefix + key);
        // The canonical query: its names in order, each value encoded as a key is, and '/' too.
        var query = uploadId is null ? "" : $"partNumber={partNumber.ToString(CultureInfo.InvariantCulture)}&uploadId={EncodePath(uploadId).Replace("/", "%2F", StringComparison.Ordinal)}";
        using var request = new HttpRequestMessage(HttpMethod.Put, new Uri(_origin + path + (query.Length > 0 ? "?" + query : ""), RawPath)) { Content = body };
        // The type the SDK labels an object with, from its name's extension (a shared link opens as it should);
        // a name without one is bytes (application/octet-stream), where the SDK would say text/plain.
        if (uploadId is null) body.Headers.ContentType = new MediaTypeHeaderValue(Amazon.S3.Util.AmazonS3Util.MimeTypeFromExtension(Path.GetExtension(key)));
        await SignAsync(request, path, query, sha256).ConfigureAwait(false);
        HttpResponseMessage response;
        try
        {
            response = await SendAsync(request, ct).ConfigureAwait(false);
        }
        catch (HttpRequestException ex) when (FileShrank(ex) is { } shrank)
        {
            throw shrank; // the file, not the network: its caller sends it again once it has settled
        }
        using (response)
        {
            if (response.StatusCode != HttpStatusCode.OK) throw await ErrorOfAsync(response, ct).ConfigureAwait(false);
            if (response.Headers.TryGetValues("ETag", out var tags) && tags.FirstOrDefault() is { Length: > 0 } tag) return tag;
            if (uploadId is null) return "";
            // A part without its ETag cannot be named in the completion: asked again, as an answer cut short.
            throw new AmazonS3Exception("The server accepted a part but sent no ETag for it.", ErrorType.Receiver, "MissingETag", null, HttpStatusCode.BadGateway);
        }
    }

    /// <summary>
    /// Sends a request and returns once its headers are in. The client's own time-out (which .NET
    /// reports as a cancellation) is a <see cref="TimeoutException"/> here, as the SDK reports it, so
    /// the store sees a transient failure and the request is tried again; only <paramref name="ct"/> cancels.
    /// </summary>
    private async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken ct)
    {
        try
        {
            return await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, ct).ConfigureAwait(false);
        }
        catch (OperationCanceledException ex) when (!ct.IsCancellationRequested)
        {
            throw new TimeoutException($"No answer within {_http.Timeout.TotalSeconds:0} s.", ex);
        }
    }

    private static FileShrankException? FileShrank(Exception ex)
    {
        for (Exception? e = ex; e is not null; e = e.InnerException)
        {
            if (e is FileShrankException shrank) return shrank;
        }
        return null;
    }

    private async Task SignAsync(HttpRequestMessage request, string path, string query, string payload)
    {
        var credentials = await _credentials.GetCredentialsAsync().ConfigureAwait(false);
        var now = Amazon.Util.AWSSDKUtils.CorrectedUtcNow; // the SDK's clock, as its own requests are signed
        var amzDate = now.ToString("yyyyMMdd'T'HHmmss'Z'", CultureInfo.InvariantCulture);
        var date = amzDate[..8];
        var signing = _signingKey;
        if (signing is null || signing.Date != date || signing.AccessKey != credentials.AccessKey || signing.SecretKey != credentials.SecretKey)
        {
            var k = HMACSHA256.HashData(Encoding.UTF8.GetBytes("AWS4" + credentials.SecretKey), Encoding.ASCII.GetBytes(date));
            k = HMACSHA256.HashData(k, Encoding.ASCII.GetBytes(_region));
            k = HMACSHA256.HashData(k, "s3"u8);
            k = HMACSHA256.HashData(k, "aws4_request"u8);
            _signingKey = signing = new SigningKey(date, credentials.AccessKey, credentials.SecretKey, k);
        }
        var token = credentials.UseToken ? credentials.Token : null;
        var signedHeaders = token is null ? "host;x-amz-content-sha256;x-amz-date" : "host;x-amz-content-sha256;x-amz-date;x-amz-security-token";
        var canonical = new StringBuilder(256)
            .Append(request.Method.Method).Append('\n').Append(path).Append('\n').Append(query).Append('\n')
            .Append("host:").Append(_host).Append('\n')
            .Append("x-amz-content-sha256:").Append(payload).Append('\n')
            .Append("x-amz-date:").Append(amzDate).Append('\n');
        if (token is not null) canonical.Append("x-amz-security-token:").Append(token.Trim()).Append('\n');
        canonical.Append('\n').Append(signedHeaders).Append('\n').Append(payload);
        var scope = $"{date}/{_region}/s3/aws4_request";
        var toSign = $"AWS4-HMAC-SHA256\n{amzDate}\n{scope}\n{Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(canonical.ToString()))).ToLowerInvariant()}";
        var signature = Convert.ToHexString(HMACSHA256.HashData(signing.Key, Encoding.UTF8.GetBytes(toSign))).ToLowerInvariant();
        request.Headers.Host = _host;
        request.Headers.TryAddWithoutValidation("x-amz-date", amzDate);
        request.Headers.TryAddWithoutValidation("x-amz-content-sha256", payload);
        if (token is not null) request.Headers.TryAddWithoutValidation("x-amz-security-token", token);
        request.Headers.TryAddWithoutValidation("Authorization",
            $"AWS4-HMAC-SHA256 Credential={credentials.AccessKey}/{scope}, SignedHeaders={signedHeaders}, Signature={signature}");
    }

    /// <summary>What the SDK would have thrown for this answer: its status, and S3's error code from the body.</summary>
    private static async Task<AmazonS3Exception> ErrorOfAsync(HttpResponseMessage response, CancellationToken ct)
    {
        string? code = null, message = null, requestId = null;
        try
        {
            var body = await ReadPrefixAsync(response, ct).ConfigureAwait(false);
            if (body.Length > 0)
            {
                var xml = System.Xml.Linq.XElement.Parse(body);
                code = xml.Element("Code")?.Value;
                message = xml.Element("Message")?.Value;
                requestId = xml.Element("RequestId")?.Value;
            }
        }
        catch (Exception ex) when (ex is System.Xml.XmlException or HttpRequestException or IOException
            || (ex is OperationCanceledException && !ct.IsCancellationRequested))
        {
            // No readable error body (a HEAD-like answer, a proxy's page): the status alone says it.
        }
        code ??= response.StatusCode switch
        {
            HttpStatusCode.NotFound => "NotFound",
            HttpStatusCode.PreconditionFailed => "PreconditionFailed",
            _ => null,
        };
        return new AmazonS3Exception(message ?? $"The server answered {(int)response.StatusCode} {response.ReasonPhrase}.",
            ErrorType.Sender, code, requestId, response.StatusCode);
    }

    private static async Task<string> ReadPrefixAsync(HttpResponseMessage response, CancellationToken ct)
    {
        // An error's body that stops coming is not waited for longer than a stalled download.
        using var stall = CancellationTokenSource.CreateLinkedTokenSource(ct);
        stall.CancelAfter(S3Store.ReadStallTimeout);
        ct = stall.Token;
        await using var body = await response.Content.ReadAsStreamAsync(ct).ConfigureAwait(false);
        var buffer = new byte[MaxErrorBody];
        var read = 0;
        int n;
        while (read < buffer.Length && (n = await body.ReadAsync(buffer.AsMemory(read), ct).ConfigureAwait(false)) > 0) read += n;
        return Encoding.UTF8.GetString(buffer, 0, read);
    }

    /// <summary>A key as S3 signs and addresses it: every byte but A-Z a-z 0-9 - . _ ~ and / percent-encoded.</summary>
    internal static string EncodePath(string key)
    {
        var bytes = Encoding.UTF8.GetBytes(key);
        var text = new StringBuilder(bytes.Length * 3 / 2);
        foreach (var b in bytes)
        {
            if (b is (>= (byte)'A' and <= (byte)'Z') or (>= (byte)'a' and <= (byte)'z') or (>= (byte)'0' and <= (byte)'9')
                or (byte)'-' or (byte)'.' or (byte)'_' or (byte)'~' or (byte)'/')
            {
                text.Append((char)b);
            }
            else
            {
                text.Append('%').Append(Convert.ToHexString([b]));
            }
        }
        return text.ToString();
    }
}
