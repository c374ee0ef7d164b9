using System.Net;
using System.Net.Sockets;
using Amazon.Runtime;
using Amazon.S3;
using GridArtifacts.Model;

namespace GridArtifacts.Core.Stores;

/// <summary>
/// What S3, the SDK and the network say, as errors a user can act on: the one place a store's
/// request failures become typed <see cref="GridException"/>s, whichever way the request went (the
/// SDK, or the store's own <see cref="S3Direct"/>), with whether to try again and whether the server
/// asked to slow down.
/// </summary>
internal sealed class S3Errors(string display, string bucket, string endpointText)
{
    public GridException? Translate(Exception ex, string key)
    {
        var store = display;
        switch (ex)
        {
            case OperationCanceledException:
                return null;
            case AmazonS3Exception s3:
                var code = s3.ErrorCode ?? "";
                if (code == "NoSuchKey" || (s3.StatusCode == HttpStatusCode.NotFound && code != "NoSuchBucket"))
                {
                    return new GridException(GridErrorKind.NotFound, "ObjectNotFound", $"'{key}' is not in store '{store}'.", key, ex)
                        { Cause = GridErrorCause.ObjectMissing };
                }
                if (code == "NoSuchBucket")
                {
                    return new GridException(GridErrorKind.NotFound, "BucketNotFound",
                        $"Store '{store}': the bucket '{bucket}' does not exist. Check the name, or create the bucket first.", store, ex);
                }
                if (code is "InvalidAccessKeyId" or "SignatureDoesNotMatch" or "ExpiredToken" or "InvalidToken" or "TokenRefreshRequired")
                {
                    return new GridException(GridErrorKind.AccessDenied, "InvalidCredentials",
                        $"Store '{store}': the server rejected the credentials ({code}). Check the access key, secret and session token the AWS credential chain found (environment, profile, SSO or role).", store, ex);
                }
                if (code is "AuthorizationHeaderMalformed" or "PermanentRedirect" or "IllegalLocationConstraintException" || s3.StatusCode == HttpStatusCode.MovedPermanently)
                {
                    return new GridException(GridErrorKind.InvalidArgument, "WrongRegion",
                        $"Store '{store}': the bucket is in another region than the one asked for. Add ?region=<the bucket's region> to the store URI or set AWS_REGION.", store, ex);
                }
                if (code == "AccessDenied" || s3.StatusCode == HttpStatusCode.Forbidden)
                {
                    return new GridException(GridErrorKind.AccessDenied, "AccessDenied",
                        $"Store '{store}': access denied to '{key}'. The identity the credential chain found lacks permission on this bucket or prefix.", store, ex);
                }
                if (code is "XAmzContentSHA256Mismatch" or "BadDigest")
                {
                    // The body was not the bytes hashed: a file changed between its hash and its send.
                    // Tried again, it is read and hashed afresh.
                    return new GridException(GridErrorKind.StoreUnavailable, "BodyChanged",
                        $"Store '{store}': the server refused '{key}' because its bytes were not the ones hashed ({code}); the file changed while it was sent.", key, ex) { IsTransient = true };
                }
                if (s3.StatusCode == HttpStatusCode.PreconditionFailed)
                {
                    return new GridException(GridErrorKind.IntegrityFailure, "PreconditionFailed", $"'{key}' in store '{store}' is not the version asked for.", key, ex)
                        { Cause = GridErrorCause.VersionMismatch };
                }
                var transient = (int)s3.StatusCode >= 500 || code is "SlowDown" or "RequestTimeout" or "InternalError" || s3.StatusCode == HttpStatusCode.TooManyRequests;
                return new GridException(GridErrorKind.StoreUnavailable, transient ? "StoreBusy" : "StoreRequestFailed",
                    $"Store '{store}': the server answered {(int)s3.StatusCode} {code} for '{key}'.", store, ex)
                {
                    IsTransient = transient,
                    IsThrottling = code is "SlowDown" || s3.StatusCode is HttpStatusCode.ServiceUnavailable or HttpStatusCode.TooManyRequests,
                };
            case AmazonClientException client when IsCredentialProblem(client):
                return new GridException(GridErrorKind.AccessDenied, "NoCredentials",
                    $"Store '{store}': no AWS credentials were found. Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, choose a profile (AWS_PROFILE or ?profile= in the store URI), or run where a role is available.", store, ex);
            case HttpRequestException { HttpRequestError: HttpRequestError.ConnectionError or HttpRequestError.NameResolutionError } or SocketException:
                return new GridException(GridErrorKind.StoreUnavailable, "EndpointUnreachable",
                    $"Store '{store}': the server at {EndpointText} could not be reached ({Innermost(ex).Message}). Check the endpoint and the network.", store, ex)
                {
                    IsTransient = true,
                    IsThrottling = Innermost(ex) is SocketException { SocketErrorCode: SocketError.ConnectionRefused },
                };
            case System.Xml.XmlException xml:
                // XML 1.0 cannot carry most control characters, and a listing that holds a key with one cannot be parsed.
                return new GridException(GridErrorKind.DamagedRecord, "UnreadableListing",
                    $"Store '{store}': the server's answer for '{key}' is not readable XML ({xml.Message}). A key holding a control character, which XML cannot carry, is the usual cause: rename or remove that object.", store, ex);
            case ArgumentException when IsFromSdk(ex):
                // The SDK could not parse what came back (seen from servers answering mid-replacement).
                return new GridException(GridErrorKind.StoreUnavailable, "MalformedResponse",
                    $"Store '{store}': the server sent a response for '{key}' that could not be read.", store, ex) { IsTransient = true };
            case HttpRequestException or IOException or TimeoutException or AmazonServiceException or AmazonClientException:
                return new GridException(GridErrorKind.StoreUnavailable, "ConnectionFailed",
                    $"Store '{store}': the connection to {EndpointText} failed during '{key}' ({Innermost(ex).Message}).", store, ex) { IsTransient = true };
            default:
                return null;
        }
    }

    /// <summary>The server as messages name it.</summary>
    public string EndpointText => endpointText;

    /// <summary>
    /// An exception the SDK threw (its source, or the method that threw: one of its own helpers may
    /// be inlined into another of its assemblies), such as the ArgumentOutOfRangeException ('hex')
    /// AWSSDKUtils.HexStringToBytes throws for an ETag that is not hex (s3rver, mid-replacement).
    /// The method is read from the first line of the stack trace, not from TargetSite: a Native AOT
    /// build keeps no reflection metadata for it, and there Source is not the assembly's name either.
    /// </summary>
    private static bool IsFromSdk(Exception ex) =>
        ex.Source is "AWSSDK.Core" or "AWSSDK.S3" || ThrownIn(ex).StartsWith("Amazon.", StringComparison.Ordinal);

    /// <summary>The method the first frame of <paramref name="ex"/>'s stack trace names ("Amazon.Util.AWSSDKUtils.HexStringToBytes(…)"), or "".</summary>
    internal static string ThrownIn(Exception ex)
    {
        var trace = ex.StackTrace.AsSpan().TrimStart();
        var end = trace.IndexOfAny('\r', '\n');
        var first = end < 0 ? trace : trace[..end];
        return first.StartsWith("at ", StringComparison.Ordinal) ? first[3..].ToString() : "";
    }

    private static bool IsCredentialProblem(AmazonClientException ex) =>
        ex.Message.Contains("credentials", StringComparison.OrdinalIgnoreCase) && ex.InnerException is not HttpRequestException;

    private static Exception Innermost(Exception ex)
    {
        while (ex.InnerException is not null) ex = ex.InnerException;
        return ex;
    }
}
