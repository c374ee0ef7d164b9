using System.Security.Cryptography;

namespace GridArtifacts.Tests;

/// <summary>A temporary folder removed at the end of the test, and helpers for content with known hashes.</summary>
public sealed class TempDir : IDisposable
{
    public TempDir()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "grid-tests-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string Sub(params string[] parts) => System.IO.Path.Combine(new[] { Path }.Concat(parts).ToArray());

    public string WriteFile(string relative, byte[] content)
    {
        var full = Sub(relative.Split('/'));
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(full)!);
        File.WriteAllBytes(full, content);
        return full;
    }

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}

public static class TestBytes
{
    public static byte[] Random(int length, int seed)
    {
        var b = new byte[length];
        new Random(seed).NextBytes(b);
        return b;
    }

    public static string Sha256(byte[] data) => Convert.ToHexString(SHA256.HashData(data)).ToLowerInvariant();

    public static string Sha256(string file) => Sha256(File.ReadAllBytes(file));
}

/// <summary>What "byte-exact" compares: the SHA-256 of every artifact as downloaded, and of every local file.</summary>
public static class TestStore
{
    /// <summary>Every artifact read back whole, by SHA-256, keyed by path (the manifest's hash must agree).</summary>
    public static async Task<Dictionary<string, string>> StoredHashes(GridArtifacts.Core.GridCatalog catalog, string run, string exp = "exp0")
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        var listed = await catalog.Artifacts.GetArtifactsAsync(run, exp, default);
        Xunit.Assert.Empty(listed.Errors);
        foreach (var a in listed.Items)
        {
            await using var s = await catalog.Artifacts.OpenArtifactAsync(a, default);
            using var ms = new MemoryStream();
            await s.CopyToAsync(ms);
            var sha = TestBytes.Sha256(ms.ToArray());
            Xunit.Assert.Equal(a.Sha256, sha);
            result[a.Path] = sha;
        }
        return result;
    }

    /// <summary>Every file under a folder, by SHA-256, keyed by its path relative to it with '/'.</summary>
    public static Dictionary<string, string> LocalHashes(string root) =>
        Directory.EnumerateFiles(root, "*", SearchOption.AllDirectories)
            .ToDictionary(f => System.IO.Path.GetRelativePath(root, f).Replace(System.IO.Path.DirectorySeparatorChar, '/'), TestBytes.Sha256, StringComparer.Ordinal);
}

public static class TestNet
{
    /// <summary>A loopback port nothing listens on right now.</summary>
    public static int FreePort()
    {
        var l = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        l.Start();
        var port = ((System.Net.IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        return port;
    }
}
