using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using GridArtifacts.Core.Stores;

namespace GridArtifacts.Core.Sharing;

/// <summary>A folder store's expiring links: the secret, signing, and the <c>/a/</c> route that checks them.</summary>
public sealed partial class ArtifactServer
{
    private const string SecretFile = ".link-secret";

    /// <summary>How far a link's signer's clock may run ahead of this server's.</summary>
    private static readonly TimeSpan ClockSkew = TimeSpan.FromMinutes(5);

    /// <summary>A folder store's expiring link to one artifact.</summary>
    public (Uri Url, DateTimeOffset ExpiresAt) Sign(string run, string experiment, string path, TimeSpan lifetime)
    {
        if (_secret is null) throw new InvalidOperationException("Only a folder store's server signs links.");
        var expires = _catalog.Clock.GetUtcNow().Add(lifetime);
        var e = expires.ToUnixTimeSeconds();
        var sig = Convert.ToHexString(Mac(run, experiment, path, e)).ToLowerInvariant();
        var url = new Uri(BaseUrl, $"a/{run}/{experiment}/{Uri.EscapeDataString(path)}?e={e}&s={sig}");
        return (url, DateTimeOffset.FromUnixTimeSeconds(e));
    }

    private byte[] Mac(string run, string experiment, string path, long expires) =>
        HMACSHA256.HashData(_secret!, Encoding.UTF8.GetBytes($"v1\n{run}\n{experiment}\n{path}\n{expires}"));

    private static byte[] LoadOrCreateSecret(string root)
    {
        var file = Path.Combine(root, SecretFile);
        Directory.CreateDirectory(root);
        if (!File.Exists(file))
        {
            try
            {
                var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
                if (!OperatingSystem.IsWindows()) options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
                using var fs = new FileStream(file, options);
                fs.Write(RandomNumberGenerator.GetBytes(32));
            }
            catch (IOException) when (File.Exists(file))
            {
                // Another process created it first: use theirs.
            }
        }
        return File.ReadAllBytes(file);
    }

    /// <summary>GET or HEAD <c>/a/run/expN/path?e=...&amp;s=...</c>: the artifact, when the signature and expiry hold; else 403.</summary>
    private async Task ServeSignedLinkAsync(HttpListenerContext ctx, CancellationToken cancel)
    {
        var res = ctx.Response;
        var segments = ctx.Request.Url!.AbsolutePath.Split('/', StringSplitOptions.RemoveEmptyEntries);
        var query = ctx.Request.QueryString;
        if (_secret is null || segments.Length != 4 || !long.TryParse(query["e"], NumberStyles.None, CultureInfo.InvariantCulture, out var expires) || query["s"] is not { Length: 64 } sigText)
        {
            res.StatusCode = 403;
            return;
        }
        var (run, experiment, path) = (segments[1], segments[2], Uri.UnescapeDataString(segments[3]));
        byte[] given;
        try { given = Convert.FromHexString(sigText); } catch (FormatException) { res.StatusCode = 403; return; }
        var valid = ArtifactFromQuery(run, experiment, path) is not null;
        var expected = Mac(run, experiment, path, expires);
        // Compare in constant time whatever else is wrong, so timing says nothing about the signature.
        var signed = CryptographicOperations.FixedTimeEquals(expected, given);
        // A link says only when it ends, not when it was signed: one that ends further ahead than any
        // link may live (one signed by an older version, or forged with the secret) is refused.
        var now = _catalog.Clock.GetUtcNow().ToUnixTimeSeconds();
        var latest = now + (long)(ArtifactLinks.MaxLifetime + ClockSkew).TotalSeconds;
        if (!valid || !signed || now > expires || expires > latest)
        {
            res.StatusCode = 403;
            return;
        }
        await ServeArtifactAsync(ctx, StoreLayout.ArtifactKey(run, experiment, path), Path.GetFileName(path), ArtifactDisposition.Download, cancel).ConfigureAwait(false);
    }
}
