using System.Net;
using System.Runtime.CompilerServices;
using Amazon;
using Amazon.Runtime;
using Amazon.Runtime.CredentialManagement;
using Amazon.S3;
using Amazon.S3.Model;
using GridArtifacts.Core.Transfer;
using GridArtifacts.Model;

namespace GridArtifacts.Core.Stores;

/// <summary>
/// The store contract in an S3 bucket (AWS, or any server that speaks its protocol). Requests are
/// made so that S3-compatible servers store exactly the bytes sent: no aws-chunked encoding, no
/// trailing checksums unless the operation requires one; SigV4 still signs each payload's SHA-256
/// so the server checks what arrived (docs/s3-compatibility.md).
/// </summary>
public sealed partial class S3Store : IObjectStore, IConditionalCreate, IPresignedLinks, IAbandonedUploads, IMultipartUploads
{
    /// <summary>S3's smallest part (every part but the last) and its most parts per object.</summary>
    public long MinPartSize => 5L << 20;
    public int MaxParts => 10_000;

    private readonly AmazonS3Client _client;
    private readonly AWSCredentials? _credentials;
    private readonly S3StoreUri _location;
    /// <summary>Direct GETs (made on first use), or null where the SDK keeps them.</summary>
    private readonly Lazy<S3Direct?> _direct;
    private readonly S3Errors _errors;

    /// <summary>Set to 1, every GET goes through the SDK (a way round a server the direct GETs do not suit).</summary>
    public const string SdkGetsVariable = "GRID_S3_SDK_GETS";

    /// <summary>Set to 1, every PUT goes through the SDK (a way round a server the direct PUTs do not suit).</summary>
    public const string SdkPutsVariable = "GRID_S3_SDK_PUTS";

    private readonly bool _sdkGets = Environment.GetEnvironmentVariable(SdkGetsVariable) == "1";
    private bool _sdkPuts = Environment.GetEnvironmentVariable(SdkPutsVariable) == "1";

    public S3Store(string location) : this(location, null) { }

    /// <summary>The clock the pauses between a request's attempts are timed by, and an upload's start is written on.</summary>
    public TimeProvider Clock { get; init; } = TimeProvider.System;

    /// <summary>For tests: explicit credentials instead of the SDK's chain, and a shorter time for a request's answer than five minutes.</summary>
    internal S3Store(string location, AWSCredentials? explicitCredentials, TimeSpan? requestTimeout = null)
    {
        Location = location;
        _location = S3StoreUri.Parse(location);
        var config = new AmazonS3Config
        {
            // Exact bytes on every S3-compatible server: checksums only where an operation requires one.
            RequestChecksumCalculation = RequestChecksumCalculation.WHEN_REQUIRED,
            ResponseChecksumValidation = ResponseChecksumValidation.WHEN_REQUIRED,
            Timeout = requestTimeout ?? TimeSpan.FromMinutes(5),
            MaxConnectionsPerServer = 64,
            // Retries are ours (Transfer/Retry.cs), so the number of attempts is known and they never multiply.
            MaxErrorRetry = 0,
            // No PUT waits for "100 Continue" (see S3HttpClientFactory).
            HttpClientFactory = S3HttpClientFactory.Instance,
        };
        if (_location.Endpoint is not null)
        {
            config.ServiceURL = _location.Endpoint.ToString();
            config.ForcePathStyle = true;
            config.AuthenticationRegion = _location.Region ?? "us-east-1";
        }
        else if (_location.Region is not null)
        {
            config.RegionEndpoint = RegionEndpoint.GetBySystemName(_location.Region);
        }

        var credentials = explicitCredentials;
        var profileRegion = false;
        if (_location.Profile is not null)
        {
            var profiles = new CredentialProfileStoreChain();
            if (!profiles.TryGetAWSCredentials(_location.Profile, out credentials))
            {
                throw new GridException(GridErrorKind.AccessDenied, "ProfileNotFound",
                    $"Store '{Display}': no AWS profile named '{_location.Profile}' in the shared config or credentials files.", Display);
            }
            // The profile named in the address brings its region too, as it does for the AWS tools.
            if (_location.Endpoint is null && _location.Region is null && profiles.TryGetProfile(_location.Profile, out var profile) && profile.Region is not null)
            {
                config.RegionEndpoint = profile.Region;
                profileRegion = true;
            }
        }
        // A region given here means a client that cannot be made is about something else. (The config
        // is not asked: its getter answers from the SDK's own fallback, the lookup that fails.)
        var regionGiven = _location.Endpoint is not null || _location.Region is not null || profileRegion;
        _credentials = credentials;
        try
        {
            _client = credentials is null ? new AmazonS3Client(config) : new AmazonS3Client(credentials, config);
        }
        catch (AmazonClientException ex) when (!regionGiven)
        {
            // The SDK found no region anywhere (environment, profile, instance metadata) and says so in its own words.
            throw new GridException(GridErrorKind.InvalidArgument, "RegionNotSet",
                $"Store '{Display}': no AWS region is set, so the bucket cannot be found. Add it to the address ({Display}?region=eu-west-1), " +
                "set AWS_REGION (or AWS_DEFAULT_REGION), or use a profile with a region (AWS_PROFILE, or ?profile=name in the address). " +
                "An S3-compatible server is named with ?endpoint=https://host:port.", Display, ex);
        }
        _errors = new S3Errors(Display, _location.Bucket, _location.Endpoint?.GetLeftPart(UriPartial.Authority) ?? "the AWS S3 endpoint");
        var http = _location.Endpoint?.Scheme == Uri.UriSchemeHttp;
        _direct = new Lazy<S3Direct?>(() => _sdkGets && _sdkPuts ? null
            : S3Direct.TryCreate(_client, _credentials, config, S3HttpClientFactory.Instance, _location.Bucket, _location.KeyPrefix, http));
    }

