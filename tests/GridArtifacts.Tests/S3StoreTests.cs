using System.Security.Cryptography;
using Amazon.Runtime;
using Amazon.S3;
using Amazon.S3.Model;
using GridArtifacts.Core;
using GridArtifacts.Core.Stores;
using GridArtifacts.Core.Transfer;
using GridArtifacts.Model;
using Xunit;

namespace GridArtifacts.Tests;

/// <summary>The whole store contract suite, unchanged, against a real S3-compatible server.</summary>
[Collection(S3SecondLane.Name)]
public sealed class S3StoreContractTests : StoreContractTests
{
    private readonly S3ServerFixture _s3;
    private readonly string _bucket;

    public S3StoreContractTests(S3ServerFixture s3)
    {
        _s3 = s3;
        _bucket = s3.NewBucket();
    }

    protected override IObjectStore NewStore() => new S3Store(_s3.StoreUri(_bucket, "team/" + Guid.NewGuid().ToString("N")));

    [Theory]
    [InlineData(86_400)]
    [InlineData(604_800)]
    [InlineData(5)]
    public async Task Presigned_links_are_signed_for_exactly_the_lifetime_asked_and_say_when_they_end(int seconds)
    {
        var store = (S3Store)Store();
        await store.PutAsync("runs/r/exp0/artifacts/a.bin", new byte[] { 1, 2, 3 }, default);
        for (var i = 0; i < 3; i++)
        {
            var (url, expires) = await store.PresignGetAsync("runs/r/exp0/artifacts/a.bin", TimeSpan.FromSeconds(seconds), _ => { });
            var query = System.Web.HttpUtility.ParseQueryString(url.Query);
            Assert.Equal(seconds.ToString(System.Globalization.CultureInfo.InvariantCulture), query["X-Amz-Expires"]);
            var signed = DateTimeOffset.ParseExact(query["X-Amz-Date"]!, "yyyyMMdd'T'HHmmss'Z'", System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.AssumeUniversal);
            Assert.Equal(signed.AddSeconds(seconds), expires);
            await Task.Delay(330);
        }
    }

    [Fact]
    public async Task Large_files_go_up_in_parts_the_engine_sizes_byte_exact_and_leave_no_upload_record()
    {
        var store = (S3Store)Store();
        // Parts of 2 MiB asked for; S3 takes no part under 5 MiB but the last, so 5 MiB parts: 3 of them.
        var engine = new TransferEngine(new TransferOptions { RangedThreshold = 6L << 20, PartSize = 2L << 20, PartsPerFile = 2 });
        var length = (int)(2 * store.MinPartSize) + 3 * 1024 * 1024 + 7;
        var data = TestBytes.Random(length, 99);
        var file = Temp.WriteFile("big.bin", data);
        var key = StoreLayout.ArtifactKey("r", "exp0", "big.bin");
        await engine.UploadFileAsync(store, key, file, TimeProvider.System, default);
        Assert.Equal(1 + 3 + 1, engine.RequestsMade); // start, three parts, complete
        await using var s = await store.OpenReadAsync(key, default);
        var hash = await SHA256.HashDataAsync(s);
        Assert.Equal(TestBytes.Sha256(data), Convert.ToHexString(hash).ToLowerInvariant());
        Assert.Empty(await store.ListAsync(StoreLayout.UploadsPrefix("r", "exp0"), true, default).ToListAsync());

        // At or under the threshold: one request.
        var small = Temp.WriteFile("small.bin", data.AsSpan(0, 6 << 20).ToArray());
        await engine.UploadFileAsync(store, StoreLayout.ArtifactKey("r", "exp0", "small.bin"), small, TimeProvider.System, default);
        Assert.Equal(6, engine.RequestsMade);
    }

