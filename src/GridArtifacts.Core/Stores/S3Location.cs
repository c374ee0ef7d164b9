using GridArtifacts.Model;

namespace GridArtifacts.Core.Stores;

/// <summary>
/// An S3 store named by a URI: <c>s3://bucket/prefix</c>, with options in the query string:
/// <c>region</c>, <c>endpoint</c> (an S3-compatible server; path-style addressing) and <c>profile</c>.
/// Without an endpoint, <c>AWS_ENDPOINT_URL_S3</c> or <c>AWS_ENDPOINT_URL</c> from the environment is used,
/// as the AWS tools do.
/// </summary>
public sealed record S3StoreUri(string Bucket, string Prefix, string? Region, Uri? Endpoint, string? Profile)
{
    public static S3StoreUri Parse(string location)
    {
        if (!Uri.TryCreate(location, UriKind.Absolute, out var uri) || !uri.Scheme.Equals("s3", StringComparison.OrdinalIgnoreCase) || string.IsNullOrEmpty(uri.Host))
        {
            throw Invalid(location, "write it as s3://bucket/prefix");
        }
        var bucket = uri.Host;
        var prefix = Uri.UnescapeDataString(uri.AbsolutePath).Trim('/');
        string? region = null, profile = null;
        Uri? endpoint = null;
        foreach (var pair in uri.Query.TrimStart('?').Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            var eq = pair.IndexOf('=');
            var name = Uri.UnescapeDataString(eq < 0 ? pair : pair[..eq]).ToLowerInvariant();
            var value = eq < 0 ? "" : Uri.UnescapeDataString(pair[(eq + 1)..]);
            switch (name)
            {
                case "region": region = value; break;
                case "profile": profile = value; break;
                case "endpoint":
                    if (!Uri.TryCreate(value, UriKind.Absolute, out endpoint) || (endpoint.Scheme != Uri.UriSchemeHttp && endpoint.Scheme != Uri.UriSchemeHttps))
                    {
                        throw Invalid(location, $"the endpoint '{value}' is not an http or https URL");
                    }
                    break;
                default:
                    throw Invalid(location, $"'{name}' is not an option; use region, endpoint or profile");
            }
        }
        endpoint ??= FromEnvironment("AWS_ENDPOINT_URL_S3") ?? FromEnvironment("AWS_ENDPOINT_URL");
        return new S3StoreUri(bucket, prefix, string.IsNullOrEmpty(region) ? null : region, endpoint, string.IsNullOrEmpty(profile) ? null : profile);
    }

    /// <summary>The key prefix every store key is placed under ("" or "prefix/").</summary>
    public string KeyPrefix => Prefix.Length == 0 ? "" : Prefix + "/";

    /// <summary>The location as users write it, without options: what errors and objects show.</summary>
    public string Display => Prefix.Length == 0 ? $"s3://{Bucket}" : $"s3://{Bucket}/{Prefix}";

    private static Uri? FromEnvironment(string name)
    {
        var value = Environment.GetEnvironmentVariable(name);
        return !string.IsNullOrWhiteSpace(value) && Uri.TryCreate(value, UriKind.Absolute, out var uri) ? uri : null;
    }

    private static GridException Invalid(string location, string why) =>
        new(GridErrorKind.InvalidArgument, "InvalidStoreUri", $"The store '{location}' is not a valid S3 location: {why}.", location);
}