    public string Location { get; }

    /// <summary>Whether this store's GETs of artifacts are sent directly (<see cref="S3Direct"/>), not through the SDK.</summary>
    internal bool GetsDirectly => !_sdkGets && _direct.Value is not null;

    /// <summary>Whether this store's PUTs of artifacts (whole and parts) are sent directly (<see cref="S3Direct"/>), not through the SDK.</summary>
    internal bool PutsDirectly => !_sdkPuts && _direct.Value is not null;

    /// <summary>For tests: this store's PUTs through the SDK, as <see cref="SdkPutsVariable"/> does for a process.</summary>
    internal void PutThroughSdk() => _sdkPuts = true;

    /// <summary>For tests: the store's own signed requests, where it has them.</summary>
    internal S3Direct? Direct => _direct.Value;

    /// <summary>The location without options, as errors show it.</summary>
    public string Display => _location.Display;

    private string FullKey(string key) => _location.KeyPrefix + key;

    /// <summary>S3's (and Ceph's) 1,024 bytes for a whole key, less this store's key prefix.</summary>
    public int MaxKeyBytes => 1024 - System.Text.Encoding.UTF8.GetByteCount(_location.KeyPrefix);

    /// <summary>S3 has no limit on a part of a key but the key's own.</summary>
    public int MaxKeyPartBytes => MaxKeyBytes;

    public async IAsyncEnumerable<ObjectEntry> ListAsync(string prefix, bool recursive, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var request = new ListObjectsV2Request
        {
            BucketName = _location.Bucket,
            Prefix = FullKey(prefix),
            Delimiter = recursive ? null : "/",
            MaxKeys = 1000,
            // XML 1.0 cannot carry most control characters: asked for, keys come URL-encoded (AWS, Ceph);
            // a server that does not encode them (s3rver) says nothing and sends them as they are.
            Encoding = EncodingType.Url,
        };
        var strip = _location.KeyPrefix.Length;
        // A listing is in strictly increasing key order. Some servers (s3rver) repeat a common prefix
        // that ended one page at the start of the next: what is not after the last entry is passed over.
        string? last = null;
        do
        {
            var response = await Call(() => _client.ListObjectsV2Async(request, cancellationToken), prefix).ConfigureAwait(false);
            var page = new List<ObjectEntry>();
            // The SDK leaves encoded keys as the server sent them. AWS writes a space as '+', Ceph as %20.
            var encoded = response.Encoding == EncodingType.Url;
            string Decode(string key) => encoded ? System.Web.HttpUtility.UrlDecode(key) : key;
            foreach (var o in response.S3Objects ?? new List<S3Object>())
            {
                page.Add(new ObjectEntry(Decode(o.Key)[strip..], o.Size ?? 0, o.LastModified is { } lm ? new DateTimeOffset(lm.ToUniversalTime()) : DateTimeOffset.MinValue));
            }
            foreach (var p in response.CommonPrefixes ?? new List<string>())
            {
                page.Add(new ObjectEntry(Decode(p)[strip..], 0, DateTimeOffset.MinValue, IsPrefix: true));
            }
            page.Sort((a, b) => string.CompareOrdinal(a.Key, b.Key));
            foreach (var e in page)
            {
                if (last is not null && string.CompareOrdinal(e.Key, last) <= 0) continue;
                last = e.Key;
                yield return e;
            }
            request.ContinuationToken = response.IsTruncated == true ? response.NextContinuationToken : null;
        }
        while (request.ContinuationToken is not null);
    }

