using System.Text;
using Amazon.Runtime;
using Amazon.S3;
using GridArtifacts.Core.Transfer;
using GridArtifacts.Core.Stores;
using GridArtifacts.Model;
using Xunit;

namespace GridArtifacts.Tests;

/// <summary>
/// The store's own signed GETs and PUTs (S3Direct): byte-exact for keys that need encoding, whole,
/// in ranges and in parts, and the same typed errors as the SDK's requests. On Ceph's RADOS Gateway (the RGW lane)
/// every request's SigV4 signature is checked, so a wrong canonical form fails here.
/// </summary>
[Collection(S3Collection.Name)]
public sealed class S3DirectTests
{
    private readonly S3ServerFixture _s3;

    public S3DirectTests(S3ServerFixture s3) => _s3 = s3;

    public static TheoryData<string> Keys => new()
    {
        "plain/model.bin",
        "with space/and+plus=equals&amp;.txt",
        "percent%41/tilde~/star*/quote'/paren(1).bin",
        "dots..in.name/.hidden/trailing.dot.",
        "ünïcödé/日本語/emoji-🚀.bin",
        "semi;colon,comma:colon@at$dollar!bang.bin",
    };

    [Theory]
    [MemberData(nameof(Keys))]
    public async Task A_key_that_needs_encoding_is_read_byte_exact_whole_and_in_ranges(string key)
    {
        using var store = new S3Store(_s3.StoreUri(_s3.NewBucket(), "direct/pre fix+/"));
        Assert.True(store.GetsDirectly);
        var data = TestBytes.Random(300_001, key.Length);
        await store.PutAsync(key, data, default);

        Assert.Equal(TestBytes.Sha256(data), TestBytes.Sha256((await store.TryReadAllBytesAsync(key, default))!));
        await using (var whole = await store.OpenReadAsync(key, default))
        {
            Assert.Equal(data.Length, whole.Length);
            using var copy = new MemoryStream();
            await whole.CopyToAsync(copy);
            Assert.Equal(TestBytes.Sha256(data), TestBytes.Sha256(copy.ToArray()));
        }
        using var first = await store.ReadRangeAsync(key, 0, 0, null, default);
        Assert.Equal(data.Length, first.TotalLength);
        Assert.NotEmpty(first.Version);
        // (s3rver 3.7.1 answers bytes=0-0 with the whole object, and so does it through the SDK: not a range asked here.)
        foreach (var (offset, length) in new[] { (0L, 2L), (1_000L, 65_536L), (300_000L, 1L), (123_457L, 0L) })
        {
            using var part = await store.ReadRangeAsync(key, offset, length, first.Version, default);
            Assert.Equal(data.Length, part.TotalLength);
            using var copy = new MemoryStream();
            await part.Body.CopyToAsync(copy);
            var expected = data.AsSpan((int)offset, length > 0 ? (int)length : data.Length - (int)offset).ToArray();
            Assert.True(TestBytes.Sha256(expected) == TestBytes.Sha256(copy.ToArray()), $"bytes {offset} to {offset + length} (0: the end) of '{key}': {copy.Length} bytes came");
        }
    }

    [Fact]
    public async Task Errors_are_the_typed_errors_of_the_SDK_path()
    {
        var bucket = _s3.NewBucket();
        using var store = new S3Store(_s3.StoreUri(bucket, "errors"));
        Assert.True(store.GetsDirectly);
        Assert.Null(await store.TryReadAllBytesAsync("no/such/key.json", default));
        var missing = await Assert.ThrowsAsync<GridException>(() => store.ReadRangeAsync("no/such/key.bin", 0, 0, null, default));
        Assert.Equal("ObjectNotFound", missing.ErrorId);

        await store.PutAsync("changes.bin", Encoding.UTF8.GetBytes("first"), default);
        string version;
        using (var read = await store.ReadRangeAsync("changes.bin", 0, 0, null, default)) version = read.Version;
        Assert.Matches("^\"[0-9a-f]{32}\"$", version); // a single PUT's ETag: the MD5 a whole read is checked against
        await store.PutAsync("changes.bin", Encoding.UTF8.GetBytes("second, longer"), default);
        // A server that honours conditional requests (RGW, AWS) answers 412, which is ObjectChanged;
        // s3rver ignores If-Match (and If-None-Match on PUT, which the store probes) and sends the new bytes.
        if (await store.CreatesExclusivelyAsync(default))
        {
            var changed = await Assert.ThrowsAsync<GridException>(() => store.ReadRangeAsync("changes.bin", 0, 0, version, default));
            Assert.Equal("ObjectChanged", changed.ErrorId);
        }
        else
        {
            using var read = await store.ReadRangeAsync("changes.bin", 0, 0, version, default);
            Assert.Equal("second, longer".Length, read.TotalLength);
        }

        using var noBucket = new S3Store(_s3.StoreUri("no-such-bucket-direct", "x"));
        var gone = await Assert.ThrowsAsync<GridException>(() => noBucket.ReadRangeAsync("a.bin", 0, 0, null, default));
        Assert.Equal("BucketNotFound", gone.ErrorId);

        const string secret = "wrong-secret-value-0123456789";
        using var wrong = new S3Store(_s3.StoreUri(bucket, "errors"), new BasicAWSCredentials("AKIAUNKNOWNKEY000000", secret));
        Assert.True(wrong.GetsDirectly);
        var refused = await Assert.ThrowsAsync<GridException>(() => wrong.ReadRangeAsync("changes.bin", 0, 0, null, default));
        Assert.Equal("InvalidCredentials", refused.ErrorId);
        Assert.DoesNotContain(secret, refused.ToString());
    }