    /// <summary>
    /// Listings ask for URL-encoded keys (so XML can carry any key) and decode only what the server
    /// says it encoded: keys holding '%', '+', spaces and non-ASCII text list exactly as written, on a
    /// server that encodes (Ceph's RADOS Gateway) and one that ignores the request (s3rver).
    /// </summary>
    [Fact]
    public async Task Listings_ask_for_url_encoded_keys_and_give_every_key_back_exactly()
    {
        using var proxy = new FaultProxy(_s3.Endpoint);
        var location = _s3.StoreUri(_bucket, "enc/" + Guid.NewGuid().ToString("N"));
        var store = new S3Store(location);
        var viaProxy = new S3Store(location.Replace(Uri.EscapeDataString(_s3.Endpoint), Uri.EscapeDataString(proxy.Endpoint)));
        var keys = new[] { "runs/a/pct%41x.txt", "runs/a/plus+x.txt", "runs/a/sp ace.txt", "runs/a/\u00e9t\u00e9/\u6587\u4ef6.txt", "runs/a%2Fb/x.txt" };
        foreach (var k in keys) await store.PutAsync(k, new byte[] { 1 }, default);
        var listed = await viaProxy.ListAsync("runs/", recursive: true, default).Select(e => e.Key).ToListAsync();
        Assert.Equal(keys.Order(StringComparer.Ordinal), listed);
        var folders = await viaProxy.ListAsync("runs/", recursive: false, default).Select(e => e.Key).ToListAsync();
        Assert.Equal(new[] { "runs/a%2Fb/", "runs/a/" }, folders);
        Assert.All(proxy.Log.Where(l => l.Method == "GET"), l => Assert.Contains("encoding-type=url", l.PathAndQuery));
    }

    /// <summary>
    /// A PUT the server refuses before reading its body (a key over S3's 1,024 bytes) from a server
    /// whose answers come late. Sent with <c>Expect: 100-continue</c>, .NET sends the body after a
    /// second without an answer; a server that answered early and keeps the connection for a next
    /// request without reading the body (Ceph's RADOS Gateway) reads that body as one, and the
    /// request after it on the connection gets its answer. The body here is such a request, so a
    /// smuggled answer shows. The store sends no Expect header: the server reads past the body.
    /// </summary>
    [Fact]
    public async Task A_put_refused_before_its_body_is_read_leaves_nothing_for_the_next_request_on_the_connection()
    {
        // Only the refused PUT's answer comes late: the bytes the server sends after it (a smuggled
        // request's answer among them) still reach the client in the order they were sent.
        using var relay = new SlowAnswerRelay(_s3.Endpoint, TimeSpan.Zero);
        var location = _s3.StoreUri(_bucket, "expect/" + Guid.NewGuid().ToString("N"));
        using var store = new S3Store(location.Replace(Uri.EscapeDataString(_s3.Endpoint), Uri.EscapeDataString(relay.Endpoint)));
        var content = TestBytes.Random(1000, 7);
        await store.PutAsync("k", content, default);
        var smuggled = System.Text.Encoding.ASCII.GetBytes($"GET /{_bucket}/no-such-key HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n");
        var tooLong = string.Join('/', Enumerable.Repeat(new string('x', 200), 6));
        // A real S3 refuses the key; s3rver, which keeps keys as files, takes it. The next request is what is checked.
        relay.Delay = TimeSpan.FromMilliseconds(1500);
        try { await store.PutAsync(tooLong, smuggled, default); }
        catch (GridException ex) { Assert.Equal("StoreRequestFailed", ex.ErrorId); }
        relay.Delay = TimeSpan.Zero;
        for (var i = 0; i < 2; i++)
        {
            var back = await store.TryReadAllBytesAsync("k", default);
            Assert.NotNull(back);
            Assert.Equal(TestBytes.Sha256(content), TestBytes.Sha256(back));
        }
    }

    [Fact]
    public async Task No_request_asks_the_server_to_expect_100_continue()
    {
        using var proxy = new FaultProxy(_s3.Endpoint);
        var location = _s3.StoreUri(_bucket, "expect/" + Guid.NewGuid().ToString("N"));
        using var store = new S3Store(location.Replace(Uri.EscapeDataString(_s3.Endpoint), Uri.EscapeDataString(proxy.Endpoint)));
        await store.PutAsync("bytes", new byte[] { 1, 2, 3 }, default);
        await store.PutFileAsync("file", Temp.WriteFile("one.bin", TestBytes.Random(100_000, 8)), default);
        var engine = new TransferEngine(new TransferOptions { RangedThreshold = 6L << 20, PartSize = 5L << 20 });
        await engine.UploadFileAsync(store, "parts", Temp.WriteFile("parts.bin", TestBytes.Random((6 << 20) + 10, 9)), TimeProvider.System, default);
        Assert.Contains(proxy.Log, l => l.Method == "PUT" && l.PathAndQuery.Contains("partNumber="));
        Assert.Empty(proxy.Expecting);
    }