    public async Task<byte[]?> TryReadAllBytesAsync(string key, CancellationToken cancellationToken)
    {
        try
        {
            // The request and its body are one unit: a body cut short (or, on servers that replace
            // objects in place, one torn by a concurrent PUT) is read again whole.
            return await Retry.RunAsync(async ct =>
            {
                using var read = await GetAsync(key, 0, 0, null, direct: false, ct).ConfigureAwait(false);
                // A record longer than the bound is refused on its declared length, before its body is read.
                return await RecordJson.ReadBoundedAsync(read.Body, read.Body.Length >= 0 ? read.Body.Length : null, Display, key, ct).ConfigureAwait(false);
            }, Clock, cancellationToken).ConfigureAwait(false);
        }
        catch (GridException ex) when (ex.Cause == GridErrorCause.ObjectMissing)
        {
            return null;
        }
    }

    public async Task<Stream> OpenReadAsync(string key, CancellationToken cancellationToken)
    {
        var read = await Retry.RunAsync(async _ => await GetAsync(key, 0, 0, null, direct: false, cancellationToken).ConfigureAwait(false), Clock, CancellationToken.None).ConfigureAwait(false);
        return read.Body;
    }

    public async Task<ObjectRead> ReadRangeAsync(string key, long offset, long length, string? ifVersion, CancellationToken cancellationToken)
    {
        try
        {
            return await GetAsync(key, offset, length, ifVersion, direct: true, cancellationToken).ConfigureAwait(false);
        }
        catch (GridException ex) when (ex.Cause == GridErrorCause.VersionMismatch)
        {
            throw new GridException(GridErrorKind.IntegrityFailure, "ObjectChanged",
                $"'{key}' in store '{Display}' changed while it was being read; run the command again to get the new version.", key, ex);
        }
    }

    /// <summary>
    /// One GET attempt, whole or a range (length 0: to the end), only while the ETag is
    /// <paramref name="ifMatch"/> when one is given. The read's length is the object's whole length.
    /// Artifacts' bytes (<paramref name="direct"/>) are sent directly (<see cref="S3Direct"/>)
    /// where the store can: every byte of them is checked against the manifest's SHA-256. Records
    /// and manifests go through the SDK, which checks a whole object's body against its MD5 ETag:
    /// read directly, about one s3rver record in 150 read while the agent rewrote it came back torn
    /// (s3rver replaces objects in place), and none through the SDK.
    /// </summary>
    private async Task<ObjectRead> GetAsync(string key, long offset, long length, string? ifMatch, bool direct, CancellationToken ct)
    {
        if (direct && GetsDirectly && _direct.Value is { } directGet)
        {
            var response = await Send(() => directGet.GetAsync(key, offset, length, ifMatch, ct), key).ConfigureAwait(false);
            try
            {
                var headers = response.Content.Headers;
                var bodyLength = headers.ContentLength ?? -1;
                var stream = await Send(() => response.Content.ReadAsStreamAsync(ct), key).ConfigureAwait(false);
                return new ObjectRead(new S3ResponseStream(response, stream, bodyLength, this, key), headers.ContentRange?.Length ?? bodyLength, response.Headers.ETag?.ToString() ?? "");
            }
            catch
            {
                response.Dispose();
                throw;
            }
        }
        var request = new GetObjectRequest { BucketName = _location.Bucket, Key = FullKey(key), EtagToMatch = ifMatch };
        if (length > 0) request.ByteRange = new ByteRange(offset, offset + length - 1);
        else if (offset > 0) request.ByteRange = new ByteRange($"bytes={offset}-");
        var sdk = await Send(() => _client.GetObjectAsync(request, ct), key).ConfigureAwait(false);
        var total = sdk.ContentLength;
        var range = sdk.ContentRange; // "bytes a-b/total"
        if (!string.IsNullOrEmpty(range) && range.LastIndexOf('/') is var slash and > 0 && long.TryParse(range.AsSpan(slash + 1), out var t)) total = t;
        return new ObjectRead(new S3ResponseStream(sdk, sdk.ResponseStream, sdk.ContentLength, this, key), total, sdk.ETag ?? "");
    }

