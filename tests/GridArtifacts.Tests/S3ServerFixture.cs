using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Amazon.Runtime;
using Amazon.S3;
using Xunit;

namespace GridArtifacts.Tests;

/// <summary>
/// A real S3-compatible server (s3rver, from tests/s3) on loopback. build.ps1 starts one for the whole
/// test run and passes its endpoint in GRID_TEST_S3_ENDPOINT; without that, the fixture starts its own
/// (after `npm ci --prefix tests/s3`) and stops it at the end. No mock of the SDK stands in for it.
/// </summary>
public sealed class S3ServerFixture : IDisposable
{
    public const string EndpointVariable = "GRID_TEST_S3_ENDPOINT";
    public const string AccessKey = "S3RVER";
    public const string SecretKey = "S3RVER";
    private readonly Process? _server;
    private readonly string? _dataDir;

    public S3ServerFixture()
    {
        // s3rver's fixed test identity, through the SDK's standard chain (environment variables).
        Environment.SetEnvironmentVariable("AWS_ACCESS_KEY_ID", AccessKey);
        Environment.SetEnvironmentVariable("AWS_SECRET_ACCESS_KEY", SecretKey);
        Environment.SetEnvironmentVariable("AWS_REGION", "us-east-1");

        var endpoint = Environment.GetEnvironmentVariable(EndpointVariable);
        if (string.IsNullOrEmpty(endpoint))
        {
            (_server, _dataDir, endpoint) = Start();
        }
        Endpoint = endpoint.TrimEnd('/');
        _abortsUploads = new Lazy<bool>(AskAbortsUploads);
        Client = new AmazonS3Client(new BasicAWSCredentials(AccessKey, SecretKey), new AmazonS3Config
        {
            ServiceURL = Endpoint, ForcePathStyle = true, AuthenticationRegion = "us-east-1",
            RequestChecksumCalculation = RequestChecksumCalculation.WHEN_REQUIRED,
            ResponseChecksumValidation = ResponseChecksumValidation.WHEN_REQUIRED,
        });
    }

    public string Endpoint { get; }

    /// <summary>
    /// Whether the server is s3rver 3.7.1 (started here or by build.ps1), known by what it alone of
    /// the servers the tests meet answers to an abort of a multipart upload (405; <see cref="AbortsUploads"/>).
    /// </summary>
    public bool IsS3rver => !AbortsUploads;

    /// <summary>For test set-up only (creating buckets); the code under test makes its own client.</summary>
    public AmazonS3Client Client { get; }

    public string NewBucket()
    {
        var name = "grid-" + Guid.NewGuid().ToString("N")[..20];
        Client.PutBucketAsync(name).GetAwaiter().GetResult();
        return name;
    }

    /// <summary>
    /// Whether this server aborts a multipart upload when asked (AWS and Ceph's RADOS Gateway do;
    /// s3rver 3.7.1 answers 405 Method Not Allowed), found once by starting an upload and aborting it.
    /// </summary>
    public bool AbortsUploads => _abortsUploads.Value;
    private readonly Lazy<bool> _abortsUploads;

    private bool AskAbortsUploads()
    {
        var bucket = NewBucket();
        var init = Client.InitiateMultipartUploadAsync(bucket, "probe").GetAwaiter().GetResult();
        try
        {
            Client.AbortMultipartUploadAsync(bucket, "probe", init.UploadId).GetAwaiter().GetResult();
            return true;
        }
        catch (AmazonS3Exception ex) when (ex.StatusCode is HttpStatusCode.MethodNotAllowed or HttpStatusCode.NotImplemented)
        {
            return false;
        }
    }

    public string StoreUri(string bucket, string prefix = "") =>
        $"s3://{bucket}/{prefix}?endpoint={Uri.EscapeDataString(Endpoint)}";

    private static (Process, string, string) Start()
    {
        var root = AppContext.BaseDirectory;
        while (root is not null && !File.Exists(Path.Combine(root, "GridArtifacts.sln"))) root = Path.GetDirectoryName(root);
        var s3rver = root is null ? null : Path.Combine(root, "tests", "s3", "node_modules", "s3rver", "bin", "s3rver.js");
        if (s3rver is null || !File.Exists(s3rver))
        {
            throw new InvalidOperationException("s3rver is not installed: run 'npm ci --prefix tests/s3', or run the tests with 'dotnet pwsh ./build.ps1 -Task Test'.");
        }
        var port = TestNet.FreePort();
        var data = Path.Combine(Path.GetTempPath(), "grid-s3rver-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(data);
        var psi = new ProcessStartInfo("node", new[] { s3rver, "-d", data, "-a", "127.0.0.1", "-p", port.ToString(), "--silent" })
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        psi.Environment["NODE_OPTIONS"] = "--openssl-legacy-provider";
        var process = Process.Start(psi)!;
        var endpoint = $"http://127.0.0.1:{port}";
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (DateTime.UtcNow < deadline)
        {
            try
            {
                using var tcp = new TcpClient();
                tcp.Connect(IPAddress.Loopback, port);
                return (process, data, endpoint);
            }
            catch (SocketException)
            {
                Thread.Sleep(100);
            }
        }
        process.Kill(entireProcessTree: true);
        throw new InvalidOperationException($"s3rver did not start on {endpoint}: {process.StandardError.ReadToEnd()}");
    }


    public void Dispose()
    {
        Client.Dispose();
        if (_server is not null)
        {
            try { _server.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
            _server.Dispose();
        }
        if (_dataDir is not null)
        {
            try { Directory.Delete(_dataDir, recursive: true); } catch (IOException) { }
        }
    }
}

[CollectionDefinition(Name)]
public sealed class S3Collection : ICollectionFixture<S3ServerFixture>
{
    public const string Name = "s3rver";
}

/// <summary>
/// A second lane of tests against s3rver, run beside the first: much of an S3 test's time is waiting
/// (claims settling, heartbeats), so two lanes share the server the build started (or each starts its own).
/// </summary>
[CollectionDefinition(Name)]
public sealed class S3SecondLane : ICollectionFixture<S3ServerFixture>
{
    public const string Name = "s3rver, second lane";
}