    [Fact]
    public async Task Stores_sharing_a_bucket_never_see_each_others_keys()
    {
        var a = Store();
        var b = Store();
        await a.PutAsync("runs/only-a/run.json", new byte[] { 1 }, default);
        var seen = new List<ObjectEntry>();
        await foreach (var e in b.ListAsync("runs/", recursive: true, default)) seen.Add(e);
        Assert.Empty(seen);
    }
}

/// <summary>What a user meets when the store is wrong: typed errors naming the store, no secrets.</summary>
[Collection(S3Collection.Name)]
public sealed class S3StoreErrorTests
{
    private readonly S3ServerFixture _s3;

    public S3StoreErrorTests(S3ServerFixture s3) => _s3 = s3;

    [Fact]
    public async Task A_missing_bucket_is_BucketNotFound_naming_the_store()
    {
        using var store = new S3Store(_s3.StoreUri("no-such-bucket-here"));
        var ex = await Assert.ThrowsAsync<GridException>(() => new GridCatalog(store).Runs.ListRunNamesAsync(default));
        Assert.Equal("BucketNotFound", ex.ErrorId);
        Assert.Equal(GridErrorKind.NotFound, ex.Kind);
        Assert.Contains("s3://no-such-bucket-here", ex.Message);
    }

    [Fact]
    public void An_ETag_the_SDK_cannot_read_is_a_transient_MalformedResponse_not_an_untyped_error()
    {
        // What the SDK throws for an ETag that is not hex (s3rver answered one while it replaced an
        // object, and a Slurm test met the bare ArgumentOutOfRangeException 'hex').
        var thrown = Assert.Throws<ArgumentOutOfRangeException>(() => Amazon.Util.AWSSDKUtils.HexStringToBytes(""));
        Assert.Equal("hex", thrown.ParamName);
        using var store = new S3Store(_s3.StoreUri(_s3.NewBucket()));
        var error = store.Translate(thrown, "runs/r/exp0/experiment.json");
        Assert.NotNull(error);
        Assert.Equal("MalformedResponse", error!.ErrorId);
        Assert.True(error.IsTransient);
        Assert.Null(store.Translate(new ArgumentOutOfRangeException("ours"), "k")); // not the SDK's: not dressed as a store error
    }

    [Fact]
    public void An_SDK_exception_is_told_by_where_it_was_thrown_when_its_Source_names_no_assembly()
    {
        // A Native AOT build answers "<unknown>" for Source and keeps no metadata for TargetSite: the
        // first frame of the stack trace still names the SDK's method.
        var thrown = Assert.Throws<ArgumentOutOfRangeException>(() => Amazon.Util.AWSSDKUtils.HexStringToBytes(""));
        thrown.Source = "<unknown>";
        var ours = Assert.Throws<ArgumentOutOfRangeException>(() => ThrowOwn());
        ours.Source = "<unknown>";
        using var store = new S3Store(_s3.StoreUri(_s3.NewBucket()));
        Assert.Equal("MalformedResponse", store.Translate(thrown, "runs/r/exp0/experiment.json")?.ErrorId);
        Assert.Null(store.Translate(ours, "k"));
    }

    private static void ThrowOwn() => throw new ArgumentOutOfRangeException("hex");

    [Fact]
    public async Task Unknown_credentials_are_InvalidCredentials_and_no_secret_is_in_the_message()
    {
        // s3rver checks the access key id but not SigV4 signatures, so the key id is what is wrong here.
        const string secret = "wrong-secret-value-0123456789";
        using var store = new S3Store(_s3.StoreUri(_s3.NewBucket()), new BasicAWSCredentials("AKIAUNKNOWNKEY000000", secret));
        var ex = await Assert.ThrowsAsync<GridException>(() => new GridCatalog(store).Runs.ListRunNamesAsync(default));
        Assert.Equal("InvalidCredentials", ex.ErrorId);
        Assert.Equal(GridErrorKind.AccessDenied, ex.Kind);
        Assert.DoesNotContain(secret, ex.Message);
        Assert.DoesNotContain(secret, ex.ToString());
    }