    public Task PutAsync(string key, ReadOnlyMemory<byte> content, CancellationToken cancellationToken) =>
        PutBytesAsync(key, content, ifNoneMatch: null, cancellationToken);

    /// <summary>One PUT of bytes held in memory, with exact bytes on every server (no chunk encoding).</summary>
    private async Task PutBytesAsync(string key, ReadOnlyMemory<byte> content, string? ifNoneMatch, CancellationToken cancellationToken)
    {
        using var body = new MemoryStream(content.ToArray(), writable: false);
        var request = PutRequest(key, body);
        if (ifNoneMatch is not null) request.IfNoneMatch = ifNoneMatch;
        await Call(() => _client.PutObjectAsync(request, cancellationToken), key).ConfigureAwait(false);
    }

    /// <summary>A PUT of a body the caller owns, sent as it is: one plain body, no chunk encoding, so every server stores exactly those bytes.</summary>
    private PutObjectRequest PutRequest(string key, Stream body) => new()
    {
        BucketName = _location.Bucket,
        Key = FullKey(key),
        InputStream = body,
        AutoCloseStream = false,
        UseChunkEncoding = false,
    };

    /// <summary>SigV4 presigned URLs live at most seven days.</summary>
    public static readonly TimeSpan MaxLinkLifetime = TimeSpan.FromDays(7);

    /// <summary>
    /// A presigned GET for one key. With temporary credentials the link dies when they do: the
    /// returned time is then the earlier one, and <paramref name="shortened"/> says why.
    /// </summary>
    public async Task<(Uri Url, DateTimeOffset ExpiresAt)> PresignGetAsync(string key, TimeSpan lifetime, Action<string> shortened)
    {
        if (lifetime > MaxLinkLifetime || lifetime <= TimeSpan.Zero)
        {
            throw new GridException(GridErrorKind.InvalidArgument, "LinkLifetimeOutOfRange",
                $"An S3 link can live from 1 second to 7 days (SigV4's limit); {lifetime} was asked for.", key);
        }
        // The SDK turns Expires into whole seconds of X-Amz-Expires against its own clock, and may land
        // a second either side: sign again, nudged, until the link lives exactly as long as asked
        // (never longer: S3 refuses more than 7 days). The expiry reported is the one signed.
        var asked = (long)Math.Ceiling(lifetime.TotalSeconds);
        var nudge = 0L;
        string url = "";
        long signedFor = long.MaxValue;
        for (var attempt = 0; attempt < 10; attempt++)
        {
            url = await _client.GetPreSignedURLAsync(new GetPreSignedUrlRequest
            {
                BucketName = _location.Bucket,
                Key = FullKey(key),
                Verb = HttpVerb.GET,
                Expires = (DateTimeOffset.UtcNow + lifetime).AddSeconds(nudge).UtcDateTime,
                Protocol = _location.Endpoint?.Scheme == Uri.UriSchemeHttp ? Protocol.HTTP : Protocol.HTTPS,
            }).ConfigureAwait(false);
            // Past 7 days by its own clock, the SDK silently falls back to a SigV2 URL: step back.
            if (SignedSeconds(url) is not { } seconds) { signedFor = long.MaxValue; nudge -= 1; continue; }
            signedFor = seconds;
            if (signedFor == asked || (attempt >= 4 && signedFor < asked)) break;
            nudge += asked - signedFor;
        }
        if (signedFor > asked)
        {
            throw new GridException(GridErrorKind.InvalidArgument, "LinkLifetimeOutOfRange",
                $"The link could not be signed for {asked} seconds or less (the clock kept moving); ask again.", key);
        }
        var expires = SignedExpiry(url) ?? DateTimeOffset.UtcNow + lifetime;
        var source = _credentials ?? Amazon.Runtime.Credentials.DefaultAWSCredentialsIdentityResolver.GetCredentials();
        if (source is RefreshingAWSCredentials refreshing && (DateTime?)refreshing.Expiration is { } until && until > DateTime.MinValue
            && new DateTimeOffset(DateTime.SpecifyKind(until, DateTimeKind.Utc)) < expires)
        {
            var end = new DateTimeOffset(DateTime.SpecifyKind(until, DateTimeKind.Utc));
            shortened($"The link was signed with temporary credentials that expire at {end:u}; it stops working then, before the {lifetime.TotalHours:0.#} hours asked for.");
            expires = end;
        }
        return (new Uri(url), expires);
    }