    [Theory]
    [MemberData(nameof(Keys))]
    public async Task A_key_that_needs_encoding_is_written_byte_exact_whole_and_in_parts(string key)
    {
        using var temp = new TempDir();
        using var store = new S3Store(_s3.StoreUri(_s3.NewBucket(), "direct/pre fix+/"));
        Assert.True(store.PutsDirectly);
        // Read into memory and sent from there (up to 1 MiB), hashed then sent from the file (larger),
        // and in parts: two of 5 MiB sent from the file, and a last one of 0.5 MiB from memory.
        foreach (var (name, length) in new[] { ("small", 100_001), ("larger", 1_500_000), ("parts", (10 << 20) + (512 << 10)) })
        {
            var data = TestBytes.Random(length, key.Length + length);
            var path = temp.WriteFile(name + ".bin", data);
            var engine = new TransferEngine(new TransferOptions { RangedThreshold = 6L << 20, PartSize = 5L << 20 });
            var sent = await engine.UploadFileAsync(store, $"{name}/{key}", path, TimeProvider.System, default);
            Assert.Equal(TestBytes.Sha256(data), sent);
            await using var read = await store.OpenReadAsync($"{name}/{key}", default); // through the SDK
            using var back = new MemoryStream();
            await read.CopyToAsync(back);
            Assert.True(TestBytes.Sha256(data) == TestBytes.Sha256(back.ToArray()), $"{name} ({length} bytes) of '{key}': {back.Length} bytes came back");
        }
    }

    [Fact]
    public async Task A_direct_PUT_labels_an_object_with_the_type_the_SDK_gives_it()
    {
        using var temp = new TempDir();
        var bucket = _s3.NewBucket();
        using var direct = new S3Store(_s3.StoreUri(bucket, "direct/"));
        using var sdk = new S3Store(_s3.StoreUri(bucket, "sdk/"));
        sdk.PutThroughSdk();
        Assert.True(direct.PutsDirectly);
        Assert.False(sdk.PutsDirectly);
        var file = temp.WriteFile("f", TestBytes.Random(1_000, 3));
        foreach (var name in new[] { "plots/loss.png", "metrics.json", "model.bin", "notes.txt", "last.ckpt", "index.html" })
        {
            await direct.PutFileAsync(name, file, default);
            await sdk.PutFileAsync(name, file, default);
            var ours = await _s3.Client.GetObjectMetadataAsync(bucket, "direct/" + name);
            var theirs = await _s3.Client.GetObjectMetadataAsync(bucket, "sdk/" + name);
            Assert.True(theirs.Headers.ContentType == ours.Headers.ContentType, $"{name}: the SDK's PUT gave {theirs.Headers.ContentType}, ours {ours.Headers.ContentType}");
            Assert.Equal(1_000, ours.ContentLength);
        }
        Assert.Equal("image/png", (await _s3.Client.GetObjectMetadataAsync(bucket, "direct/plots/loss.png")).Headers.ContentType);
        // A name without an extension: the SDK says text/plain, which a browser would show a checkpoint as; ours says bytes.
        await direct.PutFileAsync("checkpoints/model", file, default);
        Assert.Equal("application/octet-stream", (await _s3.Client.GetObjectMetadataAsync(bucket, "direct/checkpoints/model")).Headers.ContentType);
    }

    [Fact]
    public async Task A_body_that_is_not_what_was_hashed_is_refused_and_nothing_is_stored()
    {
        var bucket = _s3.NewBucket();
        using var store = new S3Store(_s3.StoreUri(bucket, "mismatch/"));
        var direct = store.Direct!;
        var hashed = TestBytes.Random(4_096, 1);
        var sent = (byte[])hashed.Clone();
        sent[2_000] ^= 1;
        using var body = new ByteArrayContent(sent);
        if (_s3.IsS3rver)
        {
            // s3rver 3.7.1 checks the signature but not the body against its signed SHA-256: it keeps what came.
            await direct.PutAsync("torn.bin", body, TestBytes.Sha256(hashed), null, 0, default);
            Assert.Equal(TestBytes.Sha256(sent), TestBytes.Sha256((await store.TryReadAllBytesAsync("torn.bin", default))!));
            return;
        }
        var refused = await Assert.ThrowsAsync<AmazonS3Exception>(() => direct.PutAsync("torn.bin", body, TestBytes.Sha256(hashed), null, 0, default));
        Assert.Equal(System.Net.HttpStatusCode.BadRequest, refused.StatusCode);
        Assert.Null(await store.TryReadAllBytesAsync("torn.bin", default));
        // A file that changed between its hash and its send: tried again, it is read and hashed afresh.
        var error = store.Translate(refused, "torn.bin");
        Assert.True(error is { ErrorId: "BodyChanged", IsTransient: true }, $"{refused.ErrorCode} became {error?.ErrorId}");
    }
}
