using System.Text.Json;
using GridArtifacts.Core;
using GridArtifacts.Core.Stores;
using GridArtifacts.Core.Transfer;
using GridArtifacts.Model;
using Xunit;

namespace GridArtifacts.Tests;

public sealed record ExpectedExperiment(string Status, int? ExitCode, Dictionary<string, string> Artifacts);

public sealed record ExpectedRun(string Status, bool Protected, Dictionary<string, ExpectedExperiment> Experiments);

/// <summary>
/// The stores earlier releases wrote (tests/fixtures/store-v&lt;schema&gt;, each made by its
/// New-Schema&lt;schema&gt;Store.ps1 from that release's commit), copied file for file into a fresh
/// folder or S3 prefix, and what their generators recorded of them.
/// </summary>
public static class FixtureStores
{
    public static string Root
    {
        get
        {
            var root = AppContext.BaseDirectory;
            while (root is not null && !File.Exists(Path.Combine(root, "GridArtifacts.sln"))) root = Path.GetDirectoryName(root);
            return Path.Combine(root ?? throw new InvalidOperationException("The repository root was not found."), "tests", "fixtures");
        }
    }

    /// <summary>Every file of the fixture store, by key.</summary>
    public static IEnumerable<(string Key, string Path)> Files(int schema)
    {
        var store = Path.Combine(Root, $"store-v{schema}");
        return Directory.EnumerateFiles(store, "*", SearchOption.AllDirectories)
            .Select(f => (Path.GetRelativePath(store, f).Replace('\\', '/'), f));
    }

    /// <summary>The runs in store-v&lt;schema&gt;.expected.json, by name.</summary>
    public static Dictionary<string, ExpectedRun> Expected(int schema)
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(Root, $"store-v{schema}.expected.json")));
        Assert.Equal(schema, doc.RootElement.GetProperty("schema").GetInt32());
        return doc.RootElement.GetProperty("runs").EnumerateObject().ToDictionary(r => r.Name, r => new ExpectedRun(
            r.Value.GetProperty("status").GetString()!,
            // 0.1.0 had no protection, so its file does not say.
            r.Value.TryGetProperty("protected", out var p) && p.GetBoolean(),
            r.Value.GetProperty("experiments").EnumerateObject().ToDictionary(e => e.Name, e => new ExpectedExperiment(
                e.Value.GetProperty("status").GetString()!,
                e.Value.GetProperty("exitCode").ValueKind == JsonValueKind.Number ? e.Value.GetProperty("exitCode").GetInt32() : null,
                e.Value.GetProperty("artifacts").EnumerateObject().ToDictionary(a => a.Name, a => a.Value.GetString()!, StringComparer.Ordinal)))));
    }

    public static GridCatalog InFolder(int schema, string root)
    {
        foreach (var (key, path) in Files(schema))
        {
            var target = Path.Combine(root, key);
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(path, target);
        }
        return new GridCatalog(new FileSystemStore(root));
    }

    public static async Task<GridCatalog> InS3(int schema, S3ServerFixture s3)
    {
        var store = new S3Store(s3.StoreUri(s3.NewBucket(), "team/ml"));
        foreach (var (key, path) in Files(schema)) await store.PutFileAsync(key, path, default);
        return new GridCatalog(store) { ClaimSettle = TimeSpan.FromMilliseconds(300) };
    }

    /// <summary>
    /// Saves every artifact of an experiment as Save-GridArtifact does (the transfer engine, which
    /// checks each download against its recorded hash) and returns the saved files by SHA-256.
    /// </summary>
    public static async Task<Dictionary<string, string>> SavedHashes(GridCatalog catalog, string run, string exp, string dest)
    {
        var listed = await catalog.GetArtifactsAsync(run, exp, default);
        Assert.Empty(listed.Errors);
        var items = listed.Items.Select(a => new SaveItem(a, GridNames.LocalPathFor(dest, run, exp, a.Path))).ToList();
        var errors = new List<GridException>();
        await new TransferEngine(new TransferOptions()).DownloadAsync(items, _ => catalog, force: false, throttleLimit: 4,
            new TransferProgress(items.Count, items.Sum(i => i.Artifact.Size)), _ => { }, e => { lock (errors) errors.Add(e); }, default);
        Assert.Empty(errors);
        var saved = items.ToDictionary(i => i.Artifact.Path, i => TestBytes.Sha256(i.LocalPath), StringComparer.Ordinal);
        // The engine checks size alone where a manifest has no hash: every artifact here must have one.
        Assert.Equal(saved, listed.Items.ToDictionary(a => a.Path, a => a.Sha256!, StringComparer.Ordinal));
        return saved;
    }
}