    private static long? SignedSeconds(string url) =>
        long.TryParse(System.Web.HttpUtility.ParseQueryString(new Uri(url).Query)["X-Amz-Expires"], System.Globalization.NumberStyles.None,
            System.Globalization.CultureInfo.InvariantCulture, out var seconds) ? seconds : null;

    /// <summary>X-Amz-Date plus X-Amz-Expires of a presigned URL: when S3 stops honouring it.</summary>
    internal static DateTimeOffset? SignedExpiry(string url)
    {
        var query = System.Web.HttpUtility.ParseQueryString(new Uri(url).Query);
        return DateTimeOffset.TryParseExact(query["X-Amz-Date"], "yyyyMMdd'T'HHmmss'Z'", System.Globalization.CultureInfo.InvariantCulture,
                   System.Globalization.DateTimeStyles.AssumeUniversal, out var signed)
               && long.TryParse(query["X-Amz-Expires"], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var seconds)
            ? signed.ToUniversalTime().AddSeconds(seconds)
            : null;
    }

    public async Task DeleteManyAsync(IReadOnlyList<string> keys, CancellationToken cancellationToken)
    {
        foreach (var batch in keys.Chunk(1000))
        {
            var response = await Call(() => _client.DeleteObjectsAsync(new DeleteObjectsRequest
            {
                BucketName = _location.Bucket,
                Objects = batch.Select(k => new KeyVersion { Key = FullKey(k) }).ToList(),
                Quiet = true,
            }, cancellationToken), batch[0]).ConfigureAwait(false);
            var failed = response.DeleteErrors ?? new List<DeleteError>();
            if (failed.Count > 0)
            {
                var first = failed[0];
                throw new GridException(first.Code == "AccessDenied" ? GridErrorKind.AccessDenied : GridErrorKind.StoreUnavailable, "DeleteFailed",
                    $"Store '{Display}': {failed.Count} of {batch.Length} objects were not deleted (first: '{first.Key}', {first.Code}). Run the command again.", first.Key);
            }
        }
    }

    public async Task DeleteAsync(string key, CancellationToken cancellationToken) =>
        await Call(() => _client.DeleteObjectAsync(_location.Bucket, FullKey(key), cancellationToken), key).ConfigureAwait(false);

    /// <summary>One request whose response the SDK reads whole, retried on transient failures.</summary>
    private Task<T> Call<T>(Func<Task<T>> request, string key) =>
        Retry.RunAsync(_ => new ValueTask<T>(Send(request, key)), Clock, CancellationToken.None).AsTask();

    /// <summary>One attempt, with what S3 and the network say turned into errors a user can act on.</summary>
    private async Task<T> Send<T>(Func<Task<T>> request, string key)
    {
        try
        {
            return await request().ConfigureAwait(false);
        }
        catch (Exception ex) when (Translate(ex, key) is { } error)
        {
            throw error;
        }
    }

    /// <summary>What an exception from a request means for a user (<see cref="S3Errors"/>), or null when it is not the store's to say.</summary>
    internal GridException? Translate(Exception ex, string key) => _errors.Translate(ex, key);

    private string EndpointText => _errors.EndpointText;

    public void Dispose() => _client.Dispose();

    /// <summary>How long a download may wait for its next bytes before the attempt counts as failed.</summary>
    public static TimeSpan ReadStallTimeout { get; set; } = TimeSpan.FromSeconds(30);
}