    [Fact]
    public async Task An_unreachable_endpoint_is_EndpointUnreachable()
    {
        // A refused connection is tried as often as throttling is; the backoff between the tries passes on the clock.
        using var store = new S3Store("s3://bucket/prefix?endpoint=" + Uri.EscapeDataString("http://127.0.0.1:1")) { Clock = new AutoAdvancingClock() };
        var ex = await Assert.ThrowsAsync<GridException>(() => store.TryReadAllBytesAsync("runs/x/run.json", default));
        Assert.Equal("EndpointUnreachable", ex.ErrorId);
        Assert.Equal(GridErrorKind.StoreUnavailable, ex.Kind);
        Assert.Contains("127.0.0.1:1", ex.Message);
    }

    [Theory]
    [InlineData("s3://")]
    [InlineData("s3:///prefix")]
    [InlineData("s3://bucket/p?colour=blue")]
    [InlineData("s3://bucket/p?endpoint=ftp://host")]
    public void Malformed_store_uris_are_InvalidStoreUri(string uri)
    {
        var ex = Assert.Throws<GridException>(() => S3StoreUri.Parse(uri));
        Assert.Equal("InvalidStoreUri", ex.ErrorId);
    }

    [Fact]
    public void Uris_carry_bucket_prefix_and_options()
    {
        var l = S3StoreUri.Parse("s3://my-bucket/team/ml?region=eu-west-1&profile=dev&endpoint=http%3A%2F%2F127.0.0.1%3A9000");
        Assert.Equal("my-bucket", l.Bucket);
        Assert.Equal("team/ml/", l.KeyPrefix);
        Assert.Equal("eu-west-1", l.Region);
        Assert.Equal("dev", l.Profile);
        Assert.Equal(new Uri("http://127.0.0.1:9000"), l.Endpoint);
        Assert.Equal("s3://my-bucket/team/ml", l.Display);
    }

    /// <summary>
    /// Why the store sets what it sets: with the SDK's default request settings (an aws-chunked body
    /// with a trailing checksum), a server either keeps the chunk framing as the object's content
    /// (s3rver: a hash comparison is what catches it) or refuses the PUT (Ceph's RADOS Gateway: 400
    /// XAmzContentSHA256Mismatch). The store's own PUT stores exactly the bytes sent on either.
    /// </summary>
    [Fact]
    public async Task Default_sdk_upload_settings_store_other_bytes_or_are_refused_and_the_store_puts_exact_bytes()
    {
        var bucket = _s3.NewBucket();
        using var defaults = new AmazonS3Client(new BasicAWSCredentials(S3ServerFixture.AccessKey, S3ServerFixture.SecretKey),
            new AmazonS3Config { ServiceURL = _s3.Endpoint, ForcePathStyle = true, AuthenticationRegion = "us-east-1", MaxErrorRetry = 0 });
        var data = TestBytes.Random(1_000_000, 5);
        AmazonS3Exception? refused = null;
        try { await defaults.PutObjectAsync(new PutObjectRequest { BucketName = bucket, Key = "k", InputStream = new MemoryStream(data) }); }
        catch (AmazonS3Exception ex) { refused = ex; }
        if (refused is null)
        {
            using var back = await _s3.Client.GetObjectAsync(bucket, "k");
            using var ms = new MemoryStream();
            await back.ResponseStream.CopyToAsync(ms);
            Assert.NotEqual(TestBytes.Sha256(data), TestBytes.Sha256(ms.ToArray()));
            Assert.True(ms.Length > data.Length, $"{ms.Length} bytes came back"); // the chunk framing was stored too
        }
        else
        {
            Assert.Equal(System.Net.HttpStatusCode.BadRequest, refused.StatusCode);
            Assert.Equal("XAmzContentSHA256Mismatch", refused.ErrorCode);
            var missing = await Assert.ThrowsAsync<AmazonS3Exception>(() => _s3.Client.GetObjectMetadataAsync(bucket, "k"));
            Assert.Equal(System.Net.HttpStatusCode.NotFound, missing.StatusCode); // nothing was stored
        }

        using var store = new S3Store(_s3.StoreUri(bucket));
        await store.PutAsync("k2", data, default);
        using var put = await _s3.Client.GetObjectAsync(bucket, "k2");
        using var stored = new MemoryStream();
        await put.ResponseStream.CopyToAsync(stored);
        Assert.Equal(TestBytes.Sha256(data), TestBytes.Sha256(stored.ToArray()));
    }
}
